//! `cargo xtask run`: the seed system on this machine, with no Docker, until a stop signal.

mod banner;
mod plugin_config;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use authz_core::config::Config;
use clap::{Args, ValueEnum};
use serde_json::Value;
use workbench::authzen::Policy;
use workbench::decision_log;
use workbench::envoy::{Envoy, EnvoyOptions, LineFormat};
use workbench::envoy_config::EnvoyConfig;
use workbench::grpc_auth::{self, GrpcAuthServer};
use workbench::httpbin::Httpbin;
use workbench::shell::{self, Shell};
use workbench::shutdown::StopSignals;
use workbench::test_server::{Reply, SeenRequest, TestServer};
use workbench::tools::{self, Tool};
use workbench::{paths, plugin, venv};

use banner::{AuthService, Banner, Upstream};
use plugin_config::Source;

/// Envoy's log levels (`-l`).
#[derive(Clone, Copy, ValueEnum)]
enum LogLevel {
    Trace,
    Debug,
    Info,
    Warning,
    Error,
    Critical,
    Off,
}

impl LogLevel {
    fn name(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
            LogLevel::Off => "off",
        }
    }
}

/// How the plugin asks its auth service.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProtocolArg {
    /// envoy/envoy.yaml: an HTTP call to httpbin, as the seed does.
    Http,
    /// envoy/envoy-grpc.yaml: ext_authz's gRPC Check, to an example Check service.
    Grpc,
    /// envoy/envoy.yaml with an OpenID AuthZEN evaluation to a demo decision point.
    Authzen,
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub shell: crate::ShellArg,
    /// Plugin folder (default: plugins/http_auth_random).
    plugin_dir: Option<PathBuf>,
    /// Port of the listener that runs the plugin (on all interfaces; 0: any free port).
    #[arg(long, default_value_t = 18000)]
    port: u16,
    /// Port of Envoy's admin API (on 127.0.0.1; 0: any free port). Without it: 8001, or any
    /// free port when 8001 is taken (kubectl proxy uses it), named in the banner.
    #[arg(long)]
    admin_port: Option<u16>,
    /// Envoy worker threads (at least 1).
    #[arg(
        long,
        env = "ENVOY_CONCURRENCY",
        default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    concurrency: u32,
    /// Envoy's log level.
    #[arg(long, value_enum, default_value_t = LogLevel::Warning)]
    log_level: LogLevel,
    /// Print one line per request: allowed, denied, or an auth error failed open or closed,
    /// with the reason (from Envoy's access log on the plugin's listener).
    #[arg(long)]
    log_decisions: bool,
    /// Ask the public httpbin.org:80, as the seed did, instead of a local httpbin.
    #[arg(long)]
    public_httpbin: bool,
    /// Route allowed requests to httpbin itself (the seed's other variant) instead of staticreply.
    #[arg(long)]
    route_to_httpbin: bool,
    /// Plugin configuration JSON, replacing the one in envoy/envoy.yaml (envoy-grpc.yaml);
    /// @FILE reads it from a file (as curl's -d does), e.g. --plugin-config @plugin.json.
    #[arg(long, value_name = "JSON|@FILE")]
    plugin_config: Option<String>,
    /// How the plugin asks: `grpc` serves envoy/envoy-grpc.yaml with a small example gRPC Check
    /// service (a bearer token allows) in place of httpbin, and an echo server as the upstream
    /// (it answers with the headers it got, so the user the service names shows); `authzen`
    /// serves the plugin with "protocol": "authzen", asking a small AuthZEN decision point (the
    /// subject in x-user-id: alice may do anything under /todos, bob may only GET there) on a
    /// cluster `authzen` in place of httpbin, and the same echo server upstream.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Http)]
    protocol: ProtocolArg,
}

/// The default admin port (Envoy's examples and envoy/envoy.yaml use it too).
const DEFAULT_ADMIN_PORT: u16 = 8001;

/// What was started, so that every way out stops it.
#[derive(Default)]
struct Running {
    httpbin: Option<Httpbin>,
    check_service: Option<GrpcAuthServer>,
    decision_point: Option<Arc<TestServer>>,
    echo: Option<Arc<TestServer>>,
    envoy: Option<Envoy>,
}

impl Running {
    async fn stop(self) {
        if let Some(envoy) = self.envoy {
            envoy.stop().await;
        }
        if let Some(httpbin) = self.httpbin {
            httpbin.stop().await;
        }
        drop(self.check_service);
        drop(self.decision_point);
        drop(self.echo);
    }
}

