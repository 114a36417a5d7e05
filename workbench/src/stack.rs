//! A whole test system: Envoy with the seed config and the plugin, a Rust auth service and a Rust
//! upstream standing in for `staticreply`, all on kernel-chosen loopback ports. The end-to-end
//! tests, `cargo xtask soak` and the load tests all start it the same way.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;

use crate::envoy::{Envoy, EnvoyOptions};
use crate::envoy_config::{h2_protocol_options, EnvoyConfig};
use crate::grpc_auth::{GrpcAuthServer, GrpcReply};
use crate::test_server::{Reply, SeenRequest, TestServer};
use crate::{paths, plugin};

/// Longer than the plugin's metrics flush period (200 ms), so a flush has happened.
pub const PLUGIN_FLUSH_WAIT: Duration = Duration::from_millis(450);

/// What the upstream answers, so an allowed request can be told from a local reply.
pub const UPSTREAM_BODY: &str = "upstream ok";

pub struct Stack {
    pub envoy: Envoy,
    pub auth: Option<TestServer>,
    pub grpc_auth: Option<GrpcAuthServer>,
    pub upstream: TestServer,
    pub base: String,
    port: u16,
    pub client: reqwest::Client,
}

/// A response as the client saw it, and how long it took.
#[derive(Debug)]
pub struct Seen {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
    pub elapsed: Duration,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn reached_upstream(&self) -> bool {
        self.status == 200 && self.body == UPSTREAM_BODY
    }
}

/// The seed's Envoy config with loopback ports chosen by the kernel, the built plugin, and the
/// clusters pointed at the given ports (`auth_port` may be a closed one).
pub fn seed_config(plugin_config: &str, auth_port: u16, upstream_port: u16) -> Result<EnvoyConfig> {
    let wasm = plugin::built_wasm(&paths::default_plugin_dir())?;
    let mut config = EnvoyConfig::seed()?;
    config
        .set_admin("127.0.0.1", 0)
        // Histograms reach /stats at each flush; flush often so they can be read back soon.
        .set_bootstrap_field("stats_flush_interval", json!("0.2s"))
        .set_listener_address("main", "127.0.0.1", 0)?
        .set_listener_address("staticreply", "127.0.0.1", 0)?
        .set_cluster_endpoint("httpbin", "127.0.0.1", auth_port)?
        .set_cluster_endpoint("staticreply", "127.0.0.1", upstream_port)?
        .set_plugin_wasm("main", &wasm)?
        .set_plugin_configuration("main", plugin_config)?;
    Ok(config)
}

/// The full name of a filter's stat under `stat_prefix`, in the shell `AUTHZ_SHELL` picks.
pub fn plugin_stat_name(stat_prefix: &str, name: &str) -> String {
    format!(
        "{}{stat_prefix}.{name}",
        crate::shell::Shell::current().stats_namespace()
    )
}

/// Envoy's default breakers allow 1,024 requests per cluster; load needs more.
pub fn large_circuit_breakers() -> serde_json::Value {
    json!({ "thresholds": [{
        "max_connections": 100000,
        "max_pending_requests": 100000,
        "max_requests": 100000
    }]})
}

/// A loopback port that refuses connections.
pub async fn closed_port() -> Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    Ok(listener.local_addr()?.port())
}

/// A client that never waits forever and shows redirects as they are.
pub fn client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// A change to the Envoy config, made just before Envoy starts.
type ConfigEdit = Box<dyn FnOnce(&mut EnvoyConfig) -> Result<()> + Send>;

pub struct StackBuilder {
    plugin_config: String,
    auth: Option<TestServer>,
    grpc_auth: Option<GrpcAuthServer>,
    /// The auth cluster speaks HTTP/2, as a gRPC service needs.
    h2_auth: bool,
    upstream: Option<TestServer>,
    wasm: Option<PathBuf>,
    large_capacity: bool,
    options: EnvoyOptions,
    edits: Vec<ConfigEdit>,
}

impl StackBuilder {
    pub fn new(plugin_config: &str) -> Self {
        StackBuilder {
            plugin_config: plugin_config.to_owned(),
            auth: None,
            grpc_auth: None,
            h2_auth: false,
            upstream: None,
            wasm: None,
            large_capacity: false,
            options: EnvoyOptions::default(),
            edits: Vec::new(),
        }
    }

    /// The upstream answers as `handler` says (by default: 200 `upstream ok` to everything).
    pub async fn upstream<F>(mut self, handler: F) -> Result<Self>
    where
        F: Fn(&SeenRequest) -> Reply + Send + Sync + 'static,
    {
        self.upstream = Some(
            TestServer::start(handler)
                .await
                .context("start the test upstream")?,
        );
        Ok(self)
    }

