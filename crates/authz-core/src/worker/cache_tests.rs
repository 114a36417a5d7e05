//! The decision cache and coalescing through the worker, against a mock host whose shared data
//! behaves as the host's (versions, CAS).
//! Test code only: its module is declared under #[cfg(test)].

use super::*;
use crate::flow::State;
use crate::mock_host::{headers, Effect, MockHost};

const ROOT: u32 = 1;

fn request(token: &str) -> Vec<(String, Vec<u8>)> {
    headers(&[
        (":authority", "shop"),
        (":path", "/orders"),
        (":method", "GET"),
        ("authorization", token),
    ])
}

fn configured(json: &str, host: &MockHost) -> Worker {
    let mut worker = Worker::default();
    worker.on_context_create(ROOT, 0);
    assert!(worker.on_configure(host, ROOT, json.as_bytes()));
    worker
}

const CACHED: &str = r#"{"decision": "status", "allowed_upstream_headers": [{"exact": "x-user-id"}],
    "cache": {"key": ["authorization"], "ttl_ms": 10000}}"#;

/// Starts a stream with the host's current request; true if it made an auth call.
fn start(worker: &mut Worker, host: &MockHost, id: u32) -> (Action, bool) {
    let dispatches = |h: &MockHost| {
        h.effects()
            .iter()
            .filter(|e| matches!(e, Effect::Dispatch { .. }))
            .count()
    };
    let before = dispatches(host);
    worker.on_context_create(id, ROOT);
    let action = worker.on_request_headers(host, id, true);
    (action, dispatches(host) > before)
}

fn count(worker: &Worker, counter: Counter) -> u64 {
    worker.root(ROOT).unwrap().stats().total(counter)
}

#[test]
fn an_allow_is_served_from_the_cache_with_its_headers_and_no_call() {
    let mut host = MockHost::with_request(&[]).answering("200", &[("x-user-id", "alice")], b"");
    host.request = request("Bearer alice");
    let mut worker = configured(CACHED, &host);
    let (action, called) = start(&mut worker, &host, 2);
    assert_eq!((action, called), (Action::Pause, true));
    worker.on_call_response(&host, ROOT, host.last_token(), 2, 0);
    host.clear_effects();

    let (action, called) = start(&mut worker, &host, 3);
    assert_eq!((action, called), (Action::Continue, false), "a hit");
    assert!(host.effects().contains(&Effect::SetRequestHeader(
        "x-user-id".into(),
        b"alice".to_vec()
    )));
    assert_eq!(count(&worker, Counter::CacheHit), 1);
    assert_eq!(count(&worker, Counter::CacheMiss), 1);
}

#[test]
fn two_identities_never_get_each_others_verdict_even_in_one_slot() {
    // One slot: every key collides, and the digest tells them apart.
    let json = r#"{"decision": "status", "allowed_upstream_headers": [{"exact": "x-user-id"}],
        "cache": {"key": ["authorization"], "ttl_ms": 10000, "max_entries": 1, "deny_ttl_ms": 10000}}"#;
    let mut host = MockHost::with_request(&[]).answering("200", &[("x-user-id", "alice")], b"");
    host.request = request("Bearer alice");
    let mut worker = configured(json, &host);
    start(&mut worker, &host, 2);
    worker.on_call_response(&host, ROOT, host.last_token(), 2, 0);

    // Mallory's token misses (alice's entry is in the slot), and asks.
    let shared = host.shared.borrow().clone();
    let mut host = MockHost::with_request(&[]).answering("403", &[], b"no");
    *host.shared.borrow_mut() = shared;
    host.request = request("Bearer mallory");
    let (action, called) = start(&mut worker, &host, 3);
    assert_eq!((action, called), (Action::Pause, true), "not alice's allow");
    worker.on_call_response(&host, ROOT, host.last_token(), 1, 2);
    assert_eq!(*worker.flow(3).unwrap().state(), State::Denied);
    // Mallory's deny now holds the slot: alice asks again rather than get it.
    host.request = request("Bearer alice");
    let (_, called) = start(&mut worker, &host, 4);
    assert!(called);
}

