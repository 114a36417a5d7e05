//! Native ext_authz in gRPC mode (`grpc_service.envoy_grpc`) and the plugin with
//! `protocol: grpc`, side by side in one Envoy with the same tonic Check service and the same
//! upstream. For every case the client must see the same status, body and headers, the upstream
//! the same request line and headers, and the service the same `CheckRequest` field by field
//! (ids, times and the ports that differ per listener aside).

use std::collections::BTreeMap;
use std::time::Duration;

use e2e::{client, closed_port, comparable, side_by_side_config, start_envoy, Reply, SeenRequest};
use serde_json::{json, Value};
use workbench::envoy::Envoy;
use workbench::envoy_config::{h2_cluster, http_listener, plugin_filter, route};
use workbench::grpc_auth::pb::{CheckRequest, OkHttpResponse};
use workbench::grpc_auth::{
    denied, header_action, header_option, http_request, query_parameter, request_path, Code,
    GrpcAuthServer, GrpcReply,
};
use workbench::test_server::TestServer;
use workbench::{paths, plugin};

const TIMEOUT_MS: u64 = 500;
const MAX_BYTES: u64 = 16;

/// One way of configuring both filters; each gets a listener per filter.
struct Pair {
    name: &'static str,
    cluster: &'static str,
    failure_mode_allow: bool,
    /// `with_request_body`: None, or `allow_partial_message`.
    body: Option<bool>,
}

const PAIRS: [Pair; 6] = [
    Pair {
        name: "closed",
        cluster: "auth",
        failure_mode_allow: false,
        body: None,
    },
    Pair {
        name: "open",
        cluster: "auth",
        failure_mode_allow: true,
        body: None,
    },
    Pair {
        name: "down_closed",
        cluster: "auth_down",
        failure_mode_allow: false,
        body: None,
    },
    Pair {
        name: "down_open",
        cluster: "auth_down",
        failure_mode_allow: true,
        body: None,
    },
    Pair {
        name: "body",
        cluster: "auth",
        failure_mode_allow: false,
        body: Some(false),
    },
    Pair {
        name: "body_partial",
        cluster: "auth",
        failure_mode_allow: false,
        body: Some(true),
    },
];

const CONTEXT: [(&str, &str); 2] = [("tenant", "shop"), ("tier", "gold")];

fn ext_authz_filter(pair: &Pair) -> Value {
    let mut filter = json!({
        "name": "envoy.filters.http.ext_authz",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
            "grpc_service": {
                "envoy_grpc": { "cluster_name": pair.cluster },
                "timeout": format!("{}s", TIMEOUT_MS as f64 / 1000.0)
            },
            "transport_api_version": "V3",
            "allowed_headers": { "patterns": [
                { "exact": "x-scenario" }, { "exact": "x-trace" }
            ] },
            "failure_mode_allow": pair.failure_mode_allow,
            "failure_mode_allow_header_add": true,
            "status_on_error": { "code": 403 }
        }
    });
    if let Some(partial) = pair.body {
        filter["typed_config"]["with_request_body"] =
            json!({ "max_request_bytes": MAX_BYTES, "allow_partial_message": partial });
    }
    filter
}

fn plugin_config(pair: &Pair) -> String {
    let mut config = json!({
        "protocol": "grpc",
        "cluster": pair.cluster,
        "timeout_ms": TIMEOUT_MS,
        "allowed_headers": [{ "exact": "x-scenario" }, { "exact": "x-trace" }],
        "context_extensions": CONTEXT.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "failure_mode_allow": pair.failure_mode_allow,
        "failure_mode_allow_header_add": true,
        "status_on_error": 403,
        "stat_prefix": format!("grpc_{}", pair.name)
    });
    if let Some(partial) = pair.body {
        config["with_request_body"] =
            json!({ "max_request_bytes": MAX_BYTES, "allow_partial_message": partial });
    }
    config.to_string()
}

