//! The request flow against a mock host: event in, effects out.
//! Test code only: its module is declared under #[cfg(test)].

use std::rc::Rc;
use std::time::Duration;

use super::*;
use crate::host::{BodyAction, Failure};
use crate::metrics::{Counter, Stats};
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

/// One stream and its worker's state for one configuration, driven as the worker drives them.
struct T {
    flow: Flow,
    root: Root,
}

impl T {
    fn new(json: &str) -> T {
        let config = Rc::new(Config::parse(json.as_bytes()).unwrap());
        T {
            flow: Flow::new(1, Rc::clone(&config)),
            root: Root::new(config, Stats::default(), 0),
        }
    }

    fn headers(&mut self, host: &MockHost) -> Action {
        self.flow.on_request_headers(host, &mut self.root, true)
    }

    /// An answer, as the worker delivers it: the call is taken off the outstanding list, its
    /// answer read, then applied.
    fn answer(&mut self, host: &MockHost, token: u32, num_headers: usize, body_size: usize) {
        deliver(
            host,
            &mut self.root,
            &mut self.flow,
            token,
            num_headers,
            body_size,
        );
    }

    fn body(&mut self) -> BodyAction {
        let host = MockHost::default();
        self.flow.on_request_body(&host, &mut self.root, 1, false)
    }

    fn trailers(&mut self, host: &MockHost) -> Action {
        self.flow.on_request_trailers(host, &mut self.root)
    }

    fn response(&mut self, host: &MockHost) -> Action {
        self.flow.on_response_headers(host, &mut self.root)
    }

    fn done(&mut self) {
        self.flow.on_done(&mut self.root);
    }

    fn state(&self) -> &State {
        self.flow.state()
    }

    fn count(&self, counter: Counter) -> u64 {
        self.root.stats().total(counter)
    }

    fn in_flight(&self) -> usize {
        self.root.calls_in_flight()
    }
}

/// What the worker does with an answer, for one stream.
fn deliver(
    host: &MockHost,
    root: &mut Root,
    flow: &mut Flow,
    token: u32,
    num_headers: usize,
    body_size: usize,
) {
    if let Some(call) = root.finish_call(token) {
        let answer = crate::protocol::http::read(host, &call.config, num_headers, body_size);
        flow.on_outcome(host, root, token, &answer.outcome);
    }
}

/// Runs a request through headers and the call's answer; returns the flow for inspection.
fn run(json: &str, host: &MockHost) -> T {
    let mut flow = T::new(json);
    assert_eq!(flow.headers(host), Action::Pause);
    let headers = host.answer_headers.len();
    flow.answer(host, host.last_token(), headers, host.answer_body.len());
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
    match host
        .effects()
        .into_iter()
        .find(|e| matches!(e, Effect::Dispatch { .. }))
    {
        Some(Effect::Dispatch { headers, .. }) => headers,
        other => panic!("expected a dispatch, got {other:?}"),
    }
}

fn last(host: &MockHost) -> Effect {
    host.effects().last().cloned().unwrap()
}