#[test]
fn a_deny_is_cached_only_with_deny_ttl_and_errors_never() {
    for (json, answer, cached) in [
        (CACHED, "403", false),
        (
            r#"{"decision": "status", "cache": {"key": ["authorization"], "deny_ttl_ms": 5000}}"#,
            "403",
            true,
        ),
        (CACHED, "503", false),
        (
            r#"{"decision": "status", "failure_mode_allow": true, "cache": {"key": ["authorization"]}}"#,
            "504",
            false,
        ),
    ] {
        let mut host = MockHost::with_request(&[]).answering(answer, &[], b"");
        host.request = request("Bearer x");
        let mut worker = configured(json, &host);
        start(&mut worker, &host, 2);
        worker.on_call_response(&host, ROOT, host.last_token(), 1, 0);
        let (_, called) = start(&mut worker, &host, 3);
        assert_eq!(!called, cached, "{answer} under {json}");
    }
}

#[test]
fn cache_control_decides_and_an_expired_entry_is_never_served() {
    for (cache_control, cached) in [("no-store", false), ("private", false), ("max-age=2", true)] {
        let mut host =
            MockHost::with_request(&[]).answering("200", &[("cache-control", cache_control)], b"");
        host.request = request("Bearer x");
        let mut worker = configured(CACHED, &host);
        start(&mut worker, &host, 2);
        worker.on_call_response(&host, ROOT, host.last_token(), 2, 0);
        let (_, called) = start(&mut worker, &host, 3);
        assert_eq!(!called, cached, "{cache_control}");
        if cached {
            // max-age=2 s: past it, the entry is not served.
            host.clock.set(host.clock.get() + 2_000_000_000);
            let (_, called) = start(&mut worker, &host, 4);
            assert!(called, "expired");
        }
    }
}

#[test]
fn an_expired_allow_is_served_only_inside_the_stale_window_when_the_call_fails() {
    let json = r#"{"decision": "status", "cache": {"key": ["authorization"], "ttl_ms": 1000,
        "stale_if_error_ms": 5000}}"#;
    let mut host = MockHost::with_request(&[]).answering("200", &[], b"");
    host.request = request("Bearer x");
    let mut worker = configured(json, &host);
    start(&mut worker, &host, 2);
    worker.on_call_response(&host, ROOT, host.last_token(), 1, 0);
    // Expired, inside the stale window, and the auth service fails: served stale.
    host.clock.set(host.clock.get() + 2_000_000_000);
    let mut host = host.answering("504", &[], b"upstream request timeout");
    host.request = request("Bearer x");
    let (_, called) = start(&mut worker, &host, 3);
    assert!(called, "an expired entry is not a hit");
    worker.on_call_response(&host, ROOT, host.last_token(), 1, 24);
    assert_eq!(*worker.flow(3).unwrap().state(), State::Allowed);
    assert_eq!(count(&worker, Counter::CacheStaleServed), 1);
    // Past the window: the failure policy.
    host.clock.set(host.clock.get() + 5_000_000_000);
    start(&mut worker, &host, 4);
    worker.on_call_response(&host, ROOT, host.last_token(), 1, 24);
    assert_eq!(*worker.flow(4).unwrap().state(), State::FailedClosed);
}

