//! ext_authz-grade features in a real Envoy: the status rule, header control both ways,
//! anti-spoofing, exemptions and metrics.

use std::time::Duration;

use e2e::{config, Reply, Stack};
use serde_json::json;

fn status_mode(extra: serde_json::Value) -> String {
    let mut plugin = json!({"decision": "status"});
    if let (Some(plugin), Some(extra)) = (plugin.as_object_mut(), extra.as_object()) {
        plugin.extend(extra.clone());
    }
    config(plugin)
}

#[tokio::test]
async fn status_rule_allows_200_and_relays_every_denial_as_the_auth_service_gave_it() {
    let stack = Stack::start(&status_mode(json!({})), |request| {
        match request.path.as_str() {
            "/ok" => Reply::ok("not hashed: 'b' is odd"),
            "/login" => Reply::status(401, "log in first")
                .header("www-authenticate", "Bearer realm=\"shop\"")
                .header("x-reason", "expired"),
            "/forbidden" => Reply::status(403, "no entry"),
            "/moved" => Reply::status(302, "").header("location", "/login"),
            _ => Reply::status(404, "unknown"),
        }
    })
    .await;
    assert!(stack.get("/ok").await.reached_upstream());

    let login = stack.get("/login").await;
    assert_eq!(login.status, 401);
    assert_eq!(login.body, "log in first");
    assert_eq!(
        login.header("www-authenticate"),
        Some("Bearer realm=\"shop\"")
    );
    assert_eq!(
        login.header("x-reason"),
        Some("expired"),
        "all headers go when unrestricted"
    );

    let forbidden = stack.get("/forbidden").await;
    assert_eq!(
        (forbidden.status, forbidden.body.as_str()),
        (403, "no entry")
    );

    let moved = stack.get("/moved").await;
    assert_eq!(moved.status, 302);
    assert_eq!(moved.header("location"), Some("/login"));
    assert_eq!(stack.upstream.seen_count(), 1);
}

#[tokio::test]
async fn allowed_client_headers_restrict_what_a_denial_relays() {
    let plugin = status_mode(json!({"allowed_client_headers": [{"exact": "x-reason"}]}));
    let stack = Stack::start(&plugin, |_| {
        Reply::status(401, "")
            .header("www-authenticate", "Bearer")
            .header("x-reason", "expired")
            .header("x-internal", "secret")
    })
    .await;
    let seen = stack.get("/").await;
    assert_eq!(seen.status, 401);
    assert_eq!(seen.header("x-reason"), Some("expired"));
    assert_eq!(
        seen.header("www-authenticate"),
        Some("Bearer"),
        "always relayed"
    );
    assert_eq!(seen.header("x-internal"), None);
}

#[tokio::test]
async fn the_auth_call_carries_only_allowed_headers_added_headers_and_the_prefixed_path() {
    let plugin = status_mode(json!({
        "allowed_headers": [{"exact": "x-tenant"}, {"prefix": "x-b3-"}],
        "headers_to_add": [{"key": "x-auth-caller", "value": "edge"}],
        "path_prefix": "/authz"
    }));
    let stack = Stack::start(&plugin, |_| Reply::ok("")).await;
    let request = stack
        .client
        .post(format!("{}/orders?id=7", stack.base))
        .header("authorization", "Bearer t")
        .header("x-tenant", "acme")
        .header("x-b3-traceid", "abc")
        .header("cookie", "session=1")
        .body("order body");
    assert!(stack.send(request).await.reached_upstream());
    let auth = &stack.auth_seen()[0];
    assert_eq!(auth.path, "/authz/orders?id=7");
    assert_eq!(auth.method, "POST");
    assert_eq!(auth.header("authorization"), Some("Bearer t"));
    assert_eq!(auth.header("x-tenant"), Some("acme"));
    assert_eq!(auth.header("x-b3-traceid"), Some("abc"));
    assert_eq!(auth.header("x-auth-caller"), Some("edge"));
    assert_eq!(auth.header("content-length"), Some("0"));
    assert_eq!(auth.header("cookie"), None, "not in the allowlist");
    // The upstream still gets the whole request, body included.
    let upstream = &stack.upstream.seen()[0];
    assert_eq!(upstream.header("cookie"), Some("session=1"));
}

#[tokio::test]
async fn the_auth_call_can_use_its_own_path_method_and_authority() {
    let plugin =
        status_mode(json!({"path": "/check", "method": "POST", "authority": "auth.internal"}));
    let stack = Stack::start(&plugin, |_| Reply::ok("")).await;
    assert!(stack.get("/orders").await.reached_upstream());
    let auth = &stack.auth_seen()[0];
    assert_eq!(
        (auth.method.as_str(), auth.path.as_str()),
        ("POST", "/check")
    );
    assert_eq!(auth.header("host"), Some("auth.internal"));
}

#[tokio::test]
async fn auth_answer_headers_reach_the_upstream_and_the_client_as_configured() {
    let plugin = status_mode(json!({
        "allowed_upstream_headers": [{"exact": "x-user-id"}],
        "allowed_upstream_headers_to_append": [{"exact": "x-trace"}],
        "allowed_client_headers_on_success": [{"exact": "x-auth-session"}]
    }));
    let stack = Stack::start(&plugin, |_| {
        Reply::ok("")
            .header("x-user-id", "u-42")
            .header("x-trace", "from-auth")
            .header("x-auth-session", "s1")
            .header("x-not-passed", "no")
    })
    .await;
    let request = stack
        .client
        .get(format!("{}/", stack.base))
        .header("x-trace", "from-client");
    let seen = stack.send(request).await;
    assert!(seen.reached_upstream());
    assert_eq!(seen.header("x-auth-session"), Some("s1"));
    let upstream = &stack.upstream.seen()[0];
    assert_eq!(upstream.header_all("x-user-id"), vec!["u-42"]);
    // The client's own copy of a header the auth service appends to is removed first.
    assert_eq!(upstream.header_all("x-trace"), vec!["from-auth"]);
    assert_eq!(upstream.header("x-not-passed"), None);
    assert_eq!(upstream.header("x-auth-session"), None);
}

