//! `cargo xtask run`: the seed system on this machine, with no Docker.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use workbench::envoy::{Envoy, EnvoyOptions};
use workbench::envoy_config::EnvoyConfig;
use workbench::httpbin::Httpbin;
use workbench::{paths, plugin, venv};

#[derive(Args)]
pub struct RunArgs {
    /// Plugin folder (default: plugins/http_auth_random).
    plugin_dir: Option<PathBuf>,
    /// Ask the public httpbin.org:80, as the seed did, instead of a local httpbin.
    #[arg(long)]
    public_httpbin: bool,
    /// Route allowed requests to httpbin itself (the seed's other variant) instead of staticreply.
    #[arg(long)]
    route_to_httpbin: bool,
    /// Plugin configuration JSON, replacing the one in envoy/envoy.yaml.
    #[arg(long)]
    plugin_config: Option<String>,
}

pub async fn run(args: RunArgs) -> Result<()> {
    let plugin_dir = args.plugin_dir.unwrap_or_else(paths::default_plugin_dir);
    eprintln!("xtask: building {}", plugin_dir.display());
    let wasm = plugin::build(&plugin_dir, &[])?;
    venv::ensure()?;
    let concurrency = concurrency()?;

    let mut config = EnvoyConfig::seed()?;
    config
        .set_admin("127.0.0.1", 8001)
        .set_plugin_wasm("main", &wasm)?;
    let httpbin = if args.public_httpbin {
        config.set_cluster_endpoint("httpbin", "httpbin.org", 80)?;
        None
    } else {
        let httpbin = Httpbin::start().await?;
        config.set_cluster_endpoint("httpbin", "127.0.0.1", httpbin.port)?;
        Some(httpbin)
    };
    if args.route_to_httpbin {
        config.set_route_cluster("main", "httpbin")?;
    }
    if let Some(json) = &args.plugin_config {
        config.set_plugin_configuration("main", json)?;
    }

    let options = EnvoyOptions {
        concurrency,
        print_prefix: Some("envoy"),
        ..EnvoyOptions::default()
    };
    let mut envoy = Envoy::start(&config, &options).await?;
    println!();
    println!(
        "Envoy is ready ({concurrency} worker(s)), serving {}",
        wasm.display()
    );
    println!("  try:   curl -v localhost:18000/uuid     (about half 200, half 403)");
    println!(
        "  admin: {}   (stats: {}/stats?filter=http_auth_random)",
        envoy.admin_url(),
        envoy.admin_url()
    );
    println!("Ctrl-C stops Envoy and httpbin.");

    let outcome = tokio::select! {
        signal = tokio::signal::ctrl_c() => signal.context("cannot wait for Ctrl-C"),
        () = exited(&mut envoy) => Err(anyhow::anyhow!("Envoy exited on its own")),
    };
    eprintln!("xtask: stopping");
    envoy.stop().await;
    if let Some(httpbin) = httpbin {
        httpbin.stop().await;
    }
    outcome
}

fn concurrency() -> Result<u32> {
    match std::env::var("ENVOY_CONCURRENCY") {
        Ok(value) => value
            .parse()
            .with_context(|| format!("ENVOY_CONCURRENCY must be a number, got {value:?}")),
        Err(_) => Ok(1),
    }
}

async fn exited(envoy: &mut Envoy) {
    while envoy.is_running() {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
