//! What a host that ends calls with their streams, evicts its own store and writes dynamic
//! metadata (a native module) gets from the worker: waiters that ask for themselves when the
//! call they shared is cut off, digest keys, metadata from the answer, and routes' settings.
//! Test code only: its module is declared under #[cfg(test)].

use super::*;
use crate::flow::State;
use crate::mock_host::{headers, Effect, MockHost};

const ROOT: u32 = 1;

fn native(request: &[(&str, &str)]) -> MockHost {
    let mut host = MockHost::with_request(request);
    host.evicting_store = true;
    host.metadata_writer = true;
    host.ends_calls_with_streams = true;
    host
}

fn configured(json: &str, host: &MockHost) -> Worker {
    let mut worker = Worker::default();
    worker.on_context_create(ROOT, 0);
    assert!(worker.on_configure(host, ROOT, json.as_bytes()));
    worker
}

fn dispatches(host: &MockHost) -> usize {
    host.effects()
        .iter()
        .filter(|e| matches!(e, Effect::Dispatch { .. }))
        .count()
}

#[test]
fn when_the_host_cuts_a_shared_call_off_with_its_stream_each_waiter_asks_for_itself() {
    let json = r#"{"decision": "status", "cache": {"key": ["authorization"]}}"#;
    let host = native(&[
        (":authority", "a"),
        (":path", "/"),
        (":method", "GET"),
        ("authorization", "Bearer t"),
    ]);
    let mut worker = configured(json, &host);
    for id in [2, 3] {
        worker.on_context_create(id, ROOT);
        worker.on_request_headers(&host, id, true);
    }
    assert_eq!(
        dispatches(&host),
        1,
        "the second waits for the first's call"
    );
    // The leader's client goes: the host ends its call with it.
    worker.on_delete(&host, 2);
    assert_eq!(dispatches(&host), 2, "the waiter made its own call");
    assert!(matches!(
        worker.flow(3).unwrap().state(),
        State::AwaitingAuth { .. }
    ));
    assert_eq!(worker.root(ROOT).unwrap().calls_in_flight(), 1);
    // A waiter that goes leaves the call alone.
    worker.on_context_create(4, ROOT);
    worker.on_request_headers(&host, 4, true);
    worker.on_delete(&host, 4);
    assert_eq!(worker.root(ROOT).unwrap().calls_in_flight(), 1);
}

#[test]
fn an_evicting_store_is_keyed_by_the_digest_not_by_slots() {
    let json = r#"{"decision": "status", "cache": {"key": ["authorization"], "max_entries": 1}}"#;
    let mut host = native(&[]).answering("200", &[], b"");
    let mut worker = configured(json, &host);
    for (id, token) in [(2, "Bearer a"), (3, "Bearer b")] {
        host.request = headers(&[
            (":authority", "a"),
            (":path", "/"),
            (":method", "GET"),
            ("authorization", token),
        ]);
        worker.on_context_create(id, ROOT);
        worker.on_request_headers(&host, id, true);
        worker.on_call_response(&host, ROOT, host.last_token(), 1, 0);
    }
    // One slot would hold one of the two; the digests hold both.
    assert_eq!(host.shared.borrow().len(), 2);
    assert!(host.shared.borrow().keys().all(|k| k.len() > 64));
}

