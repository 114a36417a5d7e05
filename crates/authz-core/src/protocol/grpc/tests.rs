//! The gRPC check: the request the plugin builds, what answers mean, and the flow through the
//! worker against a mock host.
//! Test code only: its module is declared under #[cfg(test)].

use prost::Message;

use super::messages::*;
use super::*;
use crate::config::Config;
use crate::decision::AuthError;
use crate::flow::State;
use crate::host::Action;
use crate::mock_host::{headers, Effect, MockHost};
use crate::outcome::{Denied, Outcome, ResponseAction};
use crate::worker::Worker;

fn config(json: &str) -> Config {
    Config::parse(json.as_bytes()).unwrap()
}

const GRPC: &str =
    r#"{"protocol": "grpc", "cluster": "authz", "context_extensions": {"tenant": "a"}}"#;

fn request() -> Vec<(String, Vec<u8>)> {
    headers(&[
        (":authority", "shop.example"),
        (":path", "/orders?id=1"),
        (":method", "POST"),
        (":scheme", "https"),
        ("x-request-id", "r-1"),
        ("x-multi", "1"),
        ("x-multi", "2"),
    ])
}

fn decode(bytes: &[u8]) -> HttpRequest {
    CheckRequest::decode(bytes)
        .unwrap()
        .attributes
        .unwrap()
        .request
        .unwrap()
        .http
        .unwrap()
}

#[test]
fn the_check_request_carries_the_request_as_native_ext_authz_fills_it() {
    let context = Context {
        source: Some("10.0.0.1:5555".into()),
        destination: Some("[::1]:8080".into()),
        protocol: "HTTP/1.1".into(),
        now_nanos: 1_700_000_000_123_456_789,
    };
    let bytes = check_request(&config(GRPC), &request(), &context, None).unwrap();
    let attributes = CheckRequest::decode(bytes.as_slice())
        .unwrap()
        .attributes
        .unwrap();
    let http = attributes.request.clone().unwrap().http.unwrap();
    assert_eq!(
        (
            http.method.as_str(),
            http.path.as_str(),
            http.host.as_str(),
            http.scheme.as_str()
        ),
        ("POST", "/orders?id=1", "shop.example", "https")
    );
    assert_eq!(
        (http.id.as_str(), http.protocol.as_str(), http.size),
        ("r-1", "HTTP/1.1", 0)
    );
    assert_eq!(http.headers["x-multi"], "1,2", "repeated headers joined");
    assert_eq!(
        http.headers[":path"], "/orders?id=1",
        "pseudo-headers included"
    );
    let time = attributes.request.unwrap().time.unwrap();
    assert_eq!((time.seconds, time.nanos), (1_700_000_000, 123_456_789));
    let address = |peer: Option<Peer>| {
        let a = peer.unwrap().address.unwrap().socket_address.unwrap();
        (a.address, a.port_value)
    };
    assert_eq!(address(attributes.source), ("10.0.0.1".into(), 5555));
    assert_eq!(address(attributes.destination), ("::1".into(), 8080));
    assert_eq!(attributes.context_extensions["tenant"], "a");
}

