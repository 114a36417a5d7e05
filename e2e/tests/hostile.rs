//! Hostile clients: header tricks sent on a raw socket must never get a request through an auth
//! service that says no, and must never forge an identity the auth service sets.

use e2e::{config, Reply, Stack};
use serde_json::json;

/// Sends raw bytes as a request; returns the status line's code (0 if the connection just closed).
async fn raw(port: u16, request: &[u8]) -> u16 {
    e2e::raw(port, request).await.0
}

const TRICKS: [(&str, &[u8]); 8] = [
    (
        "mixed-case duplicate headers",
        b"GET /a HTTP/1.1\r\nHost: t\r\nX-Tenant: a\r\nx-TENANT: b\r\n\r\n",
    ),
    (
        "NUL in a value",
        b"GET /a HTTP/1.1\r\nhost: t\r\nx-a: b\0c\r\n\r\n",
    ),
    (
        "bare CR in a value",
        b"GET /a HTTP/1.1\r\nhost: t\r\nx-a: b\rc\r\n\r\n",
    ),
    ("LF-only line ends", b"GET /a HTTP/1.1\nhost: t\nx-a: b\n\n"),
    (
        "obsolete line folding",
        b"GET /a HTTP/1.1\r\nhost: t\r\nx-a: b\r\n c\r\n\r\n",
    ),
    (
        "non-UTF-8 value",
        b"GET /a HTTP/1.1\r\nhost: t\r\nx-a: \xff\xfe\r\n\r\n",
    ),
    (
        "space before the colon",
        b"GET /a HTTP/1.1\r\nhost: t\r\nx-a : b\r\n\r\n",
    ),
    (
        "two content-lengths",
        b"POST /a HTTP/1.1\r\nhost: t\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab",
    ),
];

#[tokio::test]
async fn header_tricks_never_get_past_a_denying_auth_service() {
    // The auth service denies everything; failing open must not open a door either.
    for fail_open in [false, true] {
        let plugin = config(json!({"decision": "fnv_parity", "failure_mode_allow": fail_open}));
        let stack = Stack::start(&plugin, |_| Reply::ok("b")).await;
        for (name, request) in TRICKS {
            let status = raw(stack.port(), request).await;
            println!("{name} (fail open {fail_open}): {status}");
            assert_ne!(status, 200, "{name} got through");
        }
        assert!(
            stack.upstream.seen().is_empty(),
            "a trick reached the upstream"
        );
    }
}

#[tokio::test]
async fn forged_identity_headers_are_removed_in_any_case_and_number() {
    let plugin = config(json!({
        "decision": "status",
        "allowed_upstream_headers": [{"exact": "x-user-id"}]
    }));
    // Allows without naming a user: the upstream must not see one.
    let stack = Stack::start(&plugin, |_| Reply::ok("")).await;
    let request = b"GET /a HTTP/1.1\r\nhost: t\r\nX-User-Id: admin\r\nx-user-id: root\r\nX-USER-ID: x\r\n\r\n";
    assert_eq!(raw(stack.port(), request).await, 200);
    let upstream = stack.upstream.seen();
    assert_eq!(upstream.len(), 1);
    assert_eq!(
        upstream[0].header("x-user-id"),
        None,
        "{:?}",
        upstream[0].headers
    );
}

#[tokio::test]
async fn a_non_utf8_header_that_would_go_to_the_auth_service_is_a_bad_request_even_failing_open() {
    let plugin = config(json!({"decision": "fnv_parity", "failure_mode_allow": true}));
    let stack = Stack::start(&plugin, |_| Reply::ok("a")).await;
    let request = b"GET /a HTTP/1.1\r\nhost: t\r\nx-a: \xff\r\n\r\n";
    assert_eq!(raw(stack.port(), request).await, 400);
    assert!(stack.upstream.seen().is_empty());
    // Not sent to the auth service (outside the allowlist), it is no obstacle.
    let plugin = config(json!({"decision": "status", "allowed_headers": []}));
    let stack = Stack::start(&plugin, |_| Reply::ok("")).await;
    assert_eq!(raw(stack.port(), request).await, 200);
}
