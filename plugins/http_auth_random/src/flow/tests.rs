//! The request flow against a mock host: event in, effects out.
//! Test code only: its module is declared under #[cfg(test)].

use std::rc::Rc;
use std::time::Duration;

use super::*;
use crate::mock_host::{Effect, MockHost};

// fnv1a("a") is even, fnv1a("b") is odd.
const EVEN: &[u8] = b"a";
const ODD: &[u8] = b"b";

const REQUEST: &[(&str, &str)] = &[
    (":authority", "shop.example"),
    (":path", "/uuid"),
    (":method", "GET"),
    ("x-request-id", "r1"),
];

fn flow(json: &str) -> Flow {
    Flow::new(1, Rc::new(Config::parse(json.as_bytes()).unwrap()))
}

/// Runs a request through headers and the call's answer; returns the flow for inspection.
fn run(json: &str, host: &MockHost) -> Flow {
    let mut flow = flow(json);
    assert_eq!(flow.on_request_headers(host), Action::Pause);
    let headers = host.answer_headers.len();
    flow.on_call_response(host, host.last_token(), headers, host.answer_body.len());
    flow
}

fn reply(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Effect {
    Effect::Reply {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        body: body.to_vec(),
    }
}

fn dispatched(host: &MockHost) -> Vec<(String, String)> {
    match host.effects().into_iter().next() {
        Some(Effect::Dispatch { headers, .. }) => headers,
        other => panic!("expected a dispatch first, got {other:?}"),
    }
}

fn last(host: &MockHost) -> Effect {
    host.effects().last().cloned().unwrap()
}

#[test]
fn seed_sends_every_header_to_httpbin_with_50s_and_pauses() {
    let host = MockHost::with_request(REQUEST);
    let mut flow = flow("");
    assert_eq!(flow.on_request_headers(&host), Action::Pause);
    match &host.effects()[0] {
        Effect::Dispatch {
            cluster,
            headers,
            timeout,
        } => {
            assert_eq!(cluster, "httpbin");
            assert_eq!(*timeout, Duration::from_secs(50));
            for (name, value) in REQUEST {
                assert!(
                    headers.contains(&(name.to_string(), value.to_string())),
                    "{name}"
                );
            }
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(flow.state(), State::AwaitingAuth { .. }));
    assert_eq!(host.in_flight.get(), 1);
}

#[test]
fn even_answer_resumes_the_request() {
    let host = MockHost::with_request(REQUEST).answering("200", &[], EVEN);
    let flow = run("", &host);
    assert_eq!(last(&host), Effect::Resume);
    assert_eq!(*flow.state(), State::Allowed);
    assert_eq!(host.count_of(Counter::Ok), 1);
    assert_eq!(host.in_flight.get(), 0);
    assert!(
        host.latencies.borrow().is_empty(),
        "no histogram unless asked for"
    );
}

#[test]
fn the_latency_histogram_is_recorded_when_asked_for() {
    let host = MockHost::with_request(REQUEST).answering("200", &[], EVEN);
    run(r#"{"latency_histogram": true}"#, &host);
    assert_eq!(
        *host.latencies.borrow(),
        vec![3],
        "the mock clock moves 3 ms per read"
    );
}

#[test]
fn odd_answer_denies_with_the_seed_reply() {
    let host = MockHost::with_request(REQUEST).answering("200", &[], ODD);
    let flow = run("", &host);
    assert_eq!(
        last(&host),
        reply(
            403,
            &[("powered-by", "http_auth_random")],
            b"access forbidden"
        )
    );
    assert_eq!(*flow.state(), State::Denied);
    assert_eq!(host.count_of(Counter::Denied), 1);
}

#[test]
fn empty_answer_denies_without_reading_a_body() {
    let host = MockHost::with_request(REQUEST).answering("200", &[], b"");
    run("", &host);
    assert!(matches!(last(&host), Effect::Reply { status: 403, .. }));
    assert_eq!(host.body_reads.get(), 0);
}

#[test]
fn server_errors_fail_closed_and_are_never_hashed() {
    // Envoy's own outage answer; its body would hash to something, half the time even.
    for body in [EVEN, ODD] {
        let host = MockHost::with_request(REQUEST).answering("503", &[], body);
        let flow = run("", &host);
        assert_eq!(last(&host), reply(403, &[], b""));
        assert_eq!(*flow.state(), State::FailedClosed);
        assert_eq!(host.count_of(Counter::Error), 1);
        assert_eq!(host.body_reads.get(), 0);
    }
}

#[test]
fn a_failed_call_fails_closed_with_status_on_error() {
    let host = MockHost::with_request(REQUEST);
    let mut flow = flow(r#"{"status_on_error": 503}"#);
    flow.on_request_headers(&host);
    flow.on_call_response(&host, host.last_token(), 0, 0);
    assert_eq!(last(&host), reply(503, &[], b""));
    assert_eq!(host.in_flight.get(), 0);
}

#[test]
fn failure_mode_allow_resumes_with_the_marker_header() {
    let host = MockHost::with_request(REQUEST).answering("504", &[], b"upstream request timeout");
    let flow = run(r#"{"failure_mode_allow": true}"#, &host);
    let effects = host.effects();
    assert_eq!(
        effects[1..],
        [
            Effect::SetRequestHeader(FAILURE_MODE_ALLOWED_HEADER.into(), b"true".to_vec()),
            Effect::Resume
        ]
    );
    assert_eq!(*flow.state(), State::FailedOpen);
    assert_eq!(host.count_of(Counter::Error), 1);
    assert_eq!(host.count_of(Counter::FailureModeAllowed), 1);
}

#[test]
fn failure_mode_allow_can_leave_the_header_out() {
    let host = MockHost::with_request(REQUEST).answering("500", &[], b"");
    run(
        r#"{"failure_mode_allow": true, "failure_mode_allow_header_add": false}"#,
        &host,
    );
    assert_eq!(host.effects()[1..], [Effect::Resume]);
}

#[test]
fn refused_dispatch_goes_to_the_failure_policy_in_the_headers_callback() {
    let host = MockHost::with_request(REQUEST).failing("dispatch");
    let mut closed = flow("");
    assert_eq!(closed.on_request_headers(&host), Action::Pause);
    assert_eq!(host.effects(), vec![reply(403, &[], b"")]);
    assert_eq!(host.in_flight.get(), 0);

    let host = MockHost::with_request(REQUEST).failing("dispatch");
    let mut open = flow(r#"{"failure_mode_allow": true}"#);
    assert_eq!(open.on_request_headers(&host), Action::Continue);
    assert_eq!(
        host.effects(),
        vec![Effect::SetRequestHeader(
            FAILURE_MODE_ALLOWED_HEADER.into(),
            b"true".to_vec()
        )]
    );
}

#[test]
fn failing_host_calls_go_to_the_failure_policy() {
    for call in [
        "request_headers",
        "call_response_header",
        "call_response_body",
    ] {
        let host = MockHost::with_request(REQUEST)
            .answering("200", &[], EVEN)
            .failing(call);
        let mut flow = flow("");
        flow.on_request_headers(&host);
        flow.on_call_response(&host, host.last_token(), 1, 1);
        assert_eq!(last(&host), reply(403, &[], b""), "{call}");
        assert_eq!(*flow.state(), State::FailedClosed, "{call}");
    }
}

#[test]
fn an_answer_over_the_body_limit_is_an_error() {
    let host = MockHost::with_request(REQUEST).answering("200", &[], &[b'a'; 11]);
    run(r#"{"max_response_body_bytes": 10}"#, &host);
    assert_eq!(last(&host), reply(403, &[], b""));
    assert_eq!(host.body_reads.get(), 0);
}

#[test]
fn missing_status_is_an_error() {
    let mut host = MockHost::with_request(REQUEST);
    host.answer_headers = crate::mock_host::headers(&[("content-type", "text/plain")]);
    host.answer_body = EVEN.to_vec();
    run("", &host);
    assert_eq!(last(&host), reply(403, &[], b""));
}

#[test]
fn body_and_trailers_wait_for_the_verdict() {
    let host = MockHost::with_request(REQUEST).answering("200", &[], EVEN);
    let mut flow = flow("");
    assert_eq!(flow.on_request_body(), Action::Continue);
    flow.on_request_headers(&host);
    assert_eq!(flow.on_request_body(), Action::Pause);
    assert_eq!(flow.on_request_trailers(), Action::Pause);
    flow.on_call_response(&host, host.last_token(), 1, 1);
    assert_eq!(flow.on_request_body(), Action::Continue);
    assert_eq!(flow.on_request_trailers(), Action::Continue);
}

#[test]
fn a_denied_request_never_releases_its_body() {
    let host = MockHost::with_request(REQUEST).answering("200", &[], ODD);
    let flow = run("", &host);
    assert_eq!(flow.on_request_body(), Action::Pause);
}

#[test]
fn only_the_first_answer_to_the_pending_call_counts() {
    let host = MockHost::with_request(REQUEST).answering("200", &[], ODD);
    let mut flow = flow("");
    flow.on_request_headers(&host);
    let token = host.last_token();
    flow.on_call_response(&host, token + 100, 1, 1);
    assert_eq!(host.effects().len(), 1, "an unknown token is ignored");
    flow.on_call_response(&host, token, 1, 1);
    flow.on_call_response(&host, token, 1, 1);
    let replies = host
        .effects()
        .iter()
        .filter(|e| matches!(e, Effect::Reply { .. }))
        .count();
    assert_eq!(replies, 1);
    assert_eq!(host.in_flight.get(), 0);
}

#[test]
fn a_stream_that_ends_while_pending_leaves_nothing_in_flight() {
    let host = MockHost::with_request(REQUEST).answering("200", &[], EVEN);
    let mut flow = flow("");
    flow.on_request_headers(&host);
    flow.on_done(&host);
    assert_eq!(host.in_flight.get(), 0);
    assert_eq!(*flow.state(), State::Ended);
    flow.on_call_response(&host, host.last_token(), 1, 1);
    assert_eq!(
        host.effects().len(),
        1,
        "nothing happens after the stream is gone"
    );
    flow.on_done(&host);
    assert_eq!(host.in_flight.get(), 0);
}

#[test]
fn headers_are_read_once_per_request() {
    let host = MockHost::with_request(REQUEST);
    let mut flow = flow("");
    flow.on_request_headers(&host);
    assert_eq!(
        flow.on_request_headers(&host),
        Action::Pause,
        "still undecided"
    );
    assert_eq!(host.effects().len(), 1);
}

#[test]
fn non_utf8_header_that_must_be_sent_is_a_bad_request() {
    let mut host = MockHost::with_request(REQUEST);
    host.request.push(("x-odd".into(), vec![0xff]));
    let mut flow = flow(r#"{"failure_mode_allow": true}"#);
    assert_eq!(flow.on_request_headers(&host), Action::Pause);
    assert_eq!(host.effects(), vec![reply(400, &[], b"")]);
    assert_eq!(host.count_of(Counter::Denied), 1);
}

#[test]
fn status_rule_allows_200_without_reading_the_body() {
    let host = MockHost::with_request(REQUEST).answering("200", &[], ODD);
    run(r#"{"decision": "status"}"#, &host);
    assert_eq!(last(&host), Effect::Resume);
    assert_eq!(host.body_reads.get(), 0);
}

#[test]
fn status_rule_relays_the_denial() {
    let host = MockHost::with_request(REQUEST).answering(
        "401",
        &[
            ("www-authenticate", "Bearer"),
            ("content-length", "6"),
            ("x-reason", "expired"),
        ],
        b"log in",
    );
    run(r#"{"decision": "status"}"#, &host);
    assert_eq!(
        last(&host),
        reply(
            401,
            &[("www-authenticate", "Bearer"), ("x-reason", "expired")],
            b"log in"
        )
    );
}

#[test]
fn status_rule_relays_only_allowed_client_headers() {
    let host = MockHost::with_request(REQUEST).answering(
        "302",
        &[
            ("location", "/login"),
            ("x-reason", "expired"),
            ("x-trace", "t"),
        ],
        b"",
    );
    run(
        r#"{"decision": "status", "allowed_client_headers": [{"exact": "x-trace"}]}"#,
        &host,
    );
    assert_eq!(
        last(&host),
        reply(302, &[("location", "/login"), ("x-trace", "t")], b"")
    );
}

#[test]
fn allowed_answers_pass_headers_upstream_and_to_the_client() {
    let host = MockHost::with_request(REQUEST).answering(
        "200",
        &[
            ("x-user-id", "42"),
            ("x-trace", "t2"),
            ("set-cookie", "s=1"),
            ("x-other", "no"),
        ],
        b"",
    );
    let json = r#"{
        "decision": "status",
        "allowed_upstream_headers": [{"exact": "x-user-id"}],
        "allowed_upstream_headers_to_append": [{"exact": "x-trace"}],
        "allowed_client_headers_on_success": [{"exact": "set-cookie"}]
    }"#;
    let mut flow = run(json, &host);
    assert_eq!(
        host.effects()[1..],
        [
            Effect::SetRequestHeader("x-user-id".into(), b"42".to_vec()),
            Effect::AddRequestHeader("x-trace".into(), b"t2".to_vec()),
            Effect::Resume
        ]
    );
    assert_eq!(flow.on_response_headers(&host), Action::Continue);
    assert_eq!(
        last(&host),
        Effect::AddResponseHeader("set-cookie".into(), b"s=1".to_vec())
    );
}

#[test]
fn client_copies_of_trusted_headers_are_removed_before_the_call() {
    let mut host = MockHost::with_request(REQUEST);
    host.request.push(("x-user-id".into(), b"forged".to_vec()));
    host.request
        .push(("x-user-id".into(), b"forged-again".to_vec()));
    let mut flow = flow(r#"{"allowed_upstream_headers": [{"exact": "x-user-id"}]}"#);
    flow.on_request_headers(&host);
    assert_eq!(
        host.effects()[0],
        Effect::RemoveRequestHeader("x-user-id".into())
    );
    assert_eq!(host.effects().len(), 2, "removed once, then dispatched");

    let host = MockHost::with_request(&[(":path", "/"), ("x-user-id", "forged")]);
    let json = r#"{"allowed_upstream_headers": [{"exact": "x-user-id"}], "strip_client_upstream_headers": false}"#;
    flow_of(json).on_request_headers(&host);
    assert!(matches!(host.effects()[0], Effect::Dispatch { .. }));
}

#[test]
fn exempt_requests_lose_forged_identities_too() {
    let json = r#"{"exempt": {"paths": ["/healthz"]}, "allowed_upstream_headers": [{"exact": "x-user-id"}]}"#;
    let host = MockHost::with_request(&[
        (":path", "/healthz"),
        (":method", "GET"),
        ("x-user-id", "admin"),
    ]);
    let mut flow = flow(json);
    assert_eq!(flow.on_request_headers(&host), Action::Continue);
    assert_eq!(
        host.effects(),
        vec![Effect::RemoveRequestHeader("x-user-id".into())]
    );
    assert_eq!(host.count_of(Counter::Disabled), 1);
}

fn flow_of(json: &str) -> Flow {
    flow(json)
}

#[test]
fn exempt_requests_skip_the_call_and_are_counted() {
    let json = r#"{"exempt": {"paths": ["/healthz"], "methods": ["OPTIONS"]}}"#;
    for request in [
        &[(":path", "/healthz"), (":method", "GET")][..],
        &[(":path", "/orders"), (":method", "OPTIONS")][..],
    ] {
        let host = MockHost::with_request(request);
        let mut flow = flow(json);
        assert_eq!(flow.on_request_headers(&host), Action::Continue);
        assert!(host.effects().is_empty());
        assert_eq!(host.count_of(Counter::Disabled), 1);
        assert_eq!(*flow.state(), State::Exempt);
    }
    let host = MockHost::with_request(&[(":path", "/orders"), (":method", "GET")]);
    assert_eq!(flow(json).on_request_headers(&host), Action::Pause);
}

#[test]
fn auth_request_shape_follows_the_configuration() {
    let host = MockHost::with_request(REQUEST);
    let json =
        r#"{"cluster": "authz", "path": "/check", "allowed_headers": [], "timeout_ms": 200}"#;
    flow(json).on_request_headers(&host);
    match &host.effects()[0] {
        Effect::Dispatch {
            cluster, timeout, ..
        } => {
            assert_eq!(cluster, "authz");
            assert_eq!(*timeout, Duration::from_millis(200));
        }
        other => panic!("{other:?}"),
    }
    let headers = dispatched(&host);
    assert!(headers.contains(&(":path".into(), "/check".into())));
    assert!(!headers.iter().any(|(n, _)| n == "x-request-id"));
}