#[test]
fn the_body_goes_as_text_or_bytes_with_the_partial_marker() {
    let context = Context::default();
    let body = Body {
        bytes: b"hi\xff",
        partial: true,
        received: 9,
    };
    let text = decode(
        &check_request(
            &config(r#"{"protocol": "grpc", "with_request_body": {"max_request_bytes": 3}}"#),
            &request(),
            &context,
            Some(body),
        )
        .unwrap(),
    );
    assert_eq!(
        (text.body.as_str(), text.size),
        ("hi!", 9),
        "size counts all received"
    );
    assert_eq!(text.headers["x-envoy-auth-partial-body"], "true");
    let raw = decode(&check_request(
        &config(r#"{"protocol": "grpc", "with_request_body": {"max_request_bytes": 3, "pack_as_bytes": true}}"#),
        &request(),
        &context,
        Some(body),
    )
    .unwrap());
    assert_eq!(
        (raw.body.as_str(), raw.raw_body.as_slice()),
        ("", &b"hi\xff"[..])
    );
}

#[test]
fn an_allowlist_limits_the_headers_and_bytes_that_are_not_utf8_are_replaced() {
    let mut req = request();
    req.push(("cookie".into(), b"c".to_vec()));
    let http = decode(
        &check_request(
            &config(r#"{"protocol": "grpc", "allowed_headers": [{"exact": "cookie"}]}"#),
            &req,
            &Context::default(),
            None,
        )
        .unwrap(),
    );
    assert!(http.headers.contains_key("cookie") && !http.headers.contains_key("x-multi"));
    req.push(("x-odd".into(), b"caf\xe9\xff!".to_vec()));
    let http = decode(&check_request(&config(GRPC), &req, &Context::default(), None).unwrap());
    assert_eq!(http.headers["x-odd"], "caf!!!");
}

fn option(key: &str, value: &str, append: Option<bool>, action: i32) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.into(),
            value: value.into(),
            raw_value: Vec::new(),
        }),
        append: append.map(|value| BoolValue { value }),
        append_action: action,
    }
}

fn answer(code: i32, http: Option<HttpResponse>) -> Vec<u8> {
    CheckResponse {
        dynamic_metadata: Default::default(),
        status: Some(RpcStatus {
            code,
            message: String::new(),
        }),
        http_response: http,
    }
    .encode_to_vec()
}

#[test]
fn ok_allows_with_every_mutation_as_ext_authz_applies_it() {
    let ok = OkHttpResponse {
        headers: vec![
            option("x-user", "alice", None, 0),
            option("x-tags", "b", Some(true), 0),
            option(":path", "/elsewhere", None, 0),
        ],
        headers_to_remove: vec!["X-Drop".into(), "host".into()],
        response_headers_to_add: vec![
            option("x-a", "1", None, 0),
            option("x-b", "2", None, 1),
            option("x-c", "3", Some(false), 0),
            option("x-d", "4", None, 3),
        ],
        query_parameters_to_set: vec![QueryParameter {
            key: "q".into(),
            value: "1".into(),
        }],
        query_parameters_to_remove: vec!["old".into()],
    };
    let allowed = outcome(
        &config(GRPC),
        &answer(0, Some(HttpResponse::OkResponse(ok))),
    );
    let Outcome::Allow(allowed) = allowed else {
        panic!("{allowed:?}");
    };
    assert_eq!(
        allowed.set,
        headers(&[("x-user", "alice")]),
        "no pseudo-header from an answer"
    );
    assert_eq!(allowed.append_existing, headers(&[("x-tags", "b")]));
    assert_eq!(allowed.remove, vec!["x-drop".to_owned()]);
    let actions: Vec<ResponseAction> = allowed.client_mutations.iter().map(|m| m.2).collect();
    assert_eq!(
        actions,
        [
            ResponseAction::Append,
            ResponseAction::AddIfAbsent,
            ResponseAction::Set,
            ResponseAction::OverwriteIfExists
        ]
    );
    assert_eq!(allowed.query_set, vec![("q".to_owned(), "1".to_owned())]);
    assert_eq!(allowed.query_remove, vec!["old".to_owned()]);
    // No status, or an empty message, is OK too.
    assert_eq!(outcome(&config(GRPC), b""), Outcome::Allow(Box::default()));
}

#[test]
fn any_other_code_denies_with_the_denied_response_or_403() {
    let denied = DeniedHttpResponse {
        status: Some(HttpStatus { code: 401 }),
        headers: vec![
            option("www-authenticate", "Bearer", None, 0),
            option("x-dropped", "1", Some(true), 0),
        ],
        body: "log in".into(),
    };
    assert_eq!(
        outcome(
            &config(GRPC),
            &answer(7, Some(HttpResponse::DeniedResponse(denied)))
        ),
        Outcome::Deny(Denied {
            status: 401,
            headers: vec![("www-authenticate".into(), "Bearer".into())],
            body: b"log in".to_vec(),
            metadata: Default::default(),
        })
    );
    let forbidden = Denied {
        status: 403,
        headers: vec![],
        body: vec![],
        metadata: Default::default(),
    };
    assert_eq!(
        outcome(&config(GRPC), &answer(16, None)),
        Outcome::Deny(forbidden.clone())
    );
    let no_status = DeniedHttpResponse::default();
    assert_eq!(
        outcome(
            &config(GRPC),
            &answer(7, Some(HttpResponse::DeniedResponse(no_status)))
        ),
        Outcome::Deny(forbidden)
    );
}

