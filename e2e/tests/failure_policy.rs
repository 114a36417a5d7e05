//! What reaches the failure policy, the stale cache or an allow, attacked as adversarial review
//! did, in a real Envoy: checks an auth server would reset (HTTP/2, behind an Envoy sidecar),
//! failures a client provokes from a service that is up (500, 501, resets), a gRPC check over
//! the server's message limit, reset floods and the orphans they leave, the failure marker in
//! trailers, control characters, and what an operator may leave out (`{}`, the wasm flag
//! `with_request_body` needs). Only an outage of the auth service may let a request through
//! (`failure_mode_allow`) or serve an expired allow (`stale_if_error_ms`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use e2e::{config, raw, side_by_side_config, start_envoy, Reply, SeenRequest, Stack};
use serde_json::{json, Value};
use workbench::envoy::Envoy;
use workbench::envoy_config::{h2_protocol_options, http_listener, plugin_filter, route};
use workbench::test_server::TestServer;
use workbench::{paths, plugin};

fn deny_all(_: &SeenRequest) -> Reply {
    Reply::status(403, "no")
}

/// A GET whose path is `len` bytes, sent raw (client libraries refuse long URIs).
fn long_path_request(len: usize, extra: &str) -> Vec<u8> {
    format!(
        "GET /{} HTTP/1.1\r\nhost: t\r\n{extra}\r\n",
        "p".repeat(len.saturating_sub(1))
    )
    .into_bytes()
}

/// Native ext_authz (HTTP service) and the plugin, each on its own listener of one Envoy, both
/// asking the same auth service over the same kind of cluster, both failing open.
struct SideBySide {
    envoy: Envoy,
    auth: TestServer,
    upstream: TestServer,
}

impl SideBySide {
    async fn start(
        h2: bool,
        native_extra: Value,
        plugin_extra: Value,
        auth: impl Fn(&SeenRequest) -> Reply + Send + Sync + 'static,
    ) -> SideBySide {
        let wasm = plugin::built_wasm(&paths::default_plugin_dir()).unwrap();
        let auth = TestServer::start(auth).await.unwrap();
        let upstream = TestServer::upstream().await.unwrap();
        let mut config = side_by_side_config(upstream.port());
        let mut cluster = workbench::envoy_config::cluster("auth", "127.0.0.1", auth.port());
        if h2 {
            cluster["typed_extension_protocol_options"] = h2_protocol_options();
        }
        config.add_cluster(cluster).unwrap();
        let mut native = json!({
            "http_service": {
                "server_uri": { "uri": "http://auth", "cluster": "auth", "timeout": "1s" }
            },
            "failure_mode_allow": true,
            "failure_mode_allow_header_add": true,
        });
        merge(&mut native, &native_extra);
        native["@type"] =
            json!("type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz");
        let mut plugin = json!({
            "decision": "status",
            "cluster": "auth",
            "timeout_ms": 1000,
            "failure_mode_allow": true,
        });
        merge(&mut plugin, &plugin_extra);
        let mut plugin_filter = plugin_filter("plugin", &wasm, &plugin.to_string());
        plugin_filter["typed_config"]["config"]["allow_on_headers_stop_iteration"] = json!(true);
        config
            .add_listener(http_listener(
                "native",
                vec![json!({"name": "envoy.filters.http.ext_authz", "typed_config": native})],
                vec![route("/", "staticreply")],
            ))
            .unwrap()
            .add_listener(http_listener(
                "plugin",
                vec![plugin_filter],
                vec![route("/", "staticreply")],
            ))
            .unwrap();
        let envoy = start_envoy(&config).await;
        SideBySide {
            envoy,
            auth,
            upstream,
        }
    }

    async fn port(&self, listener: &str) -> u16 {
        self.envoy.listener_port(listener).await.unwrap()
    }

    /// Status and whether the upstream got it, for a raw request on each listener.
    async fn raw_both(&self, request: &[u8]) -> [(u16, bool); 2] {
        let mut out = [(0, false); 2];
        for (i, listener) in ["native", "plugin"].into_iter().enumerate() {
            let before = self.upstream.seen_count();
            let (status, _) = raw(self.port(listener).await, request).await;
            out[i] = (status, self.upstream.seen_count() > before);
        }
        out
    }
}

fn merge(into: &mut Value, extra: &Value) {
    if let (Some(into), Some(extra)) = (into.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            into.insert(k.clone(), v.clone());
        }
    }
}

