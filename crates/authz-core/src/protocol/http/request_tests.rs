//! The auth call's headers, built from requests and configurations.
//! Test code only: its module is declared under #[cfg(test)].

use super::*;
use crate::config::Config;

fn request() -> Headers {
    [
        (":authority", "shop.example"),
        (":path", "/uuid?x=1"),
        (":method", "GET"),
        (":scheme", "http"),
        ("authorization", "Bearer t"),
        ("cookie", "c=1"),
        ("x-request-id", "r1"),
        ("content-length", "12"),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v.as_bytes().to_vec()))
    .collect()
}

fn build(json: &str, request: &Headers) -> Result<Vec<(String, String)>, BadRequest> {
    let config = Config::parse(json.as_bytes()).unwrap();
    auth_headers(&config.auth_request, request, None).map(|h| {
        h.into_iter()
            .map(|(n, v)| (n.to_owned(), v.into_owned()))
            .collect()
    })
}

fn get<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn seed_forwards_every_header_and_pseudo_header_unchanged() {
    // Every header but the body's framing, which the call does not have.
    let headers = build("", &request()).unwrap();
    for (name, value) in request() {
        if name == "content-length" {
            continue;
        }
        assert_eq!(
            get(&headers, &name),
            vec![String::from_utf8(value).unwrap()],
            "{name}"
        );
    }
}

#[test]
fn the_body_framing_is_never_forwarded() {
    let headers = build("", &request()).unwrap();
    assert_eq!(get(&headers, "content-length"), vec!["0"]);
}

#[test]
fn overrides_replace_path_authority_and_method() {
    let json = r#"{"decision": "fnv_parity", "path": "/check", "path_prefix": "/v1", "authority": "auth", "method": "POST"}"#;
    let headers = build(json, &request()).unwrap();
    assert_eq!(get(&headers, ":path"), vec!["/v1/check"]);
    assert_eq!(get(&headers, ":authority"), vec!["auth"]);
    assert_eq!(get(&headers, ":method"), vec!["POST"]);
}

#[test]
fn path_prefix_keeps_the_clients_path() {
    let headers = build(
        r#"{"decision": "fnv_parity", "path_prefix": "/authz"}"#,
        &request(),
    )
    .unwrap();
    assert_eq!(get(&headers, ":path"), vec!["/authz/uuid?x=1"]);
}

#[test]
fn allowlist_forwards_only_matches_and_the_always_set() {
    let headers = build(
        r#"{"decision": "fnv_parity", "allowed_headers": [{"prefix": "x-request"}]}"#,
        &request(),
    )
    .unwrap();
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "content-length",
            ":method",
            ":path",
            ":authority",
            "authorization",
            "x-request-id",
            FORWARDED_METHOD,
            FORWARDED_URI,
            FORWARDED_HOST,
        ]
    );
}

#[test]
fn headers_that_would_change_how_envoy_sends_the_call_are_never_forwarded() {
    let mut req = request();
    for (name, value) in [
        ("content-type", "application/grpc+proto"),
        ("grpc-timeout", "1m"),
        ("connection", "upgrade"),
        ("upgrade", "websocket"),
        ("te", "trailers"),
        ("keep-alive", "timeout=5"),
        ("expect", "100-continue"),
        ("x-envoy-upstream-rq-timeout-ms", "1"),
        ("x-envoy-retry-on", "5xx"),
        ("transfer-encoding", "chunked"),
    ] {
        req.push((name.to_owned(), value.as_bytes().to_vec()));
    }
    let headers = build("", &req).unwrap();
    for name in [
        "grpc-timeout",
        "connection",
        "upgrade",
        "te",
        "keep-alive",
        "expect",
        "x-envoy-upstream-rq-timeout-ms",
        "x-envoy-retry-on",
        "transfer-encoding",
    ] {
        assert!(get(&headers, name).is_empty(), "{name} was forwarded");
    }
    assert!(
        get(&headers, "content-type").is_empty(),
        "a gRPC content-type is dropped"
    );
    // A plain content-type still goes.
    let mut json = request();
    json.push(("content-type".into(), b"application/json".to_vec()));
    assert_eq!(
        get(&build("", &json).unwrap(), "content-type"),
        vec!["application/json"]
    );
}