#[test]
fn an_error_response_or_a_message_that_does_not_decode_is_an_error() {
    let error = DeniedHttpResponse::default();
    assert_eq!(
        outcome(
            &config(GRPC),
            &answer(13, Some(HttpResponse::ErrorResponse(error)))
        ),
        Outcome::Failed(AuthError::GrpcError(13))
    );
    assert!(matches!(
        outcome(&config(GRPC), &[0xff, 0xff, 0xff]),
        Outcome::Failed(AuthError::Malformed(_))
    ));
}

const ROOT: u32 = 1;

fn worker(json: &str, host: &MockHost) -> Worker {
    let mut worker = Worker::default();
    worker.on_context_create(ROOT, 0);
    assert!(worker.on_configure(host, ROOT, json.as_bytes()));
    worker
}

#[test]
fn the_worker_sends_a_grpc_check_and_applies_its_answer() {
    let mut host = MockHost::with_request(&[]);
    host.request = request();
    host.properties
        .insert("source.address".into(), b"10.0.0.1:1".to_vec());
    let mut worker = worker(GRPC, &host);
    worker.on_context_create(2, ROOT);
    assert_eq!(worker.on_request_headers(&host, 2, true), Action::Pause);
    match host.effects().first() {
        Some(Effect::DispatchGrpc {
            service, message, ..
        }) => {
            assert_eq!(*service, super::service("authz"));
            assert_eq!(decode(message).path, "/orders?id=1");
        }
        other => panic!("{other:?}"),
    }
    let ok = OkHttpResponse {
        headers: vec![option("x-user", "alice", None, 0)],
        ..OkHttpResponse::default()
    };
    host.grpc_answer = answer(0, Some(HttpResponse::OkResponse(ok)));
    worker.on_grpc_receive(&host, ROOT, host.last_token(), host.grpc_answer.len());
    assert_eq!(*worker.flow(2).unwrap().state(), State::Allowed);
    assert!(host.effects().contains(&Effect::SetRequestHeader(
        "x-user".into(),
        b"alice".to_vec()
    )));
}

#[test]
fn a_failed_grpc_check_goes_to_the_failure_policy_and_stray_closes_are_ignored() {
    for (json, state) in [
        (GRPC, State::FailedClosed),
        (
            r#"{"protocol": "grpc", "failure_mode_allow": true}"#,
            State::FailedOpen,
        ),
    ] {
        let mut host = MockHost::with_request(&[]);
        host.request = request();
        let mut worker = worker(json, &host);
        worker.on_context_create(2, ROOT);
        worker.on_request_headers(&host, 2, true);
        worker.on_grpc_close(&host, ROOT, 999, 14);
        assert!(matches!(
            worker.flow(2).unwrap().state(),
            State::AwaitingAuth { .. }
        ));
        worker.on_grpc_close(&host, ROOT, host.last_token(), 14);
        assert_eq!(*worker.flow(2).unwrap().state(), state);
    }
}

#[test]
fn a_grpc_check_is_cancelled_when_its_client_goes() {
    let mut host = MockHost::with_request(&[]);
    host.request = request();
    let mut worker = worker(GRPC, &host);
    worker.on_context_create(2, ROOT);
    worker.on_request_headers(&host, 2, true);
    worker.on_delete(&host, 2);
    assert_eq!(
        host.effects().last(),
        Some(&Effect::CancelGrpc(host.last_token()))
    );
    assert!(
        worker.root(ROOT).unwrap().calls_in_flight() == 0,
        "not counted as an orphan"
    );
}

