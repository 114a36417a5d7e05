//! A running Envoy: start it on a rendered config, wait until ready, ask its admin API, stop it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use tokio::process::{Child, Command};

use crate::envoy_config::EnvoyConfig;
use crate::process::LineSink;
use crate::{process, venv};

/// How long Envoy may take to compile the plugin and open its listeners.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct EnvoyOptions {
    pub concurrency: u32,
    pub log_level: String,
    /// Print Envoy's log behind this prefix as it comes (it is kept in a log file either way).
    pub print_prefix: Option<&'static str>,
    /// Pin Envoy to these CPUs (taskset list syntax, e.g. "0").
    pub cpu_list: Option<String>,
    /// Envoy's stdout, where a listener's stdout access log goes, line by line: each line is
    /// printed as this returns it (or not at all for `None`), and access logs are flushed every
    /// 200 ms so the lines come as requests end. Without it, stdout goes with the log.
    pub stdout_lines: Option<LineFormat>,
}

/// Turns one line into what to print, if anything.
pub type FormatLine = dyn Fn(&str) -> Option<String> + Send + Sync;

#[derive(Clone)]
pub struct LineFormat(pub Arc<FormatLine>);

impl std::fmt::Debug for LineFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LineFormat")
    }
}

impl Default for EnvoyOptions {
    fn default() -> Self {
        EnvoyOptions {
            concurrency: 1,
            log_level: "info".to_owned(),
            print_prefix: None,
            cpu_list: None,
            stdout_lines: None,
        }
    }
}

pub struct Envoy {
    child: Child,
    /// The tasks copying Envoy's output, when it is printed.
    readers: Vec<tokio::task::JoinHandle<()>>,
    config_path: PathBuf,
    /// Holds the rendered config and the log; removed when this is dropped.
    dir: tempfile::TempDir,
    admin: String,
    http: reqwest::Client,
    pub started_in: Duration,
}

impl Envoy {
    /// Starts Envoy and waits until its admin API says ready. If Envoy exits first (for example
    /// because the plugin refused its configuration), the error quotes Envoy's error lines.
    pub async fn start(config: &EnvoyConfig, options: &EnvoyOptions) -> Result<Envoy> {
        let binary = venv::envoy_binary()?;
        // AUTHZ_SHELL=native serves the same configuration through the native module.
        let native;
        let config = if crate::shell::Shell::current() == crate::shell::Shell::Native {
            let mut converted = config.clone();
            converted.use_native_module()?;
            native = converted;
            &native
        } else {
            config
        };
        process::raise_open_file_limit();
        let dir = tempfile::Builder::new().prefix("envoy-").tempdir()?;
        let config_path = dir.path().join("envoy.json");
        config.write_json(&config_path)?;
        let admin_path = dir.path().join("admin-address");
        let log_path = dir.path().join("envoy.log");

        let mut command = match &options.cpu_list {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.args(["-c", cpus]).arg(&binary);
                c
            }
            None => Command::new(&binary),
        };
        command
            .arg("-c")
            .arg(&config_path)
            .args(["--disable-hot-restart", "--concurrency"])
            .arg(options.concurrency.to_string())
            .args(["-l", &options.log_level, "--admin-address-path"])
            .arg(&admin_path)
            .stdin(Stdio::null())
            // Its own group: the workbench, not a terminal's Ctrl-C, decides when it stops.
            .process_group(0)
            .kill_on_drop(true);
        if options.stdout_lines.is_some() {
            command.args(["--file-flush-interval-msec", "200"]);
        }
        let printing = options.print_prefix.is_some() || options.stdout_lines.is_some();
        if printing {
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
        } else {
            // Straight into the file: nothing in this process has to keep up with Envoy's output.
            let log = std::fs::File::create(&log_path)
                .with_context(|| format!("cannot create {}", log_path.display()))?;
            command.stdout(log.try_clone()?).stderr(log);
        }
        process::die_with_parent(&mut command);
        let started = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut readers = Vec::new();
        if printing {
            let log = LineSink::new(options.print_prefix, Some(&log_path))
                .with_context(|| format!("cannot create {}", log_path.display()))?;
            if let Some(out) = child.stdout.take() {
                readers.push(match options.stdout_lines.clone() {
                    Some(LineFormat(format)) => process::for_each_line(out, move |line| {
                        if let Some(text) = format(line) {
                            println!("{text}");
                        }
                    }),
                    None => process::forward_lines(out, log.clone()),
                });
            }
            if let Some(err) = child.stderr.take() {
                readers.push(process::forward_lines(err, log));
            }
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let mut envoy = Envoy {
            child,
            readers,
            config_path,
            dir,
            admin: String::new(),
            http,
            started_in: Duration::ZERO,
        };
        envoy.wait_ready(&admin_path, started).await?;
        envoy.started_in = started.elapsed();
        Ok(envoy)
    }