#[test]
fn the_forward_auth_headers_come_from_the_real_request_never_the_client() {
    let mut req = request();
    req.push((FORWARDED_URI.into(), b"/public/x".to_vec()));
    req.push((FORWARDED_METHOD.into(), b"GET".to_vec()));
    req.push((FORWARDED_HOST.into(), b"elsewhere".to_vec()));
    let headers = build(r#"{"decision": "fnv_parity", "path": "/verify"}"#, &req).unwrap();
    assert_eq!(get(&headers, ":path"), vec!["/verify"]);
    assert_eq!(get(&headers, FORWARDED_URI), vec!["/uuid?x=1"]);
    assert_eq!(get(&headers, FORWARDED_METHOD), vec!["GET"]);
    assert_eq!(get(&headers, FORWARDED_HOST), vec!["shop.example"]);
}

#[test]
fn headers_to_add_overwrite_the_clients_copy() {
    let json = r#"{"decision": "fnv_parity", "headers_to_add": [{"key": "x-request-id", "value": "fixed"}, {"key": "x-new", "value": "1"}]}"#;
    let headers = build(json, &request()).unwrap();
    assert_eq!(get(&headers, "x-request-id"), vec!["fixed"]);
    assert_eq!(get(&headers, "x-new"), vec!["1"]);
}

#[test]
fn a_forwarded_non_utf8_value_is_refused_by_name() {
    let mut req = request();
    req.push(("x-odd".to_owned(), vec![0x66, 0xff, 0x6f]));
    assert_eq!(
        build("", &req),
        Err(BadRequest::NotUtf8("x-odd".to_owned()))
    );
    // Not forwarded, not a problem.
    assert!(build(
        r#"{"decision": "fnv_parity", "allowed_headers": [{"exact": "cookie"}]}"#,
        &req
    )
    .is_ok());
}

fn connect() -> Headers {
    [(":authority", "db.internal:5432"), (":method", "CONNECT")]
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v.as_bytes().to_vec()))
        .collect()
}

#[test]
fn a_connect_request_is_checked_on_slash_or_the_configured_path() {
    let headers = build("", &connect()).unwrap();
    assert_eq!(get(&headers, ":path"), vec!["/"]);
    assert_eq!(get(&headers, ":method"), vec!["GET"]);
    assert_eq!(get(&headers, FORWARDED_METHOD), vec!["CONNECT"]);
    assert_eq!(get(&headers, FORWARDED_URI), vec!["db.internal:5432"]);
    assert_eq!(get(&headers, ":authority"), vec!["db.internal:5432"]);
    let headers = build(
        r#"{"decision": "fnv_parity", "path": "/tunnel", "method": "POST"}"#,
        &connect(),
    )
    .unwrap();
    assert_eq!(get(&headers, ":path"), vec!["/tunnel"]);
    assert_eq!(get(&headers, ":method"), vec!["POST"]);
    assert_eq!(get(&headers, FORWARDED_METHOD), vec!["CONNECT"]);
    let mut lying = connect();
    lying.push((FORWARDED_METHOD.to_owned(), b"GET".to_vec()));
    let headers = build("", &lying).unwrap();
    assert_eq!(
        get(&headers, FORWARDED_METHOD),
        vec!["CONNECT"],
        "the client's copy is replaced"
    );
    let headers = build(
        r#"{"decision": "fnv_parity", "path_prefix": "/authz"}"#,
        &connect(),
    )
    .unwrap();
    assert_eq!(get(&headers, ":path"), vec!["/authz/"]);
}

#[test]
fn a_request_without_authority_is_refused_unless_one_is_configured() {
    let request: Headers = vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), b"/".to_vec()),
    ];
    assert_eq!(build("", &request), Err(BadRequest::NoAuthority));
    let headers = build(
        r#"{"decision": "fnv_parity", "authority": "auth"}"#,
        &request,
    )
    .unwrap();
    assert_eq!(get(&headers, ":authority"), vec!["auth"]);
}

#[test]
fn a_body_sent_with_the_check_is_framed_and_marked() {
    let config = Config::parse(b"").unwrap();
    let req = request();
    for partial in [false, true] {
        let body = SentBody { len: 42, partial };
        let headers = auth_headers(&config.auth_request, &req, Some(body)).unwrap();
        let get = |name: &str| -> Vec<String> {
            headers
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
                .collect()
        };
        assert_eq!(get("content-length"), ["42"]);
        assert_eq!(get(PARTIAL_BODY), [partial.to_string()]);
    }
}