/// The plugin as a filter; a body needs `allow_on_headers_stop_iteration` to reach it.
fn plugin(pair: &Pair, wasm: &std::path::Path) -> Value {
    let name = format!("plugin_{}", pair.name);
    let mut filter = plugin_filter(&name, wasm, &plugin_config(pair));
    if pair.body.is_some() {
        filter["typed_config"]["config"]["allow_on_headers_stop_iteration"] = json!(true);
    }
    filter
}

/// The Check service: the request's path (without its query) picks the answer.
fn check_answer(request: &CheckRequest) -> GrpcReply {
    match request_path(request).split('?').next().unwrap_or_default() {
        "/allow" => GrpcReply::allow(OkHttpResponse::default()),
        "/allow-headers" => GrpcReply::allow(OkHttpResponse {
            headers: vec![
                header_option("x-user-id", "u-42", Some(false)),
                header_option("x-trace", "from-auth", Some(true)),
                header_option("x-absent", "never-added", Some(true)),
                header_action("x-action", "by-action", 3),
            ],
            ..OkHttpResponse::default()
        }),
        "/remove" => GrpcReply::allow(OkHttpResponse {
            headers_to_remove: vec!["X-Drop".into(), ":path".into(), "host".into()],
            ..OkHttpResponse::default()
        }),
        "/response-headers" => GrpcReply::allow(OkHttpResponse {
            response_headers_to_add: vec![
                header_action("x-up-0", "r0", 0),
                header_action("x-up-1", "r1", 1),
                header_action("x-up-2", "r2", 2),
                header_action("x-up-3", "r3", 3),
                header_action("x-absent-3", "r3", 3),
                header_action("x-new", "added", 0),
                header_option("x-set", "set", Some(false)),
            ],
            ..OkHttpResponse::default()
        }),
        "/query" => GrpcReply::allow(OkHttpResponse {
            query_parameters_to_set: vec![query_parameter("a", "set"), query_parameter("new", "n")],
            query_parameters_to_remove: vec!["c".into()],
            ..OkHttpResponse::default()
        }),
        "/deny" => GrpcReply::deny(
            Code::PermissionDenied,
            Some(denied(
                401,
                "log in first",
                &[
                    ("www-authenticate", "Bearer realm=\"shop\""),
                    ("x-reason", "expired"),
                ],
            )),
        ),
        "/deny-bare" => GrpcReply::deny(Code::PermissionDenied, None),
        "/unavailable" => GrpcReply::Fail(Code::Unavailable, "auth is down".into()),
        "/unimplemented" => GrpcReply::Fail(Code::Unimplemented, "no such method".into()),
        "/slow" => GrpcReply::allow(OkHttpResponse::default()).after(Duration::from_secs(2)),
        _ => GrpcReply::deny(Code::NotFound, Some(denied(404, "unknown case", &[]))),
    }
}

/// The upstream answers with headers the response mutations act on.
fn upstream_answer(_: &SeenRequest) -> Reply {
    Reply::ok(e2e::UPSTREAM_BODY)
        .header("x-up-0", "orig")
        .header("x-up-1", "orig")
        .header("x-up-2", "orig")
        .header("x-up-3", "orig")
}

struct Setup {
    envoy: Envoy,
    auth: GrpcAuthServer,
    upstream: TestServer,
}

