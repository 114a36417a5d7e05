//! OpenID AuthZEN 1.0 in a real Envoy, in both shells: evaluations against the workbench's
//! decision point (a policy table), every malformed or failed answer failing closed (and only
//! an outage failing open), the evaluation field by field as the decision point received it,
//! and a client that cannot change the subject, action or resource by header tricks.

use std::time::Duration;

use e2e::{config, raw, Reply, SeenRequest, Stack};
use serde_json::{json, Value};
use workbench::authzen::Policy;

fn authzen(extra: Value) -> String {
    let mut value = json!({
        "protocol": "authzen",
        "timeout_ms": 500,
        "authzen": {
            "subject": {"id_header": "x-user-id"},
            "resource": {"properties": ["method", "path", "query", "host"]},
            "deny_reason": {"pointer": "/context/reason_user/en-403", "header": "x-authz-reason"}
        }
    });
    if let (Some(base), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
        base.extend(extra.clone());
    }
    config(value)
}

async fn demo() -> Stack {
    let policy = Policy::demo();
    Stack::start(&authzen(json!({})), move |request| policy.answer(request)).await
}

fn as_user(stack: &Stack, method: &str, path: &str, user: Option<&str>) -> reqwest::RequestBuilder {
    let request = stack
        .client
        .request(method.parse().unwrap(), format!("{}{path}", stack.base));
    match user {
        Some(user) => request.header("x-user-id", user),
        None => request,
    }
}

/// The evaluations the decision point received, as JSON.
fn evaluations(stack: &Stack) -> Vec<Value> {
    stack
        .auth_seen()
        .iter()
        .map(|seen: &SeenRequest| serde_json::from_slice(&seen.body).unwrap())
        .collect()
}

#[tokio::test]
async fn the_decision_point_allows_and_denies_with_its_reason() {
    let stack = demo().await;
    let alice = stack
        .send(as_user(&stack, "DELETE", "/todos/1", Some("alice")))
        .await;
    assert!(alice.reached_upstream(), "{alice:?}");
    let bob = stack
        .send(as_user(&stack, "GET", "/todos/1", Some("bob")))
        .await;
    assert!(bob.reached_upstream(), "{bob:?}");
    let denied = stack
        .send(as_user(&stack, "DELETE", "/todos/1", Some("bob")))
        .await;
    assert_eq!(denied.status, 403, "{denied:?}");
    assert_eq!(
        denied.header("x-authz-reason"),
        Some("bob may not DELETE /todos/1")
    );
    let seen = stack.auth_seen();
    assert_eq!(seen.len(), 3);
    assert!(seen
        .iter()
        .all(|r| r.method == "POST" && r.path == "/access/v1/evaluation"));
    assert!(seen
        .iter()
        .all(|r| r.header("content-type") == Some("application/json")));
    assert_eq!(stack.plugin_stat("ok").await, 2);
    assert_eq!(stack.plugin_stat("denied").await, 1);
}

#[tokio::test]
async fn a_request_without_a_subject_is_denied_unasked_unless_anonymous() {
    let stack = demo().await;
    assert_eq!(
        stack
            .send(as_user(&stack, "GET", "/public/a", None))
            .await
            .status,
        403
    );
    assert!(
        stack.auth_seen().is_empty(),
        "no evaluation without a subject"
    );
    let policy = Policy::demo();
    let anonymous = authzen(json!({"authzen": {
        "subject": {"id_header": "x-user-id", "anonymous_id": "anonymous"}
    }}));
    let stack = Stack::start(&anonymous, move |request| policy.answer(request)).await;
    assert!(stack
        .send(as_user(&stack, "GET", "/public/a", None))
        .await
        .reached_upstream());
    assert_eq!(
        stack
            .send(as_user(&stack, "GET", "/todos", None))
            .await
            .status,
        403
    );
    assert_eq!(evaluations(&stack)[0]["subject"]["id"], "anonymous");
}

