//! `cargo xtask test`: unit tests, builds of the plugin, then the end-to-end tests in a real Envoy.
//! Every test file runs even when an earlier one fails, and a summary per file ends the run.

use std::process::Command;

use anyhow::{bail, Result};
use clap::Args;
use workbench::test_files::{self, FileReport, Status, TestFile};
use workbench::tools::{self, Tool};
use workbench::{paths, plugin, process, venv};

/// Packages whose own (unit) tests run first.
const UNIT_PACKAGES: [&str; 4] = ["authz-core", "http_auth_random", "workbench", "xtask"];
const E2E_PACKAGE: &str = "e2e";

#[derive(Args)]
pub struct TestArgs {
    /// Run only this end-to-end test file (`faults`, `faults.rs` or `tests/faults.rs`), or else
    /// only the end-to-end tests whose name contains NAME; unit tests are skipped then. A NAME
    /// that matches nothing is an error.
    name: Option<String>,
}

pub fn test(args: TestArgs) -> Result<()> {
    tools::ensure(
        "test",
        &[
            Tool::WasmTarget,
            Tool::WasmOpt,
            Tool::PythonVenv,
            Tool::Skopeo,
            Tool::Wrk,
            Tool::Taskset,
        ],
    )?;

    step("compiling the tests");
    let name = args.name.as_deref();
    let packages: Vec<&str> = match name {
        Some(_) => vec![E2E_PACKAGE],
        None => UNIT_PACKAGES.into_iter().chain([E2E_PACKAGE]).collect(),
    };
    let files = test_files::compile(&packages)?;
    let (e2e, unit): (Vec<TestFile>, Vec<TestFile>) = files
        .into_iter()
        .partition(|f| f.package == E2E_PACKAGE && f.integration);
    let selected = select(&e2e, name)?;

    let mut reports = Vec::new();
    if name.is_none() {
        step("unit tests (configuration, hashing, decision, request flow, workbench, xtask)");
        for file in &unit {
            reports.push(test_files::run(file, None));
        }
        reports.push(doc_tests());
    }

    let prepared = prepare_end_to_end();
    match &prepared {
        Ok(()) => {
            step("end-to-end tests in a real Envoy, one file at a time");
            for (file, filter) in &selected {
                reports.push(test_files::run(file, *filter));
            }
        }
        Err(err) => {
            eprintln!("xtask test: {err:#}");
            for (file, _) in &selected {
                reports.push(FileReport::not_run(
                    file.label(),
                    &format!("the set-up before the end-to-end tests failed ({err})"),
                ));
            }
        }
    }

    step("summary, per test file");
    for line in test_files::summary(&reports) {
        println!("{line}");
    }
    if name.is_none() {
        println!("  (unit tests and all end-to-end test files ran)");
    } else {
        println!(
            "  (unit tests and unselected end-to-end files were not run: {} selected by {:?})",
            describe(&selected),
            name.unwrap_or_default()
        );
    }
    let bad = reports
        .iter()
        .filter(|r| r.status != Status::Passed)
        .count();
    if bad > 0 {
        bail!("{bad} of {} test files did not pass", reports.len());
    }
    Ok(())
}

/// The end-to-end files to run, each with its test-name filter (`None`: the whole file).
fn select<'a>(
    files: &'a [TestFile],
    name: Option<&'a str>,
) -> Result<Vec<(&'a TestFile, Option<&'a str>)>> {
    let Some(name) = name else {
        return Ok(files.iter().map(|f| (f, None)).collect());
    };
    if let Some(file) = files.iter().find(|f| f.is_named(name)) {
        return Ok(vec![(file, None)]);
    }
    let mut selected = Vec::new();
    for file in files {
        if !test_files::list(file, Some(name))?.is_empty() {
            selected.push((file, Some(name)));
        }
    }
    if selected.is_empty() {
        let mut names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        names.sort_unstable();
        bail!(
            "no end-to-end test file or test name matches {name:?}. \
             NAME is a file of e2e/tests ({}) or part of a test's name.",
            names.join(", ")
        );
    }
    Ok(selected)
}

fn describe(selected: &[(&TestFile, Option<&str>)]) -> String {
    match selected {
        [(file, None)] => format!("the file {}", file.label()),
        _ => format!(
            "tests in {} file{}",
            selected.len(),
            if selected.len() == 1 { "" } else { "s" }
        ),
    }
}

/// The unit packages' documentation examples, as `cargo test` would run them.
fn doc_tests() -> FileReport {
    let mut command = Command::new(tools::cargo());
    command
        .args(["test", "--doc"])
        .current_dir(paths::repo_root());
    for package in ["authz-core", "http_auth_random", "workbench"] {
        command.args(["--package", package]);
    }
    process::die_with_parent_std(&mut command);
    test_files::run_command(
        "doc tests (authz-core, http_auth_random, workbench)".to_owned(),
        command,
    )
}

/// The plugin's builds and the Envoy install the end-to-end tests use.
fn prepare_end_to_end() -> Result<()> {
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
    venv::ensure()
}

fn step(what: &str) {
    println!("\n==> {what}");
}
