//! An AuthZEN evaluation in the request flow: the call it makes, and what each kind of answer
//! does to the request under the failure policy.
//! Test code only: its module is declared under #[cfg(test)].

use std::rc::Rc;

use super::*;
use crate::metrics::Stats;
use crate::mock_host::{Effect, MockHost};

fn config(extra: &str) -> String {
    format!(
        r#"{{"protocol": "authzen", "cluster": "pdp", {extra}
            "authzen": {{"subject": {{"id_header": "x-user-id"}},
                        "deny_reason": {{"pointer": "/context/reason_user/en-403", "header": "x-authz-reason"}}}}}}"#
    )
}

/// A request as alice (or as nobody), answered `status` with `body` by the decision point.
fn run(json: &str, user: Option<&str>, status: &str, body: &[u8]) -> (MockHost, Flow) {
    let mut request = vec![
        (":method", "GET"),
        (":path", "/todos/1"),
        (":authority", "todo"),
    ];
    if let Some(user) = user {
        request.push(("x-user-id", user));
    }
    let host = MockHost::with_request(&request).answering(status, &[], body);
    let config = Rc::new(Config::parse(json.as_bytes()).unwrap());
    let mut flow = Flow::new(1, Rc::clone(&config));
    let mut root = Root::new(config, Stats::default(), 0);
    if flow.on_request_headers(&host, &mut root, true) == Action::Pause {
        answer(&host, &mut root, &mut flow);
    }
    (host, flow)
}

/// The decision point's answer to the last call, read and applied as the worker does.
fn answer(host: &MockHost, root: &mut Root, flow: &mut Flow) {
    if let Some(call) = root.finish_call(host.last_token()) {
        let answer = crate::protocol::http::read(
            host,
            &call.config,
            host.answer_headers.len(),
            host.answer_body.len(),
        );
        flow.on_outcome(host, root, host.last_token(), &answer.outcome);
    }
}

fn replies(host: &MockHost) -> Vec<(u16, Vec<(String, String)>)> {
    host.effects()
        .into_iter()
        .filter_map(|effect| match effect {
            Effect::Reply {
                status, headers, ..
            } => Some((status, headers)),
            _ => None,
        })
        .collect()
}

#[test]
fn an_evaluation_is_a_json_post_and_true_allows() {
    let (host, flow) = run(&config(""), Some("alice"), "200", br#"{"decision": true}"#);
    assert_eq!(flow.state(), &State::Allowed);
    let (cluster, headers, body) = host
        .effects()
        .into_iter()
        .find_map(|effect| match effect {
            Effect::Dispatch {
                cluster,
                headers,
                body,
                ..
            } => Some((cluster, headers, body)),
            _ => None,
        })
        .unwrap();
    assert_eq!(cluster, "pdp");
    assert!(headers.contains(&(":method".into(), "POST".into())));
    assert!(headers.contains(&(":path".into(), "/access/v1/evaluation".into())));
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["subject"]["id"], "alice");
    assert_eq!(body["action"]["name"], "GET");
    assert_eq!(body["resource"]["id"], "/todos/1");
}

#[test]
fn false_denies_with_the_reply_and_the_reason_the_answer_gives() {
    let (host, flow) = run(
        &config(""),
        Some("alice"),
        "200",
        br#"{"decision": false, "context": {"reason_user": {"en-403": "not your todo"}}}"#,
    );
    assert_eq!(flow.state(), &State::Denied);
    let (status, headers) = replies(&host).remove(0);
    assert_eq!(status, 403);
    assert!(
        headers.contains(&("x-authz-reason".into(), "not your todo".into())),
        "{headers:?}"
    );
}

#[test]
fn a_decision_point_edits_nothing_on_the_request() {
    let json = config("");
    let config = Rc::new(Config::parse(json.as_bytes()).unwrap());
    let host = MockHost::with_request(&[
        (":method", "GET"),
        (":path", "/"),
        ("x-user-id", "alice"),
        ("x-request-id", "a"),
        ("x-request-id", "b"),
        ("authorization", "Bearer t"),
    ])
    .answering(
        "200",
        &[("x-envoy-auth-headers-to-remove", "authorization")],
        br#"{"decision": true}"#,
    );
    let mut flow = Flow::new(1, Rc::clone(&config));
    let mut root = Root::new(config, Stats::default(), 0);
    assert_eq!(
        flow.on_request_headers(&host, &mut root, true),
        Action::Pause,
        "two ids are no reason to refuse"
    );
    answer(&host, &mut root, &mut flow);
    assert_eq!(flow.state(), &State::Allowed);
    assert!(!host
        .effects()
        .iter()
        .any(|e| matches!(e, Effect::RemoveRequestHeader(name) if name == "authorization")));
}

#[test]
fn an_empty_subject_or_route_name_is_none() {
    let (host, flow) = run(&config(""), Some("  "), "200", br#"{"decision": true}"#);
    assert_eq!((host.dispatches(), flow.state()), (0, &State::Denied));
    let by_route = r#"{"protocol": "authzen", "authzen": {"subject": {"id_header": "x-user-id"},
        "resource": {"id": "route_name"}}}"#;
    let (host, flow) = run(by_route, Some("alice"), "200", br#"{"decision": true}"#);
    assert_eq!(
        (host.dispatches(), flow.state()),
        (0, &State::Denied),
        "Envoy gave no route name"
    );
}