async fn setup() -> Setup {
    let wasm = plugin::built_wasm(&paths::default_plugin_dir()).unwrap();
    let auth = GrpcAuthServer::start(check_answer).await.unwrap();
    let upstream = TestServer::start(upstream_answer).await.unwrap();
    let mut config = side_by_side_config(upstream.port());
    config
        .add_cluster(h2_cluster("auth", "127.0.0.1", auth.port()))
        .unwrap()
        .add_cluster(h2_cluster("auth_down", "127.0.0.1", closed_port().await))
        .unwrap();
    for pair in &PAIRS {
        let extensions: serde_json::Map<String, Value> = CONTEXT
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        // ext_authz takes context extensions per route; the plugin from its configuration.
        let native_route = json!({
            "match": { "prefix": "/" },
            "route": { "cluster": "staticreply" },
            "typed_per_filter_config": {
                "envoy.filters.http.ext_authz": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute",
                    "check_settings": { "context_extensions": extensions }
                }
            }
        });
        config
            .add_listener(http_listener(
                &format!("native_{}", pair.name),
                vec![ext_authz_filter(pair)],
                vec![native_route],
            ))
            .unwrap()
            .add_listener(http_listener(
                &format!("plugin_{}", pair.name),
                vec![plugin(pair, &wasm)],
                vec![route("/", "staticreply")],
            ))
            .unwrap();
    }
    Setup {
        envoy: start_envoy(&config).await,
        auth,
        upstream,
    }
}

/// What one request looked like from the client, the upstream and the Check service.
#[derive(Debug, PartialEq)]
struct Observation {
    status: u16,
    body: String,
    client: BTreeMap<String, Vec<String>>,
    upstream: Option<(String, BTreeMap<String, Vec<String>>)>,
    check: Option<CheckRequest>,
}

/// Headers that differ between any two requests or listeners whatever the filter does.
const INCIDENTAL: [&str; 6] = [
    "date",
    "x-request-id",
    "host",
    ":authority",
    "x-scenario",
    "x-envoy-upstream-service-time",
];

/// The CheckRequest with what differs per request or listener whatever the filter does set
/// aside: the id (native: the stream id; the plugin: `x-request-id`), the time, the ports and
/// the headers carrying them.
fn normalized(mut check: CheckRequest) -> CheckRequest {
    if let Some(attributes) = check.attributes.as_mut() {
        for peer in [attributes.source.as_mut(), attributes.destination.as_mut()]
            .into_iter()
            .flatten()
        {
            if let Some(address) = peer.address.as_mut() {
                if let Some(workbench::grpc_auth::pb::Address::SocketAddress(socket)) =
                    address.address.as_mut()
                {
                    socket.port_specifier = None;
                }
            }
        }
        if let Some(request) = attributes.request.as_mut() {
            request.time = None;
            if let Some(http) = request.http.as_mut() {
                http.id.clear();
                http.host.clear();
                for name in INCIDENTAL {
                    http.headers.remove(name);
                }
            }
        }
    }
    check
}

fn check_with(server: &GrpcAuthServer, id: &str) -> Option<CheckRequest> {
    server
        .seen()
        .into_iter()
        .map(|seen| seen.request)
        .find(|check| {
            http_request(check)
                .and_then(|h| h.headers.get("x-scenario"))
                .is_some_and(|tag| tag == id)
        })
        .map(normalized)
}

fn upstream_with(server: &TestServer, id: &str) -> Option<(String, BTreeMap<String, Vec<String>>)> {
    server
        .seen()
        .into_iter()
        .find(|r| r.header("x-scenario") == Some(id))
        .map(|r| {
            let headers = r.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
            (
                format!("{} {}", r.method, r.path),
                comparable(headers, &INCIDENTAL),
            )
        })
}

/// The client's extra headers on every request: a header to append to, one to remove, and
/// one an answer may overwrite.
const CLIENT_HEADERS: [(&str, &str); 4] = [
    ("x-trace", "from-client"),
    ("x-drop", "client-value"),
    ("x-action", "client"),
    ("authorization", "Bearer t"),
];

async fn observe(setup: &Setup, listener: &str, path: &str, body: Option<&str>) -> Observation {
    observe_with(setup, listener, path, body, &CLIENT_HEADERS).await
}