#[test]
fn only_an_unreachable_or_down_auth_service_serves_stale() {
    let json = r#"{"decision": "status", "allowed_upstream_headers": [{"exact": "x-user-id"}],
        "cache": {"key": ["authorization"], "ttl_ms": 1000, "stale_if_error_ms": 60000}}"#;
    // A failure a client can provoke from a service that is up (a 500 for input it did not
    // expect, a method it answers 501 for, a reset, a gRPC server's answer, an interim status)
    // never serves a revoked credential's allow.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [u8], bool);
    let reset =
        b"upstream connect error or disconnect/reset before headers. reset reason: remote reset";
    let refused = b"upstream connect error or disconnect/reset before headers. reset reason: remote connection failure";
    let cases: [Case; 10] = [
        ("501", &[], b"", false),
        ("505", &[], b"", false),
        ("101", &[], b"", false),
        ("200", &[("content-type", "application/grpc")], b"", false),
        ("500", &[], b"", false),
        ("502", &[], b"", false),
        ("503", &[], reset, false),
        ("503", &[], refused, true),
        ("503", &[], b"the service's own", true),
        ("504", &[], b"", true),
    ];
    for (status, extra, body, stale) in cases {
        let mut host = MockHost::with_request(&[]).answering("200", &[("x-user-id", "alice")], b"");
        host.request = request("Bearer x");
        let mut worker = configured(json, &host);
        start(&mut worker, &host, 2);
        worker.on_call_response(&host, ROOT, host.last_token(), 2, 0);
        host.clock.set(host.clock.get() + 2_000_000_000);
        let mut host = host.answering(status, extra, body);
        host.request = request("Bearer x");
        start(&mut worker, &host, 3);
        worker.on_call_response(&host, ROOT, host.last_token(), 1 + extra.len(), body.len());
        let expected = if stale {
            State::Allowed
        } else {
            State::FailedClosed
        };
        assert_eq!(
            *worker.flow(3).unwrap().state(),
            expected,
            "{status} {}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn concurrent_requests_with_one_key_share_one_call_even_when_the_first_goes() {
    let mut host = MockHost::with_request(&[]).answering("200", &[("x-user-id", "alice")], b"");
    host.request = request("Bearer alice");
    let mut worker = configured(CACHED, &host);
    let calls: Vec<bool> = (2..=5).map(|id| start(&mut worker, &host, id).1).collect();
    assert_eq!(
        calls,
        [true, false, false, false],
        "one call for four requests"
    );
    assert_eq!(count(&worker, Counter::Coalesced), 3);
    // The request that made the call goes away; the others still get its answer.
    worker.on_done(2);
    worker.on_delete(&host, 2);
    worker.on_call_response(&host, ROOT, host.last_token(), 2, 0);
    for id in 3..=5 {
        assert_eq!(*worker.flow(id).unwrap().state(), State::Allowed, "#{id}");
    }
    let resumed = host
        .effects()
        .iter()
        .filter(|e| **e == Effect::Resume)
        .count();
    assert_eq!(resumed, 3);
    // A waiter that leaves is simply not resumed.
    let (_, called) = start(&mut worker, &host, 6);
    assert!(!called, "the answer was cached");
}

#[test]
fn waiters_share_the_calls_failure_and_its_deadline() {
    let mut host = MockHost::with_request(&[]);
    host.request = request("Bearer x");
    let mut worker = configured(
        r#"{"decision": "status", "timeout_ms": 100, "cache": {"key": ["authorization"]}}"#,
        &host,
    );
    start(&mut worker, &host, 2);
    start(&mut worker, &host, 3);
    worker.on_done(3);
    start(&mut worker, &host, 4);
    host.clock.set(host.clock.get() + 2_000_000_000);
    worker.on_tick(&host, ROOT);
    for id in [2, 4] {
        assert_eq!(
            *worker.flow(id).unwrap().state(),
            State::FailedClosed,
            "#{id}"
        );
    }
    assert_eq!(*worker.flow(3).unwrap().state(), State::Ended);
    // The key takes new callers after the call ended.
    let (_, called) = start(&mut worker, &host, 5);
    assert!(called);
}

#[test]
fn a_slot_written_since_it_was_read_is_not_overwritten_and_is_counted() {
    let json = r#"{"decision": "status", "cache": {"key": ["authorization"], "ttl_ms": 1000}}"#;
    let mut host = MockHost::with_request(&[]).answering("200", &[], b"");
    host.request = request("Bearer x");
    let mut worker = configured(json, &host);
    start(&mut worker, &host, 2);
    worker.on_call_response(&host, ROOT, host.last_token(), 1, 0);
    // Expired: the next request reads the slot at its current version and asks.
    host.clock.set(host.clock.get() + 2_000_000_000);
    let (_, called) = start(&mut worker, &host, 3);
    assert!(called);
    // Another worker writes the slot meanwhile.
    for (_, version) in host.shared.borrow_mut().values_mut() {
        *version += 1;
    }
    let before = host.shared.borrow().clone();
    worker.on_call_response(&host, ROOT, host.last_token(), 1, 0);
    assert_eq!(
        *worker.flow(3).unwrap().state(),
        State::Allowed,
        "served all the same"
    );
    assert_eq!(count(&worker, Counter::CacheStoreFailed), 1);
    assert_eq!(*host.shared.borrow(), before, "the newer write stands");
}

fn dispatches(host: &MockHost) -> usize {
    host.effects()
        .iter()
        .filter(|e| matches!(e, Effect::Dispatch { .. }))
        .count()
}

#[test]
fn requests_missing_a_key_header_are_neither_cached_nor_coalesced_unless_asked() {
    let anonymous = headers(&[(":authority", "shop"), (":path", "/"), (":method", "GET")]);
    for (json, shared) in [
        (CACHED, false),
        (
            r#"{"decision": "status", "cache": {"key": ["authorization"], "cache_missing_headers": true}}"#,
            true,
        ),
    ] {
        let mut host = MockHost::with_request(&[]).answering("200", &[], b"");
        host.request = anonymous.clone();
        let mut worker = configured(json, &host);
        start(&mut worker, &host, 2);
        start(&mut worker, &host, 3);
        assert_eq!(dispatches(&host) == 1, shared, "coalesced: {json}");
        worker.on_call_response(&host, ROOT, host.last_token(), 1, 0);
        let (_, called) = start(&mut worker, &host, 4);
        assert_eq!(!called, shared, "cached: {json}");
    }
}

#[test]
fn a_connect_is_never_cached() {
    let mut host = MockHost::with_request(&[]).answering("200", &[], b"");
    host.request = headers(&[
        (":authority", "db:5432"),
        (":method", "CONNECT"),
        ("authorization", "Bearer a"),
    ]);
    let mut worker = configured(CACHED, &host);
    start(&mut worker, &host, 2);
    worker.on_call_response(&host, ROOT, host.last_token(), 1, 0);
    let (_, called) = start(&mut worker, &host, 3);
    assert!(called);
}

#[test]
fn an_answer_that_may_not_be_cached_is_not_shared_with_waiters_either() {
    for extra in [
        ("cache-control", "no-store, private"),
        ("set-cookie", "sid=1"),
    ] {
        let json = r#"{"decision": "status", "allowed_client_headers_on_success": [{"exact": "set-cookie"}],
            "cache": {"key": ["authorization"]}}"#;
        let mut host = MockHost::with_request(&[]).answering("200", &[extra], b"");
        host.request = request("Bearer a");
        let mut worker = configured(json, &host);
        start(&mut worker, &host, 2);
        start(&mut worker, &host, 3);
        assert_eq!(dispatches(&host), 1, "joined");
        worker.on_call_response(&host, ROOT, host.last_token(), 2, 0);
        assert_eq!(*worker.flow(2).unwrap().state(), State::Allowed);
        assert!(
            matches!(worker.flow(3).unwrap().state(), State::AwaitingAuth { .. }),
            "{extra:?}: the waiter asks for itself"
        );
        assert_eq!(dispatches(&host), 2);
        worker.on_call_response(&host, ROOT, host.last_token(), 2, 0);
        assert_eq!(*worker.flow(3).unwrap().state(), State::Allowed);
        let (_, called) = start(&mut worker, &host, 4);
        assert!(called, "{extra:?}: never cached");
    }
}

