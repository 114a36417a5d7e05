//! What a client (or a careless operator) causes must never reach the failure policy, the stale
//! cache, or an allow; and load native ext_authz serves must not be refused. Each test is a
//! finding of adversarial testing, run as it was found, in a real Envoy.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use e2e::{config, raw, read_head, seed_config, Reply, SeenRequest, Stack, UPSTREAM_BODY};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use workbench::envoy::{Envoy, EnvoyOptions};
use workbench::envoy_config::EnvoyConfig;
use workbench::grpc_auth::pb::OkHttpResponse;
use workbench::grpc_auth::GrpcReply;
use workbench::h2_client;

/// An auth service that denies everyone.
fn deny_all(_: &SeenRequest) -> Reply {
    Reply::status(403, "no")
}

/// Listener limits many operators raise: 2,000 headers, 1 MiB of them.
fn raised_header_limits(config: &mut EnvoyConfig) -> anyhow::Result<()> {
    let hcm = config.hcm_mut("main")?;
    hcm["common_http_protocol_options"] = json!({"max_headers_count": 2000});
    hcm["max_request_headers_kb"] = json!(1024);
    Ok(())
}

#[tokio::test]
async fn a_request_too_large_to_check_is_refused_never_failed_open() {
    let plugin = config(json!({"decision": "status", "failure_mode_allow": true}));
    let stack = Stack::builder(&plugin)
        .auth(deny_all)
        .await
        .configure(raised_header_limits)
        .start()
        .await;
    // 1,025 small headers: more than the host's header map may hold.
    let mut many = stack.client.get(format!("{}/many", stack.base));
    for n in 0..1025 {
        many = many.header(format!("x-h{n}"), "v");
    }
    let seen = stack.send(many).await;
    assert_eq!(seen.status, 431, "{:?}", seen.headers);
    // A 530 KiB path, which the check would carry twice (`:path`, `x-forwarded-uri`). Sent
    // raw: client libraries refuse a URI that long.
    let long = format!(
        "GET /{} HTTP/1.1\r\nhost: t\r\n\r\n",
        "p".repeat(530 * 1024)
    );
    let (status, answer) = raw(stack.port(), long.as_bytes()).await;
    assert_eq!(status, 431, "{}", answer.lines().next().unwrap_or_default());
    assert_eq!(
        stack.upstream.seen_count(),
        0,
        "nothing reached the upstream"
    );
    assert!(stack.auth_seen().is_empty(), "no check was even sent");
    assert_eq!(stack.plugin_stat("failure_mode_allowed").await, 0);
    // An ordinary request is still checked (and denied).
    assert_eq!(stack.get("/small").await.status, 403);
}

#[tokio::test]
async fn a_revoked_credential_is_never_served_stale_for_a_failure_its_holder_provokes() {
    let plugin = config(json!({
        "decision": "status",
        "allowed_upstream_headers": [{"exact": "x-user-id"}],
        "cache": {"key": ["authorization"], "ttl_ms": 1000, "stale_if_error_ms": 60000},
    }));
    let revoked = Arc::new(AtomicBool::new(false));
    let auth_revoked = Arc::clone(&revoked);
    let stack = Stack::start(&plugin, move |request| {
        if request.method == "PATCH" {
            // As Python's http.server and others answer a method they do not implement.
            return Reply::status(501, "Unsupported method");
        }
        if auth_revoked.load(Ordering::SeqCst) {
            Reply::status(403, "revoked")
        } else {
            Reply::ok("").header("x-user-id", "mallory")
        }
    })
    .await;
    let token = ("authorization", "Bearer mallory");
    let seen = stack
        .send(
            stack
                .client
                .get(format!("{}/a", stack.base))
                .header(token.0, token.1),
        )
        .await;
    assert!(seen.reached_upstream());
    revoked.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    for n in 0..5 {
        let seen = stack
            .send(
                stack
                    .client
                    .patch(format!("{}/a/{n}", stack.base))
                    .header(token.0, token.1),
            )
            .await;
        assert_eq!(seen.status, 403, "PATCH {n}: {:?}", seen.body);
    }
    assert_eq!(
        stack.upstream.seen_count(),
        1,
        "only the request before revocation"
    );
    assert_eq!(stack.plugin_stat("cache_stale_served").await, 0);
}

/// The auth service allows the token only on `a.example`.
fn only_on_a(request: &SeenRequest) -> Reply {
    if request.header("x-forwarded-host") == Some("a.example") {
        Reply::ok("")
    } else {
        Reply::status(403, "not on this host")
    }
}