async fn observe_with(
    setup: &Setup,
    listener: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Observation {
    let port = setup.envoy.listener_port(listener).await.unwrap();
    let id = format!("{listener}{path}{}", body.map_or(0, str::len));
    let url = format!("http://127.0.0.1:{port}{path}");
    let mut request = match body {
        Some(body) => client().post(url).body(body.to_owned()),
        None => client().get(url),
    }
    .header("x-scenario", &id);
    for (name, value) in headers {
        // Latin-1 spellings stand for single bytes: a value that is not UTF-8.
        let bytes: Vec<u8> = value.chars().map(|c| c as u32 as u8).collect();
        let value = reqwest::header::HeaderValue::from_bytes(&bytes).unwrap();
        request = request.header(*name, value);
    }
    let response = request.send().await.expect("an answer");
    let status = response.status().as_u16();
    let client = comparable(
        response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap_or("<binary>"))),
        &INCIDENTAL,
    );
    let body = response.text().await.unwrap();
    Observation {
        status,
        body,
        client,
        upstream: upstream_with(&setup.upstream, &id),
        check: check_with(&setup.auth, &id),
    }
}

async fn assert_same(setup: &Setup, pair: &str, path: &str, body: Option<&str>) -> Observation {
    let native = observe(setup, &format!("native_{pair}"), path, body).await;
    let plugin = observe(setup, &format!("plugin_{pair}"), path, body).await;
    assert_eq!(
        native, plugin,
        "{pair} {path}: ext_authz (left) and the plugin (right) differ"
    );
    plugin
}

fn upstream_headers(seen: &Observation) -> &BTreeMap<String, Vec<String>> {
    &seen.upstream.as_ref().expect("reached the upstream").1
}

#[tokio::test]
async fn the_plugin_in_grpc_mode_behaves_as_native_ext_authz() {
    let setup = setup().await;

    let allowed = assert_same(&setup, "closed", "/allow", None).await;
    assert_eq!(
        (allowed.status, allowed.body.as_str()),
        (200, e2e::UPSTREAM_BODY)
    );
    let check = allowed.check.as_ref().expect("the service was asked");
    let attributes = check.attributes.as_ref().unwrap();
    // A proto map: compared in key order.
    let extensions: std::collections::BTreeMap<&str, &str> = attributes
        .context_extensions
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(extensions, CONTEXT.into_iter().collect());
    let http = http_request(check).unwrap();
    assert_eq!(
        (http.method.as_str(), http.path.as_str()),
        ("GET", "/allow")
    );
    assert!(
        !http.headers.contains_key("authorization"),
        "not always sent over gRPC"
    );
    assert!(
        !http.headers.contains_key("x-drop"),
        "not in allowed_headers"
    );

    let headers = assert_same(&setup, "closed", "/allow-headers", None).await;
    let upstream = upstream_headers(&headers);
    assert_eq!(upstream["x-user-id"], vec!["u-42"]);
    assert_eq!(upstream["x-trace"], vec!["from-client,from-auth"]);
    assert_eq!(upstream["x-action"], vec!["by-action"]);
    assert!(!upstream.contains_key("x-absent"));

    let removed = assert_same(&setup, "closed", "/remove", None).await;
    assert!(!upstream_headers(&removed).contains_key("x-drop"));

    let response = assert_same(&setup, "closed", "/response-headers", None).await;
    assert_eq!(response.client["x-up-0"], vec!["orig", "r0"]);
    assert_eq!(response.client["x-up-1"], vec!["orig"]);
    assert_eq!(response.client["x-up-2"], vec!["r2"]);
    assert_eq!(response.client["x-up-3"], vec!["r3"]);
    assert!(!response.client.contains_key("x-absent-3"));
    assert_eq!(response.client["x-new"], vec!["added"]);
    assert_eq!(response.client["x-set"], vec!["set"]);

    let query = assert_same(&setup, "closed", "/query?a=1&b=2&c=3", None).await;
    let (line, _) = query.upstream.as_ref().unwrap();
    assert_eq!(line, "GET /query?a=set&b=2&new=n");

    let deny = assert_same(&setup, "closed", "/deny", None).await;
    assert_eq!((deny.status, deny.body.as_str()), (401, "log in first"));
    assert_eq!(
        deny.client["www-authenticate"],
        vec!["Bearer realm=\"shop\""]
    );
    assert_eq!(deny.client["x-reason"], vec!["expired"]);
    assert!(deny.upstream.is_none());

    let bare = assert_same(&setup, "closed", "/deny-bare", None).await;
    assert_eq!((bare.status, bare.upstream.is_none()), (403, true));

    for path in ["/unavailable", "/unimplemented", "/slow"] {
        let closed = assert_same(&setup, "closed", path, None).await;
        assert_eq!(
            (closed.status, closed.upstream.is_none()),
            (403, true),
            "{path}"
        );
    }
    // An outage (UNAVAILABLE, a deadline) fails open in both.
    for path in ["/unavailable", "/slow"] {
        let open = assert_same(&setup, "open", path, None).await;
        assert_eq!(open.status, 200, "{path}");
        assert_eq!(
            upstream_headers(&open)["x-envoy-auth-failure-mode-allowed"],
            vec!["true"]
        );
    }
    // Where the plugin differs on purpose: a service that is up and fails the check
    // (UNIMPLEMENTED, any status but UNAVAILABLE and DEADLINE_EXCEEDED) fails closed, even
    // failing open; native ext_authz lets it through.
    let native = observe(&setup, "native_open", "/unimplemented", None).await;
    let plugin = observe(&setup, "plugin_open", "/unimplemented", None).await;
    assert_eq!(native.status, 200);
    assert_eq!((plugin.status, plugin.upstream.is_none()), (403, true));
    // A value that is not UTF-8 reaches the service with its bad bytes replaced.
    let latin1 = [("x-trace", "caf\u{e9}")];
    let native = observe_with(&setup, "native_closed", "/allow?latin1", None, &latin1).await;
    let plugin = observe_with(&setup, "plugin_closed", "/allow?latin1", None, &latin1).await;
    assert_eq!(native, plugin, "a header value that is not UTF-8");
    let check = plugin.check.unwrap();
    let http = http_request(&check).unwrap();
    assert_eq!(http.headers["x-trace"], "caf!");

    let down = assert_same(&setup, "down_closed", "/allow", None).await;
    assert_eq!((down.status, down.upstream.is_none()), (403, true));
    let down_open = assert_same(&setup, "down_open", "/allow", None).await;
    assert_eq!(down_open.status, 200);
}

