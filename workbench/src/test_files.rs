//! Test files (compiled test targets) of packages, found through cargo and run one at a time, so
//! that a failing file never hides the others; then one summary line per file that names every
//! failing test.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::libtest::{self, Outcome};
use crate::{paths, process, tools};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestFile {
    pub package: String,
    /// The target's name: a file under `tests/` is named after the file, unit tests after the
    /// crate.
    pub name: String,
    /// Whether this is a file under `tests/` (rather than a crate's unit tests).
    pub integration: bool,
    pub source: PathBuf,
    pub executable: PathBuf,
    pub manifest_dir: PathBuf,
}

impl TestFile {
    /// How the summary names it: the file's path in the repository, or the crate's unit tests.
    pub fn label(&self) -> String {
        if self.integration {
            let root = paths::repo_root();
            self.source
                .strip_prefix(&root)
                .unwrap_or(&self.source)
                .display()
                .to_string()
        } else {
            format!("{} (unit tests)", self.package)
        }
    }

    /// Whether `name` names this file: `faults`, `faults.rs` or `tests/faults.rs`.
    pub fn is_named(&self, name: &str) -> bool {
        let name = name.trim_start_matches("tests/").trim_end_matches(".rs");
        self.integration && self.name == name
    }
}

/// Compiles the tests of `packages` (cargo's progress shows as usual) and returns their files.
pub fn compile(packages: &[&str]) -> Result<Vec<TestFile>> {
    let mut command = Command::new(tools::cargo());
    command
        .args([
            "test",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(paths::repo_root())
        .stdout(Stdio::piped());
    for package in packages {
        command.args(["--package", package]);
    }
    process::die_with_parent_std(&mut command);
    let output = command.output().context("cannot run cargo test --no-run")?;
    if !output.status.success() {
        bail!("compiling the tests failed ({})", output.status);
    }
    let mut files = from_cargo_messages(&String::from_utf8_lossy(&output.stdout));
    // Unit tests first, then the files under tests/, each group in name order, as cargo does.
    files.sort_by_key(|f| (f.integration, f.label()));
    if files.is_empty() {
        bail!(
            "cargo reported no test executable for {}",
            packages.join(", ")
        );
    }
    Ok(files)
}

/// Test executables from cargo's JSON messages (`compiler-artifact` with a test profile).
pub fn from_cargo_messages(messages: &str) -> Vec<TestFile> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["profile"]["test"] == true)
        .filter_map(|m| {
            let executable = PathBuf::from(m["executable"].as_str()?);
            let manifest = PathBuf::from(m["manifest_path"].as_str()?);
            let target = &m["target"];
            let kinds: Vec<&str> = target["kind"]
                .as_array()?
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let package = m["package_id"]
                .as_str()
                .map(package_name)
                .unwrap_or_default();
            Some(TestFile {
                package,
                name: target["name"].as_str()?.to_owned(),
                integration: kinds.contains(&"test"),
                source: PathBuf::from(target["src_path"].as_str()?),
                executable,
                manifest_dir: manifest.parent()?.to_path_buf(),
            })
        })
        .collect()
}

/// The package name in a cargo package id: `path+file:///…/e2e#0.1.0` (newer cargo, where the
/// name is the folder unless given as `#name@version`) or `e2e 0.1.0 (path+file:///…)`.
fn package_name(id: &str) -> String {
    if let Some((_, fragment)) = id.rsplit_once('#') {
        if let Some((name, _)) = fragment.split_once('@') {
            return name.to_owned();
        }
        let path = id.split_once('#').map_or(id, |(path, _)| path);
        return path.rsplit('/').next().unwrap_or(path).to_owned();
    }
    id.split_whitespace().next().unwrap_or(id).to_owned()
}

/// The names of a file's tests that `filter` selects (libtest's substring match).
pub fn list(file: &TestFile, filter: Option<&str>) -> Result<Vec<String>> {
    let mut command = test_command(file);
    command.arg("--list").args(filter);
    let output = command
        .output()
        .with_context(|| format!("cannot run {}", file.executable.display()))?;
    if !output.status.success() {
        bail!(
            "{} --list failed ({})",
            file.executable.display(),
            output.status
        );
    }
    Ok(libtest::listed(&String::from_utf8_lossy(&output.stdout)))
}

