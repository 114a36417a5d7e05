//! The configurations the benchmark compares, each an Envoy bootstrap with the same target and
//! the same auth service (both direct-response listeners in that Envoy).

use std::path::Path;

use anyhow::Result;
use serde_json::{json, Value};

use crate::envoy_config::{
    cluster, connection_limit, h2_protocol_options, http_listener, plugin_filter, route,
    socket_address, EnvoyConfig,
};
use crate::shell::native_filter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// No auth filter: the ceiling.
    None,
    /// A wasm filter that does nothing: the runtime's own cost.
    NoopWasm,
    /// Envoy's native ext_authz with an HTTP service.
    ExtAuthz,
    /// The plugin with the seed rule.
    PluginFnv,
    /// The plugin with ext_authz's status rule.
    PluginStatus,
    /// The plugin with a JSON verdict: `true` at `/allow` in the answer's body.
    PluginJson,
    /// The plugin with `protocol: authzen`, asking a decision point that answers
    /// `{"decision": true}`.
    PluginAuthzen,
    /// The status rule with the decision cache on `authorization` and `:path` (TTL 10 s).
    PluginCached,
    /// Native ext_authz asking a gRPC Check service (outside Envoy, on the load's CPU).
    ExtAuthzGrpc,
    /// The plugin with `protocol: grpc`, asking the same Check service.
    PluginGrpc,
    /// The native module with the seed rule.
    NativeFnv,
    /// The native module with plugin-cached's configuration.
    NativeCached,
    /// The native module with `protocol: grpc`.
    NativeGrpc,
}

impl Setup {
    pub const ALL: [Setup; 13] = [
        Setup::None,
        Setup::NoopWasm,
        Setup::ExtAuthz,
        Setup::PluginFnv,
        Setup::PluginStatus,
        Setup::PluginJson,
        Setup::PluginAuthzen,
        Setup::PluginCached,
        Setup::ExtAuthzGrpc,
        Setup::PluginGrpc,
        Setup::NativeFnv,
        Setup::NativeCached,
        Setup::NativeGrpc,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Setup::None => "none",
            Setup::NoopWasm => "noop-wasm",
            Setup::ExtAuthz => "ext_authz",
            Setup::PluginFnv => "plugin-fnv",
            Setup::PluginStatus => "plugin-status",
            Setup::PluginJson => "plugin-json",
            Setup::PluginAuthzen => "plugin-authzen",
            Setup::PluginCached => "plugin-cached",
            Setup::ExtAuthzGrpc => "ext_authz-grpc",
            Setup::PluginGrpc => "plugin-grpc",
            Setup::NativeFnv => "native-fnv",
            Setup::NativeCached => "native-cached",
            Setup::NativeGrpc => "native-grpc",
        }
    }

    /// What the configuration is, for the legend.
    pub fn describe(self) -> &'static str {
        match self {
            Setup::None => "no auth filter: Envoy alone, the ceiling",
            Setup::NoopWasm => "a wasm filter that does nothing: the cost of the wasm runtime",
            Setup::ExtAuthz => "Envoy's native ext_authz filter asking the HTTP auth service",
            Setup::PluginFnv => "the plugin with the seed's rule (FNV-1a parity of the answer)",
            Setup::PluginStatus => "the plugin with ext_authz's rule (the answer's status)",
            Setup::PluginJson => "the plugin with a JSON verdict (true at /allow in the answer)",
            Setup::PluginAuthzen => {
                "the plugin with protocol authzen (an evaluation; {\"decision\": true} allows)"
            }
            Setup::PluginCached => {
                "plugin-status with the decision cache (authorization, :path; TTL 10 s)"
            }
            Setup::ExtAuthzGrpc => "native ext_authz asking a gRPC Check service",
            Setup::PluginGrpc => "the plugin asking the same gRPC Check service",
            Setup::NativeFnv => "the native dynamic module with plugin-fnv's configuration",
            Setup::NativeCached => "the native dynamic module with plugin-cached's configuration",
            Setup::NativeGrpc => "the native dynamic module with plugin-grpc's configuration",
        }
    }

    /// Whether the auth service is a gRPC Check service (run outside Envoy).
    pub fn grpc(self) -> bool {
        matches!(
            self,
            Setup::ExtAuthzGrpc | Setup::PluginGrpc | Setup::NativeGrpc
        )
    }

    /// The native filter this configuration is measured against: ext_authz speaking the same
    /// protocol.
    pub fn native_peer(self) -> Setup {
        if self.grpc() {
            Setup::ExtAuthzGrpc
        } else {
            Setup::ExtAuthz
        }
    }

    pub fn checks_auth(self) -> bool {
        matches!(
            self,
            Setup::ExtAuthz
                | Setup::PluginFnv
                | Setup::PluginStatus
                | Setup::PluginJson
                | Setup::PluginAuthzen
                | Setup::PluginCached
                | Setup::ExtAuthzGrpc
                | Setup::PluginGrpc
                | Setup::NativeFnv
                | Setup::NativeCached
                | Setup::NativeGrpc
        )
    }

    /// Whether this configuration runs the native module.
    pub fn native_module(self) -> bool {
        matches!(
            self,
            Setup::NativeFnv | Setup::NativeCached | Setup::NativeGrpc
        )
    }
}

/// Which answer the auth service gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthPath {
    /// 200 with a body whose FNV-1a hash is even: every configuration allows. (The JSON
    /// verdicts get `true` where they look, in a 200.)
    Allow,
    /// 403 with a body whose FNV-1a hash is odd: every configuration denies. (The JSON
    /// verdicts get `false` where they look, in a 200, as a decision point denies.)
    Deny,
}