#[tokio::test]
async fn host_in_a_cache_key_keeps_verdicts_apart_per_authority() {
    let plugin = config(json!({
        "decision": "status",
        "cache": {"key": ["authorization", "host"], "cache_missing_headers": true},
    }));
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let stack = Stack::start(&plugin, move |request| {
        counted.fetch_add(1, Ordering::SeqCst);
        only_on_a(request)
    })
    .await;
    let get = |host: &str| {
        stack
            .client
            .get(format!("{}/x", stack.base))
            .header("host", host)
            .header("authorization", "Bearer t")
    };
    assert_eq!(stack.send(get("a.example")).await.status, 200);
    assert_eq!(stack.send(get("a.example")).await.status, 200, "a hit");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(stack.send(get("b.example")).await.status, 403);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "b.example asked for itself"
    );
}

/// Two requests that differ only in what one key spelling names are two keys; the same request
/// twice is one. Each documented spelling, through a real Envoy.
#[tokio::test]
async fn every_documented_key_spelling_names_what_it_says() {
    type Request = fn(&reqwest::Client, &str) -> reqwest::RequestBuilder;
    let cases: [(&str, Request, Request); 7] = [
        (
            "authorization",
            |c, base| c.get(format!("{base}/p")).header("authorization", "a"),
            |c, base| c.get(format!("{base}/p")).header("authorization", "b"),
        ),
        (
            "x-api-key",
            |c, base| c.get(format!("{base}/p")).header("x-api-key", "a"),
            |c, base| c.get(format!("{base}/p")).header("x-api-key", "b"),
        ),
        (
            ":authority",
            |c, base| c.get(format!("{base}/p")).header("host", "a.example"),
            |c, base| c.get(format!("{base}/p")).header("host", "b.example"),
        ),
        (
            "host",
            |c, base| c.get(format!("{base}/p")).header("host", "a.example"),
            |c, base| c.get(format!("{base}/p")).header("host", "b.example"),
        ),
        (
            ":method",
            |c, base| c.get(format!("{base}/p")),
            |c, base| c.delete(format!("{base}/p")),
        ),
        (
            ":path",
            |c, base| c.get(format!("{base}/p?x=1")),
            |c, base| c.get(format!("{base}/p?x=2")),
        ),
        (
            ":path_without_query",
            |c, base| c.get(format!("{base}/p?x=1")),
            |c, base| c.get(format!("{base}/q?x=1")),
        ),
    ];
    for (part, first, other) in cases {
        let plugin = config(json!({
            "decision": "status",
            "cache": {"key": [part], "cache_missing_headers": true},
        }));
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let stack = Stack::start(&plugin, move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            Reply::ok("")
        })
        .await;
        let base = stack.base.clone();
        for request in [first, first, other] {
            assert_eq!(stack.send(request(&stack.client, &base)).await.status, 200);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2, "key part {part}");
    }
    // What the key cannot name is refused when the configuration is loaded.
    let plugin = config(json!({"decision": "status", "cache": {"key": ["connection"]}}));
    let refused = seed_config(&plugin, e2e::closed_port().await, e2e::closed_port().await).unwrap();
    let err = match Envoy::start(&refused, &EnvoyOptions::default()).await {
        Ok(_) => panic!("a key Envoy never lets a filter see was accepted"),
        Err(err) => format!("{err:#}"),
    };
    assert!(err.contains("cache.key[0]"), "{err}");
}

#[tokio::test]
async fn header_values_padded_with_whitespace_reach_an_http2_auth_service_trimmed() {
    let plugin = config(json!({"decision": "status"}));
    let stack = Stack::builder(&plugin)
        .auth(|_| Reply::ok(""))
        .await
        .h2_auth()
        .start()
        .await;
    let seen = h2_client::send(
        stack.port(),
        "GET",
        "/padded",
        &[
            ("x-padded", " \tpadded value\t "),
            ("authorization", "Bearer t "),
        ],
    )
    .await
    .unwrap();
    assert_eq!(seen.status, 200);
    let check = &stack.auth_seen()[0];
    assert_eq!(check.header("x-padded"), Some("padded value"));
    assert_eq!(check.header("authorization"), Some("Bearer t"));
}

/// The plugin with `with_request_body`, in a wasm filter that hands it the body.
fn with_body_config(extra: Value) -> String {
    let mut plugin = json!({
        "decision": "status",
        "timeout_ms": 200,
        "with_request_body": {"max_request_bytes": 4096},
    });
    if let (Some(plugin), Some(extra)) = (plugin.as_object_mut(), extra.as_object()) {
        plugin.extend(extra.clone());
    }
    config(plugin)
}