    /// `envoy --mode validate`: Ok with Envoy's output if the config is accepted.
    pub async fn validate(config_path: &Path) -> Result<String> {
        let binary = venv::envoy_binary()?;
        let mut command = Command::new(&binary);
        process::die_with_parent(&mut command);
        let output = command
            .args([
                "--mode",
                "validate",
                "--disable-hot-restart",
                "-l",
                "warn",
                "-c",
            ])
            .arg(config_path)
            .output()
            .await
            .with_context(|| format!("cannot run {}", binary.display()))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if !output.status.success() {
            bail!(
                "envoy --mode validate refused {}:\n{text}",
                config_path.display()
            );
        }
        Ok(text)
    }

    async fn wait_ready(&mut self, admin_path: &Path, started: Instant) -> Result<()> {
        loop {
            if let Some(status) = self.child.try_wait()? {
                // Envoy's last words are still in the pipes while its output is copied.
                for reader in std::mem::take(&mut self.readers) {
                    let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
                }
                bail!(
                    "Envoy exited ({status}) before it was ready. {}",
                    failure_report(&self.log(), &self.config_path)
                );
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "Envoy was not ready after {READY_TIMEOUT:?}. {}",
                    failure_report(&self.log(), &self.config_path)
                );
            }
            if self.admin.is_empty() {
                if let Ok(address) = std::fs::read_to_string(admin_path) {
                    if !address.trim().is_empty() {
                        self.admin = format!("http://{}", address.trim());
                    }
                }
            }
            if !self.admin.is_empty() {
                let ready = self.http.get(format!("{}/ready", self.admin)).send().await;
                if matches!(ready, Ok(ref r) if r.status().is_success()) {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn admin_url(&self) -> &str {
        &self.admin
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Envoy's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("envoy.log")
    }

    /// Waits until Envoy exits (by itself: nothing here stops it).
    pub async fn wait(&mut self) -> Result<std::process::ExitStatus> {
        Ok(self.child.wait().await?)
    }

    /// Envoy's error lines so far, shortened (or its last lines if it logged no error).
    pub fn errors(&self) -> String {
        failure_report(&self.log(), &self.config_path)
    }

    /// Whether Envoy is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The port a listener actually bound (configs use port 0 to let the kernel choose).
    pub async fn listener_port(&self, name: &str) -> Result<u16> {
        let listeners: Value = self
            .admin_get("/listeners?format=json")
            .await?
            .json()
            .await?;
        listeners["listener_statuses"]
            .as_array()
            .and_then(|all| all.iter().find(|l| l["name"] == name))
            .and_then(|l| l["local_address"]["socket_address"]["port_value"].as_u64())
            .and_then(|port| u16::try_from(port).ok())
            .ok_or_else(|| anyhow!("Envoy has no listener named {name}: {listeners}"))
    }

    /// A successful answer from the admin API, or an error.
    async fn admin_get(&self, path: &str) -> Result<reqwest::Response> {
        Ok(self
            .http
            .get(format!("{}{path}", self.admin))
            .send()
            .await?
            .error_for_status()?)
    }

    /// Every stat from the admin API as name → value text.
    pub async fn stats(&self) -> Result<BTreeMap<String, String>> {
        let text = self.admin_get("/stats").await?.text().await?;
        Ok(text
            .lines()
            .filter_map(|line| line.split_once(": "))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect())
    }

    /// A counter or gauge; a stat that does not exist is an error naming it.
    pub async fn stat(&self, name: &str) -> Result<u64> {
        let stats = self.stats().await?;
        let value = stats
            .get(name)
            .ok_or_else(|| anyhow!("Envoy has no stat {name}"))?;
        value
            .parse()
            .with_context(|| format!("stat {name} is not a number: {value}"))
    }

    pub fn rss_kib(&self) -> Option<u64> {
        self.pid().and_then(process::rss_kib)
    }

    pub fn cpu_time(&self) -> Option<Duration> {
        self.pid().and_then(process::cpu_time)
    }

    pub async fn stop(mut self) {
        process::stop(&mut self.child, Duration::from_secs(5)).await;
    }
}

/// The lines of Envoy's log worth reading after a failed start: its critical and error lines and
/// its wasm warnings (with the lines they continue on), shortened to level, component and message; or, if there
/// are none, its last lines. The rendered config's path is left out: the file goes with Envoy.
pub fn failure_report(log: &str, config_path: &Path) -> String {
    let mut errors: Vec<String> = Vec::new();
    let mut continuing = false;
    for line in log.lines() {
        if line.starts_with('[') {
            continuing = false;
            if let Some(short) = error_line(line) {
                errors.push(short);
                continuing = true;
            }
        } else if continuing {
            if let Some(last) = errors.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        }
    }
    let config = config_path.to_string_lossy();
    let errors: Vec<String> = errors
        .into_iter()
        .map(|line| match line.find(" initializing config '") {
            Some(at) if line[at..].contains(config.as_ref()) => line[..at].to_owned(),
            _ => line,
        })
        .collect();
    if !errors.is_empty() {
        return format!("Its errors:\n  {}", errors.join("\n  "));
    }
    let lines: Vec<&str> = log.lines().collect();
    if lines.is_empty() {
        return "It wrote nothing (at its log level).".to_owned();
    }
    let tail = &lines[lines.len().saturating_sub(LOG_TAIL)..];
    format!("Its last log lines:\n  {}", tail.join("\n  "))
}

/// How many lines of the log a failure shows when Envoy logged no error.
const LOG_TAIL: usize = 30;

/// `[time][thread][error][component] [source:line] message` → `[error][component] message`.
fn error_line(line: &str) -> Option<String> {
    // A wasm warning often says why the error that follows happened (e.g. a missing runtime).
    let (level, at) = ["critical", "error"]
        .iter()
        .find_map(|level| line.find(&format!("][{level}][")).map(|at| (*level, at)))
        .or_else(|| line.find("][warning][wasm]").map(|at| ("warning", at)))?;
    let rest = &line[at + level.len() + 4..];
    let (component, rest) = rest.split_once("] ")?;
    let message = rest
        .strip_prefix('[')
        .and_then(|r| r.split_once("] "))
        .map_or(rest, |(_, message)| message);
    Some(format!("[{level}][{component}] {}", message.trim_end()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BAD_PLUGIN_CONFIG: &str = "\
[2026-11-27 02:17:38.800][10547][info][main] [source/server/server.cc:431] statically linked extensions:
[2026-11-27 02:17:38.800][10547][info][main] [source/server/server.cc:433]   envoy.filters.http: envoy.filters.http.wasm
[2026-11-27 02:17:38.847][10547][error][wasm] [source/extensions/common/wasm/context.cc:1157] wasm log http_auth_random http_auth_random: invalid configuration: timeout_ms: 0 is out of range: must be 1 to 3600000 ms
[2026-11-27 02:17:38.847][10547][error][wasm] [source/extensions/common/wasm/wasm.cc:104] Wasm VM failed Failed to configure base Wasm plugin
[2026-11-27 02:17:38.848][10547][critical][wasm] [source/extensions/common/wasm/wasm.cc:626] Plugin http_auth_random failed to load
[2026-11-27 02:17:38.851][10547][critical][main] [source/server/server.cc:449] error `Unable to create Wasm plugin http_auth_random` initializing config 'goo.gle/debugproto    
  scratch/envoy-abc/envoy.json'
[2026-11-27 02:17:38.851][10547][info][main] [source/server/server.cc:1159] exiting
Unable to create Wasm plugin http_auth_random
";

    #[test]
    fn a_failed_start_shows_the_error_lines_only() {
        let report = failure_report(BAD_PLUGIN_CONFIG, Path::new("scratch/envoy-abc/envoy.json"));
        assert_eq!(
            report,
            "Its errors:
  [error][wasm] wasm log http_auth_random http_auth_random: invalid configuration: timeout_ms: 0 is out of range: must be 1 to 3600000 ms
  [error][wasm] Wasm VM failed Failed to configure base Wasm plugin
  [critical][wasm] Plugin http_auth_random failed to load
  [critical][main] error `Unable to create Wasm plugin http_auth_random`"
        );
    }

    #[test]
    fn a_missing_wasm_runtime_is_named() {
        let log = "[2026-12-04 17:24:22.214][11445][warning][wasm] [source/extensions/common/wasm/wasm_vm.cc:102] Failed to create Wasm VM using envoy.wasm.runtime.v8 runtime. Envoy was compiled without support for it
[2026-12-04 17:24:22.214][11445][error][wasm] [source/extensions/common/wasm/wasm.cc:103] Wasm VM failed Failed to load Wasm code
[2026-12-04 17:24:22.214][11445][warning][main] [source/server/server.cc:1059] There is no configured limit
";
        let report = failure_report(log, Path::new("scratch/x/envoy.json"));
        assert_eq!(
            report,
            "Its errors:
  [warning][wasm] Failed to create Wasm VM using envoy.wasm.runtime.v8 runtime. Envoy was compiled without support for it
  [error][wasm] Wasm VM failed Failed to load Wasm code"
        );
    }

    #[test]
    fn a_taken_port_is_named() {
        let log = "[2026-11-27 02:17:39.137][10594][error][config] [source/common/listener_manager/listener_manager_impl.cc:1405] listener 'main' failed to bind or apply socket options: cannot bind '0.0.0.0:28000': Address already in use\n";
        let report = failure_report(log, Path::new("scratch/x/envoy.json"));
        assert!(
            report.ends_with("[error][config] listener 'main' failed to bind or apply socket options: cannot bind '0.0.0.0:28000': Address already in use"),
            "{report}"
        );
    }

    #[test]
    fn without_errors_the_last_lines_are_shown() {
        let log: String = (1..=40)
            .map(|n| format!("[t][1][info][main] line {n}\n"))
            .collect();
        let report = failure_report(&log, Path::new("/x"));
        assert!(report.starts_with("Its last log lines:"), "{report}");
        assert!(report.contains("line 40") && report.contains("line 11"));
        assert!(!report.contains("line 10\n"), "{report}");
        assert_eq!(
            failure_report("", Path::new("/x")),
            "It wrote nothing (at its log level)."
        );
    }
}