pub async fn run(args: RunArgs) -> Result<()> {
    // Everything that can be wrong with the arguments is found before any work is done.
    let plugin_dir = args
        .plugin_dir
        .clone()
        .unwrap_or_else(paths::default_plugin_dir);
    let mut config = envoy_config(&args)?;
    let plugin = read_plugin_config(&plugin_dir, &args, &mut config)?;
    let admin = admin_port(&args)?;
    tools::ensure("run", &[Tool::WasmTarget, Tool::WasmOpt, Tool::PythonVenv])?;

    eprintln!(
        "xtask: building {} into main.wasm (release, {}); cargo's progress follows{}",
        shown_path(&plugin_dir),
        tools::WASM_TARGET,
        if first_wasm_build() {
            ": a first build compiles the plugin's dependencies, a few minutes"
        } else {
            ""
        }
    );
    let wasm = plugin::build(&plugin_dir, &[])?;
    eprintln!("xtask: built {}", shown_path(&wasm));
    if args.shell.shell() == Shell::Native {
        eprintln!("xtask: building the native dynamic module (profile native)");
        let module = shell::build_module(false)?;
        eprintln!("xtask: built {}", shown_path(&module));
    }
    venv::ensure()?;

    let auth = if args.public_httpbin {
        let resolved = resolve("httpbin.org", 80).await;
        if resolved.is_none() {
            eprintln!(
                "xtask: WARNING: httpbin.org does not resolve from here (no internet or DNS?), \
                 so Envoy has no host to send auth calls to: {}.",
                plugin_config::when_cluster_has_no_host()
            );
        }
        Some(resolved)
    } else {
        None
    };
    // A free port of its own, so that two runs (or a test) never collide on the seed's 8099.
    let staticreply_port = free_loopback_port()?;
    config
        .set_admin("127.0.0.1", admin.port)
        .set_listener_address("main", "0.0.0.0", args.port)?
        .set_listener_address("staticreply", "127.0.0.1", staticreply_port)?
        .set_cluster_endpoint("staticreply", "127.0.0.1", staticreply_port)?
        .set_plugin_wasm("main", &wasm)?;
    if args.route_to_httpbin {
        config.set_route_cluster("main", "httpbin")?;
    }
    let outcomes = plugin.as_ref().map(|(c, _)| plugin_config::outcomes(c));
    let mut options = EnvoyOptions {
        concurrency: args.concurrency,
        log_level: args.log_level.name().to_owned(),
        print_prefix: Some("envoy"),
        ..EnvoyOptions::default()
    };
    if args.log_decisions {
        config.hcm_mut("main")?["access_log"] = decision_log::access_log();
        keep_decision_records(&mut config)?;
        options.stdout_lines = Some(LineFormat(Arc::new(move |line| {
            Some(format!(
                "[decision] {}",
                decision_log::describe(line, outcomes.as_ref())
            ))
        })));
    }

    // From here on a stop signal is answered by stopping what was started, whatever the phase.
    let mut signals = StopSignals::install()?;
    let mut running = Running::default();
    let served = tokio::select! {
        served = serve(&args, config, options, auth, plugin.as_ref(), &wasm, admin, &mut running) => served,
        signal = signals.recv() => {
            eprintln!("xtask: {signal} received, stopping");
            Ok(())
        }
    };
    running.stop().await;
    served
}

/// Turns on the filter's decision record in the served configuration, so that each decision
/// line says what the filter itself recorded (exempt, cache hit, stale, coalesced, …).
fn keep_decision_records(config: &mut EnvoyConfig) -> Result<()> {
    let plugin = config.plugin_mut("main")?;
    let text = plugin["configuration"]["value"]
        .as_str()
        .unwrap_or_default();
    let mut value: Value = if text.trim().is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_str(text).context("the plugin configuration is not JSON")?
    };
    if let Some(object) = value.as_object_mut() {
        object.insert("record_decisions".to_owned(), Value::Bool(true));
    }
    plugin["configuration"]["value"] = Value::String(value.to_string());
    Ok(())
}

