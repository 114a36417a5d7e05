//! The programs each command needs from outside Cargo, checked in one step before any work:
//! what is missing is installed (apt-get, rustup or cargo install, saying so first), or the
//! command stops naming what to install.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::paths;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// The Rust target plugins are built for.
    WasmTarget,
    /// binaryen's optimizer, part of every plugin build.
    WasmOpt,
    /// Python 3 able to create `.venv` (Debian splits `ensurepip` into python3-venv).
    PythonVenv,
    /// Inspects the OCI image in the deploy tests.
    Skopeo,
    /// The benchmark's load generator.
    Wrk,
    /// Pins Envoy and wrk to CPUs in the benchmark.
    Taskset,
    /// Builds libFuzzer for the fuzz targets.
    CxxCompiler,
    /// Runs the fuzz targets.
    CargoFuzz,
}

/// How a missing tool is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installer {
    /// A Debian/Ubuntu package.
    Apt(&'static str),
    /// `rustup target add`.
    RustupTarget(&'static str),
    /// `cargo install --locked`.
    Cargo(&'static str),
}

pub const WASM_TARGET: &str = "wasm32-wasip1";

impl Tool {
    pub fn name(self) -> &'static str {
        match self {
            Tool::WasmTarget => "the wasm32-wasip1 Rust target",
            Tool::WasmOpt => "wasm-opt",
            Tool::PythonVenv => "python3 with the venv module",
            Tool::Skopeo => "skopeo",
            Tool::Wrk => "wrk",
            Tool::Taskset => "taskset",
            Tool::CxxCompiler => "a C++ compiler",
            Tool::CargoFuzz => "cargo-fuzz",
        }
    }

    pub fn installer(self) -> Installer {
        match self {
            Tool::WasmTarget => Installer::RustupTarget(WASM_TARGET),
            Tool::WasmOpt => Installer::Apt("binaryen"),
            Tool::PythonVenv => Installer::Apt("python3-venv"),
            Tool::Skopeo => Installer::Apt("skopeo"),
            Tool::Wrk => Installer::Apt("wrk"),
            Tool::Taskset => Installer::Apt("util-linux"),
            Tool::CxxCompiler => Installer::Apt("g++"),
            Tool::CargoFuzz => Installer::Cargo("cargo-fuzz"),
        }
    }

    pub fn is_present(self) -> bool {
        match self {
            Tool::WasmTarget => rustup_has_target(WASM_TARGET),
            Tool::WasmOpt => runs("wasm-opt", &["--version"]),
            // An existing .venv needs nothing more from the system Python.
            Tool::PythonVenv => {
                paths::venv_dir().join("bin").join("python").exists()
                    || runs("python3", &["-c", "import venv, ensurepip"])
            }
            Tool::Skopeo => runs("skopeo", &["--version"]),
            // wrk has no version flag that succeeds: that it starts is enough.
            Tool::Wrk => starts("wrk", &["--version"]),
            Tool::Taskset => runs("taskset", &["--version"]),
            Tool::CxxCompiler => runs("c++", &["--version"]),
            Tool::CargoFuzz => runs(cargo(), &["fuzz", "--version"]),
        }
    }
}

/// Checks every tool `command` needs and installs the missing ones, or fails before any of them
/// is installed when some cannot be (apt packages without root or without apt-get).
pub fn ensure(command: &str, tools: &[Tool]) -> Result<()> {
    let missing: Vec<Tool> = tools.iter().copied().filter(|t| !t.is_present()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let plan = Plan::of(&missing);
    if !plan.apt.is_empty() {
        if let Some(why) = apt_unavailable() {
            bail!("{}", cannot_install(command, &missing, &plan, why));
        }
    }
    if !plan.rustup_targets.is_empty() && !runs("rustup", &["--version"]) {
        bail!(
            "cargo xtask {command} needs the Rust target {}, and there is no rustup to add it: \
             add it to your Rust toolchain, then run it again",
            plan.rustup_targets.join(", ")
        );
    }
    eprintln!(
        "xtask {command}: {} missing; installing: {}",
        names(&missing),
        plan.describe()
    );
    if !plan.apt.is_empty() {
        apt_install(&plan.apt)?;
        eprintln!("xtask {command}: installed {}", plan.apt.join(", "));
    }
    for target in &plan.rustup_targets {
        run(Command::new("rustup").args(["target", "add", target]))
            .with_context(|| format!("rustup could not add the {target} target"))?;
    }
    for krate in &plan.cargo {
        run(Command::new(cargo()).args(["install", "--locked", krate]))
            .with_context(|| format!("cargo install {krate} failed"))?;
    }
    let still: Vec<Tool> = missing.into_iter().filter(|t| !t.is_present()).collect();
    if !still.is_empty() {
        bail!(
            "{} still missing after installing {}",
            names(&still),
            plan.describe()
        );
    }
    Ok(())
}

/// What installing the missing tools takes, grouped by installer.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub apt: Vec<&'static str>,
    pub rustup_targets: Vec<&'static str>,
    pub cargo: Vec<&'static str>,
}

impl Plan {
    pub fn of(missing: &[Tool]) -> Plan {
        let mut plan = Plan::default();
        for tool in missing {
            let (list, item) = match tool.installer() {
                Installer::Apt(package) => (&mut plan.apt, package),
                Installer::RustupTarget(target) => (&mut plan.rustup_targets, target),
                Installer::Cargo(krate) => (&mut plan.cargo, krate),
            };
            if !list.contains(&item) {
                list.push(item);
            }
        }
        plan
    }

    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.apt.is_empty() {
            parts.push(format!(
                "Debian package{} {} (apt-get)",
                if self.apt.len() == 1 { "" } else { "s" },
                self.apt.join(", ")
            ));
        }
        for target in &self.rustup_targets {
            parts.push(format!("Rust target {target} (rustup)"));
        }
        for krate in &self.cargo {
            parts.push(format!(
                "{krate} (cargo install --locked, into ~/.cargo/bin; a few minutes)"
            ));
        }
        parts.join("; ")
    }
}

