//! Native ext_authz (HTTP service) and the plugin side by side on what the HTTP-mode parity work
//! added: the request body sent with the check (`with_request_body`: whole, over the limit,
//! partial) and `x-envoy-auth-headers-to-remove`. Same auth service, same upstream, one Envoy.

use std::collections::BTreeMap;

use e2e::{client, side_by_side_config, start_envoy, Reply, SeenRequest};
use serde_json::{json, Value};
use workbench::envoy::Envoy;
use workbench::envoy_config::{http_listener, plugin_filter, route};
use workbench::test_server::TestServer;
use workbench::{paths, plugin};

const MAX_BYTES: u64 = 16;

fn ext_authz(partial: bool) -> Value {
    json!({
        "name": "envoy.filters.http.ext_authz",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
            "http_service": {
                "server_uri": { "uri": "http://auth", "cluster": "auth", "timeout": "1s" }
            },
            "allowed_headers": { "patterns": [{ "exact": "x-scenario" }, { "exact": "x-drop" }] },
            "with_request_body": { "max_request_bytes": MAX_BYTES, "allow_partial_message": partial }
        }
    })
}

fn plugin_config(partial: bool) -> String {
    json!({
        "decision": "status",
        "cluster": "auth",
        "timeout_ms": 1000,
        "allowed_headers": [{ "exact": "x-scenario" }, { "exact": "x-drop" }],
        "with_request_body": { "max_request_bytes": MAX_BYTES, "allow_partial_message": partial },
        "stat_prefix": format!("body_{partial}"),
    })
    .to_string()
}

/// Allows, and on `/remove` asks for `x-drop` to be removed.
fn auth_answer(request: &SeenRequest) -> Reply {
    match request.path.as_str() {
        "/remove" => Reply::ok("").header("x-envoy-auth-headers-to-remove", "x-drop"),
        _ => Reply::ok(""),
    }
}

/// Envoy hands a wasm filter the body after its headers callback stopped only with
/// `allow_on_headers_stop_iteration`, which `with_request_body` needs.
fn body_plugin_filter(partial: bool, wasm: &std::path::Path) -> Value {
    let mut filter = plugin_filter(&format!("plugin_{partial}"), wasm, &plugin_config(partial));
    filter["typed_config"]["config"]["allow_on_headers_stop_iteration"] = json!(true);
    filter
}

struct Setup {
    envoy: Envoy,
    auth: TestServer,
    upstream: TestServer,
}

