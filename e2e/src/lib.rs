//! The end-to-end harness every test uses: `workbench::stack` (Envoy with the seed config and the
//! plugin, a Rust auth service the test controls, a Rust upstream for `staticreply`), with calls
//! that fail the test with a clear message instead of returning errors.

use std::ops::Deref;
use std::path::PathBuf;

use workbench::envoy::{Envoy, EnvoyOptions};
use workbench::envoy_config::EnvoyConfig;
use workbench::stack;

pub use workbench::stack::{seed_config, Seen, UPSTREAM_BODY};
pub use workbench::test_server::{Reply, SeenRequest};

pub struct Stack(stack::Stack);

impl Deref for Stack {
    type Target = stack::Stack;

    fn deref(&self) -> &stack::Stack {
        &self.0
    }
}

pub struct StackBuilder(stack::StackBuilder);

impl StackBuilder {
    pub async fn auth<F>(self, handler: F) -> Self
    where
        F: Fn(&SeenRequest) -> Reply + Send + Sync + 'static,
    {
        StackBuilder(must(self.0.auth(handler).await))
    }

    /// The auth service is a gRPC Check service answering as `handler` says.
    pub async fn grpc_auth<F>(self, handler: F) -> Self
    where
        F: Fn(&workbench::grpc_auth::pb::CheckRequest) -> workbench::grpc_auth::GrpcReply
            + Send
            + Sync
            + 'static,
    {
        StackBuilder(must(self.0.grpc_auth(handler).await))
    }

    /// The auth cluster speaks HTTP/2.
    pub fn h2_auth(self) -> Self {
        StackBuilder(self.0.h2_auth())
    }

    /// The upstream answers as `handler` says.
    pub async fn upstream<F>(self, handler: F) -> Self
    where
        F: Fn(&SeenRequest) -> Reply + Send + Sync + 'static,
    {
        StackBuilder(must(self.0.upstream(handler).await))
    }

    /// Changes the Envoy config before it starts.
    pub fn configure(
        self,
        edit: impl FnOnce(&mut EnvoyConfig) -> anyhow::Result<()> + Send + 'static,
    ) -> Self {
        StackBuilder(self.0.configure(edit))
    }

    pub fn wasm(self, wasm: PathBuf) -> Self {
        StackBuilder(self.0.wasm(wasm))
    }

    pub fn large_capacity(self) -> Self {
        StackBuilder(self.0.large_capacity())
    }

    pub fn envoy_options(self, options: EnvoyOptions) -> Self {
        StackBuilder(self.0.envoy_options(options))
    }

    pub async fn start(self) -> Stack {
        Stack(must(self.0.start().await))
    }
}

impl Stack {
    pub fn builder(plugin_config: &str) -> StackBuilder {
        StackBuilder(stack::StackBuilder::new(plugin_config))
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

    pub async fn get(&self, path: &str) -> Seen {
        must(self.0.get(path).await)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Seen {
        must(self.0.send(request).await)
    }

    pub async fn plugin_stat(&self, name: &str) -> u64 {
        must(self.0.plugin_stat(name).await)
    }

    pub async fn stat(&self, name: &str) -> u64 {
        must(self.0.settled_stat(name).await)
    }
}

/// Starts Envoy, failing the test with Envoy's own log if it does not come up.
pub async fn start_envoy(config: &EnvoyConfig) -> Envoy {
    must(Envoy::start(config, &EnvoyOptions::default()).await)
}

/// A loopback port that refuses connections.
pub async fn closed_port() -> u16 {
    must(stack::closed_port().await)
}

pub fn client() -> reqwest::Client {
    must(stack::client())
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

fn must<T>(result: anyhow::Result<T>) -> T {
    result.unwrap_or_else(|err| panic!("{err:#}"))
}