/// Starts httpbin (unless the public one is asked) and Envoy, prints the banner, and waits
/// until Envoy exits by itself (an error: it should run until stopped).
#[allow(clippy::too_many_arguments)]
async fn serve(
    args: &RunArgs,
    mut config: EnvoyConfig,
    options: EnvoyOptions,
    public: Option<Option<String>>,
    plugin: Option<&(Config, Source)>,
    wasm: &Path,
    admin: AdminPort,
    running: &mut Running,
) -> Result<()> {
    let auth = match public {
        _ if args.protocol == ProtocolArg::Authzen => {
            let policy = Policy::demo();
            let decision_point = running.decision_point.insert(Arc::new(
                TestServer::start(move |request| policy.answer(request)).await?,
            ));
            config.set_cluster_endpoint(
                plugin_config::AUTHZEN_CLUSTER,
                "127.0.0.1",
                decision_point.port(),
            )?;
            forget_seen_requests(Arc::downgrade(decision_point));
            // Allowed requests go to the echo server, which shows the x-user-id it got.
            let echo = running
                .echo
                .insert(Arc::new(TestServer::start(echo).await?));
            config
                .set_cluster_endpoint("staticreply", "127.0.0.1", echo.port())?
                .remove_listener("staticreply")?;
            forget_seen_requests(Arc::downgrade(echo));
            AuthService::DemoAuthzen(decision_point.port())
        }
        _ if args.protocol == ProtocolArg::Grpc => {
            let service = running
                .check_service
                .insert(GrpcAuthServer::serve_on("127.0.0.1:0", grpc_auth::example_policy).await?);
            config.set_cluster_endpoint("authz", "127.0.0.1", service.port())?;
            // Allowed requests go to an echo server instead of the direct reply, so that what the
            // Check service added (x-user-id) shows in the answer.
            let echo = running
                .echo
                .insert(Arc::new(TestServer::start(echo).await?));
            config
                .set_cluster_endpoint("staticreply", "127.0.0.1", echo.port())?
                .remove_listener("staticreply")?;
            forget_seen_requests(Arc::downgrade(echo));
            AuthService::ExampleGrpc(service.port())
        }
        Some(resolved) => {
            config.set_cluster_endpoint("httpbin", "httpbin.org", 80)?;
            AuthService::PublicHttpbin { resolved }
        }
        None => {
            let httpbin = running.httpbin.insert(Httpbin::start().await?);
            config.set_cluster_endpoint("httpbin", "127.0.0.1", httpbin.port)?;
            AuthService::LocalHttpbin(httpbin.port)
        }
    };
    let clusters = cluster_names(&config);
    let envoy = running.envoy.insert(Envoy::start(&config, &options).await?);
    let port = envoy.listener_port("main").await?;
    let upstream = match &running.echo {
        Some(echo) => Upstream::Echo(echo.port()),
        None if args.route_to_httpbin => Upstream::Httpbin,
        None => Upstream::StaticReply(envoy.listener_port("staticreply").await?),
    };
    let banner = Banner {
        concurrency: args.concurrency,
        wasm: match args.shell.shell() {
            Shell::Native => format!(
                "{}, a native dynamic module (Envoy's dynamic_modules filter) with the plugin's configuration",
                shown_path(&shell::module_path(false))
            ),
            Shell::Wasm => shown_path(wasm),
        },
        port,
        admin_url: envoy.admin_url().to_owned(),
        admin_default_taken: admin.default_taken.then_some(DEFAULT_ADMIN_PORT),
        plugin: plugin.map(|(config, source)| (config, source)),
        clusters,
        auth,
        upstream,
        log_level: args.log_level.name(),
        log_decisions: args.log_decisions,
    };
    println!();
    for line in banner.lines() {
        println!("{line}");
    }
    let status = envoy.wait().await?;
    bail!("Envoy exited on its own ({status}). {}", envoy.errors())
}

