//! The benchmark: each configuration in a fresh Envoy pinned to one core, loaded by wrk pinned to
//! another, in interleaved rounds; per run, Envoy's CPU time per request and the client's figures.

pub mod chart;
pub mod setups;
pub mod summary;
pub mod table;

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};
use serde_json::{json, Value};

use crate::envoy::{Envoy, EnvoyOptions};
use crate::wrk;
pub use setups::{AuthPath, Setup, Wasm};

/// What the load looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// The same request again and again: for the cache, every request after the first a hit.
    Uniform,
    /// Requests from this many credentials, Zipf-distributed.
    Zipf(u32),
}

impl Workload {
    pub fn name(self) -> String {
        match self {
            Workload::Uniform => "uniform".to_owned(),
            Workload::Zipf(n) => format!("{n} credentials, Zipf"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub setups: Vec<Setup>,
    pub path: AuthPath,
    pub workload: Workload,
    /// Where generated wrk scripts go.
    pub scratch: std::path::PathBuf,
    pub rounds: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub connections: u32,
    pub envoy_cpu: String,
    pub load_cpu: String,
    /// The command that serves a gRPC Check service (the gRPC configurations need one); it is
    /// given `--address 127.0.0.1:PORT --answer allow|deny` and runs on the load's CPU.
    pub check_service: Vec<String>,
}

/// One configuration measured once.
#[derive(Debug, Clone)]
pub struct Run {
    pub setup: Setup,
    pub round: usize,
    pub requests: u64,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub non_2xx: u64,
    pub socket_errors: u64,
    pub envoy_cpu_us_per_request: f64,
    pub envoy_rss_mib: f64,
    pub startup_ms: f64,
    /// Calls the auth service got per request served, over the measured run.
    pub auth_calls_per_request: f64,
}

impl Run {
    pub fn to_json(&self) -> Value {
        json!({
            "setup": self.setup.name(),
            "round": self.round,
            "requests": self.requests,
            "requests_per_second": self.requests_per_second,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "non_2xx": self.non_2xx,
            "socket_errors": self.socket_errors,
            "envoy_cpu_us_per_request": self.envoy_cpu_us_per_request,
            "envoy_rss_mib": self.envoy_rss_mib,
            "startup_ms": self.startup_ms,
            "auth_calls_per_request": self.auth_calls_per_request,
        })
    }
}

/// Runs every configuration once per round, in the same order each round (A B C … A B C …).
pub async fn run(plan: &Plan, wasm: &Wasm<'_>, mut on_run: impl FnMut(&Run)) -> Result<Vec<Run>> {
    let mut runs = Vec::new();
    for round in 0..plan.rounds {
        for setup in &plan.setups {
            let run = measure(plan, *setup, round, wasm).await?;
            on_run(&run);
            runs.push(run);
        }
    }
    Ok(runs)
}

async fn measure(plan: &Plan, setup: Setup, round: usize, wasm: &Wasm<'_>) -> Result<Run> {
    let auth_port = free_port()?;
    let config = setups::bootstrap(setup, plan.path, wasm, free_port()?, auth_port)?;
    let _check_service = if setup.grpc() {
        Some(start_check_service(plan, auth_port).await?)
    } else {
        None
    };
    let options = EnvoyOptions {
        concurrency: 1,
        log_level: "warn".to_owned(),
        print_prefix: None,
        cpu_list: Some(plan.envoy_cpu.clone()),
        ..EnvoyOptions::default()
    };
    let envoy = Envoy::start(&config, &options).await?;
    let url = format!(
        "http://127.0.0.1:{}/bench",
        envoy.listener_port("main").await?
    );
    let load_cpu = Some(plan.load_cpu.as_str());
    let script = match plan.workload {
        Workload::Uniform => None,
        Workload::Zipf(credentials) => {
            let path = plan.scratch.join(format!("zipf-{credentials}.lua"));
            std::fs::write(&path, wrk::zipf_credentials_script(credentials))?;
            Some(path)
        }
    };
    let script = script.as_deref();
    // One credential, the same on every request (the mixed workload's script sets its own).
    let headers: &[&str] = match plan.workload {
        Workload::Uniform => &["authorization: Bearer bench"],
        Workload::Zipf(_) => &[],
    };
    wrk::run(
        &url,
        plan.connections,
        plan.warmup,
        load_cpu,
        script,
        headers,
    )
    .await?;
    let calls_before = auth_calls(&envoy).await?;
    let cpu_before = envoy.cpu_time();
    let report = wrk::run(
        &url,
        plan.connections,
        plan.duration,
        load_cpu,
        script,
        headers,
    )
    .await?;
    let cpu_after = envoy.cpu_time();
    let calls = auth_calls(&envoy).await?.saturating_sub(calls_before);
    let rss = envoy.rss_kib().unwrap_or_default();
    let startup = envoy.started_in;
    envoy.stop().await;
    let (Some(before), Some(after)) = (cpu_before, cpu_after) else {
        bail!("cannot read Envoy's CPU time from /proc");
    };
    Ok(Run {
        setup,
        round,
        requests: report.requests,
        requests_per_second: report.requests_per_second,
        p50_ms: report.p50_ms,
        p99_ms: report.p99_ms,
        non_2xx: report.non_2xx,
        socket_errors: report.socket_errors,
        envoy_cpu_us_per_request: (after - before).as_secs_f64() * 1e6
            / report.requests.max(1) as f64,
        envoy_rss_mib: rss as f64 / 1024.0,
        startup_ms: startup.as_secs_f64() * 1000.0,
        auth_calls_per_request: calls as f64 / report.requests.max(1) as f64,
    })
}

/// Calls Envoy has made to the auth cluster so far (HTTP or gRPC).
async fn auth_calls(envoy: &Envoy) -> Result<u64> {
    envoy.stat("cluster.auth.upstream_rq_total").await
}

/// Starts the gRPC Check service on `port`, pinned to the load's CPU, and waits until it
/// accepts connections. It is killed when dropped.
async fn start_check_service(plan: &Plan, port: u16) -> Result<tokio::process::Child> {
    let Some((program, args)) = plan.check_service.split_first() else {
        bail!("the gRPC configurations need a Check service command");
    };
    let answer = match plan.path {
        AuthPath::Allow => "allow",
        AuthPath::Deny => "deny",
    };
    let mut command = tokio::process::Command::new("taskset");
    command
        .args(["-c", &plan.load_cpu, program])
        .args(args)
        .args([
            "--address",
            &format!("127.0.0.1:{port}"),
            "--answer",
            answer,
        ])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut child = command.spawn()?;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(child);
        }
        if let Some(status) = child.try_wait()? {
            bail!("the Check service exited ({status}) before listening on {port}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the Check service did not listen on {port} within 10 s")
}

/// A loopback port free right now. The benchmark runs one Envoy at a time, so nothing else
/// should take it before Envoy binds it.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Machine facts for the report.
pub fn machine() -> Value {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    json!({ "cpus": cpus, "cpu_model": model, "kernel": kernel.trim() })
}

pub fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}