/// The message when the packages cannot be installed here: what is missing and the command to run.
fn cannot_install(command: &str, missing: &[Tool], plan: &Plan, why: &str) -> String {
    let one = missing.len() == 1;
    format!(
        "cargo xtask {command} needs {}, which {} missing, and cannot install {} ({why}).\n\
         Install the Debian/Ubuntu package{} {} (e.g. sudo apt-get install {}), then run it again{}.",
        names(missing),
        if one { "is" } else { "are" },
        if one { "it" } else { "them" },
        if plan.apt.len() == 1 { "" } else { "s" },
        plan.apt.join(", "),
        plan.apt.join(" "),
        if plan.rustup_targets.is_empty() && plan.cargo.is_empty() {
            String::new()
        } else {
            let mut rest = plan.rustup_targets.clone();
            rest.extend(&plan.cargo);
            format!(" (it installs {} itself)", rest.join(", "))
        },
    )
}

fn names(tools: &[Tool]) -> String {
    tools
        .iter()
        .map(|t| t.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why apt-get cannot be used here, if it cannot.
fn apt_unavailable() -> Option<&'static str> {
    if !runs("apt-get", &["--version"]) {
        return Some("there is no apt-get on this machine");
    }
    // SAFETY: geteuid has no preconditions and touches no memory.
    if unsafe { libc::geteuid() } != 0 {
        return Some("installing needs root");
    }
    None
}

/// `apt-get install`, refreshing the package lists first if they are too old to have a package.
/// apt's own output is shown only if it fails.
fn apt_install(packages: &[&str]) -> Result<()> {
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(args)
            .output()
    };
    let install: Vec<&str> = ["install", "-y", "-qq"]
        .into_iter()
        .chain(packages.iter().copied())
        .collect();
    if apt(&install).is_ok_and(|out| out.status.success()) {
        return Ok(());
    }
    for step in [&["update", "-qq"][..], &install] {
        let out = apt(step).context("cannot run apt-get")?;
        if !out.status.success() {
            bail!(
                "apt-get {} failed ({}):\n{}{}",
                step.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(())
}

fn rustup_has_target(target: &str) -> bool {
    // Without rustup the toolchain cannot gain targets; the build then names what is missing.
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|line| line.trim() == target)
        })
}

/// Whether a program runs and succeeds with these arguments (quietly).
fn runs(program: impl AsRef<Path>, args: &[&str]) -> bool {
    Command::new(program.as_ref())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether a program starts at all (whatever it then exits with).
fn starts(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn run(command: &mut Command) -> Result<()> {
    let status = command.status()?;
    if !status.success() {
        bail!("{command:?} exited with {status}");
    }
    Ok(())
}

/// The cargo that runs this workbench (cargo sets `CARGO` for what it runs).
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_groups_by_installer_without_repeats() {
        let plan = Plan::of(&[
            Tool::Skopeo,
            Tool::WasmTarget,
            Tool::Wrk,
            Tool::CargoFuzz,
            Tool::Skopeo,
        ]);
        assert_eq!(plan.apt, ["skopeo", "wrk"]);
        assert_eq!(plan.rustup_targets, [WASM_TARGET]);
        assert_eq!(plan.cargo, ["cargo-fuzz"]);
        let text = plan.describe();
        assert!(
            text.contains("Debian packages skopeo, wrk (apt-get)"),
            "{text}"
        );
        assert!(text.contains("cargo-fuzz (cargo install"), "{text}");
    }

    #[test]
    fn wasm_opt_comes_from_binaryen() {
        assert_eq!(Tool::WasmOpt.installer(), Installer::Apt("binaryen"));
    }

    #[test]
    fn without_apt_the_message_names_the_packages_to_install() {
        let missing = [Tool::Skopeo, Tool::Wrk];
        let text = cannot_install(
            "test",
            &missing,
            &Plan::of(&missing),
            "installing needs root",
        );
        assert!(
            text.starts_with("cargo xtask test needs skopeo, wrk, which are missing"),
            "{text}"
        );
        assert!(text.contains("(installing needs root)"), "{text}");
        assert!(text.contains("sudo apt-get install skopeo wrk"), "{text}");
    }

    #[test]
    fn a_program_that_is_missing_does_not_run() {
        assert!(runs("true", &[]));
        assert!(!runs("false", &[]));
        assert!(!runs("/nonexistent/program", &[]));
        assert!(starts("false", &[]));
        assert!(!starts("/nonexistent/program", &[]));
    }
}
