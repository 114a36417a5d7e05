# The builders, one target per shell, each running on the mounted workspace the same script that
# `cargo xtask` runs, so that what they build is what the project tests.
#
# wasm (the default target): compiles a plugin folder of the workspace into main.wasm inside that
# folder, with scripts/build-plugin.sh (hence the same release profile).
#
#   docker build -f docker/builder.Dockerfile -t http-auth-random-builder .
#   docker run --rm -v "$PWD:/workspace" http-auth-random-builder plugins/http_auth_random
#
# native: compiles the native dynamic module into
# target/native-module/release/libhttp_auth_native.so, with scripts/build-native.sh (the
# workspace's `native` profile, as `cargo xtask build --shell native`). The module links against
# this image's glibc (Debian bookworm's 2.36; it asks for symbols up to GLIBC_2.34) and
# libgcc_s.so.1: the Envoy that loads it needs both (see docs/native.md).
#
#   docker build -f docker/builder.Dockerfile --target native -t http-auth-native-builder .
#   docker run --rm -v "$PWD:/workspace" http-auth-native-builder
#
# The whole workspace is mounted, not one folder alone: both shells are thin layers over the core
# crate (crates/authz-core), which they build from. A standalone proxy-wasm crate builds with the
# wasm target the same way, mounted as /workspace and named `.`.
FROM rust:1.95-slim-bookworm AS base

# Build outputs stay out of the mounted folder; mount a volume here to keep them between runs.
ENV CARGO_TARGET_DIR=/cargo-target

WORKDIR /workspace

# The native module needs nothing beyond the Rust image (its C linker included). Extra
# arguments are cargo's (e.g. --locked).
FROM base AS native
COPY scripts/build-native.sh /usr/local/bin/build-native.sh
ENTRYPOINT ["bash", "/usr/local/bin/build-native.sh"]

# The last stage is what a build without --target gives: the wasm builder, as before.
FROM base AS wasm

# binaryen as Debian bookworm ships it (a stable release: no version to pin).
# hadolint ignore=DL3008
RUN rustup target add wasm32-wasip1 \
    && apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends binaryen \
    && rm -rf /var/lib/apt/lists/*

COPY scripts/build-plugin.sh /usr/local/bin/build-plugin.sh

ENTRYPOINT ["bash", "/usr/local/bin/build-plugin.sh"]
CMD ["plugins/http_auth_random"]
