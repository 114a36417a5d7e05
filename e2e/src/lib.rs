//! The end-to-end harness every test uses: the seed's Envoy config with the plugin under test,
//! a Rust auth service the test controls, and a Rust upstream standing in for `staticreply`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use workbench::envoy::{Envoy, EnvoyOptions};
use workbench::envoy_config::EnvoyConfig;
use workbench::test_server::TestServer;
use workbench::{paths, plugin};

pub use workbench::test_server::{Reply, SeenRequest};

/// What the upstream answers, so a test can tell an allowed request from a local reply.
pub const UPSTREAM_BODY: &str = "upstream ok";

/// Envoy with the plugin in front of a test upstream, asking a test auth service.
pub struct Stack {
    pub envoy: Envoy,
    pub auth: Option<TestServer>,
    pub upstream: TestServer,
    pub base: String,
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

/// The seed's Envoy config, with loopback ports chosen by the kernel, the built plugin, and the
/// clusters pointed at the test's servers. `auth_port` may be a closed port.
pub fn seed_config(plugin_config: &str, auth_port: u16, upstream_port: u16) -> Result<EnvoyConfig> {
    let wasm = plugin::built_wasm(&paths::default_plugin_dir())?;
    let mut config = EnvoyConfig::seed()?;
    config
        .set_admin("127.0.0.1", 0)
        // Histograms reach /stats at each flush; flush often so tests can read them.
        .set_bootstrap_field("stats_flush_interval", serde_json::json!("0.2s"))
        .set_listener_address("main", "127.0.0.1", 0)?
        .set_listener_address("staticreply", "127.0.0.1", 0)?
        .set_cluster_endpoint("httpbin", "127.0.0.1", auth_port)?
        .set_cluster_endpoint("staticreply", "127.0.0.1", upstream_port)?
        .set_plugin_wasm("main", &wasm)?
        .set_plugin_configuration("main", plugin_config)?;
    Ok(config)
}

/// How to set up a `Stack`; `Stack::start` and friends cover the common cases.
pub struct StackBuilder {
    plugin_config: String,
    auth: Option<TestServer>,
    wasm: Option<PathBuf>,
    large_capacity: bool,
}

impl StackBuilder {
    /// The auth service answers each call as `handler` says (without one, nobody listens).
    pub async fn auth<F>(mut self, handler: F) -> Self
    where
        F: Fn(&SeenRequest) -> Reply + Send + Sync + 'static,
    {
        self.auth = Some(
            TestServer::start(handler)
                .await
                .expect("start the test auth service"),
        );
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

    pub async fn start(self) -> Stack {
        let auth_port = match &self.auth {
            Some(auth) => auth.port(),
            None => closed_port().await,
        };
        let upstream = TestServer::upstream()
            .await
            .expect("start the test upstream");
        let mut config = seed_config(&self.plugin_config, auth_port, upstream.port())
            .expect("render the Envoy config");
        if let Some(wasm) = &self.wasm {
            config
                .set_plugin_wasm("main", wasm)
                .expect("set the wasm file");
        }
        if self.large_capacity {
            for cluster in ["httpbin", "staticreply"] {
                config
                    .set_cluster_field(cluster, "circuit_breakers", large_circuit_breakers())
                    .expect("set circuit breakers");
            }
        }
        let envoy = start_envoy(&config).await;
        let port = envoy
            .listener_port("main")
            .await
            .expect("find the main listener's port");
        Stack {
            envoy,
            auth: self.auth,
            upstream,
            base: format!("http://127.0.0.1:{port}"),
            client: client(),
        }
    }
}

/// Envoy's default breakers allow 1,024 requests per cluster; load tests need more.
pub fn large_circuit_breakers() -> serde_json::Value {
    serde_json::json!({ "thresholds": [{
        "max_connections": 100000,
        "max_pending_requests": 100000,
        "max_requests": 100000
    }]})
}

impl Stack {
    pub fn builder(plugin_config: &str) -> StackBuilder {
        StackBuilder {
            plugin_config: plugin_config.to_owned(),
            auth: None,
            wasm: None,
            large_capacity: false,
        }
    }

    /// Starts everything; `auth` answers each auth call as its handler says.
    pub async fn start<F>(plugin_config: &str, auth: F) -> Stack
    where
        F: Fn(&SeenRequest) -> Reply + Send + Sync + 'static,
    {
        Stack::builder(plugin_config).auth(auth).await.start().await
    }

    /// Starts with the auth cluster pointing at a port nobody listens on.
    pub async fn start_with_auth_down(plugin_config: &str) -> Stack {
        Stack::builder(plugin_config).start().await
    }

    pub fn port(&self) -> u16 {
        self.base
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_default()
    }

    pub fn auth_seen(&self) -> Vec<SeenRequest> {
        self.auth.as_ref().map(TestServer::seen).unwrap_or_default()
    }

    pub async fn get(&self, path: &str) -> Seen {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Seen {
        let started = Instant::now();
        let response = request.send().await.expect("the request gets an answer");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.expect("read the body");
        Seen {
            status,
            headers,
            body,
            elapsed: started.elapsed(),
        }
    }

    /// A stat of the plugin (`wasmcustom.http_auth_random.<name>`).
    pub async fn plugin_stat(&self, name: &str) -> u64 {
        self.stat(&format!("wasmcustom.http_auth_random.{name}"))
            .await
    }

    pub async fn stat(&self, name: &str) -> u64 {
        self.envoy.stat(name).await.expect("read the stat")
    }
}

/// Starts Envoy, failing the test with Envoy's own log if it does not come up.
pub async fn start_envoy(config: &EnvoyConfig) -> Envoy {
    match Envoy::start(config, &EnvoyOptions::default()).await {
        Ok(envoy) => envoy,
        Err(err) => panic!("Envoy did not start: {err:#}"),
    }
}

/// A loopback port that refuses connections.
pub async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a port");
    listener.local_addr().expect("local address").port()
}

/// A client that never waits forever (a hang is a failure, not a stuck test) and shows
/// redirects as they are instead of following them.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("build the HTTP client")
}

/// 32-bit FNV-1a, written here independently of the plugin so the tests do not grade the plugin
/// with its own code.
pub fn fnv1a(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in bytes {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// Plugin configuration JSON from `serde_json::json!`.
pub fn config(value: serde_json::Value) -> String {
    value.to_string()
}