#[test]
fn a_deny_that_is_not_cached_takes_back_the_stale_allow() {
    let json = r#"{"decision": "status", "cache": {"key": ["authorization"], "ttl_ms": 1000,
        "stale_if_error_ms": 60000}}"#;
    let mut host = MockHost::with_request(&[]).answering("200", &[], b"");
    host.request = request("Bearer a");
    let mut worker = configured(json, &host);
    start(&mut worker, &host, 2);
    worker.on_call_response(&host, ROOT, host.last_token(), 1, 0);
    // Expired; the auth service now denies (not cached: no deny_ttl_ms).
    host.clock.set(host.clock.get() + 2_000_000_000);
    let shared = host.shared.borrow().clone();
    let mut deny = MockHost::with_request(&[]).answering("403", &[], b"");
    deny.request = request("Bearer a");
    deny.clock.set(host.clock.get());
    *deny.shared.borrow_mut() = shared;
    start(&mut worker, &deny, 3);
    worker.on_call_response(&deny, ROOT, deny.last_token(), 1, 0);
    assert_eq!(*worker.flow(3).unwrap().state(), State::Denied);
    // Then the auth service fails: the earlier allow is not served stale.
    start(&mut worker, &deny, 4);
    worker.on_call_response(&deny, ROOT, deny.last_token(), 0, 0);
    assert_eq!(*worker.flow(4).unwrap().state(), State::FailedClosed);
    assert_eq!(count(&worker, Counter::CacheStaleServed), 0);
}