#[test]
fn the_evaluation_is_part_of_the_cache_key() {
    // A key that leaves the subject out still never serves one subject's verdict to another.
    let json = r#"{"protocol": "authzen", "cache": {"key": [":path"]},
        "authzen": {"subject": {"id_header": "x-user-id"}}}"#;
    let config = Rc::new(Config::parse(json.as_bytes()).unwrap());
    let mut root = Root::new(Rc::clone(&config), Stats::default(), 0);
    // One shared-data store for the three requests, as one VM has.
    let mut store = std::collections::HashMap::new();
    let mut dispatched = 0;
    for (id, user) in [(1, "alice"), (2, "mallory"), (3, "alice")] {
        let decision: &[u8] = if user == "alice" {
            br#"{"decision": true}"#
        } else {
            br#"{"decision": false}"#
        };
        let host =
            MockHost::with_request(&[(":method", "GET"), (":path", "/a"), ("x-user-id", user)])
                .answering("200", &[], decision);
        *host.shared.borrow_mut() = std::mem::take(&mut store);
        let mut flow = Flow::new(id, Rc::clone(&config));
        if flow.on_request_headers(&host, &mut root, true) == Action::Pause {
            dispatched += 1;
            let call = root.finish_call(host.last_token()).unwrap();
            let answer = crate::protocol::http::read(
                &host,
                &call.config,
                host.answer_headers.len(),
                host.answer_body.len(),
            );
            if let (Some(write), Some(cache)) = (&call.cache, &call.config.cache) {
                crate::cache::remember(&host, cache, write, &answer);
            }
            flow.on_outcome(&host, &mut root, host.last_token(), &answer.outcome);
        }
        store = host.shared.take();
        let expected = if user == "alice" {
            State::Allowed
        } else {
            State::Denied
        };
        assert_eq!(flow.state(), &expected, "{user}");
    }
    assert_eq!(
        dispatched, 2,
        "alice's second request is a hit; mallory asked for herself"
    );
}

#[test]
fn a_request_without_a_subject_is_denied_unasked() {
    let (host, flow) = run(&config(""), None, "200", br#"{"decision": true}"#);
    assert_eq!(host.dispatches(), 0);
    assert_eq!(flow.state(), &State::Denied);
    assert_eq!(replies(&host)[0].0, 403);
}

#[test]
fn malformed_answers_fail_closed_and_only_an_outage_fails_open() {
    for (status, body) in [
        ("200", &b"not json"[..]),
        ("200", br#"{"decision": "yes"}"#),
        ("200", br#"{"decision": 1}"#),
        ("200", br#"{}"#),
        ("200", br#"{"decision": true, "decision": true}"#),
        ("401", br#"{"decision": true}"#),
        ("403", br#"{"decision": false}"#),
        ("500", br#"{"decision": true}"#),
    ] {
        for open in [false, true] {
            let json = config(&format!(r#""failure_mode_allow": {open},"#));
            let (host, flow) = run(&json, Some("alice"), status, body);
            assert_eq!(
                flow.state(),
                &State::FailedClosed,
                "{status} {body:?} open={open}"
            );
            assert_eq!(replies(&host)[0].0, 403);
        }
    }
    let json = config(r#""failure_mode_allow": true,"#);
    let (_, flow) = run(&json, Some("alice"), "503", b"down");
    assert_eq!(flow.state(), &State::FailedOpen, "an outage fails open");
}

#[test]
fn a_deny_reason_that_cannot_be_a_header_is_an_error() {
    let (host, flow) = run(
        &config(""),
        Some("alice"),
        "200",
        br#"{"decision": false, "context": {"reason_user": {"en-403": "a\r\nset-cookie: x"}}}"#,
    );
    assert_eq!(flow.state(), &State::FailedClosed);
    assert!(replies(&host)
        .iter()
        .all(|(_, headers)| headers.iter().all(|(n, _)| n != "set-cookie")));
}

#[test]
fn an_underscore_spelling_of_the_subject_header_never_goes_upstream() {
    let json = r#"{"protocol": "authzen", "authzen": {"subject": {"id_header": "x-user-id", "anonymous_id": "anonymous"}}}"#;
    let config = Rc::new(Config::parse(json.as_bytes()).unwrap());
    let host =
        MockHost::with_request(&[(":method", "GET"), (":path", "/"), ("x_user_id", "admin")])
            .answering("200", &[], br#"{"decision": true}"#);
    let mut flow = Flow::new(1, Rc::clone(&config));
    let mut root = Root::new(config, Stats::default(), 0);
    assert_eq!(
        flow.on_request_headers(&host, &mut root, true),
        Action::Pause
    );
    assert!(host
        .effects()
        .contains(&Effect::RemoveRequestHeader("x_user_id".into())));
    let body = host
        .effects()
        .into_iter()
        .find_map(|effect| match effect {
            Effect::Dispatch { body, .. } => Some(body),
            _ => None,
        })
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["subject"]["id"], "anonymous");
}
