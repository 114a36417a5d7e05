use super::*;
use crate::mock_host::headers;

fn config(authzen: &str) -> Config {
    Config::parse(
        format!(r#"{{"protocol": "authzen", "cluster": "pdp", "authzen": {authzen}}}"#).as_bytes(),
    )
    .unwrap()
}

/// The evaluation's body as JSON, and its call headers.
fn evaluate(
    config: &Config,
    request: &[(&str, &str)],
    facts: &Facts,
) -> (serde_json::Value, Vec<(String, String)>) {
    let request = headers(request);
    match evaluation(config, config.authzen.as_ref().unwrap(), &request, facts).unwrap() {
        Evaluation::Ask { headers, body } => (
            serde_json::from_slice(&body).unwrap(),
            headers
                .into_iter()
                .map(|(n, v)| (n.to_owned(), v.into_owned()))
                .collect(),
        ),
        Evaluation::NoSubject => panic!("no subject"),
    }
}

const FULL: &str = r#"{
    "subject": {"type": "user", "id_header": "x-user-id", "properties": {"email": "x-user-email"}},
    "resource": {"properties": ["method", "path", "query", "host", "scheme"]},
    "context": {"source_address": true, "values": {"env": "prod"}, "headers": {"time": "x-request-time"}}
}"#;

#[test]
fn the_api_gateway_mapping_field_by_field() {
    let config = config(FULL);
    let facts = Facts {
        route_name: None,
        source_address: Some("10.0.0.7:51234".into()),
    };
    for (method, path, host, resource_id, query) in [
        ("GET", "/todos", "todo.example.com", "/todos", ""),
        (
            "DELETE",
            "/todos/42?force=true&x=%20y",
            "todo.example.com:8443",
            "/todos/42",
            "force=true&x=%20y",
        ),
        (
            "POST",
            "/a%2Fb/%E2%82%AC",
            "Todo.Example.COM",
            "/a%2Fb/%E2%82%AC",
            "",
        ),
        ("PATCH", "/", "[::1]:80", "/", ""),
        (
            "GET",
            "/search?q=\"quoted\"&n=1",
            "h",
            "/search",
            "q=\"quoted\"&n=1",
        ),
    ] {
        let (body, call) = evaluate(
            &config,
            &[
                (":method", method),
                (":path", path),
                (":authority", host),
                (":scheme", "https"),
                ("x-user-id", "alice@example.com"),
                ("x-user-email", "alice@example.com"),
                ("x-request-id", "req-1"),
                ("x-request-time", "2026-12-05T12:00:00Z"),
            ],
            &facts,
        );
        assert_eq!(
            body,
            serde_json::json!({
                "subject": {"type": "user", "id": "alice@example.com",
                            "properties": {"email": "alice@example.com"}},
                "action": {"name": method},
                "resource": {"type": "route", "id": resource_id, "properties": {
                    "method": method, "path": resource_id, "query": query,
                    "host": host, "scheme": "https"}},
                "context": {"env": "prod", "time": "2026-12-05T12:00:00Z",
                            "source_address": "10.0.0.7:51234"}
            }),
            "{method} {path}"
        );
        let header = |name: &str| {
            call.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header(":method"), Some("POST"));
        assert_eq!(header(":path"), Some("/access/v1/evaluation"));
        assert_eq!(header(":authority"), Some("pdp"));
        assert_eq!(header("content-type"), Some("application/json"));
        assert_eq!(header("x-request-id"), Some("req-1"));
        assert_eq!(
            header("x-user-id"),
            None,
            "the subject goes in the body only"
        );
    }
}

#[test]
fn the_defaults_are_the_profiles_and_a_fixed_action_or_route_name_may_replace_them() {
    let plain = config(r#"{"subject": {"id_header": "x-sub"}}"#);
    let request = [(":method", "PUT"), (":path", "/x?y"), ("x-sub", "u1")];
    let (body, _) = evaluate(&plain, &request, &Facts::default());
    assert_eq!(
        body,
        serde_json::json!({"subject": {"type": "identity", "id": "u1"},
                           "action": {"name": "PUT"},
                           "resource": {"type": "route", "id": "/x"}})
    );
    let named = config(
        r#"{"path": "/v1/eval", "subject": {"id_header": "x-sub"}, "action": {"name": "can_write"},
            "resource": {"type": "api", "id": "route_name"}}"#,
    );
    let facts = Facts {
        route_name: Some("orders".into()),
        ..Facts::default()
    };
    let (body, call) = evaluate(&named, &request, &facts);
    assert_eq!(body["action"]["name"], "can_write");
    assert_eq!(
        body["resource"],
        serde_json::json!({"type": "api", "id": "orders"})
    );
    assert!(call.contains(&(":path".into(), "/v1/eval".into())));
}

#[test]
fn values_are_json_strings_never_json_text() {
    let config = config(r#"{"subject": {"id_header": "x-sub", "properties": {"role": "x-role"}}}"#);
    let injected = r#"alice", "type": "admin"#;
    let (body, _) = evaluate(
        &config,
        &[
            (":method", "GET"),
            (":path", "/\"},{\"x"),
            ("x-sub", injected),
            ("x-role", "a\\\"b\u{7}"),
        ],
        &Facts::default(),
    );
    assert_eq!(body["subject"]["id"], injected);
    assert_eq!(body["subject"]["type"], "identity");
    assert_eq!(body["subject"]["properties"]["role"], "a\\\"b\u{7}");
    assert_eq!(body["resource"]["id"], "/\"},{\"x");
}

#[test]
fn a_missing_subject_is_denied_unasked_or_anonymous_and_a_doubled_one_refused() {
    let strict = config(r#"{"subject": {"id_header": "x-sub"}}"#);
    let request = headers(&[(":method", "GET"), (":path", "/")]);
    let authzen = strict.authzen.as_ref().unwrap();
    assert_eq!(
        evaluation(&strict, authzen, &request, &Facts::default()),
        Ok(Evaluation::NoSubject)
    );
    let anonymous = config(r#"{"subject": {"id_header": "x-sub", "anonymous_id": "anon"}}"#);
    let (body, _) = evaluate(
        &anonymous,
        &[(":method", "GET"), (":path", "/")],
        &Facts::default(),
    );
    assert_eq!(body["subject"]["id"], "anon");
    let doubled = headers(&[
        (":method", "GET"),
        (":path", "/"),
        ("x-sub", "alice"),
        ("x-sub", "admin"),
    ]);
    assert_eq!(
        evaluation(&strict, authzen, &doubled, &Facts::default()),
        Err(BadRequest::Repeated("x-sub".into()))
    );
    // Only the exact name is the subject: an underscore spelling is someone else's header.
    let underscored = headers(&[(":method", "GET"), (":path", "/"), ("x_sub", "admin")]);
    assert_eq!(
        evaluation(&strict, authzen, &underscored, &Facts::default()),
        Ok(Evaluation::NoSubject)
    );
    let mut binary = headers(&[(":method", "GET"), (":path", "/")]);
    binary.push(("x-sub".into(), vec![0xff, 0xfe]));
    assert_eq!(
        evaluation(&strict, authzen, &binary, &Facts::default()),
        Err(BadRequest::NotUtf8("x-sub".into()))
    );
}