async fn setup() -> Setup {
    let wasm = plugin::built_wasm(&paths::default_plugin_dir()).unwrap();
    let auth = TestServer::start(auth_answer).await.unwrap();
    let upstream = TestServer::upstream().await.unwrap();
    let mut config = side_by_side_config(upstream.port());
    config
        .add_cluster(workbench::envoy_config::cluster(
            "auth",
            "127.0.0.1",
            auth.port(),
        ))
        .unwrap();
    for partial in [false, true] {
        config
            .add_listener(http_listener(
                &format!("native_{partial}"),
                vec![ext_authz(partial)],
                vec![route("/", "staticreply")],
            ))
            .unwrap()
            .add_listener(http_listener(
                &format!("plugin_{partial}"),
                vec![body_plugin_filter(partial, &wasm)],
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

/// What the client, the auth service and the upstream saw of one request.
#[derive(Debug, PartialEq)]
struct Observation {
    status: u16,
    body: String,
    auth: Option<(BTreeMap<String, String>, Vec<u8>)>,
    upstream: Option<(BTreeMap<String, String>, Vec<u8>)>,
}

/// The headers that matter here (the rest differ by listener whatever the filter does).
const COMPARED: [&str; 5] = [
    "content-length",
    "x-envoy-auth-partial-body",
    "x-drop",
    "transfer-encoding",
    ":method",
];

fn seen(server: &TestServer, id: &str) -> Option<(BTreeMap<String, String>, Vec<u8>)> {
    server
        .seen()
        .into_iter()
        .find(|r| r.header("x-scenario") == Some(id))
        .map(|r| {
            let mut headers: BTreeMap<String, String> = r
                .headers
                .iter()
                .filter(|(n, _)| COMPARED.contains(&n.as_str()))
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect();
            headers.insert(":method".into(), r.method.clone());
            (headers, r.body)
        })
}

async fn observe(setup: &Setup, listener: &str, path: &str, body: &str) -> Observation {
    let port = setup.envoy.listener_port(listener).await.unwrap();
    let id = format!("{listener}{path}{}", body.len());
    let response = client()
        .post(format!("http://127.0.0.1:{port}{path}"))
        .header("x-scenario", &id)
        .header("x-drop", "client-value")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    Observation {
        status,
        body: response.text().await.unwrap(),
        auth: seen(&setup.auth, &id),
        upstream: seen(&setup.upstream, &id),
    }
}

#[tokio::test]
async fn the_body_and_headers_to_remove_behave_as_native_ext_authz() {
    let setup = setup().await;
    let cases = [
        (false, "/body", "small"),
        (false, "/body", "a body well over sixteen bytes"),
        (true, "/body", "a body well over sixteen bytes"),
        (false, "/body", ""),
        (false, "/remove", "x"),
    ];
    for (partial, path, body) in cases {
        let native = observe(&setup, &format!("native_{partial}"), path, body).await;
        let plugin = observe(&setup, &format!("plugin_{partial}"), path, body).await;
        assert_eq!(
            native,
            plugin,
            "partial {partial}, {path}, {} bytes: ext_authz (left) and the plugin (right) differ",
            body.len()
        );
    }
    // What the cases show, beyond being equal.
    let over = observe(
        &setup,
        "plugin_false",
        "/body",
        "a body well over sixteen bytes",
    )
    .await;
    assert_eq!(over.status, 413);
    assert!(over.auth.is_none() && over.upstream.is_none());
    let cut = observe(
        &setup,
        "plugin_true",
        "/body",
        "a body well over sixteen bytes",
    )
    .await;
    let (headers, sent) = cut.auth.unwrap();
    assert_eq!(sent, b"a body well over");
    assert_eq!(headers["x-envoy-auth-partial-body"], "true");
    let removed = observe(&setup, "plugin_false", "/remove", "x").await;
    assert_eq!(removed.status, 200);
    assert!(!removed.upstream.unwrap().0.contains_key("x-drop"));
}

#[tokio::test]
async fn without_allow_on_headers_stop_iteration_a_body_request_ends_at_envoys_timeout_and_the_log_says_why(
) {
    // As native ext_authz, the plugin times only the call, never the wait for the body; a
    // body that never reaches it is ended by Envoy's own timeouts, here `request_timeout`.
    let wasm = plugin::built_wasm(&paths::default_plugin_dir()).unwrap();
    let auth = TestServer::start(auth_answer).await.unwrap();
    let upstream = TestServer::upstream().await.unwrap();
    let mut config = side_by_side_config(upstream.port());
    let mut listener = http_listener(
        "plugin",
        vec![plugin_filter("plugin", &wasm, &plugin_config(false))],
        vec![route("/", "staticreply")],
    );
    listener
        .pointer_mut("/filter_chains/0/filters/0/typed_config")
        .unwrap()["request_timeout"] = json!("1s");
    config
        .add_cluster(workbench::envoy_config::cluster(
            "auth",
            "127.0.0.1",
            auth.port(),
        ))
        .unwrap()
        .add_listener(listener)
        .unwrap();
    let setup = Setup {
        envoy: start_envoy(&config).await,
        auth,
        upstream,
    };
    let seen = observe(&setup, "plugin", "/body", "small").await;
    if e2e::shell() == e2e::Shell::Native {
        // A native module gets the body while it holds the headers, as any Envoy filter does:
        // the flag is wasm's alone, and the check goes out with the body.
        assert!(seen.auth.is_some(), "checked with the body");
        assert!(!setup
            .envoy
            .log()
            .contains("needs allow_on_headers_stop_iteration"));
        return;
    }
    // 504: the client had sent the whole request when the timeout struck.
    assert_eq!(seen.status, 504, "Envoy's request_timeout ends it");
    assert!(seen.upstream.is_none());
    assert!(seen.auth.is_none(), "no check without the body");
    let log = setup.envoy.log();
    assert!(log.contains("with_request_body needs allow_on_headers_stop_iteration"));
    assert!(
        log.contains("ended with no body: with_request_body needs allow_on_headers_stop_iteration")
    );
}
