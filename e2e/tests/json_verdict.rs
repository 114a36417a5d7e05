//! Verdicts read from an answer's JSON body (`decision: {"json": pointer}`) in a real Envoy, in
//! both shells: OPA's REST answer shape, values copied onto the request with the client's own
//! copies removed, and every unreadable answer failing closed.

use e2e::{config, Reply, SeenRequest, Stack};
use serde_json::json;

fn plugin(fail_open: bool) -> String {
    config(json!({
        "decision": {
            "json": "/result/allow",
            "headers_from_json": [{"pointer": "/result/user", "header": "x-user-id"}]
        },
        "failure_mode_allow": fail_open,
    }))
}

/// Answers as OPA's REST API does, by the request's path.
fn opa(request: &SeenRequest) -> Reply {
    let body = match request.path.as_str() {
        "/allow" => r#"{"result": {"allow": true, "user": "alice"}}"#.to_owned(),
        "/deny" => r#"{"result": {"allow": false}}"#.to_owned(),
        "/string" => r#"{"result": {"allow": "true"}}"#.to_owned(),
        "/missing" => r#"{"result": {}}"#.to_owned(),
        "/twice" => r#"{"result": {"allow": false, "allow": true}}"#.to_owned(),
        "/not-json" => "allow".to_owned(),
        "/huge" => format!(
            r#"{{"result": {{"allow": true, "pad": "{}"}}}}"#,
            "x".repeat(5 << 20)
        ),
        "/injected-header" => {
            r#"{"result": {"allow": true, "user": "alice\r\nx-admin: 1"}}"#.to_owned()
        }
        _ => r#"{"result": {"allow": false}}"#.to_owned(),
    };
    Reply::ok(body).header("content-type", "application/json")
}

#[tokio::test]
async fn true_allows_with_the_values_it_names_and_false_denies() {
    let stack = Stack::start(&plugin(false), opa).await;
    let forged = stack
        .client
        .get(format!("{}/allow", stack.base))
        .header("x-user-id", "mallory")
        .header("x_user_id", "mallory");
    let allowed = stack.send(forged).await;
    assert!(allowed.reached_upstream(), "{allowed:?}");
    let upstream = &stack.upstream.seen()[0];
    assert_eq!(
        upstream.header_all("x-user-id"),
        vec!["alice"],
        "the answer's, never the client's"
    );
    assert_eq!(
        upstream.header("x_user_id"),
        None,
        "the underscore copy is removed too"
    );
    let denied = stack.get("/deny").await;
    assert_eq!(
        (denied.status, denied.body.as_str()),
        (403, "access forbidden")
    );
    assert_eq!(stack.plugin_stat("denied").await, 1);
}

#[tokio::test]
async fn unreadable_answers_fail_closed_even_when_failing_open() {
    for fail_open in [false, true] {
        let stack = Stack::start(&plugin(fail_open), opa).await;
        for path in [
            "/string",
            "/missing",
            "/twice",
            "/not-json",
            "/huge",
            "/injected-header",
        ] {
            let seen = stack.get(path).await;
            assert_eq!(seen.status, 403, "{path} (fail_open {fail_open}): {seen:?}");
        }
        assert!(stack.upstream.seen().is_empty());
        assert_eq!(stack.plugin_stat("error").await, 6);
        assert_eq!(stack.plugin_stat("failure_mode_allowed").await, 0);
    }
}
