//! `cargo xtask soak`: many mixed requests (allow, deny, error, reset) through one Envoy, printing
//! its memory as it goes, then the verdict: RSS growth after warm-up and VM restarts.

use anyhow::{bail, Result};
use clap::Args;
use workbench::envoy::EnvoyOptions;
use workbench::load;
use workbench::stack::StackBuilder;
use workbench::tools::{self, Tool};
use workbench::{paths, plugin, shutdown, soak, venv};

/// The most RSS may grow after warm-up.
const MAX_GROWTH: f64 = 0.10;

#[derive(Args)]
pub struct SoakArgs {
    #[command(flatten)]
    pub shell: crate::ShellArg,
    /// Requests in all, a quarter each of allow, deny, error and reset.
    #[arg(long, default_value_t = 200_000)]
    requests: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// RSS samples (the first is the warm-up).
    #[arg(long, default_value_t = 20)]
    samples: u64,
    /// How the plugin asks: `http` (the seed's rule) or `grpc` (ext_authz's Check).
    #[arg(long, default_value = "http", value_parser = ["http", "grpc"])]
    protocol: String,
}

pub async fn soak(args: SoakArgs) -> Result<()> {
    tools::ensure("soak", &[Tool::WasmTarget, Tool::WasmOpt, Tool::PythonVenv])?;
    plugin::build(&paths::default_plugin_dir(), &[])?;
    venv::ensure()?;
    // A stop signal drops the soak, which stops its Envoy and removes its files.
    shutdown::unless_stopped(soak_once(args)).await
}

async fn soak_once(args: SoakArgs) -> Result<()> {
    let builder = if args.protocol == "grpc" {
        StackBuilder::new(r#"{"protocol": "grpc", "timeout_ms": 5000}"#)
            .grpc_auth(load::mixed_grpc_auth)
            .await?
    } else {
        StackBuilder::new("{}").auth(load::mixed_auth).await?
    };
    let stack = builder
        .large_capacity()
        .envoy_options(EnvoyOptions {
            log_level: "warn".to_owned(),
            ..EnvoyOptions::default()
        })
        .start()
        .await?;
    println!(
        "soak: {} requests (allow/deny/error/reset) over {}, {} at a time, Envoy pid {}",
        args.requests,
        args.protocol,
        args.concurrency,
        stack.envoy.pid().unwrap_or_default()
    );
    println!("{:>10}  {:>9}  {:>8}", "requests", "RSS MiB", "seconds");
    let report = soak::soak(
        &stack,
        args.requests,
        args.concurrency,
        args.samples,
        |sample| {
            println!(
                "{:>10}  {:>9.1}  {:>8.1}",
                sample.done,
                sample.rss_kib as f64 / 1024.0,
                sample.seconds
            );
        },
    )
    .await?;
    let growth = report.growth_after_warmup();
    let seconds = report.samples.last().map_or(0.0, |s| s.seconds);
    println!();
    println!(
        "sent {} (allow {}, deny {}, error {}, reset {}) in {seconds:.1} s, {:.0} req/s",
        report.tally.total(),
        report.tally.sent[0],
        report.tally.sent[1],
        report.tally.sent[2],
        report.tally.sent[3],
        report.tally.total() as f64 / seconds.max(f64::EPSILON)
    );
    println!("wrong answers: {}", report.tally.wrong);
    for wrong in &report.tally.first_wrong {
        println!("  {wrong}");
    }
    println!(
        "RSS growth after warm-up: {:+.1}% (limit {:.0}%)",
        growth * 100.0,
        MAX_GROWTH * 100.0
    );
    println!("VM restarts: {}", report.vm_restarts());
    println!(
        "calls in flight afterwards: {}",
        report.calls_in_flight_after
    );
    stack.envoy.stop().await;
    if report.tally.wrong > 0
        || growth >= MAX_GROWTH
        || report.vm_restarts() > 0
        || report.calls_in_flight_after > 0
    {
        bail!("soak failed");
    }
    println!("soak passed");
    Ok(())
}