#[test]
fn http_only_fields_are_refused_with_grpc_and_extensions_without_it() {
    for field in [
        r#""decision": "status""#,
        r#""path": "/x""#,
        r#""headers_to_add": []"#,
    ] {
        let json = format!(r#"{{"protocol": "grpc", {field}}}"#);
        let err = Config::parse(json.as_bytes()).unwrap_err();
        assert!(err.reason.contains("no effect with protocol grpc"), "{err}");
    }
    let err = Config::parse(br#"{"decision": "fnv_parity", "context_extensions": {"a": "b"}}"#)
        .unwrap_err();
    assert_eq!(err.field, "context_extensions");
    assert_eq!(
        Config::parse(br#"{"decision": "fnv_parity", "protocol": "smtp"}"#)
            .unwrap_err()
            .field,
        "protocol"
    );
}

#[test]
fn an_answer_over_max_response_body_bytes_is_never_read_and_denies_even_failing_open() {
    let json =
        r#"{"protocol": "grpc", "max_response_body_bytes": 1024, "failure_mode_allow": true}"#;
    let mut host = MockHost::with_request(&[]);
    host.request = request();
    let mut worker = worker(json, &host);
    worker.on_context_create(2, ROOT);
    worker.on_request_headers(&host, 2, true);
    let ok = OkHttpResponse {
        headers: vec![option("x-user", &"a".repeat(1100), None, 0)],
        ..OkHttpResponse::default()
    };
    host.grpc_answer = answer(0, Some(HttpResponse::OkResponse(ok)));
    assert!(host.grpc_answer.len() > 1024);
    worker.on_grpc_receive(&host, ROOT, host.last_token(), host.grpc_answer.len());
    assert_eq!(*worker.flow(2).unwrap().state(), State::Denied);
    assert!(!host
        .effects()
        .iter()
        .any(|e| matches!(e, Effect::SetRequestHeader(..))));
}

fn rejected_with_500(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Deny(Denied { status: 500, .. }))
}

#[test]
fn a_mutation_that_is_not_a_valid_field_or_that_frames_the_message_rejects_the_answer() {
    let config = config(GRPC);
    let with =
        |ok: OkHttpResponse| outcome(&config, &answer(0, Some(HttpResponse::OkResponse(ok))));
    let splitting = OkHttpResponse {
        response_headers_to_add: vec![option("x-a", "a\r\nset-cookie: evil=1", None, 0)],
        ..OkHttpResponse::default()
    };
    assert!(rejected_with_500(&with(splitting)));
    for name in [
        "content-length",
        "transfer-encoding",
        "connection",
        "x-envoy-original-path",
        "bad name",
    ] {
        let upstream = OkHttpResponse {
            headers: vec![option(name, "0", Some(false), 0)],
            ..OkHttpResponse::default()
        };
        assert!(rejected_with_500(&with(upstream)), "{name}");
        let removal = OkHttpResponse {
            headers_to_remove: vec![name.to_uppercase()],
            ..OkHttpResponse::default()
        };
        assert!(rejected_with_500(&with(removal)), "{name}");
    }
    let nul = OkHttpResponse {
        headers: vec![option("x-user", "a\0b", Some(false), 0)],
        ..OkHttpResponse::default()
    };
    assert!(rejected_with_500(&with(nul)));
    // A valid answer still allows: obs-text bytes and tabs are valid field values.
    let fine = OkHttpResponse {
        headers: vec![option("x-user", "caf\u{e9}\tbar", Some(false), 0)],
        ..OkHttpResponse::default()
    };
    assert!(matches!(with(fine), Outcome::Allow(_)));
}

#[test]
fn request_mutations_over_envoys_header_limits_reject_the_answer() {
    let config = config(GRPC);
    let with =
        |ok: OkHttpResponse| outcome(&config, &answer(0, Some(HttpResponse::OkResponse(ok))));
    let many = OkHttpResponse {
        headers: (0..101)
            .map(|n| option(&format!("x-h{n}"), "v", Some(false), 0))
            .collect(),
        ..OkHttpResponse::default()
    };
    assert!(rejected_with_500(&with(many)));
    let big = OkHttpResponse {
        headers: vec![option("x-big", &"v".repeat(61 * 1024), Some(false), 0)],
        ..OkHttpResponse::default()
    };
    assert!(rejected_with_500(&with(big)));
    let at_the_limit = OkHttpResponse {
        headers: (0..100)
            .map(|n| option(&format!("x-h{n}"), "v", Some(false), 0))
            .collect(),
        ..OkHttpResponse::default()
    };
    assert!(matches!(with(at_the_limit), Outcome::Allow(_)));
}

#[test]
fn a_denials_unusable_headers_are_left_out_and_it_still_denies() {
    let denied = DeniedHttpResponse {
        status: Some(HttpStatus { code: 401 }),
        headers: vec![
            option("x-ok", "fine", None, 0),
            option("x-bad", "a\r\nset-cookie: evil=1", None, 0),
            option("content-length", "0", None, 0),
        ],
        body: "no".into(),
    };
    let outcome = outcome(
        &config(GRPC),
        &answer(7, Some(HttpResponse::DeniedResponse(denied))),
    );
    assert_eq!(
        outcome,
        Outcome::Deny(Denied {
            status: 401,
            headers: vec![("x-ok".into(), "fine".into())],
            body: b"no".to_vec(),
            metadata: Default::default(),
        })
    );
}

#[test]
fn a_header_is_read_from_value_as_native_reads_it_never_raw_value() {
    let mut only_raw = option("x-user", "", Some(false), 0);
    if let Some(header) = only_raw.header.as_mut() {
        header.raw_value = b"alice".to_vec();
    }
    let ok = OkHttpResponse {
        headers: vec![only_raw],
        ..OkHttpResponse::default()
    };
    match outcome(
        &config(GRPC),
        &answer(0, Some(HttpResponse::OkResponse(ok))),
    ) {
        Outcome::Allow(allowed) => assert_eq!(allowed.set, vec![("x-user".into(), Vec::new())]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_grpc_stream_reserves_room_for_the_headers_an_answer_may_add_for_the_client() {
    let http = config("{}");
    let grpc = config(GRPC);
    let reserve = |c: &Config| c.limits.reservation;
    assert_eq!(
        reserve(&grpc) - reserve(&http),
        grpc.limits.max_success_header_bytes
    );
}

#[test]
fn grpc_mode_defaults_to_ext_authz_grpc_timeout() {
    assert_eq!(config(GRPC).auth_request.timeout.as_millis(), 200);
    assert_eq!(config("{}").auth_request.timeout.as_millis(), 50_000);
}

#[test]
fn a_response_limit_too_small_for_any_check_response_is_refused() {
    let err = Config::parse(br#"{"protocol": "grpc", "max_response_body_bytes": 0}"#).unwrap_err();
    assert!(err.to_string().contains("max_response_body_bytes"), "{err}");
    assert!(Config::parse(br#"{"protocol": "grpc", "max_response_body_bytes": 1024}"#).is_ok());
    assert!(
        Config::parse(br#"{"decision": "fnv_parity", "max_response_body_bytes": 0}"#).is_ok(),
        "HTTP mode keeps 0"
    );
}

#[test]
fn an_answer_the_plugin_rejects_is_never_cached_and_query_growth_counts() {
    let config = config(GRPC);
    let splitting = OkHttpResponse {
        response_headers_to_add: vec![option("x-a", "a\r\nb", None, 0)],
        ..OkHttpResponse::default()
    };
    let rejected = super::answer(
        &config,
        &answer(0, Some(HttpResponse::OkResponse(splitting))),
    );
    assert!(matches!(
        rejected.outcome,
        Outcome::Deny(Denied { status: 500, .. })
    ));
    assert_eq!(rejected.cache_control.as_deref(), Some(&b"no-store"[..]));
    let fine = super::answer(&config, &answer(0, None));
    assert_eq!(fine.cache_control, None);

    let query = OkHttpResponse {
        query_parameters_to_set: vec![QueryParameter {
            key: "q".into(),
            value: "/".repeat(40_000),
        }],
        ..OkHttpResponse::default()
    };
    let grown = outcome(&config, &answer(0, Some(HttpResponse::OkResponse(query))));
    assert!(
        matches!(grown, Outcome::Deny(Denied { status: 500, .. })),
        "{grown:?}"
    );
}
