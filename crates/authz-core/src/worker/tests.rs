//! The worker against a mock host: callbacks routed to the right stream, answers for gone
//! streams counted off, deadlines, and refusals without a configuration.
//! Test code only: its module is declared under #[cfg(test)].

use super::*;
use crate::flow::{State, STREAM_COST_BYTES};
use crate::metrics::Counter;
use crate::mock_host::{Effect, MockHost};

const ROOT: u32 = 1;
const REQUEST: &[(&str, &str)] = &[(":authority", "a"), (":path", "/"), (":method", "GET")];

fn configured(json: &str, host: &MockHost) -> Worker {
    let mut worker = Worker::default();
    worker.on_context_create(ROOT, 0);
    assert!(worker.on_configure(host, ROOT, json.as_bytes()));
    worker
}

fn root(worker: &Worker) -> &Root {
    worker.root(ROOT).unwrap()
}

#[test]
fn an_answer_reaches_its_own_stream_through_the_effective_context() {
    let host = MockHost::with_request(REQUEST).answering("200", &[], b"a");
    let mut worker = configured("", &host);
    worker.on_context_create(2, ROOT);
    assert_eq!(worker.on_request_headers(&host, 2, true), Action::Pause);
    worker.on_call_response(&host, ROOT, host.last_token(), 1, 1);
    let effects = host.effects();
    assert_eq!(effects[1..], [Effect::Context(2), Effect::Resume]);
    assert_eq!(*worker.flow(2).unwrap().state(), State::Allowed);
    assert!(root(&worker).calls_in_flight() == 0);
}

#[test]
fn an_answer_for_a_gone_stream_is_counted_off_and_touches_nothing() {
    let host = MockHost::with_request(REQUEST).answering("200", &[], b"a");
    let mut worker = configured("", &host);
    worker.on_context_create(2, ROOT);
    worker.on_request_headers(&host, 2, true);
    assert!(worker.on_done(2));
    worker.on_delete(&host, 2);
    assert_eq!(
        (
            root(&worker).calls_in_flight(),
            root(&worker).orphaned_calls()
        ),
        (1, 1)
    );
    assert_eq!(root(&worker).held_bytes(), 0, "the stream's memory is back");
    worker.on_call_response(&host, ROOT, host.last_token(), 1, 1);
    assert!(root(&worker).calls_in_flight() == 0);
    assert_eq!(
        host.effects().len(),
        1,
        "only the dispatch: no context switch, no reply"
    );
    // An answer nobody is waiting for, or for a root that is not there, is ignored.
    worker.on_call_response(&host, ROOT, 999, 1, 1);
    worker.on_call_response(&host, 77, 1, 1, 1);
    assert_eq!(host.effects().len(), 1);
}

#[test]
fn a_stream_deleted_while_allowed_gives_back_what_it_held() {
    let host = MockHost::with_request(REQUEST).answering("200", &[("x-s", "v")], b"");
    let mut worker = configured(
        r#"{"decision": "status", "allowed_client_headers_on_success": [{"exact": "x-s"}]}"#,
        &host,
    );
    worker.on_context_create(2, ROOT);
    worker.on_request_headers(&host, 2, true);
    worker.on_call_response(&host, ROOT, host.last_token(), 2, 0);
    assert!(root(&worker).held_bytes() > STREAM_COST_BYTES);
    worker.on_delete(&host, 2);
    assert_eq!(root(&worker).held_bytes(), 0);
}

