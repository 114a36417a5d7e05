//! `cargo xtask fuzz`: runs each cargo-fuzz target for a while (installing cargo-fuzz if needed).
//! Stable Rust has no sanitizers, so the targets run with `--sanitizer none`: libFuzzer's coverage
//! guidance still works and any panic is a finding.

use std::process::Command;

use anyhow::{bail, Result};
use clap::Args;
use workbench::paths;

const TARGETS: [&str; 2] = ["config_parse", "auth_answer"];

#[derive(Args)]
pub struct FuzzArgs {
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
}

pub fn fuzz(args: FuzzArgs) -> Result<()> {
    let installed = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        println!("installing cargo-fuzz");
        run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    for target in TARGETS {
        println!("\n==> fuzzing {target} for {} s", args.seconds);
        run(Command::new("cargo")
            .current_dir(paths::repo_root().join("fuzz"))
            .args(["fuzz", "run", "--sanitizer", "none", target, "--"])
            .arg(format!("-max_total_time={}", args.seconds)))?;
    }
    Ok(())
}

fn run(command: &mut Command) -> Result<()> {
    let status = command.status()?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}
