//! The fault matrix: every way the auth call can go wrong, failing closed and failing open.
//! Each case must give a defined answer in bounded time, never allow while failing closed, and
//! leave Envoy serving the next request normally. Run with `--nocapture` to see the figures.

use std::time::Duration;

use e2e::{config, Reply, SeenRequest, Stack};
use serde_json::{json, Value};
use workbench::plugin;

const EVEN: &str = "a";
const TIMEOUT_MS: u64 = 500;

/// What a request gets: through to the upstream, or a local reply with this status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Upstream,
    Status(u16),
}

struct Case {
    name: &'static str,
    plugin: Value,
    auth: Option<fn(&SeenRequest) -> Reply>,
    test_variant: bool,
    /// The answer failing open (failing closed is always 403, the default `status_on_error`).
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

        let seen = stack.get("/fault").await;
        let answer = if seen.reached_upstream() {
            Answer::Upstream
        } else {
            Answer::Status(seen.status)
        };
        let mode = if fail_open { "open" } else { "closed" };
        println!(
            "| {} | {mode} | {answer:?} | {} ms |",
            case.name,
            seen.elapsed.as_millis()
        );

        let expected = if fail_open {
            case.open
        } else {
            Answer::Status(403)
        };
        assert_eq!(answer, expected, "{} failing {mode}", case.name);
        if !fail_open {
            assert!(
                stack.upstream.seen().is_empty(),
                "{}: allowed while failing closed",
                case.name
            );
        }
        if fail_open && answer == Answer::Upstream {
            let upstream = &stack.upstream.seen()[0];
            assert_eq!(
                upstream.header("x-envoy-auth-failure-mode-allowed"),
                Some("true")
            );
        }
        let bound = Duration::from_millis(TIMEOUT_MS) + Duration::from_secs(1);
        assert!(
            seen.elapsed < bound,
            "{} failing {mode} took {:?}",
            case.name,
            seen.elapsed
        );

        let next = stack.get("/next").await;
        if case.next_is_normal {
            assert!(
                next.reached_upstream(),
                "{}: the next request was not served: {next:?}",
                case.name
            );
        } else {
            let next_answer = if next.reached_upstream() {
                Answer::Upstream
            } else {
                Answer::Status(next.status)
            };
            assert_eq!(
                next_answer, expected,
                "{}: Envoy answers the next request the same way",
                case.name
            );
        }
        assert_eq!(
            stack.plugin_stat("calls_in_flight").await,
            0,
            "{}",
            case.name
        );
    }
}

fn case(name: &'static str, auth: fn(&SeenRequest) -> Reply) -> Case {
    Case {
        name,
        plugin: json!({}),
        auth: Some(auth),
        test_variant: false,
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
    run(case("resets mid-body", |r| {
        misbehave_on_fault(Reply::ResetMidBody {
            promised: 1000,
            sent: b"aaaaaaaaaa".to_vec(),
        })(r)
    }))
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
        plugin: json!({"max_response_body_bytes": 1024}),
        ..case("body over a 1 KiB limit", |r| {
            misbehave_on_fault(Reply::ok(vec![b'a'; 2048]))(r)
        })
    })
    .await;
}

#[tokio::test]
async fn auth_answer_over_the_default_64_kib_limit() {
    run(case("body over the default 64 KiB", |r| {
        misbehave_on_fault(Reply::ok(vec![b'a'; 64 * 1024 + 2]))(r)
    }))
    .await;
}

#[tokio::test]
async fn auth_cluster_that_does_not_exist() {
    run(Case {
        plugin: json!({"cluster": "no_such_cluster"}),
        next_is_normal: false,
        ..case("unknown cluster", |_| Reply::ok(EVEN))
    })
    .await;
}

#[tokio::test]
async fn dispatch_refused_for_a_missing_pseudo_header() {
    run(Case {
        plugin: json!({"test_switches": {"drop_auth_header": ":authority"}}),
        test_variant: true,
        next_is_normal: false,
        ..case("dispatch refused (no :authority)", |_| Reply::ok(EVEN))
    })
    .await;
}