/// What became of one test file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Passed,
    Failed,
    NotRun(String),
    /// Failed only in tests known to fail here for a reason outside the code under test (an
    /// Envoy version's own bug): the reason.
    KnownFailure(String),
}

impl Status {
    /// Whether the file counts as passing: it passed, or failed only as known.
    pub fn is_good(&self) -> bool {
        matches!(self, Status::Passed | Status::KnownFailure(_))
    }
}

impl FileReport {
    /// Marks a failed file whose every failing test is known to fail, with why; anything else
    /// (another failure, a binary that broke off) stays as it was.
    pub fn accept_known(&mut self, known: impl Fn(&str) -> Option<String>) {
        if self.status != Status::Failed || self.broke_off.is_some() || !self.outcome.finished {
            return;
        }
        let reasons: Option<Vec<String>> =
            self.outcome.failed.iter().map(|name| known(name)).collect();
        if let Some(mut reasons) = reasons.filter(|r| !r.is_empty()) {
            reasons.dedup();
            self.status = Status::KnownFailure(reasons.join("; "));
        }
    }
}

#[derive(Debug, Clone)]
pub struct FileReport {
    pub label: String,
    pub status: Status,
    pub outcome: Outcome,
    /// Set when the binary ended without reporting every result (a crash, a signal).
    pub broke_off: Option<String>,
}

impl FileReport {
    pub fn not_run(label: String, why: &str) -> FileReport {
        FileReport {
            label,
            status: Status::NotRun(why.to_owned()),
            outcome: Outcome::default(),
            broke_off: None,
        }
    }
}

/// Runs a test file as `cargo test` would (same working folder and variables), printing its
/// output as it comes, and reads its results.
pub fn run(file: &TestFile, filter: Option<&str>) -> FileReport {
    run_with_env(file, filter, &[])
}

/// [`run`] with these variables set for the test file (e.g. `ENVOY_BIN` for another Envoy).
pub fn run_with_env(
    file: &TestFile,
    filter: Option<&str>,
    env: &[(&str, &std::ffi::OsStr)],
) -> FileReport {
    let mut command = test_command(file);
    command.args(filter);
    command.envs(env.iter().copied());
    run_command(file.label(), command)
}

/// Runs any command that prints libtest's format (a test binary, `cargo test --doc`), printing
/// its output as it comes, and reads its results.
pub fn run_command(label: String, mut command: Command) -> FileReport {
    command.stdout(Stdio::piped());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            return FileReport::not_run(
                label,
                &format!("cannot start {:?}: {err}", command.get_program()),
            )
        }
    };
    let mut output = String::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
            let line = String::from_utf8_lossy(&line);
            // println! rather than a write to stdout: a test of this captures it.
            println!("{line}");
            output.push_str(&line);
            output.push('\n');
        }
    }
    let exit = child.wait();
    report(label, libtest::read(&output), exit)
}

fn report(label: String, outcome: Outcome, exit: std::io::Result<ExitStatus>) -> FileReport {
    let exit_ok = exit.as_ref().is_ok_and(ExitStatus::success);
    let broke_off = match (&exit, outcome.finished) {
        (Ok(status), false) => Some(format!(
            "the test binary ended ({status}) before reporting every result"
        )),
        (Err(err), _) => Some(format!("cannot wait for the test binary: {err}")),
        (Ok(_), true) => None,
    };
    let status = if exit_ok && outcome.failed.is_empty() && broke_off.is_none() {
        Status::Passed
    } else {
        Status::Failed
    };
    FileReport {
        label,
        status,
        outcome,
        broke_off,
    }
}

