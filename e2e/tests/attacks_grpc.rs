//! A hostile or compromised Check service, and hostile clients, in gRPC mode: answers that would
//! split the client's response or smuggle a request to the upstream, answers over Envoy's header
//! limits, a cookie for one client offered to the cache, and query edits that must leave the
//! authorized parameters as they were.

use e2e::{config, Stack};
use serde_json::json;
use workbench::grpc_auth::pb::{CheckRequest, OkHttpResponse};
use workbench::grpc_auth::{header_option, query_parameter, request_path, GrpcReply};

/// Allows with mutations chosen by the request's path.
fn hostile(check: &CheckRequest) -> GrpcReply {
    let ok = match request_path(check).split('?').next().unwrap_or_default() {
        "/split" => OkHttpResponse {
            response_headers_to_add: vec![header_option(
                "x-a",
                "a\r\nset-cookie: evil=1",
                Some(false),
            )],
            ..OkHttpResponse::default()
        },
        "/smuggle" => OkHttpResponse {
            headers: vec![header_option("content-length", "0", Some(false))],
            ..OkHttpResponse::default()
        },
        "/too-many" => OkHttpResponse {
            headers: (0..150)
                .map(|n| header_option(&format!("x-h{n}"), &"v".repeat(16), Some(false)))
                .collect(),
            ..OkHttpResponse::default()
        },
        "/cookie" => OkHttpResponse {
            response_headers_to_add: vec![header_option(
                "set-cookie",
                "session=for-the-first-client",
                Some(false),
            )],
            ..OkHttpResponse::default()
        },
        "/query" => OkHttpResponse {
            query_parameters_to_set: vec![query_parameter("z", "1&admin=1")],
            ..OkHttpResponse::default()
        },
        _ => OkHttpResponse::default(),
    };
    GrpcReply::allow(ok)
}

#[tokio::test]
async fn answers_that_would_split_or_smuggle_are_refused_with_500_and_never_applied() {
    let stack = Stack::builder(&config(json!({"protocol": "grpc"})))
        .grpc_auth(hostile)
        .await
        .start()
        .await;
    let split = stack.get("/split").await;
    assert_eq!(split.status, 500);
    assert!(split.header("set-cookie").is_none());

    let smuggled = stack
        .send(
            stack
                .client
                .post(format!("{}/smuggle", stack.base))
                .body("GET /smuggled HTTP/1.1\r\nhost: x\r\n\r\n"),
        )
        .await;
    assert_eq!(smuggled.status, 500);

    let many = stack.get("/too-many").await;
    assert_eq!(
        many.status, 500,
        "native answers 500 over Envoy's limits too"
    );

    assert!(
        stack.upstream.seen().is_empty(),
        "none of these reached the upstream"
    );
    assert!(stack.get("/fine").await.reached_upstream());
}

#[tokio::test]
async fn a_cookie_from_the_check_service_is_never_served_from_the_cache() {
    let plugin = config(json!({
        "protocol": "grpc",
        "cache": {"key": ["authorization"], "ttl_ms": 60000}
    }));
    let stack = Stack::builder(&plugin)
        .grpc_auth(hostile)
        .await
        .start()
        .await;
    for _ in 0..2 {
        let seen = stack
            .send(
                stack
                    .client
                    .get(format!("{}/cookie", stack.base))
                    .header("authorization", "Bearer shared"),
            )
            .await;
        assert_eq!(
            seen.header("set-cookie"),
            Some("session=for-the-first-client")
        );
    }
    assert_eq!(
        stack.grpc_auth.as_ref().unwrap().seen_count(),
        2,
        "each request asked for itself"
    );
    // A plain allow for the same key is cached.
    for _ in 0..2 {
        stack
            .send(
                stack
                    .client
                    .get(format!("{}/plain", stack.base))
                    .header("authorization", "Bearer other"),
            )
            .await;
    }
    assert_eq!(stack.grpc_auth.as_ref().unwrap().seen_count(), 3);
}

#[tokio::test]
async fn a_query_edit_leaves_the_authorized_parameters_byte_for_byte_and_adds_no_others() {
    let stack = Stack::builder(&config(json!({"protocol": "grpc"})))
        .grpc_auth(hostile)
        .await
        .start()
        .await;
    let seen = stack
        .get("/query?sig=a%2Fb&x=%FF&flag&sp=a%20b&c=%zz")
        .await;
    assert!(seen.reached_upstream(), "{seen:?}");
    let upstream = &stack.upstream.seen()[0];
    assert_eq!(
        upstream.path,
        "/query?sig=a%2Fb&x=%FF&flag&sp=a%20b&c=%zz&z=1%26admin%3D1"
    );
}
