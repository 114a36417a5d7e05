//! Property tests of the request flow: any sequence of callbacks, any answer, any host failure.
//! Test code only: its module is declared under #[cfg(test)].

use std::rc::Rc;

use proptest::prelude::*;

use super::*;
use crate::host::Failure;
use crate::metrics::Stats;
use crate::mock_host::{Effect, MockHost};

#[derive(Debug, Clone)]
enum Event {
    RequestHeaders,
    Body,
    Trailers,
    /// An answer; `wrong_token` answers some other call.
    Answer {
        wrong_token: bool,
        num_headers: usize,
        body_size: usize,
    },
    ResponseHeaders,
    Done,
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        3 => Just(Event::RequestHeaders),
        1 => Just(Event::Body),
        1 => Just(Event::Trailers),
        4 => (any::<bool>(), 0..4usize, 0..80usize).prop_map(|(wrong_token, num_headers, body_size)| {
            Event::Answer { wrong_token, num_headers, body_size }
        }),
        1 => Just(Event::ResponseHeaders),
        1 => Just(Event::Done),
    ]
}

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[ -~]{0,12}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..12),
    ]
}

fn request() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let name = prop::sample::select(vec![
        ":path",
        ":method",
        ":authority",
        "x-user-id",
        "content-length",
        "cookie",
    ]);
    prop::collection::vec((name.prop_map(str::to_owned), header_value()), 0..6)
}

fn status() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "200", "201", "302", "401", "403", "500", "503", "504", "", "abc", "99", "2000",
    ])
}

/// Every status a host call can fail with, and one the ABI does not define.
fn failure() -> impl Strategy<Value = Failure> {
    prop::sample::select(vec![
        Failure::NotFound,
        Failure::BadArgument,
        Failure::Other(3),
        Failure::OutOfMemory,
        Failure::Unavailable,
        Failure::Other(11),
        Failure::Other(99),
    ])
}

const HOST_CALLS: [&str; 12] = [
    "request_headers",
    "request_header",
    "dispatch",
    "call_response_header",
    "call_response_headers",
    "call_response_body",
    "resume_request",
    "send_response",
    "remove_request_header",
    "request_trailers",
    "remove_request_trailer",
    "get_shared_data",
];

/// With `cached`, a cache that also keeps denies and serves stale allows: every path through it
/// must end a request just once too.
fn config(rule_is_status: bool, fail_open: bool, max_body: u8, cached: bool) -> Rc<Config> {
    let cache = if cached {
        r#", "cache": {"key": ["cookie", ":path"], "deny_ttl_ms": 1000, "stale_if_error_ms": 1000}"#
    } else {
        ""
    };
    let json = format!(
        r#"{{"decision": "{}", "failure_mode_allow": {fail_open}, "max_response_body_bytes": {max_body},
            "allowed_upstream_headers": [{{"exact": "x-user-id"}}]{cache}}}"#,
        if rule_is_status {
            "status"
        } else {
            "fnv_parity"
        }
    );
    Rc::new(Config::parse(json.as_bytes()).unwrap())
}

struct Run {
    host: MockHost,
    header_actions: Vec<Action>,
    max_in_flight: i64,
    min_in_flight: i64,
    ended: bool,
    held_after_end: usize,
    /// Replies sent because trailers could not be cleaned after the request was let through.
    trailer_refusals: usize,
}

fn replies(host: &MockHost) -> usize {
    host.effects()
        .iter()
        .filter(|e| matches!(e, Effect::Reply { .. }))
        .count()
}