/// Envoy's default listener limits (60 KiB of headers) accept a 40 KiB path, which the check
/// carries twice (`:path`, `x-forwarded-uri`): over what an HTTP/2 auth service on hyper takes
/// (past 64 KiB it closes the whole connection with GOAWAY). The check is bounded first, by what
/// an Envoy with its defaults takes (`max_check_header_bytes`, 60 KiB): the client gets 431, and
/// nothing reaches the failure policy.
#[tokio::test]
async fn a_long_path_an_h2_auth_service_would_reset_gets_431() {
    let both = SideBySide::start(true, json!({}), json!({}), deny_all).await;
    let [native, plugin] = both.raw_both(&long_path_request(40 * 1024, "")).await;
    println!("native {native:?}, plugin {plugin:?}");
    assert!(!native.1, "native let it through: {native:?}");
    assert!(!plugin.1, "the plugin let it through: {plugin:?}");
}

/// Nor can one request's check take the connection down: other clients' checks in flight on it
/// get their own answers.
#[tokio::test]
async fn one_long_path_never_fails_other_checks_failing_open() {
    let plugin =
        config(json!({"decision": "status", "failure_mode_allow": true, "timeout_ms": 5000}));
    let stack = Stack::builder(&plugin)
        .auth(|r| {
            if r.path.len() < 1000 {
                // Others' checks take a while (a slow IdP).
                Reply::status(403, "no").after(Duration::from_millis(1500))
            } else {
                Reply::status(403, "no")
            }
        })
        .await
        .h2_auth()
        .start()
        .await;
    let mut others = tokio::task::JoinSet::new();
    for n in 0..20 {
        let client = stack.client.clone();
        let url = format!("{}/victim/{n}", stack.base);
        others.spawn(async move { client.get(&url).send().await.map(|r| r.status().as_u16()) });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _) = raw(stack.port(), &long_path_request(40 * 1024, "")).await;
    println!("attacker: {status}");
    let mut statuses = Vec::new();
    while let Some(result) = others.join_next().await {
        statuses.push(result.unwrap().unwrap_or(0));
    }
    println!("others: {statuses:?}");
    println!("upstream saw {}", stack.upstream.seen_count());
    assert_eq!(
        stack.upstream.seen_count(),
        0,
        "requests the service denies went upstream"
    );
}

