//! The seed's behaviour in a real Envoy, and the places where the Go original was wrong.

use std::io::Write;
use std::time::Duration;

use e2e::{closed_port, config, fnv1a, seed_config, shell, Reply, Shell, Stack, UPSTREAM_BODY};
use serde_json::json;
use workbench::envoy::{Envoy, EnvoyOptions};

// fnv1a("a") = 0xe40c292c is even; fnv1a("b") = 0xe70c2de5 is odd.
const EVEN: &str = "a";
const ODD: &str = "b";

#[tokio::test]
async fn even_answer_lets_the_request_reach_staticreply() {
    let stack = Stack::start("", |_| Reply::ok(EVEN)).await;
    let seen = stack.get("/uuid").await;
    assert_eq!(seen.status, 200);
    assert_eq!(seen.body, UPSTREAM_BODY);
    assert_eq!(stack.upstream.seen_count(), 1);
}

#[tokio::test]
async fn odd_answer_is_denied_with_the_seed_reply() {
    let stack = Stack::start("", |_| Reply::ok(ODD)).await;
    let seen = stack.get("/uuid").await;
    assert_eq!(seen.status, 403);
    assert_eq!(seen.body, "access forbidden");
    assert_eq!(seen.header("powered-by"), Some("http_auth_random"));
    assert_eq!(stack.upstream.seen_count(), 0);
}

#[tokio::test]
async fn empty_answer_is_denied() {
    let stack = Stack::start("", |_| Reply::ok("")).await;
    let seen = stack.get("/uuid").await;
    assert_eq!(seen.status, 403);
    assert_eq!(seen.body, "access forbidden");
}

#[tokio::test]
async fn the_auth_service_sees_the_clients_request_headers() {
    let stack = Stack::start("", |_| Reply::ok(EVEN)).await;
    let request = stack
        .client
        .get(format!("{}/uuid?n=1", stack.base))
        .header("x-tenant", "acme");
    assert_eq!(stack.send(request).await.status, 200);
    let auth = stack.auth_seen();
    assert_eq!(auth.len(), 1);
    assert_eq!(auth[0].path, "/uuid?n=1");
    assert_eq!(auth[0].method, "GET");
    assert_eq!(auth[0].header("x-tenant"), Some("acme"));
    assert_eq!(
        auth[0].header("host"),
        Some(format!("127.0.0.1:{}", stack.port()).as_str())
    );
}

#[tokio::test]
async fn each_decision_follows_the_parity_of_what_the_auth_service_answered() {
    // The auth service answers each request with its own path, so the test knows every body.
    let stack = Stack::start("", |request| Reply::ok(request.path.clone())).await;
    let (mut allowed, mut denied) = (0, 0);
    for n in 0..40 {
        let path = format!("/uuid/{n}");
        let seen = stack.get(&path).await;
        if fnv1a(path.as_bytes()) % 2 == 0 {
            assert!(seen.reached_upstream(), "{path}: {seen:?}");
            allowed += 1;
        } else {
            assert_eq!(
                (seen.status, seen.body.as_str()),
                (403, "access forbidden"),
                "{path}"
            );
            denied += 1;
        }
    }
    assert!(
        allowed > 0 && denied > 0,
        "a mix of both: {allowed} allowed, {denied} denied"
    );
    assert_eq!(stack.plugin_stat("ok").await, allowed);
    assert_eq!(stack.plugin_stat("denied").await, denied);
}

#[tokio::test]
async fn a_5xx_answer_is_an_error_not_a_verdict() {
    // An even body that would allow if it were hashed.
    let stack = Stack::start("", |_| Reply::status(503, EVEN)).await;
    let seen = stack.get("/uuid").await;
    assert_eq!(seen.status, 403);
    assert_eq!(seen.body, "");
    assert_eq!(stack.upstream.seen_count(), 0);
    assert_eq!(stack.plugin_stat("error").await, 1);
}

#[tokio::test]
async fn auth_service_down_fails_closed_at_once() {
    let stack = Stack::start_with_auth_down(&config(
        json!({"decision": "fnv_parity", "status_on_error": 503}),
    ))
    .await;
    for _ in 0..5 {
        let seen = stack.get("/uuid").await;
        assert_eq!(seen.status, 503);
        assert!(
            seen.elapsed < Duration::from_secs(1),
            "took {:?}",
            seen.elapsed
        );
    }
    assert_eq!(stack.upstream.seen_count(), 0);
}

#[tokio::test]
async fn auth_service_slower_than_the_timeout_fails_closed_after_the_timeout() {
    let plugin = config(json!({"decision": "fnv_parity", "timeout_ms": 500}));
    let stack = Stack::start(&plugin, |_| Reply::ok(EVEN).after(Duration::from_secs(5))).await;
    let seen = stack.get("/uuid").await;
    assert_eq!(seen.status, 403);
    assert!(
        seen.elapsed >= Duration::from_millis(450),
        "answered before the timeout: {:?}",
        seen.elapsed
    );
    assert!(
        seen.elapsed < Duration::from_millis(1500),
        "took {:?}",
        seen.elapsed
    );
    assert_eq!(stack.upstream.seen_count(), 0);
}

#[tokio::test]
async fn a_dropped_connection_fails_closed() {
    let stack = Stack::start("", |_| Reply::Drop).await;
    let seen = stack.get("/uuid").await;
    assert_eq!(seen.status, 403);
    assert_eq!(stack.upstream.seen_count(), 0);
}