fn run(config: Rc<Config>, mut host: MockHost, events: &[Event]) -> Run {
    host.trailers = crate::mock_host::headers(&[("x-user-id", "forged"), ("x-sum", "1")]);
    let mut flow = Flow::new(1, Rc::clone(&config));
    let mut root = Root::new(config, Stats::default(), 0);
    let mut run = Run {
        host,
        header_actions: Vec::new(),
        max_in_flight: 0,
        min_in_flight: 0,
        ended: false,
        held_after_end: 0,
        trailer_refusals: 0,
    };
    for event in events {
        match event {
            Event::RequestHeaders => run
                .header_actions
                .push(flow.on_request_headers(&run.host, &mut root, true)),
            Event::Body => {
                flow.on_request_body(&run.host, &mut root, 4, false);
            }
            Event::Trailers => {
                let before = replies(&run.host);
                let let_through = run.host.effects().contains(&Effect::Resume)
                    || run.header_actions.first() == Some(&Action::Continue);
                flow.on_request_trailers(&run.host, &mut root);
                if let_through && replies(&run.host) > before {
                    run.trailer_refusals += 1;
                }
            }
            Event::Answer {
                wrong_token,
                num_headers,
                body_size,
            } => {
                let token = run
                    .host
                    .last_token()
                    .wrapping_add(u32::from(*wrong_token) * 1000);
                // As the worker does: an answer is read once and delivered to its waiters.
                if let Some(call) = root.finish_call(token) {
                    let answer = crate::protocol::http::read(
                        &run.host,
                        &call.config,
                        *num_headers,
                        *body_size,
                    );
                    flow.on_outcome(&run.host, &mut root, token, &answer.outcome);
                }
            }
            Event::ResponseHeaders => {
                flow.on_response_headers(&run.host, &mut root);
            }
            Event::Done => {
                flow.on_delete(&mut root);
                run.ended = true;
            }
        }
        let in_flight = root.calls_in_flight() as i64;
        run.held_after_end = if run.ended { root.held_bytes() } else { 0 };
        run.max_in_flight = run.max_in_flight.max(in_flight);
        run.min_in_flight = run.min_in_flight.min(in_flight);
    }
    run
}

fn outcomes(run: &Run) -> (usize, usize, usize) {
    let effects = run.host.effects();
    let replies = effects
        .iter()
        .filter(|e| matches!(e, Effect::Reply { .. }))
        .count();
    let resumes = effects
        .iter()
        .filter(|e| matches!(e, Effect::Resume))
        .count();
    // The first headers callback continuing means the request went on without waiting.
    let continued = usize::from(run.header_actions.first() == Some(&Action::Continue));
    (replies, resumes, continued)
}

proptest! {
    #[test]
    fn every_request_ends_at_most_once_and_nothing_stays_in_flight(
        rule_is_status in any::<bool>(),
        fail_open in any::<bool>(),
        cached in any::<bool>(),
        max_body in any::<u8>(),
        request in request(),
        status in status(),
        body in prop::collection::vec(any::<u8>(), 0..64),
        failing in prop::collection::vec((prop::sample::select(HOST_CALLS.to_vec()), failure()), 0..3),
        events in prop::collection::vec(event(), 0..12),
    ) {
        let mut host = MockHost::with_request(&[]);
        host.request = request;
        let mut host = host.answering(status, &[("x-user-id", "u1")], &body);
        for (call, status) in failing {
            host = host.failing_with(call, status);
        }
        let run = run(config(rule_is_status, fail_open, max_body, cached), host, &events);
        let (replies, resumes, continued) = outcomes(&run);
        // A request let through may still be refused once, if its trailers cannot be cleaned.
        prop_assert!(run.trailer_refusals <= 1);
        let replies = replies - run.trailer_refusals;
        prop_assert!(replies + resumes + continued <= 1, "{replies} replies, {resumes} resumes, {continued} continues");
        prop_assert!(run.min_in_flight >= 0);
        prop_assert!(run.max_in_flight <= 1);
        if run.ended {
            prop_assert_eq!(run.held_after_end, 0, "a deleted stream holds nothing");
        }
    }

    #[test]
    fn failing_closed_never_allows_without_an_allowing_answer(
        rule_is_status in any::<bool>(),
        cached in any::<bool>(),
        request in request(),
        status in prop::sample::select(vec!["500", "503", "504", "", "abc", "99", "401", "403", "302"]),
        failing in prop::collection::vec((prop::sample::select(HOST_CALLS.to_vec()), failure()), 0..3),
        events in prop::collection::vec(event(), 0..12),
    ) {
        // Answers that never allow: errors, garbage, denials, and (for the seed rule) an odd body.
        let mut host = MockHost::with_request(&[]);
        host.request = request;
        let mut host = host.answering(status, &[], b"b");
        for (call, status) in failing {
            host = host.failing_with(call, status);
        }
        let run = run(config(rule_is_status, false, 64, cached), host, &events);
        let (_, resumes, continued) = outcomes(&run);
        prop_assert_eq!(resumes, 0, "resumed while failing closed: {:?}", run.host.effects());
        prop_assert_eq!(continued, 0, "let through in the headers callback while failing closed");
    }
}