fn test_command(file: &TestFile) -> Command {
    let mut command = Command::new(&file.executable);
    command
        .current_dir(&file.manifest_dir)
        .env("CARGO", tools::cargo())
        .env("CARGO_MANIFEST_DIR", &file.manifest_dir)
        .env("CARGO_PKG_NAME", &file.package);
    process::die_with_parent_std(&mut command);
    command
}

/// One line per file (status, file, counts), then each failing test's name on its own line.
pub fn summary(reports: &[FileReport]) -> Vec<String> {
    let mut lines = Vec::new();
    for report in reports {
        let outcome = &report.outcome;
        let ignored = match outcome.ignored.len() {
            0 => String::new(),
            n => format!(", {n} ignored"),
        };
        match &report.status {
            Status::Passed => lines.push(format!(
                "  passed   {}: {}{ignored}",
                report.label,
                tests(outcome.ran())
            )),
            Status::Failed => {
                lines.push(format!(
                    "  FAILED   {}: {} of {} failed{ignored}",
                    report.label,
                    outcome.failed.len(),
                    tests(outcome.ran())
                ));
                for name in &outcome.failed {
                    lines.push(format!("             {name}"));
                }
                if let Some(why) = &report.broke_off {
                    lines.push(format!("             ({why})"));
                }
            }
            Status::NotRun(why) => lines.push(format!("  not run  {}: {why}", report.label)),
            Status::KnownFailure(why) => {
                lines.push(format!(
                    "  known    {}: {} of {} failed, as known here{ignored}",
                    report.label,
                    outcome.failed.len(),
                    tests(outcome.ran())
                ));
                for name in &outcome.failed {
                    lines.push(format!("             {name}"));
                }
                lines.push(format!("             ({why})"));
            }
        }
    }
    lines
}