/// The plugin configuration `run` will serve, checked with the plugin's own parser when the
/// plugin is http_auth_random (xtask cannot know another plugin's format).
fn read_plugin_config(
    plugin_dir: &Path,
    args: &RunArgs,
    config: &mut EnvoyConfig,
) -> Result<Option<(Config, Source)>> {
    let flag = args
        .plugin_config
        .as_deref()
        .map(plugin_config::from_flag)
        .transpose()?;
    if let Some((json, _)) = &flag {
        config.set_plugin_configuration("main", json)?;
    }
    let is_this_plugin = match (
        plugin_dir.canonicalize(),
        paths::default_plugin_dir().canonicalize(),
    ) {
        (Ok(dir), Ok(ours)) => dir == ours,
        (Err(err), _) => {
            return Err(anyhow!(err))
                .with_context(|| format!("plugin folder {} does not exist", plugin_dir.display()))
        }
        _ => false,
    };
    if !is_this_plugin {
        return Ok(None);
    }
    let (text, source) = match flag {
        Some(given) => given,
        None => (
            config.plugin_mut("main")?["configuration"]["value"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            match args.protocol {
                ProtocolArg::Http => Source::SeedFile,
                ProtocolArg::Grpc => Source::GrpcSeedFile,
                ProtocolArg::Authzen => Source::AuthzenDemo,
            },
        ),
    };
    Ok(Some((plugin_config::check(&text, &source)?, source)))
}

/// The Envoy configuration `--protocol` asks for, before ports and the plugin are set: the seed
/// (`envoy/envoy.yaml`), its gRPC variant, or for authzen the seed with the demo configuration
/// asking cluster `authzen` (its endpoint set once the decision point listens) in place of
/// httpbin.
fn envoy_config(args: &RunArgs) -> Result<EnvoyConfig> {
    if args.protocol != ProtocolArg::Http && (args.public_httpbin || args.route_to_httpbin) {
        bail!(
            "--public-httpbin and --route-to-httpbin are for --protocol http: with {} there is \
             no httpbin",
            args.protocol
                .to_possible_value()
                .map_or("grpc".to_owned(), |v| v.get_name().to_owned())
        );
    }
    match args.protocol {
        ProtocolArg::Http => EnvoyConfig::seed(),
        ProtocolArg::Grpc => EnvoyConfig::seed_grpc(),
        ProtocolArg::Authzen => {
            let mut config = EnvoyConfig::seed()?;
            config.set_plugin_configuration("main", plugin_config::AUTHZEN_DEMO)?;
            let clusters = config
                .as_value_mut()
                .pointer_mut("/static_resources/clusters")
                .and_then(Value::as_array_mut)
                .context("envoy/envoy.yaml has no clusters")?;
            clusters.retain(|cluster| cluster["name"] != "httpbin");
            config.add_cluster(workbench::envoy_config::cluster(
                plugin_config::AUTHZEN_CLUSTER,
                "127.0.0.1",
                0,
            ))?;
            Ok(config)
        }
    }
}

/// The admin port Envoy is given, and whether the default was passed over because it was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AdminPort {
    port: u16,
    default_taken: bool,
}

/// Checks the ports Envoy must bind (0 means any free port), failing with the port's name when
/// one given is taken. Without --admin-port, a taken 8001 (kubectl proxy's port) gives way to
/// any free port rather than an error.
fn admin_port(args: &RunArgs) -> Result<AdminPort> {
    if args.port != 0 && Some(args.port) == args.admin_port {
        bail!(
            "--port and --admin-port are both {}: they need different ports",
            args.port
        );
    }
    check_free(Ipv4Addr::UNSPECIFIED, args.port, "--port")?;
    match args.admin_port {
        Some(port) => {
            check_free(Ipv4Addr::LOCALHOST, port, "--admin-port")?;
            Ok(AdminPort {
                port,
                default_taken: false,
            })
        }
        None if args.port != DEFAULT_ADMIN_PORT
            && check_free(Ipv4Addr::LOCALHOST, DEFAULT_ADMIN_PORT, "--admin-port").is_ok() =>
        {
            Ok(AdminPort {
                port: DEFAULT_ADMIN_PORT,
                default_taken: false,
            })
        }
        None => {
            let by = if args.port == DEFAULT_ADMIN_PORT {
                "by --port"
            } else {
                "(kubectl proxy uses it, for one)"
            };
            eprintln!(
                "xtask: port {DEFAULT_ADMIN_PORT} is taken {by}, so Envoy's admin API gets any \
                 free port; the banner shows it (--admin-port sets one)"
            );
            Ok(AdminPort {
                port: 0,
                default_taken: true,
            })
        }
    }
}

fn check_free(address: Ipv4Addr, port: u16, flag: &str) -> Result<()> {
    if port == 0 {
        return Ok(());
    }
    if let Err(err) = TcpListener::bind(SocketAddr::from((address, port))) {
        bail!(
            "port {port} is taken ({err}): another Envoy or `cargo xtask run` may be using it. \
             Choose another with {flag}."
        );
    }
    Ok(())
}

/// The gRPC demo's upstream: 200 with the request line and headers it got, one per line.
fn echo(request: &SeenRequest) -> Reply {
    let mut body = format!(
        "the upstream got {} {} with these headers:\n",
        request.method, request.path
    );
    for (name, value) in &request.headers {
        body.push_str(&format!("{name}: {value}\n"));
    }
    Reply::ok(body).header("content-type", "text/plain")
}