#[test]
fn the_answers_dynamic_metadata_is_written_on_allow_and_deny() {
    let json =
        r#"{"decision": "status", "dynamic_metadata_from_headers": [{"exact": "x-tenant"}]}"#;
    for status in ["200", "403"] {
        let host = native(&[(":authority", "a"), (":path", "/"), (":method", "GET")]).answering(
            status,
            &[("x-tenant", "acme"), ("x-other", "no")],
            b"",
        );
        let mut worker = configured(json, &host);
        worker.on_context_create(2, ROOT);
        worker.on_request_headers(&host, 2, true);
        worker.on_call_response(&host, ROOT, host.last_token(), 3, 0);
        let written: Vec<crate::host::Metadata> = host
            .effects()
            .into_iter()
            .filter_map(|e| match e {
                Effect::Metadata(bytes) => Some(bytes),
                _ => None,
            })
            .collect();
        assert_eq!(written.len(), 1, "{status}");
        assert_eq!(
            written[0].strings,
            vec![("x-tenant".to_owned(), "acme".to_owned())]
        );
    }
    // A shell that cannot write metadata refuses the configuration.
    let wasm = MockHost::with_request(&[]);
    let mut worker = Worker::default();
    worker.on_context_create(ROOT, 0);
    assert!(!worker.on_configure(&wasm, ROOT, json.as_bytes()));
}

#[test]
fn a_routes_settings_reach_its_requests_only() {
    let json = r#"{"protocol": "grpc", "context_extensions": {"app": "base"}}"#;
    let host = native(&[(":authority", "a"), (":path", "/"), (":method", "GET")]);
    let mut worker = configured(json, &host);
    let off = crate::config::RouteOverrides::parse(br#"{"disabled": true}"#).unwrap();
    worker.on_stream_create_on_route(2, ROOT, 7, &off);
    assert_eq!(worker.on_request_headers(&host, 2, true), Action::Continue);
    assert_eq!(*worker.flow(2).unwrap().state(), State::Exempt);
    worker.on_context_create(3, ROOT);
    assert_eq!(worker.on_request_headers(&host, 3, true), Action::Pause);
    assert!(host
        .effects()
        .iter()
        .any(|e| matches!(e, Effect::DispatchGrpc { .. })));
}

#[test]
fn route_settings_the_filter_cannot_take_refuse_their_requests() {
    let json = r#"{"protocol": "authzen", "authzen": {"subject": {"id_header": "x-user-id"}}}"#;
    let host = native(&[(":path", "/"), (":method", "POST"), ("x-user-id", "alice")]);
    let mut worker = configured(json, &host);
    for settings in [
        &br#"{"path_prefix": "/x"}"#[..],
        br#"{"check_settings": {"with_request_body": {"max_request_bytes": 1000}}}"#,
        br#"{"check_settings": {"context_extensions": {"a": "b"}}}"#,
    ] {
        host.clear_effects();
        let overrides = crate::config::RouteOverrides::parse(settings).unwrap();
        worker.on_stream_create_on_route(2, ROOT, 9, &overrides);
        assert_eq!(worker.on_request_headers(&host, 2, true), Action::Pause);
        assert!(
            host.effects()
                .iter()
                .any(|e| matches!(e, Effect::Reply { status: 500, .. })),
            "{}",
            String::from_utf8_lossy(settings)
        );
        assert_eq!(dispatches(&host), 0);
        worker.on_delete(&host, 2);
        // Another route id each time: a route's configuration is built once.
        worker = configured(json, &host);
    }
}

#[test]
fn the_waiters_of_a_call_cut_off_with_its_stream_share_one_new_call() {
    let json = r#"{"decision": "status", "cache": {"key": ["authorization"]}}"#;
    let host = native(&[
        (":authority", "a"),
        (":path", "/"),
        (":method", "GET"),
        ("authorization", "Bearer t"),
    ])
    .answering("200", &[], b"");
    let mut worker = configured(json, &host);
    for id in [2, 3, 4, 5] {
        worker.on_context_create(id, ROOT);
        worker.on_request_headers(&host, id, true);
    }
    assert_eq!(dispatches(&host), 1);
    worker.on_delete(&host, 2);
    assert_eq!(dispatches(&host), 2, "one new call for the three waiters");
    worker.on_call_response(&host, ROOT, host.last_token(), 1, 0);
    let resumed = host
        .effects()
        .iter()
        .filter(|e| matches!(e, Effect::Resume))
        .count();
    assert_eq!(resumed, 3, "each waiter goes on with the new call's answer");
}