#[test]
fn the_tick_fails_a_stream_whose_call_outlived_its_deadline_and_flushes_gauges() {
    let host = MockHost::with_request(REQUEST);
    let mut worker = configured(r#"{"decision": "fnv_parity", "timeout_ms": 100}"#, &host);
    worker.on_context_create(2, ROOT);
    worker.on_context_create(3, ROOT);
    worker.on_request_headers(&host, 2, true);
    worker.on_request_headers(&host, 3, true);
    worker.on_done(3);
    // Not yet past deadline + grace.
    worker.on_tick(&host, ROOT);
    assert_eq!(root(&worker).calls_in_flight(), 2);
    assert_eq!(host.metric("http_auth_random.calls_in_flight"), 2);
    assert_eq!(host.metric("http_auth_random.calls_orphaned"), 1);
    host.clock.set(host.clock.get() + 2_000_000_000);
    worker.on_tick(&host, ROOT);
    assert!(root(&worker).calls_in_flight() == 0);
    assert_eq!(*worker.flow(2).unwrap().state(), State::FailedClosed);
    assert_eq!(host.metric("http_auth_random.calls_in_flight"), 0);
    assert_eq!(host.metric("http_auth_random.error"), 1);
}

#[test]
fn a_stream_without_a_configuration_is_refused() {
    let host = MockHost::with_request(REQUEST);
    let mut worker = Worker::default();
    worker.on_context_create(ROOT, 0);
    assert!(!worker.on_configure(&host, ROOT, b"{\"timeout_ms\": 0}"));
    worker.on_context_create(2, ROOT);
    assert_eq!(worker.on_request_headers(&host, 2, true), Action::Pause);
    assert_eq!(
        host.effects(),
        vec![Effect::Reply {
            status: 500,
            headers: vec![],
            body: vec![]
        }]
    );
    // Callbacks for contexts the worker never saw do nothing.
    assert_eq!(worker.on_request_headers(&host, 42, true), Action::Pause);
    assert_eq!(
        worker.on_request_body(&host, 42, 0, true),
        BodyAction::Watermark
    );
    worker.on_delete(&host, 42);
}

#[test]
fn a_failing_metrics_host_refuses_the_configuration() {
    let host = MockHost::with_request(REQUEST).failing("define_metric");
    let mut worker = Worker::default();
    worker.on_context_create(ROOT, 0);
    assert!(!worker.on_configure(&host, ROOT, b""));
}

#[test]
fn a_new_configuration_keeps_the_calls_and_memory_in_flight() {
    let host = MockHost::with_request(REQUEST);
    let mut worker = configured("", &host);
    worker.on_context_create(2, ROOT);
    worker.on_request_headers(&host, 2, true);
    assert!(worker.on_configure(&host, ROOT, br#"{"decision": "status"}"#));
    assert_eq!(root(&worker).calls_in_flight(), 1);
    assert_eq!(root(&worker).held_bytes(), STREAM_COST_BYTES);
    assert_eq!(root(&worker).stats().total(Counter::Ok), 0);
}

#[test]
fn a_root_going_away_takes_its_share_of_the_gauges_back() {
    let host = MockHost::with_request(REQUEST);
    let mut worker = configured("", &host);
    worker.on_context_create(2, ROOT);
    worker.on_request_headers(&host, 2, true);
    worker.on_tick(&host, ROOT);
    assert_eq!(host.metric("http_auth_random.calls_in_flight"), 1);
    worker.on_delete(&host, 2);
    worker.on_delete(&host, ROOT);
    assert_eq!(host.metric("http_auth_random.calls_in_flight"), 0);
    assert_eq!(host.metric("http_auth_random.calls_orphaned"), 0);
}

#[test]
fn a_second_root_in_the_same_vm_does_not_count_its_memory_twice() {
    let host = MockHost::with_request(REQUEST);
    let mut worker = configured("", &host);
    worker.on_context_create(9, 0);
    assert!(worker.on_configure(&host, 9, b""));
    worker.on_tick(&host, ROOT);
    worker.on_tick(&host, 9);
    assert_eq!(
        host.metric("http_auth_random.vm_memory_bytes"),
        i128::from(host.vm_memory_bytes())
    );
}

#[test]
fn the_latency_histogram_is_recorded_once_per_call_when_asked_for() {
    let host = MockHost::with_request(REQUEST).answering("200", &[], b"a");
    let mut worker = configured(
        r#"{"decision": "fnv_parity", "latency_histogram": true}"#,
        &host,
    );
    worker.on_context_create(2, ROOT);
    worker.on_request_headers(&host, 2, true);
    worker.on_call_response(&host, ROOT, host.last_token(), 1, 1);
    assert_eq!(
        *host.histogram_samples.borrow(),
        vec![3],
        "the mock clock moves 3 ms per read"
    );
    let host = MockHost::with_request(REQUEST).answering("200", &[], b"a");
    let mut worker = configured("", &host);
    worker.on_context_create(2, ROOT);
    worker.on_request_headers(&host, 2, true);
    worker.on_call_response(&host, ROOT, host.last_token(), 1, 1);
    assert!(host.histogram_samples.borrow().is_empty(), "off by default");
}
