//! Building a plugin folder into its `main.wasm`, through the same script the Docker builder runs.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::paths;

/// Builds `plugin_dir` for release and returns the path of its `main.wasm`.
pub fn build(plugin_dir: &Path, cargo_args: &[&str]) -> Result<PathBuf> {
    let plugin_dir = plugin_dir
        .canonicalize()
        .with_context(|| format!("plugin folder {} does not exist", plugin_dir.display()))?;
    let status = std::process::Command::new("bash")
        .arg(paths::build_script())
        .arg(&plugin_dir)
        .args(cargo_args)
        .stdout(std::process::Stdio::null())
        .status()
        .context("cannot run scripts/build-plugin.sh (is bash installed?)")?;
    if !status.success() {
        bail!("building {} failed ({status})", plugin_dir.display());
    }
    Ok(plugin_dir.join("main.wasm"))
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