fn tests(n: usize) -> String {
    if n == 1 {
        "1 test".to_owned()
    } else {
        format!("{n} tests")
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use super::*;

    fn fake_file(dir: &Path, name: &str, script: &str) -> TestFile {
        let executable = dir.join(name);
        std::fs::write(&executable, format!("#!/bin/sh\n{script}")).unwrap();
        std::fs::set_permissions(&executable, std::fs::Permissions::from_mode(0o755)).unwrap();
        TestFile {
            package: "e2e".to_owned(),
            name: name.to_owned(),
            integration: true,
            source: paths::repo_root()
                .join("e2e/tests")
                .join(format!("{name}.rs")),
            executable,
            manifest_dir: dir.to_path_buf(),
        }
    }

    #[test]
    fn every_file_runs_and_the_summary_names_every_failing_test() {
        let dir = tempfile::tempdir().unwrap();
        let failing = fake_file(
            dir.path(),
            "deploy",
            "echo 'test a ... ok'\n\
             echo 'test the_oci_image_is_valid ... FAILED'\n\
             echo 'test the_manifests_parse ... FAILED'\n\
             echo 'test result: FAILED. 1 passed; 2 failed; 0 ignored'\n\
             exit 101\n",
        );
        let crashing = fake_file(dir.path(), "load", "echo 'test first ... ok'\nkill -9 $$\n");
        let passing = fake_file(
            dir.path(),
            "authz",
            "echo 'test b ... ok'\necho 'test c ... ignored'\necho 'test result: ok. 1 passed'\n",
        );
        let reports: Vec<FileReport> = [&failing, &crashing, &passing]
            .into_iter()
            .map(|file| run(file, None))
            .collect();
        assert_eq!(reports[0].status, Status::Failed);
        assert_eq!(reports[1].status, Status::Failed);
        assert_eq!(reports[2].status, Status::Passed);
        let text = summary(&reports).join("\n");
        assert_eq!(
            text,
            "  FAILED   e2e/tests/deploy.rs: 2 of 3 tests failed
             the_oci_image_is_valid
             the_manifests_parse
  FAILED   e2e/tests/load.rs: 0 of 1 test failed
             (the test binary ended (signal: 9 (SIGKILL)) before reporting every result)
  passed   e2e/tests/authz.rs: 1 test, 1 ignored"
        );
    }

    #[test]
    fn a_file_that_cannot_start_is_not_run() {
        let file = TestFile {
            executable: PathBuf::from("/nonexistent/test-binary"),
            ..fake_file(tempfile::tempdir().unwrap().path(), "x", "")
        };
        let report = run(&file, None);
        assert!(matches!(report.status, Status::NotRun(_)), "{report:?}");
    }

    #[test]
    fn a_failure_known_for_every_failing_test_is_marked_known() {
        let failed = |names: &[&str], finished: bool| FileReport {
            label: "e2e/tests/x.rs".to_owned(),
            status: Status::Failed,
            outcome: Outcome {
                passed: vec!["fine".to_owned()],
                failed: names.iter().map(|n| n.to_string()).collect(),
                ignored: Vec::new(),
                finished,
            },
            broke_off: None,
        };
        let known = |name: &str| (name == "old_bug").then(|| "Envoy's bug".to_owned());

        let mut report = failed(&["old_bug"], true);
        report.accept_known(known);
        assert_eq!(
            report.status,
            Status::KnownFailure("Envoy's bug".to_owned())
        );
        assert!(report.status.is_good());
        let lines = summary(&[report]);
        assert_eq!(
            lines,
            [
                "  known    e2e/tests/x.rs: 1 of 2 tests failed, as known here",
                "             old_bug",
                "             (Envoy's bug)"
            ]
        );

        for (names, finished) in [(&["old_bug", "new_bug"][..], true), (&["old_bug"], false)] {
            let mut report = failed(names, finished);
            report.accept_known(known);
            assert_eq!(report.status, Status::Failed, "{names:?} {finished}");
            assert!(!report.status.is_good());
        }
    }

    #[test]
    fn a_test_file_is_named_with_or_without_its_folder_and_extension() {
        let file = fake_file(tempfile::tempdir().unwrap().path(), "faults", "");
        assert!(file.is_named("faults"));
        assert!(file.is_named("faults.rs"));
        assert!(file.is_named("tests/faults.rs"));
        assert!(!file.is_named("fault"));
        assert_eq!(file.label(), "e2e/tests/faults.rs");
    }

    #[test]
    fn cargo_messages_give_each_test_executable() {
        let messages = r#"{"reason":"compiler-artifact","package_id":"path+file:///w/e2e#0.1.0","manifest_path":"/w/e2e/Cargo.toml","target":{"kind":["test"],"crate_types":["bin"],"name":"authz","src_path":"/w/e2e/tests/authz.rs"},"profile":{"test":true},"executable":"/w/target/debug/deps/authz-1"}
{"reason":"compiler-artifact","package_id":"path+file:///w/plugins/http_auth_random#0.1.0","manifest_path":"/w/plugins/http_auth_random/Cargo.toml","target":{"kind":["cdylib","rlib"],"name":"http_auth_random","src_path":"/w/plugins/http_auth_random/src/lib.rs"},"profile":{"test":true},"executable":"/w/target/debug/deps/http_auth_random-2"}
{"reason":"compiler-artifact","package_id":"path+file:///w/e2e#0.1.0","manifest_path":"/w/e2e/Cargo.toml","target":{"kind":["lib"],"name":"e2e","src_path":"/w/e2e/src/lib.rs"},"profile":{"test":false},"executable":null}
{"reason":"build-finished","success":true}"#;
        let files = from_cargo_messages(messages);
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].package, "e2e");
        assert!(files[0].integration);
        assert_eq!(files[0].manifest_dir, PathBuf::from("/w/e2e"));
        assert_eq!(files[1].package, "http_auth_random");
        assert!(!files[1].integration);
        assert_eq!(files[1].label(), "http_auth_random (unit tests)");
    }

    #[test]
    fn package_ids_of_both_forms_give_the_name() {
        assert_eq!(package_name("path+file:///w/e2e#0.1.0"), "e2e");
        assert_eq!(package_name("path+file:///w/plugins/x#foo@0.1.0"), "foo");
        assert_eq!(package_name("e2e 0.1.0 (path+file:///w/e2e)"), "e2e");
    }
}