impl AuthPath {
    pub fn name(self) -> &'static str {
        match self {
            AuthPath::Allow => "allow",
            AuthPath::Deny => "deny",
        }
    }
}

/// The filters' builds: the plugin, the no-op wasm filter, and the native module.
pub struct Wasm<'a> {
    pub plugin: &'a Path,
    pub noop: &'a Path,
    pub module: &'a Path,
}

const AUTH_TIMEOUT_MS: u64 = 5000;

/// The bootstrap for one configuration. `target_port` and `auth_port` must be free.
pub fn bootstrap(
    setup: Setup,
    path: AuthPath,
    wasm: &Wasm,
    target_port: u16,
    auth_port: u16,
) -> Result<EnvoyConfig> {
    let allow = path == AuthPath::Allow;
    // What the auth service answers: a JSON body for the JSON verdicts, where an allow and a
    // deny are both a 200.
    let (status, body, json_answer) = match setup {
        Setup::PluginJson => (200, format!("{{\"allow\": {allow}}}"), true),
        Setup::PluginAuthzen => (200, format!("{{\"decision\": {allow}}}"), true),
        _ if allow => (200, "a".to_owned(), false),
        _ => (403, "b".to_owned(), false),
    };
    let fnv = json!({"decision": "fnv_parity", "cluster": "auth", "timeout_ms": AUTH_TIMEOUT_MS})
        .to_string();
    let cached = json!({"decision": "status", "cluster": "auth", "timeout_ms": AUTH_TIMEOUT_MS, "allowed_headers": [],
            "cache": {"key": ["authorization", ":path"], "ttl_ms": 10_000}})
    .to_string();
    let grpc =
        json!({"protocol": "grpc", "cluster": "auth", "timeout_ms": AUTH_TIMEOUT_MS}).to_string();
    let plugin =
        |configuration: &str| plugin_filter("http_auth_random", wasm.plugin, configuration);
    let module = |configuration: &str| native_filter(wasm.module, configuration);
    let filters = match setup {
        Setup::None => vec![],
        Setup::NoopWasm => vec![plugin_filter("noop", wasm.noop, "")],
        Setup::ExtAuthz => vec![ext_authz()],
        Setup::PluginFnv => vec![plugin(&fnv)],
        Setup::PluginStatus => vec![plugin(
            &json!({"decision": "status", "cluster": "auth", "timeout_ms": AUTH_TIMEOUT_MS, "allowed_headers": []})
                .to_string(),
        )],
        Setup::PluginJson => vec![plugin(
            &json!({"decision": {"json": "/allow"}, "cluster": "auth", "timeout_ms": AUTH_TIMEOUT_MS, "allowed_headers": []})
                .to_string(),
        )],
        // The subject is the credential every request of both workloads carries.
        Setup::PluginAuthzen => vec![plugin(
            &json!({"protocol": "authzen", "cluster": "auth", "timeout_ms": AUTH_TIMEOUT_MS,
                    "authzen": {"subject": {"id_header": "authorization"}}})
            .to_string(),
        )],
        Setup::PluginCached => vec![plugin(&cached)],
        Setup::ExtAuthzGrpc => vec![ext_authz_grpc()],
        Setup::PluginGrpc => vec![plugin(&grpc)],
        Setup::NativeFnv => vec![module(&fnv)],
        Setup::NativeCached => vec![module(&cached)],
        Setup::NativeGrpc => vec![module(&grpc)],
    };
    let mut main = http_listener("main", filters, vec![route("/", "target")]);
    main["address"] = socket_address("127.0.0.1", 0);
    // A gRPC Check service listens on `auth_port` outside Envoy; the HTTP one is a listener here.
    let mut listeners = vec![
        main,
        direct_response("target", target_port, 200, "target ok", None),
    ];
    let mut auth_cluster = cluster("auth", "127.0.0.1", auth_port);
    if setup.grpc() {
        auth_cluster["typed_extension_protocol_options"] = h2_protocol_options();
    } else {
        let content_type = json_answer.then_some("application/json");
        listeners.push(direct_response(
            "auth",
            auth_port,
            status,
            &body,
            content_type,
        ));
    }
    Ok(EnvoyConfig::from_value(json!({
        "admin": { "address": socket_address("127.0.0.1", 0) },
        "overload_manager": connection_limit()?,
        "static_resources": {
            "listeners": listeners,
            "clusters": [cluster("target", "127.0.0.1", target_port), auth_cluster]
        }
    })))
}

fn ext_authz() -> Value {
    json!({
        "name": "envoy.filters.http.ext_authz",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
            "http_service": {
                "server_uri": { "uri": "http://auth", "cluster": "auth", "timeout": format!("{}s", AUTH_TIMEOUT_MS / 1000) }
            },
            "failure_mode_allow": false
        }
    })
}

fn ext_authz_grpc() -> Value {
    json!({
        "name": "envoy.filters.http.ext_authz",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
            "grpc_service": {
                "envoy_grpc": { "cluster_name": "auth" },
                "timeout": format!("{}s", AUTH_TIMEOUT_MS / 1000)
            },
            "transport_api_version": "V3",
            "failure_mode_allow": false
        }
    })
}

/// A listener answering every request itself; `content_type` replaces Envoy's `text/plain`.
fn direct_response(
    name: &str,
    port: u16,
    status: u16,
    body: &str,
    content_type: Option<&str>,
) -> Value {
    let mut route = json!({ "match": { "prefix": "/" }, "direct_response": { "status": status, "body": { "inline_string": body } } });
    if let Some(content_type) = content_type {
        route["response_headers_to_add"] = json!([{
            "header": { "key": "content-type", "value": content_type },
            "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"
        }]);
    }
    let mut listener = http_listener(name, vec![], vec![route]);
    listener["address"] = socket_address("127.0.0.1", port);
    listener
}