#[tokio::test]
async fn the_request_body_goes_with_the_check_as_native_ext_authz_sends_it() {
    let setup = setup().await;
    let long = "a body well over sixteen bytes";

    let under = assert_same(&setup, "body", "/allow", Some("small")).await;
    assert_eq!(under.status, 200);
    let http = http_request(under.check.as_ref().unwrap()).unwrap();
    assert_eq!(http.body, "small");
    assert_eq!(http.size, 5);

    let over = assert_same(&setup, "body", "/allow", Some(long)).await;
    assert_eq!(over.status, 413);
    assert!(over.check.is_none() && over.upstream.is_none());

    let partial = assert_same(&setup, "body_partial", "/allow", Some(long)).await;
    assert_eq!(partial.status, 200);
    let http = http_request(partial.check.as_ref().unwrap()).unwrap();
    assert_eq!(http.body, &long[..MAX_BYTES as usize]);
    assert_eq!(
        http.headers
            .get("x-envoy-auth-partial-body")
            .map(String::as_str),
        Some("true")
    );

    let empty = assert_same(&setup, "body", "/allow", Some("")).await;
    assert_eq!(empty.status, 200);
}

/// The same routes on both listeners: `tenant-a` (`/allow` with `x-tenant: a`, a header the
/// operator's route names), `public` and the rest. ext_authz is set per route; the plugin by its
/// `routes`, on Envoy's route names.
fn routes_setup_routes(per_route: impl Fn(&str) -> Option<Value>) -> Vec<Value> {
    let route = |name: &str, matcher: Value| {
        let mut route =
            json!({ "name": name, "match": matcher, "route": { "cluster": "staticreply" } });
        if let Some(settings) = per_route(name) {
            route["typed_per_filter_config"] = json!({ "envoy.filters.http.ext_authz": settings });
        }
        route
    };
    vec![
        route(
            "tenant-a",
            json!({ "prefix": "/allow", "headers": [{ "name": "x-tenant", "string_match": { "exact": "a" } }] }),
        ),
        route("public", json!({ "prefix": "/public" })),
        route("default", json!({ "prefix": "/" })),
    ]
}

