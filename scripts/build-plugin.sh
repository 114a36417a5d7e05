#!/usr/bin/env bash
# Builds a proxy-wasm plugin crate into `main.wasm` inside its own folder.
#
# usage: scripts/build-plugin.sh PLUGIN_DIR [extra cargo args...]
#        PLUGIN_OUT=path/to/other.wasm scripts/build-plugin.sh PLUGIN_DIR --features ...
#
# The one build recipe: `cargo xtask` and the Docker builder image both run this script, so a
# plugin folder builds the same way everywhere. Works for a workspace member or a standalone crate.
set -euo pipefail

plugin_dir=${1:?usage: build-plugin.sh PLUGIN_DIR [cargo args...]}
shift
manifest="$plugin_dir/Cargo.toml"
[ -f "$manifest" ] || { echo "build-plugin: no Cargo.toml in $plugin_dir" >&2; exit 2; }

target=wasm32-wasip1
if ! rustup target list --installed | grep -qx "$target"; then
  echo "build-plugin: adding the $target target" >&2
  rustup target add "$target" >&2
fi

# The release profile every plugin gets, whether or not its own Cargo.toml sets one: the
# workspace's [profile.release] says the same, and a standalone crate gets it from here.
export CARGO_PROFILE_RELEASE_OPT_LEVEL=z
export CARGO_PROFILE_RELEASE_LTO=true
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
export CARGO_PROFILE_RELEASE_PANIC=abort
export CARGO_PROFILE_RELEASE_STRIP=true

cargo build --release --target "$target" --manifest-path "$manifest" "$@" >&2

# binaryen's wasm-opt shrinks the module by about a quarter with no measurable cost per request.
if ! command -v wasm-opt >/dev/null 2>&1; then
  echo "build-plugin: installing binaryen (wasm-opt)" >&2
  if ! { apt-get install -y -qq binaryen || { apt-get update -qq && apt-get install -y -qq binaryen; }; } >&2; then
    echo "build-plugin: wasm-opt is needed: install binaryen (e.g. apt-get install binaryen)" >&2
    exit 1
  fi
fi
# The wasm features rustc emits for wasm32-wasip1; newer binaryen splits bulk memory in two.
wasm_opt_flags=(-Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext
  --enable-mutable-globals --enable-multivalue --enable-reference-types)
if wasm-opt --help | grep -q -- --enable-bulk-memory-opt; then
  wasm_opt_flags+=(--enable-bulk-memory-opt)
fi

# The artifact is named after the crate's library: [lib] name if set, else the package name.
lib_name=$(awk '
  /^\[/ { section = $0 }
  /^[[:space:]]*name[[:space:]]*=/ {
    value = $0; sub(/^[^=]*=[[:space:]]*"/, "", value); sub(/".*$/, "", value)
    if (section == "[lib]") lib = value
    else if (section == "[package]") pkg = value
  }
  END { print (lib != "" ? lib : pkg) }
' "$manifest" | tr '-' '_')

workspace_manifest=$(cargo locate-project --workspace --message-format plain --manifest-path "$manifest")
target_dir=${CARGO_TARGET_DIR:-$(dirname "$workspace_manifest")/target}
artifact="$target_dir/$target/release/$lib_name.wasm"
[ -f "$artifact" ] || { echo "build-plugin: expected $artifact after the build" >&2; exit 1; }

out=${PLUGIN_OUT:-$plugin_dir/main.wasm}
mkdir -p "$(dirname "$out")"
wasm-opt "${wasm_opt_flags[@]}" "$artifact" -o "$out"
echo "$out"