/// A reset the auth service makes for one request is not an outage: a revoked credential's
/// expired allow is never served for it (`stale_if_error_ms`).
#[tokio::test]
async fn a_revoked_credential_is_never_served_stale_for_a_provoked_reset() {
    let plugin = config(json!({
        "decision": "status",
        "allowed_upstream_headers": [{"exact": "x-user-id"}],
        "cache": {"key": ["authorization"], "ttl_ms": 1000, "stale_if_error_ms": 60000},
    }));
    let revoked = Arc::new(AtomicBool::new(false));
    let auth_revoked = Arc::clone(&revoked);
    let stack = Stack::builder(&plugin)
        .auth(move |_| {
            if auth_revoked.load(Ordering::SeqCst) {
                Reply::status(403, "revoked")
            } else {
                Reply::ok("").header("x-user-id", "mallory")
            }
        })
        .await
        .h2_auth()
        .start()
        .await;
    let auth = "authorization: Bearer mallory\r\n";
    let (status, _) = raw(
        stack.port(),
        b"GET /a HTTP/1.1\r\nhost: t\r\nauthorization: Bearer mallory\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200);
    revoked.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (status, _) = raw(stack.port(), &long_path_request(40 * 1024, auth)).await;
    println!("long path with the revoked token: {status}");
    println!(
        "cache_stale_served {}",
        stack.plugin_stat("cache_stale_served").await
    );
    assert_eq!(
        stack.upstream.seen_count(),
        1,
        "only the request before revocation"
    );
}

/// A method the auth service answers 501 for (Python's http.server, for a method it does not
/// implement) is the service failing on this request, not an outage: closed, even failing open.
/// (Native ext_authz applies its failure policy to any 5xx.)
#[tokio::test]
async fn a_method_the_service_does_not_implement_fails_closed_even_failing_open() {
    let both = SideBySide::start(false, json!({}), json!({}), |r| {
        if r.method == "PATCH" || r.method == "FOO" {
            Reply::status(501, "Unsupported method")
        } else {
            Reply::status(403, "no")
        }
    })
    .await;
    let [native, plugin] = both
        .raw_both(b"PATCH /x HTTP/1.1\r\nhost: t\r\ncontent-length: 0\r\n\r\n")
        .await;
    println!("PATCH: native {native:?}, plugin {plugin:?}");
    let [native2, plugin2] = both
        .raw_both(b"FOO /x HTTP/1.1\r\nhost: t\r\ncontent-length: 0\r\n\r\n")
        .await;
    println!("FOO: native {native2:?}, plugin {plugin2:?}");
    assert!(!plugin.1 && !plugin2.1, "the plugin let a 501 through");
}

/// Header values with control characters, HTTP/1 client, HTTP/2 auth service: Envoy refuses
/// them before the plugin, or the check is an ordinary one.
#[tokio::test]
async fn control_characters_in_values_never_reach_a_check() {
    let both = SideBySide::start(true, json!({}), json!({}), deny_all).await;
    for byte in [0x01u8, 0x08, 0x0b, 0x0c, 0x1f, 0x7f] {
        let mut request = b"GET /c HTTP/1.1\r\nhost: t\r\nx-odd: a".to_vec();
        request.push(byte);
        request.extend_from_slice(b"b\r\n\r\n");
        let [native, plugin] = both.raw_both(&request).await;
        println!("byte {byte:#04x}: native {native:?}, plugin {plugin:?}");
    }
    // Values the HTTP/1 codec might fold or keep with inner whitespace.
    for (what, request) in [
        (
            "obs-fold",
            &b"GET /c HTTP/1.1\r\nhost: t\r\nx-odd: a\r\n b\r\n\r\n"[..],
        ),
        (
            "trailing VT",
            b"GET /c HTTP/1.1\r\nhost: t\r\nx-odd: a\x0b\r\n\r\n",
        ),
        (
            "leading FF",
            b"GET /c HTTP/1.1\r\nhost: t\r\nx-odd: \x0ca\r\n\r\n",
        ),
        ("authority space", b"GET /c HTTP/1.1\r\nhost: t t\r\n\r\n"),
        ("path ctl", b"GET /c\x01 HTTP/1.1\r\nhost: t\r\n\r\n"),
        ("path del", b"GET /c\x7f HTTP/1.1\r\nhost: t\r\n\r\n"),
        (
            "utf8 path",
            "GET /\u{e9} HTTP/1.1\r\nhost: t\r\n\r\n".as_bytes(),
        ),
        ("method odd", b"G_T /c HTTP/1.1\r\nhost: t\r\n\r\n"),
    ] {
        let [native, plugin] = both.raw_both(request).await;
        println!("{what}: native {native:?}, plugin {plugin:?}");
    }
    println!("auth saw {} checks", both.auth.seen().len());
    assert_eq!(both.upstream.seen_count(), 0);
}

/// gRPC mode: a CheckRequest must fit the 4 MiB message gRPC servers take by default, or a large
/// body would make the Check fail (RESOURCE_EXHAUSTED / OUT_OF_RANGE) and the failure policy apply.
#[tokio::test]
async fn a_grpc_check_never_exceeds_the_servers_message_limit() {
    use workbench::grpc_auth::GrpcReply;
    // A body limit that, with the headers, could make a CheckRequest over the 4 MiB gRPC servers
    // take: refused when the configuration is loaded, naming the field.
    let over = config(json!({
        "protocol": "grpc",
        "failure_mode_allow": true,
        "with_request_body": {"max_request_bytes": 4 * 1024 * 1024, "allow_partial_message": true},
    }));
    let refused =
        e2e::seed_config(&over, e2e::closed_port().await, e2e::closed_port().await).unwrap();
    let err = match Envoy::start(&refused, &workbench::envoy::EnvoyOptions::default()).await {
        Ok(_) => panic!("a CheckRequest could exceed the server's message limit"),
        Err(err) => format!("{err:#}"),
    };
    assert!(err.contains("with_request_body.max_request_bytes"), "{err}");
    // Within it, a 5 MiB upload is checked with its first 2 MiB, and denied.
    let plugin = config(json!({
        "protocol": "grpc",
        "failure_mode_allow": true,
        "timeout_ms": 5000,
        "with_request_body": {"max_request_bytes": 2 * 1024 * 1024, "allow_partial_message": true},
    }));
    let stack = Stack::builder(&plugin)
        .grpc_auth(|_| GrpcReply::deny(workbench::grpc_auth::Code::PermissionDenied, None))
        .await
        .configure(|c| {
            c.plugin_mut("main")?["allow_on_headers_stop_iteration"] = json!(true);
            // The operator raised Envoy's buffer so that large bodies can be checked.
            let mut root = c.as_value().clone();
            for listener in root["static_resources"]["listeners"]
                .as_array_mut()
                .unwrap()
            {
                listener["per_connection_buffer_limit_bytes"] = json!(32 * 1024 * 1024);
            }
            *c = workbench::envoy_config::EnvoyConfig::from_value(root);
            Ok(())
        })
        .start()
        .await;
    let big = stack
        .send(
            stack
                .client
                .post(format!("{}/big", stack.base))
                .body(vec![b'x'; 5 * 1024 * 1024]),
        )
        .await;
    assert_eq!(big.status, 403);
    assert_eq!(
        stack.upstream.seen_count(),
        0,
        "a body let a denied request through"
    );
    assert_eq!(stack.plugin_stat("failure_mode_allowed").await, 0);
}

/// `{}` names no field: it is no configuration at all, the seed's coin flip, kept as the seed
/// behaves; every configure warns that the demo rule is in force.
#[tokio::test]
async fn an_empty_object_is_the_seed_and_the_log_says_so() {
    let stack = Stack::start("{}", |_| Reply::ok("")).await;
    let log = stack.envoy.log();
    assert!(
        log.contains("the seed's demo rule"),
        "no warning in the log"
    );
}

/// with_request_body without allow_on_headers_stop_iteration: the body never reaches the
/// plugin; nothing of it arrives in 10 s, so the request fails closed and the log says why,
/// rather than waiting for Envoy's stream timeouts.
#[tokio::test]
async fn with_request_body_without_the_wasm_flag_fails_closed_after_the_first_body_wait() {
    let plugin = config(json!({
        "decision": "status",
        "timeout_ms": 200,
        "with_request_body": {"max_request_bytes": 4096},
    }));
    let stack = Stack::start(&plugin, |_| Reply::ok("")).await;
    let started = std::time::Instant::now();
    let seen = stack
        .send(
            stack
                .client
                .post(format!("{}/p", stack.base))
                .timeout(Duration::from_secs(30))
                .body("hello"),
        )
        .await;
    if e2e::shell() == e2e::Shell::Native {
        // A native module gets the body while it holds the headers, as any Envoy filter does:
        // the flag is wasm's alone, and the request is checked with its body.
        assert!(seen.reached_upstream());
        assert_eq!(stack.auth_seen()[0].body, b"hello");
        assert!(!stack
            .envoy
            .log()
            .contains("allow_on_headers_stop_iteration"));
        return;
    }
    assert_eq!(seen.status, 403);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(stack
        .envoy
        .log()
        .contains("needs allow_on_headers_stop_iteration: true"));
    assert_eq!(stack.upstream.seen_count(), 0);
}

/// The auth service behind an Envoy sidecar (Istio's inbound), reached over HTTP/2, every Envoy
/// on its defaults (100 headers, 60 KiB): a check the sidecar would reset is refused with 431
/// first, and a reset would fail closed anyway.
#[tokio::test]
async fn behind_an_envoy_sidecar_over_h2_checks_stay_within_its_limits() {
    behind_an_envoy_sidecar(true).await;
}

/// The same over HTTP/1: the sidecar answers 431 or 400, which deny.
#[tokio::test]
async fn behind_an_envoy_sidecar_over_http1_holds() {
    behind_an_envoy_sidecar(false).await;
}

async fn behind_an_envoy_sidecar(h2: bool) {
    let wasm = plugin::built_wasm(&paths::default_plugin_dir()).unwrap();
    let auth = TestServer::start(deny_all).await.unwrap();
    let upstream = TestServer::upstream().await.unwrap();
    let sidecar_port = e2e::closed_port().await;
    let mut config = side_by_side_config(upstream.port());
    config
        .add_cluster(workbench::envoy_config::cluster(
            "auth_app",
            "127.0.0.1",
            auth.port(),
        ))
        .unwrap()
        .add_cluster(if h2 {
            workbench::envoy_config::h2_cluster("auth", "127.0.0.1", sidecar_port)
        } else {
            workbench::envoy_config::cluster("auth", "127.0.0.1", sidecar_port)
        })
        .unwrap();
    let mut sidecar = http_listener("sidecar", vec![], vec![route("/", "auth_app")]);
    // A hardened sidecar (a common setting): underscores in names are refused, which HTTP/2
    // does by resetting the stream.
    sidecar["filter_chains"][0]["filters"][0]["typed_config"]["common_http_protocol_options"] =
        json!({"headers_with_underscores_action": "REJECT_REQUEST"});
    sidecar["address"] = workbench::envoy_config::socket_address("127.0.0.1", sidecar_port);
    let native = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
        "http_service": { "server_uri": { "uri": "http://auth", "cluster": "auth", "timeout": "1s" } },
        "failure_mode_allow": true,
    });
    let plugin = json!({"decision": "status", "cluster": "auth", "timeout_ms": 1000, "failure_mode_allow": true});
    config
        .add_listener(sidecar)
        .unwrap()
        .add_listener(http_listener(
            "native",
            vec![json!({"name": "envoy.filters.http.ext_authz", "typed_config": native})],
            vec![route("/", "staticreply")],
        ))
        .unwrap()
        .add_listener(http_listener(
            "plugin",
            vec![plugin_filter("plugin", &wasm, &plugin.to_string())],
            vec![route("/", "staticreply")],
        ))
        .unwrap();
    let envoy = start_envoy(&config).await;
    let mut many = String::new();
    for n in 0..94 {
        many.push_str(&format!("x-h{n}: v\r\n"));
    }
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("plain", b"GET /x HTTP/1.1\r\nhost: t\r\n\r\n".to_vec()),
        (
            "94 headers",
            format!("GET /x HTTP/1.1\r\nhost: t\r\n{many}\r\n").into_bytes(),
        ),
        ("35 KiB path", long_path_request(35 * 1024, "")),
        (
            "x_user: 1",
            b"GET /x HTTP/1.1\r\nhost: t\r\nx_user: 1\r\n\r\n".to_vec(),
        ),
        ("50 KiB path", long_path_request(50 * 1024, "")),
    ];
    let mut through = Vec::new();
    for (what, request) in &cases {
        for listener in ["native", "plugin"] {
            let before = upstream.seen_count();
            let port = envoy.listener_port(listener).await.unwrap();
            let (status, _) = raw(port, request).await;
            let went = upstream.seen_count() > before;
            println!("{what}: {listener} {status} upstream={went}");
            if went {
                through.push(format!("{what} via {listener}"));
            }
        }
    }
    println!("auth app saw {} checks", auth.seen().len());
    assert!(through.is_empty(), "let through: {through:?}");
}