fn body_reaches_the_plugin(config: &mut EnvoyConfig) -> anyhow::Result<()> {
    config.plugin_mut("main")?["allow_on_headers_stop_iteration"] = json!(true);
    Ok(())
}

#[tokio::test]
async fn a_body_that_arrives_after_the_call_timeout_is_still_checked() {
    let stack = Stack::builder(&with_body_config(json!({})))
        .auth(|request| {
            if request.body == b"late body" {
                Reply::ok("")
            } else {
                Reply::status(403, "no")
            }
        })
        .await
        .configure(body_reaches_the_plugin)
        .start()
        .await;
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", stack.port()))
        .await
        .unwrap();
    socket
        .write_all(b"POST /late HTTP/1.1\r\nhost: t\r\ncontent-length: 9\r\n\r\n")
        .await
        .unwrap();
    // Well past timeout_ms (200 ms): only the call is timed, as native ext_authz times it.
    tokio::time::sleep(Duration::from_millis(700)).await;
    socket.write_all(b"late body").await.unwrap();
    let answer = read_head(&mut socket, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(stack.auth_seen()[0].body, b"late body");
}

#[tokio::test]
async fn expect_100_continue_with_proxy_100_continue_is_checked_with_its_body() {
    let stack = Stack::builder(&with_body_config(json!({})))
        .auth(|request| {
            if request.body == b"hello" {
                Reply::ok("")
            } else {
                Reply::status(403, "no")
            }
        })
        .await
        .configure(|config| {
            body_reaches_the_plugin(config)?;
            config.hcm_mut("main")?["proxy_100_continue"] = json!(true);
            Ok(())
        })
        .start()
        .await;
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", stack.port()))
        .await
        .unwrap();
    socket
        .write_all(
            b"POST /upload HTTP/1.1\r\nhost: t\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n",
        )
        .await
        .unwrap();
    // As curl does: wait a second for `100 Continue`, then send the body anyway.
    let early = read_head(&mut socket, Duration::from_secs(1)).await;
    assert!(!early.contains(" 403 "), "refused before the body: {early}");
    socket.write_all(b"hello").await.unwrap();
    // Envoy relays the upstream's `100 Continue`, then its answer.
    let mut answer = read_head(&mut socket, Duration::from_secs(10)).await;
    if answer.starts_with("HTTP/1.1 100") && answer.matches("HTTP/1.1 ").count() < 2 {
        answer += &read_head(&mut socket, Duration::from_secs(10)).await;
    }
    let last = answer.rsplit("HTTP/1.1 ").next().unwrap_or_default();
    assert!(last.starts_with("200"), "{early}{answer}");
}

#[tokio::test]
async fn an_upload_larger_than_envoys_buffer_waits_for_the_verdict_without_a_413() {
    // No with_request_body: the body is only held while the check (500 ms) is pending.
    let plugin = config(json!({"decision": "status", "timeout_ms": 5000}));
    let stack = Stack::builder(&plugin)
        .auth(|_| Reply::ok("").after(Duration::from_millis(500)))
        .await
        .configure(body_reaches_the_plugin)
        .start()
        .await;
    let body = vec![b'u'; 3 * 1024 * 1024];
    let seen = stack
        .send(
            stack
                .client
                .post(format!("{}/upload", stack.base))
                .body(body),
        )
        .await;
    assert_eq!(seen.status, 200, "{}", seen.body);
    let upstream = &stack.upstream.seen()[0];
    assert_eq!(
        upstream.body.len(),
        3 * 1024 * 1024,
        "the whole body went upstream"
    );
}

#[tokio::test]
async fn forged_identities_never_reach_the_auth_service_and_no_marker_spelling_reaches_upstream() {
    let plugin = config(json!({
        "decision": "status",
        "allowed_upstream_headers": [{"exact": "x-user-id"}],
    }));
    let stack = Stack::start(&plugin, |_| Reply::ok("").header("x-user-id", "alice")).await;
    let seen = stack
        .send(
            stack
                .client
                .get(format!("{}/who", stack.base))
                .header("x-user-id", "admin")
                .header("x_user_id", "admin")
                .header("x_envoy_auth_failure_mode_allowed", "true"),
        )
        .await;
    assert!(seen.reached_upstream());
    let check = &stack.auth_seen()[0];
    assert!(check.header("x-user-id").is_none(), "{:?}", check.headers);
    assert!(check.header("x_user_id").is_none(), "{:?}", check.headers);
    let upstream = &stack.upstream.seen()[0];
    assert_eq!(upstream.header_all("x-user-id"), vec!["alice"]);
    assert!(upstream.header("x_user_id").is_none());
    assert!(upstream
        .header("x_envoy_auth_failure_mode_allowed")
        .is_none());

    // Failing open, the marker upstream is the plugin's alone, in either spelling.
    let open = config(json!({"decision": "status", "failure_mode_allow": true}));
    let down = Stack::start_with_auth_down(&open).await;
    let seen = down
        .send(
            down.client
                .get(format!("{}/x", down.base))
                .header("x_envoy_auth_failure_mode_allowed", "forged"),
        )
        .await;
    assert!(seen.reached_upstream());
    let upstream = &down.upstream.seen()[0];
    assert_eq!(
        upstream.header_all("x-envoy-auth-failure-mode-allowed"),
        vec!["true"]
    );
    assert!(upstream
        .header("x_envoy_auth_failure_mode_allowed")
        .is_none());
}

#[tokio::test]
async fn connection_nominated_headers_neither_strip_identities_nor_split_check_and_upstream() {
    let plugin = config(json!({
        "decision": "status",
        "allowed_upstream_headers": [{"exact": "x-user-id"}],
    }));
    let stack = Stack::start(&plugin, |request| {
        if request.header("authorization") == Some("Bearer alice") {
            Reply::ok("").header("x-user-id", "alice")
        } else {
            Reply::status(401, "who?")
        }
    })
    .await;
    // Naming the identity header in Connection does not strip the one the auth service sets.
    let request = b"GET /c HTTP/1.1\r\nhost: t\r\nconnection: keep-alive, x-user-id\r\nauthorization: Bearer alice\r\n\r\n";
    let (status, answer) = raw(stack.port(), request).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        stack.upstream.seen()[0].header_all("x-user-id"),
        vec!["alice"],
        "the identity the auth service set arrived"
    );
    // Naming the credential: Envoy removes it from the request before any filter, so the
    // check and the upstream see the same request without it; never an upstream holding a
    // credential the check did not see.
    let request = b"GET /d HTTP/1.1\r\nhost: t\r\nconnection: authorization\r\nauthorization: Bearer alice\r\n\r\n";
    assert_eq!(raw(stack.port(), request).await.0, 401);
    assert!(stack.auth_seen()[1].header("authorization").is_none());
    assert_eq!(stack.upstream.seen_count(), 1);
}

