//! A running Envoy: start it on a rendered config, wait until ready, ask its admin API, stop it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use tokio::process::{Child, Command};

use crate::envoy_config::EnvoyConfig;
use crate::{process, venv};

/// How long Envoy may take to compile the plugin and open its listeners.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct EnvoyOptions {
    pub concurrency: u32,
    pub log_level: String,
    /// Print Envoy's output behind this prefix instead of keeping it in a log file.
    pub print_prefix: Option<&'static str>,
    /// Pin Envoy to these CPUs (taskset list syntax, e.g. "0").
    pub cpu_list: Option<String>,
}

impl Default for EnvoyOptions {
    fn default() -> Self {
        EnvoyOptions {
            concurrency: 1,
            log_level: "info".to_owned(),
            print_prefix: None,
            cpu_list: None,
        }
    }
}

pub struct Envoy {
    child: Child,
    dir: tempfile::TempDir,
    admin: String,
    http: reqwest::Client,
    pub started_in: Duration,
}

impl Envoy {
    /// Starts Envoy and waits until its admin API says ready. If Envoy exits first (for example
    /// because the plugin refused its configuration), the error carries its log.
    pub async fn start(config: &EnvoyConfig, options: &EnvoyOptions) -> Result<Envoy> {
        let binary = venv::envoy_binary()?;
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
            .kill_on_drop(true);
        match options.print_prefix {
            Some(_) => {
                command.stdout(Stdio::piped()).stderr(Stdio::piped());
            }
            None => {
                let log = std::fs::File::create(&log_path)?;
                command.stdout(log.try_clone()?).stderr(log);
            }
        }
        let started = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        if let Some(prefix) = options.print_prefix {
            if let Some(out) = child.stdout.take() {
                process::print_prefixed(out, prefix);
            }
            if let Some(err) = child.stderr.take() {
                process::print_prefixed(err, prefix);
            }
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let mut envoy = Envoy {
            child,
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
        let output = Command::new(&binary)
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
                bail!(
                    "Envoy exited with {status} before it was ready. Its log:\n{}",
                    self.log()
                );
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "Envoy was not ready after {READY_TIMEOUT:?}. Its log:\n{}",
                    self.log()
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

    /// Envoy's log so far (empty when its output is printed instead).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("envoy.log")
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
