//! `cargo xtask test`: unit tests, a build of main.wasm, then end-to-end tests in a real Envoy.

use std::process::Command;

use anyhow::{bail, Result};
use clap::Args;
use workbench::{paths, plugin, venv};

#[derive(Args)]
pub struct TestArgs {
    /// Only run end-to-end tests whose name contains this.
    filter: Option<String>,
}

pub fn test(args: TestArgs) -> Result<()> {
    step("unit tests (configuration, hashing, decision, request flow)");
    cargo(&[
        "test",
        "--package",
        "http_auth_random",
        "--package",
        "workbench",
    ])?;

    step("building the plugin's test variant, then main.wasm");
    let test_variant = plugin::build_test_variant()?;
    println!("built {}", test_variant.display());
    let wasm = plugin::build(&paths::default_plugin_dir(), &[])?;
    println!(
        "built {} ({} bytes)",
        wasm.display(),
        std::fs::metadata(&wasm)?.len()
    );

    step("installing Envoy and httpbin into .venv");
    venv::ensure()?;

    step("end-to-end tests in a real Envoy");
    let mut e2e = vec!["test", "--package", "e2e"];
    if let Some(filter) = &args.filter {
        e2e.push(filter);
    }
    cargo(&e2e)
}

fn step(what: &str) {
    println!("\n==> {what}");
}

fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args(args)
        .current_dir(paths::repo_root())
        .status()?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}
