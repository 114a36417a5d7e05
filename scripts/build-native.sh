#!/usr/bin/env bash
# Builds the native dynamic module (modules/http_auth_native) into libhttp_auth_native.so.
#
# usage: scripts/build-native.sh [extra cargo args...]      (from the workspace's root)
#        MODULE_OUT=path/to/libhttp_auth_native.so scripts/build-native.sh
#
# The same build `cargo xtask build --shell native` runs (workbench/src/shell.rs): the workspace's
# `native` profile (opt-level 3, panic = "unwind", so that a panic is caught and answered 500
# rather than aborting Envoy), package http_auth_native. The Docker builder's `native` target runs
# this script on the mounted workspace. The result is written where xtask writes it,
# target/native-module/release/libhttp_auth_native.so, unless MODULE_OUT says otherwise.
set -euo pipefail

package=http_auth_native
if [ ! -f "modules/$package/Cargo.toml" ]; then
  echo "build-native: run from the workspace's root (no modules/$package/Cargo.toml here)" >&2
  exit 2
fi

cargo build --profile native -p "$package" "$@" >&2

workspace_manifest=$(cargo locate-project --workspace --message-format plain)
target_dir=${CARGO_TARGET_DIR:-$(dirname "$workspace_manifest")/target}
# Cargo puts a custom profile's outputs in a folder named after it.
artifact="$target_dir/native/lib$package.so"
[ -f "$artifact" ] || { echo "build-native: expected $artifact after the build" >&2; exit 1; }

out=${MODULE_OUT:-target/native-module/release/lib$package.so}
mkdir -p "$(dirname "$out")"
install -m 0644 "$artifact" "$out"
echo "$out"