#[test]
fn must_revalidate_answers_are_never_served_stale() {
    let json = r#"{"decision": "status", "cache": {"key": ["authorization"], "stale_if_error_ms": 60000}}"#;
    let mut host = MockHost::with_request(&[]).answering(
        "200",
        &[("cache-control", "max-age=1, must-revalidate")],
        b"",
    );
    host.request = request("Bearer a");
    let mut worker = configured(json, &host);
    start(&mut worker, &host, 2);
    worker.on_call_response(&host, ROOT, host.last_token(), 2, 0);
    host.clock.set(host.clock.get() + 2_000_000_000);
    start(&mut worker, &host, 3);
    worker.on_call_response(&host, ROOT, host.last_token(), 0, 0);
    assert_eq!(*worker.flow(3).unwrap().state(), State::FailedClosed);
}

#[test]
fn an_older_answer_never_overwrites_a_newer_one_even_in_a_slot_that_was_empty() {
    let json =
        r#"{"decision": "status", "cache": {"key": ["authorization"], "deny_ttl_ms": 60000}}"#;
    let mut host = MockHost::with_request(&[]).answering("200", &[], b"");
    host.request = request("Bearer a");
    let mut worker = configured(json, &host);
    // Worker one misses on the empty slot and asks.
    start(&mut worker, &host, 2);
    // Meanwhile another worker stores a (newer) deny in that slot.
    let mut other = configured(json, &host);
    let deny = MockHost::with_request(&[]).answering("403", &[], b"");
    *deny.shared.borrow_mut() = host.shared.borrow().clone();
    let mut deny = deny;
    deny.request = request("Bearer a");
    other.on_context_create(9, ROOT);
    other.on_request_headers(&deny, 9, true);
    other.on_call_response(&deny, ROOT, deny.last_token(), 1, 0);
    *host.shared.borrow_mut() = deny.shared.borrow().clone();
    // Worker one's older allow arrives: it is served, not stored over the deny.
    worker.on_call_response(&host, ROOT, host.last_token(), 1, 0);
    assert_eq!(*worker.flow(2).unwrap().state(), State::Allowed);
    assert_eq!(count(&worker, Counter::CacheStoreFailed), 1);
    let (action, called) = start(&mut worker, &host, 3);
    assert_eq!(
        (action, called),
        (Action::Pause, false),
        "the cached deny answers"
    );
    assert_eq!(*worker.flow(3).unwrap().state(), State::Denied);
}