fn ext_authz_per_route(settings: Value) -> Value {
    let mut value = settings;
    value["@type"] =
        json!("type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute");
    value
}

#[tokio::test]
async fn per_route_settings_reach_the_check_as_ext_authz_per_route_sends_them() {
    let wasm = plugin::built_wasm(&paths::default_plugin_dir()).unwrap();
    let auth = GrpcAuthServer::start(check_answer).await.unwrap();
    let upstream = TestServer::start(upstream_answer).await.unwrap();
    let mut config = side_by_side_config(upstream.port());
    config
        .add_cluster(h2_cluster("auth", "127.0.0.1", auth.port()))
        .unwrap();
    let closed = &PAIRS[0];
    let mut ext_authz = ext_authz_filter(closed);
    ext_authz["typed_config"]
        .as_object_mut()
        .unwrap()
        .remove("with_request_body");
    let native_routes = routes_setup_routes(|name| {
        Some(ext_authz_per_route(match name {
            "tenant-a" => {
                json!({ "check_settings": { "context_extensions": { "tenant": "a", "zone": "us" } } })
            }
            "public" => json!({ "disabled": true }),
            _ => json!({ "check_settings": { "context_extensions": { "zone": "eu" } } }),
        }))
    });
    let mut plugin_config: Value = serde_json::from_str(&plugin_config(closed)).unwrap();
    plugin_config["stat_prefix"] = json!("grpc_routes");
    plugin_config["context_extensions"] = json!({ "zone": "eu" });
    plugin_config["routes"] = json!([
        { "name": "tenant_a", "match": { "route_name": "tenant-a" },
          "check_settings": { "context_extensions": { "tenant": "a", "zone": "us" } } },
        { "name": "public", "match": { "route_name": "public" }, "disabled": true }
    ]);
    config
        .add_listener(http_listener(
            "native_routes",
            vec![ext_authz],
            native_routes,
        ))
        .unwrap()
        .add_listener(http_listener(
            "plugin_routes",
            vec![plugin_filter(
                "plugin_routes",
                &wasm,
                &plugin_config.to_string(),
            )],
            routes_setup_routes(|_| None),
        ))
        .unwrap();
    let setup = Setup {
        envoy: start_envoy(&config).await,
        auth,
        upstream,
    };
    let extensions = |seen: &Observation| -> BTreeMap<String, String> {
        let check = seen.check.as_ref().expect("the service was asked");
        let attributes = check.attributes.as_ref().unwrap();
        attributes.context_extensions.clone().into_iter().collect()
    };
    let tenant = [("x-tenant", "a")];
    let mut seen = Vec::new();
    // Each request's path is its own: the observations find their check and upstream request
    // by it.
    for (path, headers) in [
        ("/allow?who=a", &tenant[..]),
        ("/allow?who=none", &[]),
        ("/public/x", &[]),
    ] {
        let native = observe_with(&setup, "native_routes", path, None, headers).await;
        let plugin = observe_with(&setup, "plugin_routes", path, None, headers).await;
        assert_eq!(
            native, plugin,
            "{path} {headers:?}: ext_authz per route (left) and the plugin's routes (right) differ"
        );
        seen.push(plugin);
    }
    let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        extensions(&seen[0]),
        map(&[("tenant", "a"), ("zone", "us")])
    );
    assert_eq!(extensions(&seen[1]), map(&[("zone", "eu")]));
    assert!(seen[2].check.is_none(), "a disabled route is not checked");
    assert_eq!(seen[2].status, 200);
}