    /// Changes the Envoy config before Envoy starts (after the ports and the plugin are set).
    pub fn configure(
        mut self,
        edit: impl FnOnce(&mut EnvoyConfig) -> Result<()> + Send + 'static,
    ) -> Self {
        self.edits.push(Box::new(edit));
        self
    }

    /// The auth service answers each call as `handler` says (without one, nobody listens).
    pub async fn auth<F>(mut self, handler: F) -> Result<Self>
    where
        F: Fn(&SeenRequest) -> Reply + Send + Sync + 'static,
    {
        self.auth = Some(
            TestServer::start(handler)
                .await
                .context("start the test auth service")?,
        );
        Ok(self)
    }

    /// The auth service is a gRPC Check service answering as `handler` says; the auth cluster
    /// speaks HTTP/2.
    pub async fn grpc_auth<F>(mut self, handler: F) -> Result<Self>
    where
        F: Fn(&envoy_types::ext_authz::v3::pb::CheckRequest) -> GrpcReply + Send + Sync + 'static,
    {
        self.grpc_auth = Some(
            GrpcAuthServer::start(handler)
                .await
                .context("start the test gRPC auth service")?,
        );
        self.h2_auth = true;
        Ok(self)
    }

    /// The auth cluster speaks HTTP/2 (for a gRPC check with nobody listening, or an HTTP
    /// service over HTTP/2).
    pub fn h2_auth(mut self) -> Self {
        self.h2_auth = true;
        self
    }

    /// Serve this wasm instead of the built `main.wasm` (e.g. the test variant).
    pub fn wasm(mut self, wasm: PathBuf) -> Self {
        self.wasm = Some(wasm);
        self
    }

    /// Raise the circuit breakers on both clusters, for thousands of concurrent requests.
    pub fn large_capacity(mut self) -> Self {
        self.large_capacity = true;
        self
    }

    pub fn envoy_options(mut self, options: EnvoyOptions) -> Self {
        self.options = options;
        self
    }

    pub async fn start(self) -> Result<Stack> {
        let auth_port = match (&self.auth, &self.grpc_auth) {
            (Some(auth), _) => auth.port(),
            (None, Some(grpc)) => grpc.port(),
            (None, None) => closed_port().await?,
        };
        let upstream = match self.upstream {
            Some(upstream) => upstream,
            None => TestServer::upstream()
                .await
                .context("start the test upstream")?,
        };
        let mut config = seed_config(&self.plugin_config, auth_port, upstream.port())?;
        if let Some(wasm) = &self.wasm {
            config.set_plugin_wasm("main", wasm)?;
        }
        if self.h2_auth {
            config.set_cluster_field(
                "httpbin",
                "typed_extension_protocol_options",
                h2_protocol_options(),
            )?;
        }
        if self.large_capacity {
            for cluster in ["httpbin", "staticreply"] {
                config.set_cluster_field(cluster, "circuit_breakers", large_circuit_breakers())?;
            }
        }
        for edit in self.edits {
            edit(&mut config)?;
        }
        let envoy = Envoy::start(&config, &self.options)
            .await
            .context("Envoy did not start")?;
        let port = envoy.listener_port("main").await?;
        Ok(Stack {
            envoy,
            auth: self.auth,
            grpc_auth: self.grpc_auth,
            upstream,
            base: format!("http://127.0.0.1:{port}"),
            port,
            client: client()?,
        })
    }
}

impl Stack {
    /// The main listener's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn auth_seen(&self) -> Vec<SeenRequest> {
        self.auth.as_ref().map(TestServer::seen).unwrap_or_default()
    }

    pub async fn get(&self, path: &str) -> Result<Seen> {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<Seen> {
        let started = Instant::now();
        let response = request.send().await.context("the request got no answer")?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.context("the body did not arrive")?;
        Ok(Seen {
            status,
            headers,
            body,
            elapsed: started.elapsed(),
        })
    }

    /// A stat of the filter under its default prefix (`wasmcustom.http_auth_random.<name>`, or
    /// `dynamicmodulescustom.…` in the native shell).
    pub async fn plugin_stat(&self, name: &str) -> Result<u64> {
        self.settled_stat(&plugin_stat_name("http_auth_random", name))
            .await
    }

    /// A stat, read after the plugin has flushed what it counted so far (it reports to Envoy
    /// every 200 ms rather than on every request).
    pub async fn settled_stat(&self, name: &str) -> Result<u64> {
        if name.starts_with("wasmcustom.") {
            tokio::time::sleep(PLUGIN_FLUSH_WAIT).await;
        }
        self.envoy.stat(name).await
    }
}
