# The plugin builder: compiles a plugin folder of the mounted workspace into main.wasm inside that
# folder, with the same script (scripts/build-plugin.sh, hence the same release profile) that
# `cargo xtask` runs.
#
#   docker build -f docker/builder.Dockerfile -t http-auth-random-builder .
#   docker run --rm -v "$PWD:/workspace" http-auth-random-builder plugins/http_auth_random
#
# The whole workspace is mounted, not the plugin folder alone: the plugin is a thin shell over
# the core crate (crates/authz-core), which it builds from. A standalone proxy-wasm crate builds
# the same way, mounted as /workspace and named `.`.
FROM rust:1.95-slim-bookworm

RUN rustup target add wasm32-wasip1 \
    && apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends binaryen \
    && rm -rf /var/lib/apt/lists/*

COPY scripts/build-plugin.sh /usr/local/bin/build-plugin.sh

# Build outputs stay out of the mounted folder; mount a volume here to keep them between runs.
ENV CARGO_TARGET_DIR=/cargo-target

WORKDIR /workspace
ENTRYPOINT ["bash", "/usr/local/bin/build-plugin.sh"]
CMD ["plugins/http_auth_random"]
