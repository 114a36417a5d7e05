//! The fault matrix: every way the auth call can go wrong, failing closed and failing open.
//! Each case must give a defined answer in bounded time, never allow while failing closed, and
//! leave Envoy serving the next request normally. Run with `--nocapture` to see the figures.

use std::time::Duration;

use e2e::{check_fault, config, Answer, Reply, SeenRequest, Stack};
use serde_json::{json, Value};
use workbench::plugin;

const EVEN: &str = "a";
const TIMEOUT_MS: u64 = 500;

struct Case {
    name: &'static str,
    plugin: Value,
    auth: Option<fn(&SeenRequest) -> Reply>,
    test_variant: bool,
    /// The answer failing closed: the default `status_on_error` (403) for a fault of the auth
    /// service.
    closed: Answer,
    /// The answer failing open.
    open: Answer,
    /// Whether the next request is served normally; false when the fault is the configuration.
    next_is_normal: bool,
}

/// The auth service misbehaves on `/fault` and answers normally (even: allow) to anything else.
fn misbehave_on_fault(reply: Reply) -> impl Fn(&SeenRequest) -> Reply {
    move |request| {
        if request.path == "/fault" {
            reply.clone()
        } else {
            Reply::ok(EVEN)
        }
    }
}

async fn run(case: Case) {
    for fail_open in [false, true] {
        let mut plugin = case.plugin.clone();
        plugin["timeout_ms"] = json!(TIMEOUT_MS);
        plugin["failure_mode_allow"] = json!(fail_open);
        let mut builder = Stack::builder(&config(plugin));
        if let Some(auth) = case.auth {
            builder = builder.auth(auth).await;
        }
        if case.test_variant {
            builder = builder.wasm(plugin::built_test_variant().unwrap());
        }
        let stack = builder.start().await;
        check_fault(
            &stack,
            case.name,
            fail_open,
            case.closed,
            case.open,
            case.next_is_normal,
            Duration::from_millis(TIMEOUT_MS),
        )
        .await;
    }
}

fn case(name: &'static str, auth: fn(&SeenRequest) -> Reply) -> Case {
    Case {
        name,
        plugin: json!({"decision": "fnv_parity"}),
        auth: Some(auth),
        test_variant: false,
        closed: Answer::Status(403),
        open: Answer::Upstream,
        next_is_normal: true,
    }
}

#[tokio::test]
async fn auth_service_refuses_the_connection() {
    run(Case {
        auth: None,
        next_is_normal: false,
        ..case("refused connection", |_| Reply::ok(EVEN))
    })
    .await;
}

#[tokio::test]
async fn auth_service_accepts_and_never_answers() {
    run(case("never answers", |r| {
        misbehave_on_fault(Reply::Hang)(r)
    }))
    .await;
}

#[tokio::test]
async fn auth_service_answers_slower_than_the_timeout() {
    run(case("slower than the timeout", |r| {
        misbehave_on_fault(Reply::ok(EVEN).after(Duration::from_secs(3)))(r)
    }))
    .await;
}

#[tokio::test]
async fn auth_service_resets_mid_body() {
    // The service is up and failed on this request: closed, whatever failure_mode_allow says.
    run(Case {
        open: Answer::Status(403),
        ..case("resets mid-body", |r| {
            misbehave_on_fault(Reply::ResetMidBody {
                promised: 1000,
                sent: b"aaaaaaaaaa".to_vec(),
            })(r)
        })
    })
    .await;
}

#[tokio::test]
async fn auth_service_answers_5xx() {
    run(case("answers 503", |r| {
        misbehave_on_fault(Reply::status(503, EVEN))(r)
    }))
    .await;
}

#[tokio::test]
async fn auth_service_answers_an_empty_body() {
    // Not an error: an empty body is a verdict (odd hash), so it denies even when failing open.
    run(Case {
        open: Answer::Status(403),
        ..case("empty body", |r| misbehave_on_fault(Reply::ok(""))(r))
    })
    .await;
}

#[tokio::test]
async fn auth_answer_over_the_configured_body_limit() {
    run(Case {
        plugin: json!({"decision": "fnv_parity", "max_response_body_bytes": 1024}),
        // An answer the plugin cannot read is not an outage: closed, even failing open.
        open: Answer::Status(403),
        ..case("body over a 1 KiB limit", |r| {
            misbehave_on_fault(Reply::ok(vec![b'a'; 2048]))(r)
        })
    })
    .await;
}

#[tokio::test]
async fn auth_answer_over_the_default_64_kib_limit() {
    run(Case {
        open: Answer::Status(403),
        ..case("body over the default 64 KiB", |r| {
            misbehave_on_fault(Reply::ok(vec![b'a'; 64 * 1024 + 2]))(r)
        })
    })
    .await;
}

#[tokio::test]
async fn auth_cluster_that_does_not_exist() {
    run(Case {
        plugin: json!({"decision": "fnv_parity", "cluster": "no_such_cluster"}),
        // Envoy refuses the call, which the plugin cannot tell from one a client made
        // unsendable: 503, never the failure policy.
        closed: Answer::Status(503),
        open: Answer::Status(503),
        next_is_normal: false,
        ..case("unknown cluster", |_| Reply::ok(EVEN))
    })
    .await;
}

#[tokio::test]
async fn dispatch_refused_for_a_missing_pseudo_header() {
    run(Case {
        plugin: json!({"decision": "fnv_parity", "test_switches": {"drop_auth_header": ":authority"}}),
        test_variant: true,
        closed: Answer::Status(503),
        open: Answer::Status(503),
        next_is_normal: false,
        ..case("dispatch refused (no :authority)", |_| Reply::ok(EVEN))
    })
    .await;
}