#[test]
fn a_hit_refuses_what_a_miss_would_refuse() {
    let mut host = MockHost::with_request(&[]).answering("200", &[], b"");
    host.request = request("Bearer a");
    let mut worker = configured(CACHED, &host);
    start(&mut worker, &host, 2);
    worker.on_call_response(&host, ROOT, host.last_token(), 1, 0);
    host.request.push(("x-odd".into(), vec![0xff]));
    host.clear_effects();
    let (action, called) = start(&mut worker, &host, 3);
    assert_eq!((action, called), (Action::Pause, false));
    assert_eq!(
        host.effects(),
        vec![Effect::Reply {
            status: 400,
            headers: vec![],
            body: vec![]
        }]
    );
}

fn grpc_dispatches(host: &MockHost) -> usize {
    host.effects()
        .iter()
        .filter(|e| matches!(e, Effect::DispatchGrpc { .. }))
        .count()
}

#[test]
fn a_grpc_allow_that_sets_a_cookie_is_neither_cached_nor_shared() {
    use crate::protocol::grpc::messages::{
        CheckResponse, HeaderValue, HeaderValueOption, HttpResponse, OkHttpResponse,
    };
    use prost::Message;
    let json = r#"{"protocol": "grpc", "cache": {"key": ["authorization"], "ttl_ms": 60000}}"#;
    let mut host = MockHost::with_request(&[]);
    host.request = request("Bearer a");
    host.grpc_answer = CheckResponse {
        dynamic_metadata: Default::default(),
        status: None,
        http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
            response_headers_to_add: vec![HeaderValueOption {
                header: Some(HeaderValue {
                    key: "Set-Cookie".into(),
                    value: "session=for-the-first-client".into(),
                    raw_value: Vec::new(),
                }),
                append: None,
                append_action: 0,
            }],
            ..OkHttpResponse::default()
        })),
    }
    .encode_to_vec();
    let mut worker = configured(json, &host);
    start(&mut worker, &host, 2);
    start(&mut worker, &host, 3);
    assert_eq!(grpc_dispatches(&host), 1, "joined");
    let size = host.grpc_answer.len();
    worker.on_grpc_receive(&host, ROOT, host.last_token(), size);
    assert_eq!(*worker.flow(2).unwrap().state(), State::Allowed);
    assert!(
        matches!(worker.flow(3).unwrap().state(), State::AwaitingAuth { .. }),
        "the waiter asks for itself"
    );
    assert_eq!(grpc_dispatches(&host), 2);
    worker.on_grpc_receive(&host, ROOT, host.last_token(), size);
    start(&mut worker, &host, 4);
    assert_eq!(grpc_dispatches(&host), 3, "never cached");
}

#[test]
fn a_waiter_that_asks_for_itself_records_its_own_ask_not_the_coalescing() {
    let json = r#"{"decision": "status", "record_decisions": true,
        "cache": {"key": ["authorization"]}}"#;
    let mut host =
        MockHost::with_request(&[]).answering("200", &[("cache-control", "no-store")], b"");
    host.request = request("Bearer a");
    let mut worker = configured(json, &host);
    start(&mut worker, &host, 2);
    start(&mut worker, &host, 3);
    worker.on_call_response(&host, ROOT, host.last_token(), 2, 0);
    worker.on_call_response(&host, ROOT, host.last_token(), 2, 0);
    let caches: Vec<crate::record::CacheUse> = host
        .effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::Record(record) => Some(record.cache),
            _ => None,
        })
        .collect();
    use crate::record::CacheUse;
    assert_eq!(caches, vec![CacheUse::Miss, CacheUse::None]);
}
