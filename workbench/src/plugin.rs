//! Building a plugin folder into its `main.wasm`, through the same script the Docker builder runs.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::{paths, process};

/// Builds `plugin_dir` for release and returns the path of its `main.wasm`.
pub fn build(plugin_dir: &Path, cargo_args: &[&str]) -> Result<PathBuf> {
    build_to(plugin_dir, cargo_args, None)
}

/// The plugin with its test-only switches (trap on purpose, drop an auth header), kept apart
/// from `main.wasm` so that what is served and shipped never has them.
pub fn build_test_variant() -> Result<PathBuf> {
    build_to(
        &paths::default_plugin_dir(),
        &["--features", "test-switches"],
        Some(&paths::test_plugin_wasm()),
    )
}

pub fn built_test_variant() -> Result<PathBuf> {
    let wasm = paths::test_plugin_wasm();
    if !wasm.is_file() {
        bail!(
            "{} is missing: `cargo xtask test` builds it before the end-to-end tests",
            wasm.display()
        );
    }
    Ok(wasm)
}

fn build_to(plugin_dir: &Path, cargo_args: &[&str], out: Option<&Path>) -> Result<PathBuf> {
    let plugin_dir = plugin_dir
        .canonicalize()
        .with_context(|| format!("plugin folder {} does not exist", plugin_dir.display()))?;
    let mut command = std::process::Command::new("bash");
    if let Some(out) = out {
        command.env("PLUGIN_OUT", out);
    }
    process::die_with_parent_std(&mut command);
    let status = command
        .arg(paths::build_script())
        .arg(&plugin_dir)
        .args(cargo_args)
        .stdout(std::process::Stdio::null())
        .status()
        .context("cannot run scripts/build-plugin.sh (is bash installed?)")?;
    if !status.success() {
        bail!("building {} failed ({status})", plugin_dir.display());
    }
    Ok(out.map_or_else(|| plugin_dir.join("main.wasm"), Path::to_path_buf))
}

/// The built plugin of a folder, or a clear error saying how to build it.
pub fn built_wasm(plugin_dir: &Path) -> Result<PathBuf> {
    let wasm = plugin_dir.join("main.wasm");
    if !wasm.is_file() {
        bail!(
            "{} is missing: build it with `cargo xtask build` (cargo xtask test does this first)",
            wasm.display()
        );
    }
    Ok(wasm.canonicalize()?)
}