#[test]
fn seed_sends_every_header_to_httpbin_with_50s_and_pauses() {
    let host = MockHost::with_request(REQUEST);
    let mut flow = T::new("");
    assert_eq!(flow.headers(&host), Action::Pause);
    match &host.effects()[0] {
        Effect::Dispatch {
            cluster,
            headers,
            timeout,
            ..
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
    assert_eq!(flow.in_flight() as i64, 1);
}

#[test]
fn even_answer_resumes_the_request() {
    let host = MockHost::with_request(REQUEST).answering("200", &[], EVEN);
    let flow = run("", &host);
    assert_eq!(last(&host), Effect::Resume);
    assert_eq!(*flow.state(), State::Allowed);
    assert_eq!(flow.count(Counter::Ok), 1);
    assert_eq!(flow.in_flight() as i64, 0);
    assert_eq!(
        host.clock.get(),
        0,
        "no clock read unless the histogram is asked for"
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
    assert_eq!(flow.count(Counter::Denied), 1);
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
    // Envoy's own outage answer; its body would hash to something, half the time even. A 503's
    // body is read only to tell Envoy's own from the service's.
    for (status, body) in [("503", EVEN), ("503", ODD), ("500", EVEN), ("500", ODD)] {
        let host = MockHost::with_request(REQUEST).answering(status, &[], body);
        let flow = run("", &host);
        assert_eq!(last(&host), reply(403, &[], b""));
        assert_eq!(*flow.state(), State::FailedClosed);
        assert_eq!(flow.count(Counter::Error), 1);
        assert_eq!(host.body_reads.get(), u32::from(status == "503"));
    }
}

#[test]
fn only_an_outage_reaches_failure_mode_allow() {
    let open = r#"{"decision": "fnv_parity", "failure_mode_allow": true}"#;
    // Up, and failing on this request: closed, whatever failure_mode_allow says.
    let reset =
        b"upstream connect error or disconnect/reset before headers. reset reason: remote reset";
    for (status, body) in [
        ("500", &b""[..]),
        ("501", b""),
        ("502", b""),
        ("503", reset),
    ] {
        let host = MockHost::with_request(REQUEST).answering(status, &[], body);
        let flow = run(open, &host);
        assert_eq!(*flow.state(), State::FailedClosed, "{status}");
        assert_eq!(flow.count(Counter::FailureModeAllowed), 0);
    }
    let mut flow = T::new(open);
    let host = MockHost::with_request(REQUEST);
    flow.headers(&host);
    flow.answer(&host, host.last_token(), 0, 0);
    assert_eq!(*flow.state(), State::FailedClosed, "a reset call");
    // Down or unreachable: the failure policy.
    let refused = b"upstream connect error or disconnect/reset before headers. reset reason: remote connection failure";
    for (status, body) in [("503", &refused[..]), ("503", b"busy"), ("504", b"")] {
        let host = MockHost::with_request(REQUEST).answering(status, &[], body);
        let flow = run(open, &host);
        assert_eq!(*flow.state(), State::FailedOpen, "{status}");
    }
}

#[test]
fn a_failed_call_fails_closed_with_status_on_error() {
    let host = MockHost::with_request(REQUEST);
    let mut flow = T::new(r#"{"decision": "fnv_parity", "status_on_error": 503}"#);
    flow.headers(&host);
    flow.answer(&host, host.last_token(), 0, 0);
    assert_eq!(last(&host), reply(503, &[], b""));
    assert_eq!(flow.in_flight() as i64, 0);
}

#[test]
fn failure_mode_allow_resumes_with_the_marker_header() {
    let host = MockHost::with_request(REQUEST).answering("504", &[], b"upstream request timeout");
    let flow = run(
        r#"{"decision": "fnv_parity", "failure_mode_allow": true}"#,
        &host,
    );
    let effects = host.effects();
    assert_eq!(
        effects[1..],
        [
            Effect::SetRequestHeader(FAILURE_MODE_ALLOWED_HEADER.into(), b"true".to_vec()),
            Effect::Resume
        ]
    );
    assert_eq!(*flow.state(), State::FailedOpen);
    assert_eq!(flow.count(Counter::Error), 1);
    assert_eq!(flow.count(Counter::FailureModeAllowed), 1);
}

#[test]
fn failure_mode_allow_can_leave_the_header_out() {
    let host = MockHost::with_request(REQUEST).answering("504", &[], b"");
    run(
        r#"{"decision": "fnv_parity", "failure_mode_allow": true, "failure_mode_allow_header_add": false}"#,
        &host,
    );
    assert_eq!(host.effects()[1..], [Effect::Resume]);
}

#[test]
fn a_refused_dispatch_is_503_never_the_failure_policy() {
    // The host refuses a call it cannot send (an unknown cluster, a header map over its
    // limits): a client may have caused it, so failing open must not let it through.
    for json in [
        "",
        r#"{"decision": "fnv_parity", "failure_mode_allow": true}"#,
    ] {
        let host = MockHost::with_request(REQUEST).failing("dispatch");
        let mut flow = T::new(json);
        assert_eq!(flow.headers(&host), Action::Pause, "{json}");
        assert_eq!(
            host.effects(),
            vec![reply(503, &[], UNAVAILABLE_BODY)],
            "{json}"
        );
        assert_eq!(flow.in_flight(), 0);
        assert_eq!(flow.count(Counter::Error), 1);
        assert_eq!(flow.count(Counter::FailureModeAllowed), 0);
        assert_eq!(
            flow.root.held_bytes(),
            STREAM_COST_BYTES,
            "held until the stream is deleted"
        );
    }
}

#[test]
fn failing_host_calls_go_to_the_failure_policy() {
    for call in [
        "request_headers",
        "call_response_headers",
        "call_response_body",
    ] {
        let host = MockHost::with_request(REQUEST)
            .answering("200", &[], EVEN)
            .failing(call);
        let mut flow = T::new("");
        flow.headers(&host);
        flow.answer(&host, host.last_token(), 1, 1);
        assert_eq!(last(&host), reply(403, &[], b""), "{call}");
        assert_eq!(*flow.state(), State::FailedClosed, "{call}");
    }
}

#[test]
fn an_answer_over_the_body_limit_is_an_error() {
    let host = MockHost::with_request(REQUEST).answering("200", &[], &[b'a'; 11]);
    run(
        r#"{"decision": "fnv_parity", "max_response_body_bytes": 10}"#,
        &host,
    );
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
    let mut flow = T::new("");
    assert_eq!(flow.body(), BodyAction::Continue);
    flow.headers(&host);
    // Held under flow control, not buffered: an upload larger than Envoy's buffer waits for
    // the verdict instead of getting a 413.
    assert_eq!(flow.body(), BodyAction::Watermark);
    assert_eq!(flow.trailers(&host), Action::Pause);
    flow.answer(&host, host.last_token(), 1, 1);
    assert_eq!(flow.body(), BodyAction::Continue);
    assert_eq!(flow.trailers(&host), Action::Continue);
}

#[test]
fn a_denied_request_never_releases_its_body() {
    let host = MockHost::with_request(REQUEST).answering("200", &[], ODD);
    let mut flow = run("", &host);
    assert_eq!(flow.body(), BodyAction::Watermark);
}

#[test]
fn only_the_first_answer_to_the_pending_call_counts() {
    let host = MockHost::with_request(REQUEST).answering("200", &[], ODD);
    let mut flow = T::new("");
    flow.headers(&host);
    let token = host.last_token();
    flow.answer(&host, token + 100, 1, 1);
    assert_eq!(host.effects().len(), 1, "an unknown token is ignored");
    flow.answer(&host, token, 1, 1);
    flow.answer(&host, token, 1, 1);
    let replies = host
        .effects()
        .iter()
        .filter(|e| matches!(e, Effect::Reply { .. }))
        .count();
    assert_eq!(replies, 1);
    assert_eq!(flow.in_flight() as i64, 0);
}

#[test]
fn a_stream_that_ends_while_pending_leaves_an_orphan_counted_until_its_answer() {
    let host = MockHost::with_request(REQUEST).answering("200", &[], EVEN);
    let mut flow = T::new("");
    flow.headers(&host);
    flow.done();
    assert_eq!(*flow.state(), State::Ended);
    assert_eq!(
        (flow.in_flight(), flow.root.orphaned_calls()),
        (1, 1),
        "the host cannot cancel the call: it still counts"
    );
    flow.answer(&host, host.last_token(), 1, 1);
    assert_eq!(
        host.effects().len(),
        1,
        "nothing happens after the stream is gone"
    );
    assert_eq!(flow.in_flight(), 0, "counted off when its answer arrives");
    flow.flow.on_delete(&mut flow.root);
    assert_eq!(flow.root.held_bytes(), 0);
}

#[test]
fn headers_are_read_once_per_request() {
    let host = MockHost::with_request(REQUEST);
    let mut flow = T::new("");
    flow.headers(&host);
    assert_eq!(flow.headers(&host), Action::Pause, "still undecided");
    assert_eq!(host.effects().len(), 1);
}

#[test]
fn non_utf8_header_that_must_be_sent_is_a_bad_request() {
    let mut host = MockHost::with_request(REQUEST);
    host.request.push(("x-odd".into(), vec![0xff]));
    let mut flow = T::new(r#"{"decision": "fnv_parity", "failure_mode_allow": true}"#);
    assert_eq!(flow.headers(&host), Action::Pause);
    assert_eq!(host.effects(), vec![reply(400, &[], b"")]);
    assert_eq!(flow.count(Counter::Denied), 1);
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
    assert_eq!(flow.response(&host), Action::Continue);
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
    let mut flow = T::new(
        r#"{"decision": "fnv_parity", "allowed_upstream_headers": [{"exact": "x-user-id"}]}"#,
    );
    flow.headers(&host);
    assert_eq!(
        host.effects()[0],
        Effect::RemoveRequestHeader("x-user-id".into())
    );
    assert_eq!(host.effects().len(), 2, "removed once, then dispatched");
    assert!(
        !dispatched(&host).iter().any(|(n, _)| n == "x-user-id"),
        "a forged identity never reaches the auth service either"
    );

    let host = MockHost::with_request(&[
        (":authority", "a"),
        (":method", "GET"),
        (":path", "/"),
        ("x-user-id", "forged"),
    ]);
    let json = r#"{"decision": "fnv_parity", "allowed_upstream_headers": [{"exact": "x-user-id"}], "strip_client_upstream_headers": false}"#;
    T::new(json).headers(&host);
    assert!(matches!(host.effects()[0], Effect::Dispatch { .. }));
}

#[test]
fn exempt_requests_lose_forged_identities_too() {
    let json = r#"{"decision": "fnv_parity", "exempt": {"paths": ["/healthz"]}, "allowed_upstream_headers": [{"exact": "x-user-id"}]}"#;
    let host = MockHost::with_request(&[
        (":path", "/healthz"),
        (":method", "GET"),
        ("x-user-id", "admin"),
    ]);
    let mut flow = T::new(json);
    assert_eq!(flow.headers(&host), Action::Continue);
    assert_eq!(
        host.effects(),
        vec![Effect::RemoveRequestHeader("x-user-id".into())]
    );
    assert_eq!(flow.count(Counter::Disabled), 1);
}

#[test]
fn exempt_requests_skip_the_call_and_are_counted() {
    let json =
        r#"{"decision": "fnv_parity", "exempt": {"paths": ["/healthz"], "methods": ["OPTIONS"]}}"#;
    for request in [
        &[(":path", "/healthz"), (":method", "GET")][..],
        &[(":path", "/orders"), (":method", "OPTIONS")][..],
    ] {
        let host = MockHost::with_request(request);
        let mut flow = T::new(json);
        assert_eq!(flow.headers(&host), Action::Continue);
        assert!(host.effects().is_empty());
        assert_eq!(flow.count(Counter::Disabled), 1);
        assert_eq!(*flow.state(), State::Exempt);
    }
    let host = MockHost::with_request(&[(":path", "/orders"), (":method", "GET")]);
    assert_eq!(T::new(json).headers(&host), Action::Pause);
}

#[test]
fn auth_request_shape_follows_the_configuration() {
    let host = MockHost::with_request(REQUEST);
    let json = r#"{"decision": "fnv_parity", "cluster": "authz", "path": "/check", "allowed_headers": [], "timeout_ms": 200}"#;
    T::new(json).headers(&host);
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

const OVERLOADED: fn() -> Effect = || reply(503, &[], OVERLOADED_BODY);

#[test]
fn past_max_calls_in_flight_requests_get_503_even_failing_open() {
    let host = MockHost::with_request(REQUEST);
    let config = Rc::new(
        Config::parse(
            br#"{"decision": "fnv_parity", "failure_mode_allow": true, "max_calls_in_flight": 2}"#,
        )
        .unwrap(),
    );
    let mut root = Root::new(Rc::clone(&config), Stats::default(), 0);
    let mut flows: Vec<Flow> = (1..=3)
        .map(|id| Flow::new(id, Rc::clone(&config)))
        .collect();
    for flow in &mut flows {
        flow.on_request_headers(&host, &mut root, true);
    }
    assert_eq!(root.calls_in_flight(), 2);
    assert_eq!(*flows[2].state(), State::Overloaded);
    assert_eq!(last(&host), OVERLOADED());
    assert_eq!(root.stats().total(Counter::Overloaded), 1);
    assert_eq!(root.stats().total(Counter::FailureModeAllowed), 0);
    // Calls whose streams have gone still count: a reset flood cannot make room.
    flows[0].on_delete(&mut root);
    let mut next = Flow::new(4, Rc::clone(&config));
    next.on_request_headers(&host, &mut root, true);
    assert_eq!(*next.state(), State::Overloaded);
    // Once an answer arrives, there is room again.
    let token = host.last_token() - 1;
    root.finish_call(token);
    let mut after = Flow::new(5, config);
    assert_eq!(
        after.on_request_headers(&host, &mut root, true),
        Action::Pause
    );
    assert!(matches!(after.state(), State::AwaitingAuth { .. }));
}

#[test]
fn live_calls_are_not_capped_by_default_only_orphans_are() {
    let host = MockHost::with_request(REQUEST);
    let config = Rc::new(
        Config::parse(
            br#"{"decision": "fnv_parity", "failure_mode_allow": true, "max_orphaned_calls": 2}"#,
        )
        .unwrap(),
    );
    let mut root = Root::new(Rc::clone(&config), Stats::default(), 0);
    let mut flows: Vec<Flow> = (1..=600)
        .map(|id| Flow::new(id, Rc::clone(&config)))
        .collect();
    for flow in &mut flows {
        flow.on_request_headers(&host, &mut root, true);
        assert!(matches!(flow.state(), State::AwaitingAuth { .. }));
    }
    assert_eq!(
        root.calls_in_flight(),
        600,
        "clients that wait are the circuit breaker's to bound"
    );
    // Two clients go: their calls cannot be cancelled, and now fill the orphan cap.
    let orphan = flows[0].awaited().unwrap();
    flows[0].on_delete(&mut root);
    flows[1].on_delete(&mut root);
    let mut next = Flow::new(1000, Rc::clone(&config));
    next.on_request_headers(&host, &mut root, true);
    assert_eq!(*next.state(), State::Overloaded);
    assert_eq!(last(&host), OVERLOADED());
    assert_eq!(root.stats().total(Counter::FailureModeAllowed), 0);
    // An orphan's answer arrives: room again.
    root.finish_call(orphan);
    let mut after = Flow::new(1001, config);
    after.on_request_headers(&host, &mut root, true);
    assert!(matches!(after.state(), State::AwaitingAuth { .. }));
}

#[test]
fn a_request_too_large_to_check_gets_431_even_failing_open() {
    // Over the host's header-map limits (1,024 pairs, 1 MiB), the call could not be sent: the
    // client is refused before any call, never handed to the failure policy. (The defaults
    // bound a check far lower; raised here to the host's limits.)
    let json = r#"{"decision": "status", "failure_mode_allow": true, "max_check_headers": 1024, "max_check_header_bytes": 1048576}"#;
    let mut many = MockHost::with_request(REQUEST);
    for n in 0..1025 {
        many.request.push((format!("x-h{n}"), b"v".to_vec()));
    }
    let mut long = MockHost::with_request(&[(":authority", "a"), (":method", "GET")]);
    long.request.push((
        ":path".into(),
        format!("/{}", "p".repeat(530 * 1024)).into_bytes(),
    ));
    for host in [many, long] {
        let mut flow = T::new(json);
        assert_eq!(flow.headers(&host), Action::Pause);
        assert_eq!(host.effects(), vec![reply(431, &[], b"")]);
        assert_eq!(flow.count(Counter::FailureModeAllowed), 0);
        assert_eq!(flow.in_flight(), 0);
    }
    // Just under the limits, the check goes out.
    let mut fits = MockHost::with_request(REQUEST);
    for n in 0..1000 {
        fits.request.push((format!("x-h{n}"), b"v".to_vec()));
    }
    let mut flow = T::new(json);
    flow.headers(&fits);
    assert!(matches!(flow.state(), State::AwaitingAuth { .. }));
    // A gRPC check is held to the same bounds.
    let mut many = MockHost::with_request(REQUEST);
    for n in 0..1025 {
        many.request.push((format!("x-h{n}"), b"v".to_vec()));
    }
    let mut flow = T::new(r#"{"protocol": "grpc", "failure_mode_allow": true}"#);
    flow.headers(&many);
    assert_eq!(many.effects(), vec![reply(431, &[], b"")]);
    // And by default, HTTP checks to what an Envoy with its defaults takes (100 headers).
    let mut ninety = MockHost::with_request(REQUEST);
    for n in 0..90 {
        ninety.request.push((format!("x-h{n}"), b"v".to_vec()));
    }
    T::new(r#"{"decision": "status", "failure_mode_allow": true}"#).headers(&ninety);
    assert_eq!(ninety.effects(), vec![reply(431, &[], b"")]);
}

#[test]
fn the_failure_marker_in_any_spelling_is_the_plugins_alone() {
    let mut host = MockHost::with_request(REQUEST);
    host.request
        .push(("x_envoy_auth_failure_mode_allowed".into(), b"true".to_vec()));
    let mut flow = T::new("");
    flow.headers(&host);
    assert_eq!(
        host.effects()[0],
        Effect::RemoveRequestHeader("x_envoy_auth_failure_mode_allowed".into())
    );
    assert!(!dispatched(&host)
        .iter()
        .any(|(n, _)| n == "x_envoy_auth_failure_mode_allowed"));
}

#[test]
fn a_grpc_servers_answer_is_never_an_allow_in_http_mode() {
    for extra in [("content-type", "application/grpc"), ("grpc-status", "12")] {
        let host = MockHost::with_request(REQUEST).answering("200", &[extra], b"");
        let flow = run(
            r#"{"decision": "status", "failure_mode_allow": false}"#,
            &host,
        );
        assert_eq!(*flow.state(), State::FailedClosed, "{extra:?}");
        assert_eq!(last(&host), reply(403, &[], b""));
    }
}

#[test]
fn a_body_of_which_nothing_arrives_fails_closed_after_the_first_body_wait() {
    let host = MockHost::with_request(REQUEST);
    let mut flow = T::new(
        r#"{"decision": "status", "failure_mode_allow": true, "with_request_body": {"max_request_bytes": 8}}"#,
    );
    flow.flow.on_request_headers(&host, &mut flow.root, false);
    assert!(flow.root.is_awaiting_first_body(1));
    flow.flow.on_first_body_deadline(&host, &mut flow.root);
    assert_eq!(*flow.state(), State::FailedClosed);
    assert_eq!(last(&host), reply(403, &[], b""));
    // Once any of the body has arrived, only Envoy's timeouts end the wait.
    let host = MockHost::with_request(REQUEST);
    let mut flow = T::new(WITH_BODY);
    flow.flow.on_request_headers(&host, &mut flow.root, false);
    flow.flow.on_request_body(&host, &mut flow.root, 2, false);
    assert!(!flow.root.is_awaiting_first_body(1));
    flow.flow.on_first_body_deadline(&host, &mut flow.root);
    assert_eq!(*flow.state(), State::AwaitingBody);
}

#[test]
fn waiting_for_the_body_has_no_deadline_of_its_own() {
    let host = MockHost::with_request(REQUEST);
    let mut flow =
        T::new(r#"{"decision": "status", "with_request_body": {"max_request_bytes": 8}}"#);
    flow.flow.on_request_headers(&host, &mut flow.root, false);
    assert_eq!(*flow.state(), State::AwaitingBody);
    flow.flow.on_call_expired(&host, &mut flow.root);
    assert_eq!(
        *flow.state(),
        State::AwaitingBody,
        "only a call has a deadline"
    );
    assert!(host.effects().is_empty());
}

#[test]
fn past_the_memory_budget_requests_get_503_even_failing_open() {
    let host = MockHost::with_request(REQUEST);
    let mut flow = T::new(
        r#"{"decision": "fnv_parity", "failure_mode_allow": true, "max_held_bytes": 65536}"#,
    );
    assert!(flow.root.try_hold(65536 - STREAM_COST_BYTES + 1));
    assert_eq!(flow.headers(&host), Action::Pause);
    assert_eq!(host.effects(), vec![OVERLOADED()]);
    assert_eq!(flow.count(Counter::Overloaded), 1);
}

#[test]
fn a_circuit_breaker_overflow_is_an_overload_not_an_auth_failure() {
    let host = MockHost::with_request(REQUEST).answering(
        "503",
        &[("x-envoy-overloaded", "true")],
        b"upstream connect error or disconnect/reset before headers. reset reason: overflow",
    );
    let flow = run(
        r#"{"decision": "fnv_parity", "failure_mode_allow": true}"#,
        &host,
    );
    assert_eq!(*flow.state(), State::Overloaded);
    assert_eq!(last(&host), OVERLOADED());
    assert_eq!(flow.count(Counter::FailureModeAllowed), 0);
    // A 503 from the auth service itself is still an auth failure.
    let host = MockHost::with_request(REQUEST).answering("503", &[], b"");
    let flow = run(
        r#"{"decision": "fnv_parity", "failure_mode_allow": true}"#,
        &host,
    );
    assert_eq!(*flow.state(), State::FailedOpen);
}

#[test]
fn a_call_refused_inline_or_short_of_memory_is_an_overload() {
    for status in [Failure::Unavailable, Failure::OutOfMemory] {
        let host = MockHost::with_request(REQUEST).failing_with("dispatch", status);
        let mut flow = T::new(r#"{"decision": "fnv_parity", "failure_mode_allow": true}"#);
        assert_eq!(flow.headers(&host), Action::Pause, "{status:?}");
        assert_eq!(host.effects(), vec![OVERLOADED()], "{status:?}");
    }
}

#[test]
fn failures_on_the_clients_own_request_fail_closed_even_failing_open() {
    for call in ["request_headers", "remove_request_header"] {
        let mut host = MockHost::with_request(REQUEST).failing(call);
        host.request.push(("x-user-id".into(), b"forged".to_vec()));
        let mut flow = T::new(
            r#"{"decision": "fnv_parity", "failure_mode_allow": true, "allowed_upstream_headers": [{"exact": "x-user-id"}]}"#,
        );
        assert_eq!(flow.headers(&host), Action::Pause, "{call}");
        assert_eq!(last(&host), reply(403, &[], b""), "{call}");
        assert_eq!(*flow.state(), State::FailedClosed, "{call}");
        assert_eq!(flow.count(Counter::FailureModeAllowed), 0, "{call}");
    }
    // Short of memory reading them: an overload.
    let host =
        MockHost::with_request(REQUEST).failing_with("request_headers", Failure::OutOfMemory);
    let mut flow = T::new(r#"{"decision": "fnv_parity", "failure_mode_allow": true}"#);
    flow.headers(&host);
    assert_eq!(host.effects(), vec![OVERLOADED()]);
}

#[test]
fn a_request_the_auth_service_cannot_be_asked_about_is_refused_even_failing_open() {
    let host = MockHost::with_request(&[(":path", "/"), (":method", "GET")]);
    let mut flow = T::new(r#"{"decision": "fnv_parity", "failure_mode_allow": true}"#);
    assert_eq!(flow.headers(&host), Action::Pause);
    assert_eq!(host.effects(), vec![reply(400, &[], b"")]);
    assert_eq!(flow.count(Counter::FailureModeAllowed), 0);
}

#[test]
fn a_connect_request_is_checked_like_any_other() {
    let host = MockHost::with_request(&[(":authority", "db:5432"), (":method", "CONNECT")])
        .answering("403", &[], b"no tunnels");
    let flow = run(
        r#"{"decision": "status", "failure_mode_allow": true}"#,
        &host,
    );
    let headers = dispatched(&host);
    assert!(headers.contains(&(":path".into(), "/".into())));
    assert!(headers.contains(&(":method".into(), "GET".into())));
    assert!(headers.contains(&("x-forwarded-method".into(), "CONNECT".into())));
    assert_eq!(*flow.state(), State::Denied);
    assert_eq!(last(&host), reply(403, &[], b"no tunnels"));
}

#[test]
fn forged_identities_spelled_with_underscores_are_removed() {
    let mut host = MockHost::with_request(REQUEST);
    for name in ["x_user_id", "x-user_id", "x-user-id"] {
        host.request.push((name.into(), b"mallory".to_vec()));
    }
    let mut flow = T::new(
        r#"{"decision": "fnv_parity", "allowed_upstream_headers": [{"exact": "x-user-id"}]}"#,
    );
    flow.headers(&host);
    let removed: Vec<Effect> = host
        .effects()
        .into_iter()
        .filter(|e| matches!(e, Effect::RemoveRequestHeader(_)))
        .collect();
    assert_eq!(
        removed,
        ["x_user_id", "x-user_id", "x-user-id"].map(|n| Effect::RemoveRequestHeader(n.into()))
    );
}

#[test]
fn forged_identities_in_trailers_are_removed_whenever_trailers_come() {
    let json =
        r#"{"decision": "fnv_parity", "allowed_upstream_headers": [{"exact": "x-user-id"}]}"#;
    let mut host = MockHost::with_request(REQUEST).answering("200", &[], EVEN);
    host.trailers = crate::mock_host::headers(&[("x-user-id", "mallory"), ("x-checksum", "c")]);
    let mut flow = T::new(json);
    flow.headers(&host);
    assert_eq!(
        flow.trailers(&host),
        Action::Pause,
        "held until the verdict"
    );
    assert_eq!(
        last(&host),
        Effect::RemoveRequestTrailer("x-user-id".into())
    );
    // After the allow, trailers still lose forged copies.
    let mut flow = run(json, &host);
    assert_eq!(flow.trailers(&host), Action::Continue);
    assert_eq!(
        last(&host),
        Effect::RemoveRequestTrailer("x-user-id".into())
    );
}

#[test]
fn trailers_that_cannot_be_cleaned_fail_the_request_closed() {
    let json = r#"{"decision": "fnv_parity", "failure_mode_allow": true, "allowed_upstream_headers": [{"exact": "x-user-id"}]}"#;
    let host = MockHost::with_request(REQUEST)
        .answering("200", &[], EVEN)
        .failing("request_trailers");
    let mut flow = T::new(json);
    flow.headers(&host);
    assert_eq!(flow.trailers(&host), Action::Pause);
    assert_eq!(*flow.state(), State::FailedClosed);
    assert_eq!(flow.root.orphaned_calls(), 1, "its call goes on without it");
    flow.answer(&host, host.last_token(), 1, 1);
    assert!(!host.effects().contains(&Effect::Resume));
}

#[test]
fn status_rule_denies_with_an_oversized_body_dropped_even_failing_open() {
    let big = vec![b'x'; 70_000];
    let host = MockHost::with_request(REQUEST).answering("403", &[("x-reason", "no")], &big);
    let flow = run(
        r#"{"decision": "status", "failure_mode_allow": true}"#,
        &host,
    );
    assert_eq!(*flow.state(), State::Denied);
    assert_eq!(last(&host), reply(403, &[("x-reason", "no")], b""));
    assert_eq!(host.body_reads.get(), 0);
    let host = MockHost::with_request(REQUEST).answering("401", &[], &[b'x'; 1100]);
    let flow = run(
        r#"{"decision": "status", "failure_mode_allow": true, "max_response_body_bytes": 1024}"#,
        &host,
    );
    assert_eq!(*flow.state(), State::Denied);
    assert_eq!(last(&host), reply(401, &[], b""));
}

#[test]
fn success_headers_over_the_per_request_cap_are_dropped_and_counted() {
    let value = "v".repeat(1000);
    let extra: Vec<(String, String)> = (0..12)
        .map(|i| (format!("x-s{i:02}"), value.clone()))
        .collect();
    let extra: Vec<(&str, &str)> = extra
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let host = MockHost::with_request(REQUEST).answering("200", &extra, b"");
    let json = r#"{"decision": "status", "max_success_header_bytes": 4096,
                   "allowed_client_headers_on_success": [{"prefix": "x-s"}]}"#;
    let mut flow = run(json, &host);
    assert_eq!(*flow.state(), State::Allowed, "the verdict does not change");
    assert_eq!(flow.count(Counter::SuccessHeadersDropped), 1);
    let held = flow.root.held_bytes();
    assert!(
        held > STREAM_COST_BYTES && held <= STREAM_COST_BYTES + 4096,
        "{held}"
    );
    host.clear_effects();
    flow.response(&host);
    let added = host.effects().len();
    assert_eq!(added, 3, "three 1,064-byte headers fit in 4,096");
    assert_eq!(
        flow.root.held_bytes(),
        STREAM_COST_BYTES,
        "released once sent"
    );
}

#[test]
fn admission_reserves_room_for_the_success_headers_a_request_may_keep() {
    let json = r#"{"decision": "status", "max_held_bytes": 65536, "max_success_header_bytes": 8192,
                   "allowed_client_headers_on_success": [{"prefix": "x-s"}]}"#;
    let host = MockHost::with_request(REQUEST).answering("200", &[("x-s1", "v")], b"");
    let config = Rc::new(Config::parse(json.as_bytes()).unwrap());
    let mut root = Root::new(Rc::clone(&config), Stats::default(), 0);
    let per_request = STREAM_COST_BYTES + 8192;
    let fit = 65536 / per_request;
    let mut flows: Vec<Flow> = (0..=fit)
        .map(|id| Flow::new(id as u32, Rc::clone(&config)))
        .collect();
    for flow in &mut flows {
        flow.on_request_headers(&host, &mut root, true);
    }
    assert_eq!(
        root.calls_in_flight(),
        fit,
        "{fit} fit, the next is refused"
    );
    assert_eq!(*flows[fit].state(), State::Overloaded);
    assert_eq!(root.held_bytes(), fit * per_request);
    // Once a response starts, the success-header room goes back; the stream's own state stays
    // held until it is deleted.
    let token = host.last_token();
    root.finish_call(token);
    deliver(&host, &mut root, &mut flows[fit - 1], token, 2, 0);
    flows[fit - 1].on_response_headers(&host, &mut root);
    assert_eq!(root.held_bytes(), fit * per_request - 8192);
    flows[fit - 1].on_delete(&mut root);
    assert_eq!(root.held_bytes(), (fit - 1) * per_request);
}

#[test]
fn a_call_past_its_deadline_goes_to_the_failure_policy() {
    let host = MockHost::with_request(REQUEST);
    let mut flow = T::new("");
    flow.headers(&host);
    flow.root.set_clock(u64::MAX);
    flow.root.expire_calls(std::time::Duration::ZERO);
    flow.flow.on_call_expired(&host, &mut flow.root);
    assert_eq!(*flow.state(), State::FailedClosed);
    assert_eq!(last(&host), reply(403, &[], b""));
}

#[test]
fn reserved_names_from_a_prefix_matcher_never_reach_the_request() {
    let host =
        MockHost::with_request(REQUEST).answering("200", &[("host", "evil"), ("x-user", "u")], b"");
    run(
        r#"{"decision": "status", "allowed_upstream_headers": [{"contains": "o"}, {"prefix": "x-"}]}"#,
        &host,
    );
    assert!(!host
        .effects()
        .iter()
        .any(|e| matches!(e, Effect::SetRequestHeader(name, _) if name == "host")));
}

#[test]
fn client_copies_of_appended_headers_and_of_the_failure_marker_are_removed() {
    let mut host = MockHost::with_request(REQUEST);
    host.request
        .push(("x-user-groups".into(), b"admin".to_vec()));
    host.request
        .push((FAILURE_MODE_ALLOWED_HEADER.into(), b"true".to_vec()));
    let mut flow = T::new(
        r#"{"decision": "fnv_parity", "allowed_upstream_headers_to_append": [{"exact": "x-user-groups"}]}"#,
    );
    flow.headers(&host);
    let removed: Vec<Effect> = host
        .effects()
        .into_iter()
        .filter(|e| matches!(e, Effect::RemoveRequestHeader(_)))
        .collect();
    assert_eq!(
        removed,
        [
            Effect::RemoveRequestHeader("x-user-groups".into()),
            Effect::RemoveRequestHeader(FAILURE_MODE_ALLOWED_HEADER.into())
        ]
    );
}

#[test]
fn an_interim_answer_is_an_error_never_relayed() {
    let host = MockHost::with_request(REQUEST).answering("101", &[("upgrade", "x")], b"");
    let flow = run(r#"{"decision": "status"}"#, &host);
    assert_eq!(*flow.state(), State::FailedClosed);
    assert_eq!(last(&host), reply(403, &[], b""));
}

/// The first call's headers and body.
type Sent = (Vec<(String, String)>, Vec<u8>);

fn dispatched_body(host: &MockHost) -> Option<Sent> {
    host.effects().into_iter().find_map(|e| match e {
        Effect::Dispatch { headers, body, .. } => Some((headers, body)),
        _ => None,
    })
}

const WITH_BODY: &str = r#"{"decision": "status", "with_request_body": {"max_request_bytes": 8}}"#;

#[test]
fn with_request_body_the_check_waits_for_the_body_and_carries_it() {
    let mut host = MockHost::with_request(REQUEST);
    host.body = b"hello".to_vec();
    let mut flow = T::new(WITH_BODY);
    assert_eq!(
        flow.flow.on_request_headers(&host, &mut flow.root, false),
        Action::Pause
    );
    assert_eq!(dispatched_body(&host), None, "not before the body");
    assert_eq!(
        flow.flow.on_request_body(&host, &mut flow.root, 3, false),
        BodyAction::Buffer
    );
    assert_eq!(dispatched_body(&host), None, "not before its end");
    flow.flow.on_request_body(&host, &mut flow.root, 5, true);
    let (headers, body) = dispatched_body(&host).unwrap();
    assert_eq!(body, b"hello");
    assert!(headers.contains(&("content-length".into(), "5".into())));
    assert!(headers.contains(&("x-envoy-auth-partial-body".into(), "false".into())));
    assert!(matches!(flow.state(), State::AwaitingAuth { .. }));
}

#[test]
fn a_request_without_a_body_is_not_delayed() {
    let host = MockHost::with_request(REQUEST);
    let mut flow = T::new(WITH_BODY);
    assert_eq!(
        flow.flow.on_request_headers(&host, &mut flow.root, true),
        Action::Pause
    );
    let (headers, body) = dispatched_body(&host).unwrap();
    assert!(body.is_empty());
    assert!(headers.contains(&("content-length".into(), "0".into())));
}

#[test]
fn a_body_over_the_limit_is_refused_with_413_or_sent_partial() {
    let mut host = MockHost::with_request(REQUEST);
    host.body = b"0123456789".to_vec();
    let mut flow = T::new(WITH_BODY);
    flow.flow.on_request_headers(&host, &mut flow.root, false);
    assert_eq!(
        flow.flow.on_request_body(&host, &mut flow.root, 10, true),
        BodyAction::Watermark
    );
    assert_eq!(last(&host), reply(413, &[], b"Payload Too Large"));
    assert_eq!(dispatched_body(&host), None);

    let mut host = MockHost::with_request(REQUEST);
    host.body = b"0123456789".to_vec();
    let mut flow = T::new(
        r#"{"decision": "status", "with_request_body": {"max_request_bytes": 8, "allow_partial_message": true}}"#,
    );
    flow.flow.on_request_headers(&host, &mut flow.root, false);
    // The limit is reached before the end: sent at once, cut and marked.
    flow.flow.on_request_body(&host, &mut flow.root, 10, false);
    let (headers, body) = dispatched_body(&host).unwrap();
    assert_eq!(body, b"01234567");
    assert!(headers.contains(&("x-envoy-auth-partial-body".into(), "true".into())));
}

#[test]
fn trailers_end_the_body_sent_with_the_check() {
    let mut host = MockHost::with_request(REQUEST);
    host.body = b"abc".to_vec();
    let mut flow = T::new(WITH_BODY);
    flow.flow.on_request_headers(&host, &mut flow.root, false);
    flow.flow.on_request_body(&host, &mut flow.root, 3, false);
    assert_eq!(flow.trailers(&host), Action::Pause);
    assert_eq!(dispatched_body(&host).unwrap().1, b"abc");
}

#[test]
fn trailers_that_end_a_body_sent_with_the_check_lose_forged_identities_too() {
    let json = r#"{"decision": "status", "allowed_upstream_headers": [{"exact": "x-user-id"}],
        "with_request_body": {"max_request_bytes": 8}}"#;
    let mut host = MockHost::with_request(REQUEST);
    host.body = b"abc".to_vec();
    host.trailers = crate::mock_host::headers(&[("x-user-id", "mallory")]);
    let mut flow = T::new(json);
    flow.flow.on_request_headers(&host, &mut flow.root, false);
    flow.flow.on_request_body(&host, &mut flow.root, 3, false);
    assert_eq!(flow.trailers(&host), Action::Pause);
    assert_eq!(dispatched_body(&host).unwrap().1, b"abc");
    assert!(host
        .effects()
        .contains(&Effect::RemoveRequestTrailer("x-user-id".into())));
}

#[test]
fn the_auth_service_can_remove_request_headers_on_allow_but_not_pseudo_headers() {
    let host = MockHost::with_request(REQUEST).answering(
        "200",
        &[(
            "x-envoy-auth-headers-to-remove",
            "X-Request-Id, :path, host, ,x-debug",
        )],
        b"",
    );
    run(r#"{"decision": "status"}"#, &host);
    let removed: Vec<Effect> = host
        .effects()
        .into_iter()
        .filter(|e| matches!(e, Effect::RemoveRequestHeader(_)))
        .collect();
    assert_eq!(
        removed,
        [
            Effect::RemoveRequestHeader("x-request-id".into()),
            Effect::RemoveRequestHeader("x-debug".into())
        ]
    );
}

fn replies(host: &MockHost) -> usize {
    host.effects()
        .iter()
        .filter(|e| matches!(e, Effect::Reply { .. }))
        .count()
}

#[test]
fn in_shadow_a_deny_is_counted_and_the_request_goes_on_unchanged() {
    let host = MockHost::with_request(REQUEST).answering("403", &[("x-user-id", "42")], b"no");
    let flow = run(r#"{"decision": "status", "shadow": true}"#, &host);
    assert_eq!(replies(&host), 0, "nothing enforced");
    assert_eq!(last(&host), Effect::Resume);
    assert_eq!(*flow.state(), State::Shadowed);
    assert_eq!(flow.count(Counter::ShadowDenied), 1);
    assert!(!host.effects().iter().any(|e| matches!(
        e,
        Effect::SetRequestHeader(..) | Effect::AddRequestHeader(..)
    )));
}

#[test]
fn in_shadow_an_outage_passes_without_the_failure_marker_even_failing_open() {
    for allow in [false, true] {
        let host = MockHost::with_request(REQUEST).answering("503", &[], b"");
        let json = format!(
            r#"{{"decision": "status", "shadow": true, "failure_mode_allow": {allow},
                "failure_mode_allow_header_add": true}}"#
        );
        let flow = run(&json, &host);
        assert_eq!(replies(&host), 0);
        assert_eq!(last(&host), Effect::Resume);
        assert_eq!(flow.count(Counter::ShadowError), 1);
        assert_eq!(flow.count(Counter::FailureModeAllowed), 0);
        assert!(!host
            .effects()
            .iter()
            .any(|e| matches!(e, Effect::SetRequestHeader(name, _) if name == FAILURE_MODE_ALLOWED_HEADER)));
    }
}

#[test]
fn in_shadow_a_request_refused_in_its_own_callback_continues_there() {
    // Refused before any call (over the call's header limits): decided in the headers callback.
    let mut request: Vec<(&str, &str)> = REQUEST.to_vec();
    let long = "x".repeat(70_000);
    request.push(("x-big", &long));
    let host = MockHost::with_request(&request);
    let mut t =
        T::new(r#"{"decision": "status", "shadow": true, "max_check_header_bytes": 65536}"#);
    assert_eq!(t.headers(&host), Action::Continue);
    assert_eq!(replies(&host), 0);
    assert!(
        !host.effects().contains(&Effect::Resume),
        "continued, not resumed"
    );
    assert_eq!(t.count(Counter::ShadowDenied), 1);
}

fn records(host: &MockHost) -> Vec<crate::record::Record> {
    host.effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::Record(record) => Some(record),
            _ => None,
        })
        .collect()
}

#[test]
fn each_request_leaves_one_decision_record_when_asked_to() {
    use crate::record::{CacheUse, Verdict};
    let cases: [(&str, &[u8], Verdict, &str); 3] = [
        ("200", b"", Verdict::Allow, "allowed"),
        ("403", b"no", Verdict::Deny, "denied_403"),
        ("500", b"", Verdict::Error, "failed_403"),
    ];
    for (status, body, verdict, reason) in cases {
        let host = MockHost::with_request(REQUEST).answering(status, &[], body);
        run(r#"{"decision": "status", "record_decisions": true}"#, &host);
        let kept = records(&host);
        assert_eq!(kept.len(), 1, "{status}");
        assert_eq!(
            (kept[0].verdict, kept[0].reason.as_str()),
            (verdict, reason)
        );
        assert_eq!(kept[0].cache, CacheUse::None);
        assert!(kept[0].auth_ms.is_some(), "the call's duration");
    }
    // Off by default: nothing is kept.
    let host = MockHost::with_request(REQUEST).answering("200", &[], b"");
    run(r#"{"decision": "status"}"#, &host);
    assert!(records(&host).is_empty());
}

#[test]
fn an_exempt_request_and_a_shadowed_deny_are_recorded_as_such() {
    use crate::record::Verdict;
    let host = MockHost::with_request(REQUEST);
    let mut t = T::new(
        r#"{"decision": "status", "record_decisions": true, "exempt": {"path_prefixes": ["/uuid"]}}"#,
    );
    assert_eq!(t.headers(&host), Action::Continue);
    assert_eq!(records(&host)[0].verdict, Verdict::Exempt);
    let host = MockHost::with_request(REQUEST).answering("403", &[], b"");
    run(
        r#"{"decision": "status", "record_decisions": true, "shadow": true}"#,
        &host,
    );
    let kept = records(&host);
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (kept[0].verdict, kept[0].reason.as_str()),
        (Verdict::Shadow, "would_be_denied_403")
    );
}

#[test]
fn in_shadow_a_request_whose_forgeries_cannot_be_removed_is_still_refused() {
    let mut request: Vec<(&str, &str)> = REQUEST.to_vec();
    request.push((FAILURE_MODE_ALLOWED_HEADER, "true"));
    for (call, failure) in [
        ("remove_request_header", Failure::BadArgument),
        ("request_headers", Failure::BadArgument),
        ("remove_request_header", Failure::OutOfMemory),
    ] {
        let mut host = MockHost::with_request(&request).answering("200", &[], b"");
        host.failing.insert(call, failure);
        let mut t = T::new(r#"{"decision": "status", "shadow": true}"#);
        assert_eq!(t.headers(&host), Action::Pause, "{call} {failure:?}");
        assert_eq!(
            replies(&host),
            1,
            "{call} {failure:?}: refused, not shadowed"
        );
        assert_ne!(*t.state(), State::Shadowed);
        assert_eq!(t.count(Counter::ShadowError), 0);
    }
}