/// An HTTP/2 request with a `host` header beside `:authority`: the check carries the authority.
#[tokio::test]
async fn an_h2_host_header_beside_authority_never_changes_the_check() {
    let plugin = config(json!({"decision": "status", "cache": {"key": ["authorization", "host"]}}));
    let stack = Stack::start(&plugin, |r| {
        println!("auth saw {} {:?}", r.path, r.headers);
        Reply::ok("")
    })
    .await;
    let seen = workbench::h2_client::send(
        stack.port(),
        "GET",
        "/h",
        &[("host", "other.example"), ("authorization", "Bearer t")],
    )
    .await;
    println!("{seen:?}");
    if let Some(up) = stack.upstream.seen().first() {
        println!("upstream saw {:?}", up.headers);
    }
}

/// A reset flood dispatches every stream's check while its client is there, then resets them
/// all, so the orphan cap alone cannot bound them: `max_calls_in_flight` (1,024 per worker,
/// Envoy's default circuit breaker) bounds every call, orphans included, whatever the breaker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_flood_leaves_no_more_calls_than_max_calls_in_flight() {
    let plugin = config(json!({"decision": "status", "timeout_ms": 10_000}));
    let stack = Stack::builder(&plugin)
        .auth(|_| Reply::status(403, "no").after(Duration::from_secs(3)))
        .await
        .large_capacity()
        .start()
        .await;
    let streams = workbench::h2_client::reset_flood(stack.port(), 50, 45, "/flood", &[])
        .await
        .unwrap();
    let in_flight = stack.plugin_stat("calls_in_flight").await;
    let orphaned = stack.plugin_stat("calls_orphaned").await;
    println!("{streams} streams reset: {in_flight} calls in flight, {orphaned} orphaned");
    let seen = stack.get("/alice").await;
    println!("a legitimate request right after: {}", seen.status);
    // Whatever the circuit breaker admits, max_calls_in_flight (1,024 per worker) bounds every
    // call, orphans included; nothing is ever let through.
    assert!(
        orphaned <= in_flight && in_flight <= 1024,
        "{orphaned} orphaned of {in_flight} calls, over max_calls_in_flight (1,024)"
    );
    assert!(!seen.reached_upstream());
}

