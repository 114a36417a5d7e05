//! Shadow mode in a real Envoy: every request is checked and counted, and nothing is enforced.
//! A deny, an error, an outage or an overload lets the request through unchanged (no failure
//! marker, no headers from a deny), counted as `shadow_denied` or `shadow_error`.

use e2e::{config, Reply, Stack};
use serde_json::json;
use workbench::grpc_auth::{denied, Code, GrpcReply};

fn shadow(extra: serde_json::Value) -> String {
    let mut value =
        json!({"decision": "status", "shadow": true, "failure_mode_allow_header_add": true});
    if let (Some(base), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
        base.extend(extra.clone());
    }
    config(value)
}

#[tokio::test]
async fn a_deny_in_shadow_reaches_the_upstream_unchanged_and_is_counted() {
    let stack = Stack::start(&shadow(json!({})), |_| {
        Reply::status(403, "no").header("x-user-id", "mallory")
    })
    .await;
    let seen = stack.get("/page").await;
    assert!(seen.reached_upstream(), "{seen:?}");
    let upstream = &stack.upstream.seen()[0];
    assert_eq!(upstream.header("x-user-id"), None, "nothing from the deny");
    assert_eq!(stack.plugin_stat("shadow_denied").await, 1);
    assert_eq!(
        stack.plugin_stat("denied").await,
        1,
        "the verdict is counted as usual"
    );
    assert_eq!(stack.plugin_stat("ok").await, 0);
}

#[tokio::test]
async fn errors_and_outages_in_shadow_pass_without_the_failure_marker() {
    for fail_open in [false, true] {
        // A service that is up and fails (500), then one that is down.
        let stack = Stack::start(&shadow(json!({"failure_mode_allow": fail_open})), |_| {
            Reply::status(500, "boom")
        })
        .await;
        let seen = stack.get("/error").await;
        assert!(seen.reached_upstream(), "{seen:?}");
        let down =
            Stack::start_with_auth_down(&shadow(json!({"failure_mode_allow": fail_open}))).await;
        assert!(down.get("/down").await.reached_upstream());
        for stack in [&stack, &down] {
            let upstream = &stack.upstream.seen()[0];
            assert_eq!(
                upstream.header("x-envoy-auth-failure-mode-allowed"),
                None,
                "no failure marker in shadow"
            );
            assert_eq!(stack.plugin_stat("shadow_error").await, 1);
            assert_eq!(stack.plugin_stat("failure_mode_allowed").await, 0);
        }
    }
}

#[tokio::test]
async fn an_overload_in_shadow_passes_and_is_counted() {
    let stack = Stack::start(&shadow(json!({"max_calls_in_flight": 1})), |request| {
        if request.path == "/slow" {
            Reply::ok("").after(std::time::Duration::from_millis(500))
        } else {
            Reply::ok("")
        }
    })
    .await;
    let slow = stack.get("/slow");
    let next = async {
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        stack.get("/over").await
    };
    let (slow, over) = tokio::join!(slow, next);
    assert!(slow.reached_upstream());
    assert!(over.reached_upstream(), "{over:?}");
    assert_eq!(stack.plugin_stat("shadow_error").await, 1);
    assert_eq!(stack.plugin_stat("overloaded").await, 1);
}

#[tokio::test]
async fn a_grpc_deny_in_shadow_passes_and_is_counted() {
    let plugin = config(json!({"protocol": "grpc", "shadow": true}));
    let stack = Stack::builder(&plugin)
        .grpc_auth(|_| {
            GrpcReply::deny(
                Code::PermissionDenied,
                Some(denied(403, "no", &[("x-reason", "policy")])),
            )
        })
        .await
        .start()
        .await;
    let seen = stack.get("/page").await;
    assert!(seen.reached_upstream(), "{seen:?}");
    assert_eq!(seen.header("x-reason"), None);
    assert_eq!(stack.plugin_stat("shadow_denied").await, 1);
}

#[tokio::test]
async fn a_forged_identity_never_rides_a_shadowed_deny_upstream() {
    let plugin = shadow(json!({"allowed_upstream_headers": [{"exact": "x-user-id"}]}));
    let stack = Stack::start(&plugin, |_| Reply::status(403, "no")).await;
    let seen = stack
        .send(
            stack
                .client
                .get(format!("{}/page", stack.base))
                .header("x-user-id", "admin")
                .header("x_user_id", "admin"),
        )
        .await;
    assert!(seen.reached_upstream(), "{seen:?}");
    let upstream = &stack.upstream.seen()[0];
    assert_eq!(
        upstream.header("x-user-id"),
        None,
        "the client's copy was removed"
    );
    assert_eq!(upstream.header("x_user_id"), None);
    assert_eq!(stack.plugin_stat("shadow_denied").await, 1);
}
