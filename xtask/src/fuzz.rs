//! `cargo xtask fuzz`: runs each cargo-fuzz target for a while, libFuzzer's output kept in a log
//! file, then one line per target: inputs run, time, findings and where they are saved.
//! Stable Rust has no sanitizers, so the targets run with `--sanitizer none`: libFuzzer's coverage
//! guidance still works and any panic is a finding.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use workbench::tools::{self, Tool};
use workbench::{libfuzzer, paths, process};

/// The cargo-fuzz targets (fuzz/fuzz_targets), each with what it feeds the plugin.
pub const TARGETS: [(&str, &str); 6] = [
    (
        "config_parse",
        "any bytes as the plugin configuration (the JSON parser)",
    ),
    (
        "auth_answer",
        "any HTTP auth answer (status and body) under both rules, and any request headers \
         through the auth-call builder",
    ),
    (
        "json_verdict",
        "any bytes (or JSON built around the keys pointers name) as an auth answer's body, \
         with any status and pointers, through the JSON verdict rule and headers_from_json: an \
         allow only where serde_json finds true at the pointer in a 2xx answer",
    ),
    (
        "cache_control",
        "any Cache-Control on an auth answer (the decision cache's TTL)",
    ),
    (
        "check_response",
        "any bytes as a gRPC CheckResponse, and an allow's query edits applied to a path",
    ),
    (
        "native_input",
        "what the native module decodes from Envoy: any headers, data and trailers of a gRPC \
         check's HTTP/2 stream read into a message and a verdict, and any per-route settings \
         parsed and applied to the filter's configuration",
    ),
];

#[derive(Args)]
pub struct FuzzArgs {
    /// Seconds for EACH target: the targets run one after another, so the whole run takes
    /// about 6 × SECONDS after the build (fewer with --only).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    seconds: u64,
    /// Only these targets (comma-separated names, e.g. --only json_verdict,auth_answer).
    #[arg(long, value_delimiter = ',', value_name = "TARGETS")]
    only: Vec<String>,
}

/// The targets `--only` names, in the usual order; all of them without it.
fn chosen(only: &[String]) -> Result<Vec<(&'static str, &'static str)>> {
    if let Some(unknown) = only
        .iter()
        .find(|name| !TARGETS.iter().any(|(target, _)| target == name))
    {
        let names: Vec<&str> = TARGETS.iter().map(|(target, _)| *target).collect();
        bail!(
            "--only: there is no fuzz target {unknown:?}; they are: {}",
            names.join(", ")
        );
    }
    Ok(TARGETS
        .into_iter()
        .filter(|(target, _)| only.is_empty() || only.iter().any(|name| name == target))
        .collect())
}

pub fn fuzz(args: FuzzArgs) -> Result<()> {
    let targets = chosen(&args.only)?;
    tools::ensure("fuzz", &[Tool::CxxCompiler, Tool::CargoFuzz])?;
    let root = paths::repo_root();
    let fuzz_dir = root.join("fuzz");
    println!("==> building the fuzz targets");
    let mut build = cargo_fuzz(&fuzz_dir);
    build.args(["build", "--sanitizer", "none"]);
    if let [(target, _)] = targets.as_slice() {
        build.arg(target);
    }
    run(&mut build)?;

    let logs = root.join("target").join("fuzz-logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let mut lines = Vec::new();
    let mut failed = false;
    println!(
        "==> fuzzing {} target{}, {} s each (--seconds is per target): about {} s in all",
        targets.len(),
        if targets.len() == 1 { "" } else { "s" },
        args.seconds,
        args.seconds * targets.len() as u64
    );
    for (n, (target, what)) in targets.iter().copied().enumerate() {
        let log_path = logs.join(format!("{target}.log"));
        println!(
            "==> {}/{}: fuzzing {target} for {} s: {what}\n    (libFuzzer's output: {})",
            n + 1,
            targets.len(),
            args.seconds,
            shown(&log_path)
        );
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let started = Instant::now();
        let status = cargo_fuzz(&fuzz_dir)
            .args(["run", "--sanitizer", "none", target, "--"])
            .arg(format!("-max_total_time={}", args.seconds))
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
            .context("cannot run cargo fuzz")?;
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let read = libfuzzer::read(&text);
        let runs = read.runs.map_or_else(|| "no".to_owned(), thousands);
        let seconds = read.seconds.unwrap_or(started.elapsed().as_secs());
        let verdict = match (read.findings.as_slice(), status.success()) {
            ([], true) => "no findings".to_owned(),
            ([], false) => format!("FAILED ({status}) without saving an input; see the log"),
            (found, _) => format!(
                "{} FINDING{}: {}",
                found.len(),
                if found.len() == 1 { "" } else { "S" },
                found
                    .iter()
                    .map(|p| shown(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        failed |= !status.success() || !read.findings.is_empty();
        lines.push(format!(
            "  {target:<14} {runs} runs in {seconds} s, {verdict}  (log: {})",
            shown(&log_path)
        ));
    }
    println!("\n==> fuzz summary");
    for line in &lines {
        println!("{line}");
    }
    if failed {
        bail!("fuzzing found failing inputs (reproduce one: cd fuzz && cargo fuzz run --sanitizer none TARGET PATH)");
    }
    Ok(())
}

fn cargo_fuzz(fuzz_dir: &Path) -> Command {
    let mut command = Command::new(tools::cargo());
    command.arg("fuzz").current_dir(fuzz_dir);
    process::die_with_parent_std(&mut command);
    command
}

fn run(command: &mut Command) -> Result<()> {
    let status = command.status()?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}

/// A path inside the repository relative to it.
fn shown(path: &Path) -> String {
    path.strip_prefix(paths::repo_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// 9734512 → "9,734,512".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fuzz_target_is_run_and_described() {
        let manifest =
            std::fs::read_to_string(paths::repo_root().join("fuzz").join("Cargo.toml")).unwrap();
        let declared = manifest.matches("[[bin]]").count();
        assert_eq!(declared, TARGETS.len(), "fuzz/Cargo.toml's targets");
        for (target, what) in TARGETS {
            assert!(
                manifest.contains(&format!("name = \"{target}\"")),
                "{target}"
            );
            assert!(!what.is_empty());
        }
    }

    /// Running the fuzz targets must not rewrite the committed fuzz/Cargo.lock: it has to
    /// match the plugin's dependencies as they are.
    #[test]
    fn the_committed_fuzz_lock_file_is_current() {
        let output = Command::new(tools::cargo())
            .args([
                "metadata",
                "--locked",
                "--format-version",
                "1",
                "--manifest-path",
            ])
            .arg(paths::repo_root().join("fuzz").join("Cargo.toml"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "fuzz/Cargo.lock is out of date (cd fuzz && cargo metadata > /dev/null updates it; \
             commit the result): {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    #[test]
    fn only_picks_targets_by_name() {
        assert_eq!(chosen(&[]).unwrap().len(), TARGETS.len());
        let picked = chosen(&["json_verdict".to_owned(), "config_parse".to_owned()]).unwrap();
        let names: Vec<&str> = picked.iter().map(|(target, _)| *target).collect();
        assert_eq!(names, ["config_parse", "json_verdict"]);
        let err = chosen(&["json".to_owned()]).unwrap_err().to_string();
        assert!(
            err.contains("no fuzz target \"json\"") && err.contains("json_verdict"),
            "{err}"
        );
    }

    #[test]
    fn large_counts_are_grouped() {
        assert_eq!(thousands(9_734_512), "9,734,512");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
    }
}