#[tokio::test]
async fn a_revoked_credential_is_never_served_stale_for_a_provoked_500() {
    let plugin = config(json!({
        "decision": "status",
        "allowed_upstream_headers": [{"exact": "x-user-id"}],
        "cache": {"key": ["authorization"], "ttl_ms": 1000, "stale_if_error_ms": 60000},
    }));
    let revoked = Arc::new(AtomicBool::new(false));
    let auth_revoked = Arc::clone(&revoked);
    let stack = Stack::start(&plugin, move |request| {
        if request.header("x-client-cert").is_some() {
            // e.g. a certificate parser's unhandled exception
            return Reply::status(500, "Internal Server Error");
        }
        if auth_revoked.load(Ordering::SeqCst) {
            Reply::status(403, "revoked")
        } else {
            Reply::ok("").header("x-user-id", "mallory")
        }
    })
    .await;
    let token = ("authorization", "Bearer mallory");
    let first = stack
        .send(
            stack
                .client
                .get(format!("{}/a", stack.base))
                .header(token.0, token.1),
        )
        .await;
    assert!(first.reached_upstream());
    revoked.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let seen = stack
        .send(
            stack
                .client
                .get(format!("{}/b", stack.base))
                .header(token.0, token.1)
                .header("x-client-cert", "garbage"),
        )
        .await;
    println!(
        "revoked token + x-client-cert: {} {:?}",
        seen.status, seen.body
    );
    println!(
        "cache_stale_served {}",
        stack.plugin_stat("cache_stale_served").await
    );
    assert_eq!(
        stack.upstream.seen_count(),
        1,
        "only the request before revocation"
    );
}