#[tokio::test]
async fn a_thousand_concurrent_checks_on_one_worker_are_all_served() {
    // Native ext_authz serves these with Envoy's default circuit breakers; so must the plugin.
    let plugin = config(json!({"decision": "status", "timeout_ms": 10_000}));
    let stack = Stack::start(&plugin, |_| Reply::ok("").after(Duration::from_millis(400))).await;
    let mut requests = tokio::task::JoinSet::new();
    for n in 0..1000 {
        let client = stack.client.clone();
        let url = format!("{}/r/{n}", stack.base);
        requests.spawn(async move {
            let response = client.get(&url).send().await.expect("an answer");
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        });
    }
    let mut refused = 0;
    while let Some(result) = requests.join_next().await {
        let (status, body) = result.unwrap();
        if (status, body.as_str()) != (200, UPSTREAM_BODY) {
            refused += 1;
        }
    }
    assert_eq!(refused, 0, "requests not served");
    assert_eq!(stack.plugin_stat("overloaded").await, 0);
}

#[tokio::test]
async fn a_grpc_service_asked_over_http_never_allows() {
    // `"protocol": "grpc"` forgotten: the gRPC server answers HTTP 200 with a grpc-status.
    let plugin = config(json!({"decision": "status"}));
    let stack = Stack::builder(&plugin)
        .grpc_auth(|_| GrpcReply::allow(OkHttpResponse::default()))
        .await
        .start()
        .await;
    for _ in 0..3 {
        assert_eq!(stack.get("/x").await.status, 403);
    }
    assert_eq!(stack.upstream.seen_count(), 0);
    assert!(stack.envoy.log().contains("answered as a gRPC server"));
}

#[tokio::test]
async fn a_configuration_without_a_decision_rule_is_refused_not_a_coin_flip() {
    let plugin = config(json!({"cluster": "httpbin", "timeout_ms": 500}));
    let refused = seed_config(&plugin, e2e::closed_port().await, e2e::closed_port().await).unwrap();
    let err = match Envoy::start(&refused, &EnvoyOptions::default()).await {
        Ok(_) => panic!("Envoy accepted a configuration without a decision rule"),
        Err(err) => format!("{err:#}"),
    };
    assert!(err.contains("decision: is missing"), "{err}");
    // No configuration at all is still the seed.
    let seed = Stack::start("", |_| Reply::ok("a")).await;
    assert!(seed.get("/uuid").await.reached_upstream());
}