/// A decision point that answers each subject in its own wrong way.
fn misbehaving(request: &SeenRequest) -> Reply {
    let evaluation: Value = serde_json::from_slice(&request.body).unwrap_or_default();
    match evaluation["subject"]["id"].as_str().unwrap_or_default() {
        "not-json" => Reply::ok("decision: true"),
        "yes" => Reply::ok(r#"{"decision": "yes"}"#),
        "missing" => Reply::ok(r#"{"context": {}}"#),
        "twice" => Reply::ok(r#"{"decision": false, "decision": true}"#),
        "huge" => Reply::ok(format!(
            r#"{{"decision": true, "pad": "{}"}}"#,
            "x".repeat(5 << 20)
        )),
        "status-401" => Reply::status(401, r#"{"decision": true}"#),
        "error-500" => Reply::status(500, r#"{"decision": true}"#),
        "slow" => Reply::ok(r#"{"decision": true}"#).after(Duration::from_secs(3)),
        _ => Reply::ok(r#"{"decision": true}"#),
    }
}

#[tokio::test]
async fn malformed_answers_fail_closed_and_only_an_outage_fails_open() {
    for fail_open in [false, true] {
        let plugin = authzen(json!({"failure_mode_allow": fail_open}));
        let stack = Stack::start(&plugin, misbehaving).await;
        for subject in [
            "not-json",
            "yes",
            "missing",
            "twice",
            "huge",
            "status-401",
            "error-500",
        ] {
            let seen = stack
                .send(as_user(&stack, "GET", "/x", Some(subject)))
                .await;
            assert_eq!(
                seen.status, 403,
                "{subject} (fail_open {fail_open}): {seen:?}"
            );
        }
        // Slow (past timeout_ms) and down are outages: open only when told.
        let slow = stack.send(as_user(&stack, "GET", "/x", Some("slow"))).await;
        let down = Stack::start_with_auth_down(&plugin).await;
        let unreachable = down.send(as_user(&down, "GET", "/x", Some("alice"))).await;
        for (what, seen) in [("slow", &slow), ("down", &unreachable)] {
            if fail_open {
                assert!(seen.reached_upstream(), "{what}: {seen:?}");
            } else {
                assert_eq!(seen.status, 403, "{what}: {seen:?}");
            }
        }
        let fine = stack
            .send(as_user(&stack, "GET", "/x", Some("alice")))
            .await;
        assert!(
            fine.reached_upstream(),
            "a well-formed true still allows: {fine:?}"
        );
    }
}

#[tokio::test]
async fn the_evaluation_carries_the_request_field_by_field() {
    let stack = demo().await;
    let port = stack.port();
    for (method, target, host, path, query) in [
        ("GET", "/todos", "todo.example.com", "/todos", ""),
        (
            "DELETE",
            "/todos/42?force=true&x=%20y",
            "todo.example.com:8443",
            "/todos/42",
            "force=true&x=%20y",
        ),
        (
            "POST",
            "/todos/%E2%82%AC/b",
            "Todo.Example.COM",
            "/todos/%E2%82%AC/b",
            "",
        ),
        (
            "PUT",
            "/todos?q=%22quoted%22&n=1",
            "h",
            "/todos",
            "q=%22quoted%22&n=1",
        ),
    ] {
        let before = stack.auth_seen().len();
        let request = format!(
            "{method} {target} HTTP/1.1\r\nhost: {host}\r\nx-user-id: alice\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
        let (status, head) = raw(port, request.as_bytes()).await;
        assert_eq!(status, 200, "{method} {target}: {head}");
        let seen = &stack.auth_seen()[before];
        let evaluation: Value = serde_json::from_slice(&seen.body).unwrap();
        assert_eq!(
            evaluation,
            json!({
                "subject": {"type": "identity", "id": "alice"},
                "action": {"name": method},
                "resource": {"type": "route", "id": path, "properties": {
                    "method": method, "path": path, "query": query, "host": host}}
            }),
            "{method} {target} {host}"
        );
    }
}

#[tokio::test]
async fn header_tricks_never_change_the_subject_action_or_resource() {
    let stack = demo().await;
    let port = stack.port();
    let send = |lines: &str| {
        let request = format!(
            "GET /todos/1 HTTP/1.1\r\nhost: todo\r\n{lines}content-length: 0\r\nconnection: close\r\n\r\n"
        );
        async move { raw(port, request.as_bytes()).await.0 }
    };
    // Two subjects: which would count is the client's choice, so neither does.
    assert_eq!(send("x-user-id: bob\r\nx-user-id: alice\r\n").await, 400);
    // An underscore spelling is another header, not the subject.
    assert_eq!(send("x_user_id: alice\r\n").await, 403);
    // A subject nominated as hop-by-hop by the client's `Connection` is not one either.
    let nominated = "GET /todos/1 HTTP/1.1\r\nhost: todo\r\nx-user-id: alice\r\nconnection: close, x-user-id\r\ncontent-length: 0\r\n\r\n";
    assert_eq!(raw(port, nominated.as_bytes()).await.0, 403);
    assert!(stack.auth_seen().is_empty(), "neither was asked about");
    // JSON in a header value stays a string in the evaluation.
    let injected = r#"bob", "id": "alice"#;
    assert_eq!(send(&format!("x-user-id: {injected}\r\n")).await, 403);
    // Method overrides and forwarded headers are not the action or the resource.
    assert_eq!(
        send("x-user-id: bob\r\nx-http-method-override: DELETE\r\nx-forwarded-uri: /admin\r\nx-original-url: /admin\r\n").await,
        200
    );
    let evaluations = evaluations(&stack);
    assert_eq!(evaluations[0]["subject"]["id"], injected);
    assert_eq!(evaluations[0]["subject"]["type"], "identity");
    assert_eq!(evaluations[1]["action"]["name"], "GET");
    assert_eq!(evaluations[1]["resource"]["id"], "/todos/1");
}

#[tokio::test]
async fn evaluations_are_cached_and_coalesced_by_the_key_the_operator_names() {
    let policy = Policy::demo();
    let plugin = authzen(json!({
        "cache": {"key": ["x-user-id", ":method", ":path"], "ttl_ms": 60000, "deny_ttl_ms": 60000}
    }));
    let stack = Stack::start(&plugin, move |request| {
        policy.answer(request).after(Duration::from_millis(200))
    })
    .await;
    // Three at once with one key: one evaluation.
    let (a, b, c) = tokio::join!(
        stack.send(as_user(&stack, "GET", "/todos/1", Some("bob"))),
        stack.send(as_user(&stack, "GET", "/todos/1", Some("bob"))),
        stack.send(as_user(&stack, "GET", "/todos/1", Some("bob"))),
    );
    assert!(a.reached_upstream() && b.reached_upstream() && c.reached_upstream());
    assert_eq!(stack.auth_seen().len(), 1);
    // Another subject, method or path is another key; a cached deny keeps its reason.
    let denied = stack
        .send(as_user(&stack, "DELETE", "/todos/1", Some("bob")))
        .await;
    let again = stack
        .send(as_user(&stack, "DELETE", "/todos/1", Some("bob")))
        .await;
    assert_eq!((denied.status, again.status), (403, 403));
    assert_eq!(
        again.header("x-authz-reason"),
        Some("bob may not DELETE /todos/1")
    );
    assert!(stack
        .send(as_user(&stack, "DELETE", "/todos/1", Some("alice")))
        .await
        .reached_upstream());
    assert_eq!(stack.auth_seen().len(), 3);
}