/// The failure marker is the plugin's alone, in trailers too, in either spelling.
#[tokio::test]
async fn a_forged_failure_marker_in_trailers_never_reaches_the_upstream() {
    let plugin =
        config(json!({"decision": "status", "allowed_upstream_headers": [{"exact": "x-user-id"}]}));
    let stack = Stack::builder(&plugin)
        .auth(|_| Reply::ok("").header("x-user-id", "alice"))
        .await
        .configure(|config| {
            config.hcm_mut("main")?["http_protocol_options"] = json!({"enable_trailers": true});
            config.set_cluster_field(
                "staticreply",
                "typed_extension_protocol_options",
                json!({"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicit_http_config": {"http_protocol_options": {"enable_trailers": true}}
                }}),
            )?;
            Ok(())
        })
        .start()
        .await;
    let seen = workbench::h2_client::send_with_trailers(
        stack.port(),
        "/t",
        &[],
        b"body",
        &[
            ("x-envoy-auth-failure-mode-allowed", "true"),
            ("x_envoy_auth_failure_mode_allowed", "true"),
            ("x-user-id", "mallory"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(seen.status, 200);
    let upstream = &stack.upstream.seen()[0];
    println!("upstream trailers: {:?}", upstream.trailers);
    assert!(
        !upstream.trailers.iter().any(|(n, _)| n.contains("failure")),
        "{:?}",
        upstream.trailers
    );
}

/// Failing closed, one request's check cannot make other users' checks in flight fail.
#[tokio::test]
async fn one_long_path_never_fails_other_checks_failing_closed() {
    let plugin = config(json!({"decision": "status", "timeout_ms": 5000}));
    let stack = Stack::builder(&plugin)
        .auth(|r| {
            if r.path.len() < 1000 {
                Reply::ok("").after(Duration::from_millis(1500))
            } else {
                Reply::status(403, "no")
            }
        })
        .await
        .h2_auth()
        .start()
        .await;
    let mut others = tokio::task::JoinSet::new();
    for n in 0..20 {
        let client = stack.client.clone();
        let url = format!("{}/victim/{n}", stack.base);
        others.spawn(async move { client.get(&url).send().await.map(|r| r.status().as_u16()) });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _) = raw(stack.port(), &long_path_request(40 * 1024, "")).await;
    println!("attacker: {status}");
    let mut statuses = Vec::new();
    while let Some(result) = others.join_next().await {
        statuses.push(result.unwrap().unwrap_or(0));
    }
    println!("others (the service allows them all): {statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}