/// The echo server keeps every request it sees; a long demo should not, so it forgets them
/// every few seconds, until it is stopped.
fn forget_seen_requests(server: std::sync::Weak<TestServer>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            match server.upgrade() {
                Some(server) => server.clear_seen(),
                None => return,
            }
        }
    });
}

fn free_loopback_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// One address of a host name, if it resolves within a few seconds.
async fn resolve(host: &str, port: u16) -> Option<String> {
    let lookup = tokio::net::lookup_host((host, port));
    match tokio::time::timeout(Duration::from_secs(5), lookup).await {
        Ok(Ok(mut addresses)) => addresses.next().map(|a| a.ip().to_string()),
        _ => None,
    }
}

fn cluster_names(config: &EnvoyConfig) -> Vec<String> {
    config
        .as_value()
        .pointer("/static_resources/clusters")
        .and_then(Value::as_array)
        .map(|all| {
            all.iter()
                .filter_map(|c| c["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether nothing has been built for the wasm target yet (the first build is the long one).
fn first_wasm_build() -> bool {
    !paths::repo_root()
        .join("target")
        .join(tools::WASM_TARGET)
        .join("release")
        .is_dir()
}

/// A path inside the repository relative to it, anything else as it is.
fn shown_path(path: &Path) -> String {
    let root = paths::repo_root();
    let root = root.canonicalize().unwrap_or(root);
    path.strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn run_args(flags: &[&str]) -> Result<RunArgs, clap::Error> {
        let cli = crate::Cli::try_parse_from(["cargo xtask", "run"].iter().chain(flags).copied())?;
        match cli.command {
            crate::Command::Run(args) => Ok(args),
            _ => unreachable!("a run command"),
        }
    }

    #[test]
    fn protocol_takes_http_grpc_or_authzen() {
        assert!(run_args(&[]).unwrap().protocol == ProtocolArg::Http);
        assert!(run_args(&["--protocol", "grpc"]).unwrap().protocol == ProtocolArg::Grpc);
        let authzen = run_args(&["--protocol", "authzen", "--shell", "native"]).unwrap();
        assert!(authzen.protocol == ProtocolArg::Authzen);
        assert!(authzen.shell.shell() == Shell::Native);
        let err = run_args(&["--protocol", "authzn"])
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("[possible values: http, grpc, authzen]"),
            "{err}"
        );
    }

    #[test]
    fn the_authzen_mode_serves_the_demo_configuration_on_its_own_cluster() {
        let args = run_args(&["--protocol", "authzen"]).unwrap();
        let mut config = envoy_config(&args).unwrap();
        let clusters = cluster_names(&config);
        assert!(clusters.contains(&"authzen".to_owned()), "{clusters:?}");
        assert!(!clusters.contains(&"httpbin".to_owned()), "{clusters:?}");
        let (parsed, source) = read_plugin_config(&paths::default_plugin_dir(), &args, &mut config)
            .unwrap()
            .unwrap();
        assert_eq!(source, Source::AuthzenDemo);
        assert!(matches!(
            parsed.protocol,
            authz_core::config::Protocol::AuthZen
        ));
        keep_decision_records(&mut config).unwrap();
        let served = config.plugin_mut("main").unwrap()["configuration"]["value"]
            .as_str()
            .unwrap()
            .to_owned();
        let served: Value = serde_json::from_str(&served).unwrap();
        assert_eq!(served["record_decisions"], true);
        assert_eq!(served["authzen"]["subject"]["id_header"], "x-user-id");

        // --plugin-config still replaces the demo's configuration.
        let args = run_args(&[
            "--protocol",
            "authzen",
            "--plugin-config",
            r#"{"protocol": "authzen", "cluster": "authzen", "authzen": {"subject": {"id_header": "x-sub"}}}"#,
        ])
        .unwrap();
        let mut config = envoy_config(&args).unwrap();
        let (parsed, source) = read_plugin_config(&paths::default_plugin_dir(), &args, &mut config)
            .unwrap()
            .unwrap();
        assert_eq!(source, Source::Flag);
        assert_eq!(parsed.authzen.unwrap().subject.id_header, "x-sub");
    }

    #[test]
    fn httpbin_flags_are_refused_without_httpbin() {
        for protocol in ["grpc", "authzen"] {
            let args = run_args(&["--protocol", protocol, "--route-to-httpbin"]).unwrap();
            let err = envoy_config(&args).err().unwrap().to_string();
            assert!(
                err.contains(&format!("with {protocol} there is no httpbin")),
                "{err}"
            );
        }
    }
}