#[tokio::test]
async fn failure_mode_allow_lets_the_request_through_marked() {
    let stack = Stack::start_with_auth_down(&config(
        json!({"decision": "fnv_parity", "failure_mode_allow": true}),
    ))
    .await;
    let seen = stack.get("/uuid").await;
    assert!(seen.reached_upstream(), "{seen:?}");
    let upstream = stack.upstream.seen();
    assert_eq!(
        upstream[0].header("x-envoy-auth-failure-mode-allowed"),
        Some("true")
    );
    assert_eq!(stack.plugin_stat("failure_mode_allowed").await, 1);
}

#[tokio::test]
async fn an_unknown_auth_cluster_is_refused_with_503_even_failing_open() {
    // Envoy refuses to send the call; the plugin cannot tell that from a call a client made
    // unsendable, so it is never the failure policy's.
    for fail_open in [false, true] {
        let plugin = config(json!({
            "decision": "fnv_parity",
            "cluster": "no_such_cluster",
            "failure_mode_allow": fail_open,
        }));
        let stack = Stack::start(&plugin, |_| Reply::ok(EVEN)).await;
        let seen = stack.get("/uuid").await;
        assert_eq!(
            (seen.status, seen.body.as_str()),
            (503, "authorization unavailable")
        );
        assert_eq!(stack.upstream.seen_count(), 0);
        assert!(stack.auth_seen().is_empty());
        assert!(stack.envoy.log().contains("no_such_cluster"));
    }
}

#[tokio::test]
async fn an_invalid_configuration_is_refused_by_envoy_with_the_plugins_reason() {
    let plugin = config(json!({"decision": "fnv_parity", "timeout_ms": 0}));
    let config = seed_config(&plugin, closed_port().await, closed_port().await).unwrap();
    let err = match Envoy::start(&config, &EnvoyOptions::default()).await {
        Ok(_) => panic!("Envoy accepted a configuration the plugin refuses"),
        Err(err) => format!("{err:#}"),
    };
    assert!(
        err.contains("invalid configuration: timeout_ms: 0 is out of range"),
        "the plugin's reason is not in Envoy's log:\n{err}"
    );
}

#[tokio::test]
async fn an_unknown_field_is_refused_by_envoy_by_name() {
    let plugin = config(json!({"clustr": "httpbin"}));
    let config = seed_config(&plugin, closed_port().await, closed_port().await).unwrap();
    let err = match Envoy::start(&config, &EnvoyOptions::default()).await {
        Ok(_) => panic!("Envoy accepted an unknown field"),
        Err(err) => format!("{err:#}"),
    };
    assert!(err.contains("unknown field `clustr`"), "{err}");
}

#[tokio::test]
async fn a_client_that_leaves_while_the_call_is_pending_leaves_an_orphan_in_wasm_and_ends_the_call_natively(
) {
    let stack = Stack::start("", |request| {
        if request.path == "/slow" {
            Reply::ok(EVEN).after(Duration::from_secs(2))
        } else {
            Reply::ok(EVEN)
        }
    })
    .await;
    // A raw client sends a request and hangs up while the plugin waits for the auth service.
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", stack.port())).unwrap();
    socket
        .write_all(b"GET /slow HTTP/1.1\r\nhost: test\r\n\r\n")
        .unwrap();
    for _ in 0..100 {
        if !stack.auth_seen().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stack.plugin_stat("calls_in_flight").await, 1);
    drop(socket);
    for _ in 0..3 {
        assert!(stack.get("/next").await.reached_upstream());
    }
    if shell() == Shell::Native {
        // A native module's call belongs to its stream and ends with it, as native ext_authz's
        // does: no orphan, nothing left on the auth cluster.
        assert_eq!(stack.plugin_stat("calls_in_flight").await, 0);
        assert_eq!(stack.plugin_stat("calls_orphaned").await, 0);
        assert_eq!(stack.stat("cluster.httpbin.upstream_rq_active").await, 0);
        assert_eq!(
            stack
                .stat("cluster.httpbin.upstream_cx_destroy_local_with_active_rq")
                .await,
            1
        );
        assert!(stack.get("/after").await.reached_upstream());
        assert!(stack.upstream.seen().iter().all(|r| r.path != "/slow"));
        return;
    }
    // The host cannot cancel the call, so it still counts, as an orphan, until it ends.
    assert_eq!(stack.plugin_stat("calls_in_flight").await, 1);
    assert_eq!(stack.plugin_stat("calls_orphaned").await, 1);
    // The slow answer arrives for a stream that is gone: counted off; Envoy keeps serving.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(stack.plugin_stat("calls_in_flight").await, 0);
    assert_eq!(stack.plugin_stat("calls_orphaned").await, 0);
    assert!(stack.get("/after").await.reached_upstream());
    assert!(stack.upstream.seen().iter().all(|r| r.path != "/slow"));
}

#[tokio::test]
async fn a_request_body_waits_for_the_verdict_and_never_passes_a_denial() {
    let stack = Stack::start("", |request| {
        let body = if request.path == "/deny" { ODD } else { EVEN };
        Reply::ok(body).after(Duration::from_millis(300))
    })
    .await;
    let denied = stack
        .send(
            stack
                .client
                .post(format!("{}/deny", stack.base))
                .body("secret payload"),
        )
        .await;
    assert_eq!(denied.status, 403);
    let allowed = stack
        .send(
            stack
                .client
                .post(format!("{}/allow", stack.base))
                .body("payload"),
        )
        .await;
    assert!(allowed.reached_upstream(), "{allowed:?}");
    let upstream = stack.upstream.seen();
    assert_eq!(upstream.len(), 1);
    assert_eq!(upstream[0].path, "/allow");
    // The auth call carries no body, so it must not claim one.
    let auth = stack.auth_seen();
    assert!(
        auth.iter().all(|r| r.header("content-length") == Some("0")),
        "{auth:?}"
    );
}