#[tokio::test]
async fn a_client_cannot_forge_an_identity_header_the_auth_service_did_not_set() {
    let plugin = status_mode(json!({"allowed_upstream_headers": [{"exact": "x-user-id"}]}));
    let stack = Stack::start(&plugin, |_| Reply::ok("")).await;
    let forged = stack
        .client
        .get(format!("{}/", stack.base))
        .header("x-user-id", "admin")
        .header("X-User-Id", "admin-again");
    assert!(stack.send(forged).await.reached_upstream());
    assert_eq!(stack.upstream.seen()[0].header("x-user-id"), None);

    // With anti-spoofing off, the client's copy passes, as with ext_authz.
    let plugin = status_mode(json!({
        "allowed_upstream_headers": [{"exact": "x-user-id"}],
        "strip_client_upstream_headers": false
    }));
    let stack = Stack::start(&plugin, |_| Reply::ok("")).await;
    let forged = stack
        .client
        .get(format!("{}/", stack.base))
        .header("x-user-id", "admin");
    assert!(stack.send(forged).await.reached_upstream());
    assert_eq!(stack.upstream.seen()[0].header("x-user-id"), Some("admin"));
}

#[tokio::test]
async fn exempt_requests_skip_the_auth_call_and_are_counted() {
    let plugin = status_mode(json!({
        "exempt": {"paths": ["/healthz"], "path_prefixes": ["/public/"], "methods": ["OPTIONS"]}
    }));
    let stack = Stack::start(&plugin, |_| Reply::status(403, "denied")).await;
    assert!(stack.get("/healthz").await.reached_upstream());
    assert!(stack.get("/public/logo.png").await.reached_upstream());
    let options = stack
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/orders", stack.base));
    assert!(stack.send(options).await.reached_upstream());
    assert!(
        stack.auth_seen().is_empty(),
        "no auth call for exempt requests"
    );
    // Not exempt: checked, and denied.
    assert_eq!(stack.get("/healthz/x").await.status, 403);
    assert_eq!(stack.get("/public/../admin").await.status, 403);
    assert_eq!(stack.plugin_stat("disabled").await, 3);
}

#[tokio::test]
async fn an_exempt_request_cannot_carry_a_forged_identity_either() {
    let plugin = status_mode(json!({
        "exempt": {"paths": ["/healthz"]},
        "allowed_upstream_headers": [{"exact": "x-user-id"}]
    }));
    let stack = Stack::start(&plugin, |_| Reply::status(403, "")).await;
    let forged = stack
        .client
        .get(format!("{}/healthz", stack.base))
        .header("x-user-id", "admin");
    assert!(stack.send(forged).await.reached_upstream());
    assert_eq!(stack.upstream.seen()[0].header("x-user-id"), None);
    assert!(stack.auth_seen().is_empty());
}

#[tokio::test]
async fn stats_count_every_outcome_under_the_configured_prefix() {
    let plugin = status_mode(json!({
        "stat_prefix": "edge.authz",
        "latency_histogram": true,
        "timeout_ms": 300,
        "exempt": {"paths": ["/healthz"]}
    }));
    let stack = Stack::start(&plugin, |request| match request.path.as_str() {
        "/ok" => Reply::ok(""),
        "/no" => Reply::status(403, ""),
        "/slow" => Reply::ok("").after(Duration::from_secs(3)),
        _ => Reply::status(500, ""),
    })
    .await;
    let sends = [
        ("/ok", 3),
        ("/no", 2),
        ("/err", 4),
        ("/slow", 1),
        ("/healthz", 2),
    ];
    for (path, times) in sends {
        for _ in 0..times {
            stack.get(path).await;
        }
    }
    let stat = |name: &str| workbench::stack::plugin_stat_name("edge.authz", name);
    assert_eq!(stack.stat(&stat("ok")).await, 3);
    assert_eq!(stack.stat(&stat("denied")).await, 2);
    assert_eq!(
        stack.stat(&stat("error")).await,
        5,
        "4 answers of 500 and 1 timeout"
    );
    assert_eq!(stack.stat(&stat("failure_mode_allowed")).await, 0);
    assert_eq!(stack.stat(&stat("disabled")).await, 2);
    assert_eq!(stack.stat(&stat("calls_in_flight")).await, 0);

    // The latency histogram: one sample per answered call (3 + 2 + 4 + the timeout).
    let mut samples = None;
    for _ in 0..50 {
        let stats = stack.envoy.stats().await.unwrap();
        samples = stats.get(&stat("auth_latency_ms")).cloned();
        if samples.as_deref().is_some_and(|s| s.contains("P50")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let samples = samples.expect("the histogram is in /stats");
    assert!(
        samples.contains("P50"),
        "histogram has quantiles: {samples}"
    );
}

#[tokio::test]
async fn failure_mode_allow_is_counted() {
    let plugin = status_mode(json!({"failure_mode_allow": true}));
    let stack = Stack::start(&plugin, |_| Reply::status(503, "")).await;
    for _ in 0..3 {
        assert!(stack.get("/").await.reached_upstream());
    }
    assert_eq!(stack.plugin_stat("error").await, 3);
    assert_eq!(stack.plugin_stat("failure_mode_allowed").await, 3);
}
