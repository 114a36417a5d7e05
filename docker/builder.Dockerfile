# The plugin builder: compiles a mounted plugin folder into main.wasm inside that folder, with the
# same script (scripts/build-plugin.sh, hence the same release profile) that `cargo xtask` runs.
#
#   docker build -f docker/builder.Dockerfile -t http-auth-random-builder .
#   docker run --rm -v "$PWD/plugins/http_auth_random:/workspace" http-auth-random-builder
#
# Any plugin folder of this workspace builds on its own (the plugin crates inherit nothing from
# the workspace), and so does any standalone proxy-wasm crate.
FROM rust:1.95-slim-bookworm

RUN rustup target add wasm32-wasip1 \
    && apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends binaryen \
    && rm -rf /var/lib/apt/lists/*

COPY scripts/build-plugin.sh /usr/local/bin/build-plugin.sh

# Build outputs stay out of the mounted folder; mount a volume here to keep them between runs.
ENV CARGO_TARGET_DIR=/cargo-target

WORKDIR /workspace
ENTRYPOINT ["bash", "/usr/local/bin/build-plugin.sh", "/workspace"]