#[test]
fn values_padded_with_spaces_or_tabs_are_sent_trimmed() {
    let mut req = request();
    req.push(("x-padded".into(), b" \tv a l\t ".to_vec()));
    req.push(("x-blank".into(), b"   ".to_vec()));
    let headers = build("", &req).unwrap();
    assert_eq!(get(&headers, "x-padded"), vec!["v a l"]);
    assert_eq!(get(&headers, "x-blank"), vec![""]);
}

#[test]
fn a_request_over_the_hosts_map_limits_is_too_large_to_check() {
    let config = Config::parse(
        br#"{"decision": "status", "max_check_headers": 1024, "max_check_header_bytes": 1048576}"#,
    )
    .unwrap();
    let spec = &config.auth_request;
    let mut req = request();
    for n in 0..1020 {
        req.push((format!("x-{n}"), Vec::new()));
    }
    assert!(matches!(
        check_sendable(spec, &req),
        Err(BadRequest::TooLarge { .. })
    ));
    let mut req = request();
    req.retain(|(n, _)| n != ":path");
    req.push((":path".into(), vec![b'p'; 600 * 1024]));
    let err = check_sendable(spec, &req).unwrap_err();
    assert_eq!(err.status(), 431);
    // Whatever passes the check fits the host: the bound is from above.
    let mut req = request();
    req.retain(|(n, _)| n != ":path");
    req.push((":path".into(), vec![b'p'; 500 * 1024]));
    check_sendable(spec, &req).unwrap();
    let headers = auth_headers(spec, &req, None).unwrap();
    assert!(crate::call_limits::within(
        headers.iter().map(|(n, v)| (n.len(), v.len()))
    ));
}

#[test]
fn by_default_a_check_stays_within_what_an_envoy_with_defaults_takes() {
    // 100 headers and 60 KiB (as HTTP/2 counts them), room left for what Envoy adds; the path
    // travels twice (`:path`, `x-forwarded-uri`).
    let config = Config::parse(br#"{"decision": "status"}"#).unwrap();
    let spec = &config.auth_request;
    let with_headers = |n: usize| {
        let mut req = request();
        for i in 0..n {
            req.push((format!("x-{i}"), b"v".to_vec()));
        }
        req
    };
    let with_path = |len: usize| {
        let mut req = request();
        req.retain(|(n, _)| n != ":path");
        req.push((":path".into(), vec![b'p'; len]));
        req
    };
    assert!(check_sendable(spec, &with_headers(70)).is_ok());
    assert_eq!(
        check_sendable(spec, &with_headers(90))
            .unwrap_err()
            .status(),
        431
    );
    assert!(check_sendable(spec, &with_path(25 * 1024)).is_ok());
    assert_eq!(
        check_sendable(spec, &with_path(31 * 1024))
            .unwrap_err()
            .status(),
        431
    );
    // Whatever passes is within the bounds as the call is built.
    for req in [with_headers(70), with_path(25 * 1024)] {
        let headers = auth_headers(spec, &req, None).unwrap();
        let listed: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 32).sum();
        assert!(headers.len() + 8 <= 100, "{}", headers.len());
        assert!(listed + 512 <= 60 * 1024, "{listed}");
    }
}

mod properties {
    use super::super::*;
    use crate::config::Config;
    use proptest::prelude::*;

    fn header() -> impl Strategy<Value = (String, Vec<u8>)> {
        let name = prop::sample::select(vec![
            ":method",
            ":path",
            ":authority",
            "x-a",
            "cookie",
            "content-length",
            "x-envoy-x",
        ]);
        let value = prop_oneof![
            "[ -~]{0,6}".prop_map(String::into_bytes),
            prop::collection::vec(any::<u8>(), 0..6),
        ];
        (name.prop_map(str::to_owned), value)
    }

    proptest! {
        #[test]
        fn the_check_agrees_with_building_the_call(
            request in prop::collection::vec(header(), 0..6),
            allowlist in any::<bool>(),
            configured in any::<bool>(),
        ) {
            let mut json = serde_json::Map::new();
            json.insert("decision".into(), "status".into());
            if allowlist {
                json.insert("allowed_headers".into(), serde_json::json!([{"exact": "x-a"}]));
            }
            if configured {
                json.insert("authority".into(), "auth".into());
                json.insert("method".into(), "POST".into());
            }
            let config = Config::parse(serde_json::Value::Object(json).to_string().as_bytes()).unwrap();
            let spec = &config.auth_request;
            prop_assert_eq!(
                check_sendable(spec, &request).is_ok(),
                auth_headers(spec, &request, None).is_ok()
            );
        }
    }
}
