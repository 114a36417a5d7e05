//! Unit tests for parsing and validating the configuration.
//! Test code only: its module is declared under #[cfg(test)].

use super::*;
use std::time::Duration;

fn parse(json: &str) -> Result<Config, ConfigError> {
    Config::parse(json.as_bytes())
}

fn error_of(json: &str) -> ConfigError {
    match parse(json) {
        Ok(config) => panic!("{json} was accepted: {config:?}"),
        Err(err) => err,
    }
}

#[test]
fn no_configuration_is_the_seed_failing_closed() {
    for empty in ["", "  \n", "{}"] {
        let config = parse(empty).unwrap();
        assert_eq!(config.rule, Rule::FnvParity);
        assert_eq!(config.auth_request.cluster, "httpbin");
        assert_eq!(config.auth_request.timeout, Duration::from_secs(50));
        assert_eq!(config.auth_request.forward, Forward::All);
        assert_eq!(config.auth_request.path, PathRule::Client);
        assert_eq!(config.auth_request.authority, None);
        assert_eq!(config.auth_request.method, None);
        assert!(!config.failure.allow);
        assert_eq!(config.failure.status_on_error, 403);
        assert_eq!(config.deny.status, 403);
        assert_eq!(config.deny.body, "access forbidden");
        assert_eq!(
            config.deny.headers,
            vec![("powered-by".to_owned(), "http_auth_random".to_owned())]
        );
        assert_eq!(config.max_response_body_bytes, 65_536);
        assert!(config.exempt.is_empty());
        assert_eq!(
            config.limits,
            Limits {
                max_calls_in_flight: 1024,
                max_orphaned_calls: 500,
                max_success_header_bytes: 8192,
                max_held_bytes: 256 * 1024 * 1024,
                reservation: STREAM_COST_BYTES,
            }
        );
    }
}

#[test]
fn every_field_is_read() {
    let config = parse(
        r#"{
        "cluster": "outbound|80||auth.default.svc.cluster.local",
        "timeout_ms": 250,
        "decision": "status",
        "path": "/check",
        "path_prefix": "/authz/",
        "authority": "auth.local:8080",
        "method": "POST",
        "allowed_headers": [{"exact": "X-Request-Id"}, {"prefix": "x-b3-"}],
        "headers_to_add": [{"key": "X-Caller", "value": "edge"}],
        "failure_mode_allow": true,
        "failure_mode_allow_header_add": false,
        "status_on_error": 503,
        "deny": {"status": 401, "body": "no", "headers": [{"key": "www-authenticate", "value": "Bearer"}]},
        "allowed_upstream_headers": [{"exact": "x-user-id"}],
        "allowed_upstream_headers_to_append": [{"suffix": "-trace"}],
        "strip_client_upstream_headers": false,
        "allowed_client_headers": [{"contains": "auth"}],
        "allowed_client_headers_on_success": [{"exact": "set-cookie"}],
        "exempt": {"paths": ["/healthz"], "path_prefixes": ["/public/"], "methods": ["OPTIONS"]},
        "stat_prefix": "edge.authz",
        "max_response_body_bytes": 1024
    }"#,
    )
    .unwrap();
    let req = &config.auth_request;
    assert_eq!(req.cluster, "outbound|80||auth.default.svc.cluster.local");
    assert_eq!(req.timeout, Duration::from_millis(250));
    assert_eq!(config.rule, Rule::Status);
    assert_eq!(req.path, PathRule::Fixed("/authz/check".to_owned()));
    assert_eq!(req.authority.as_deref(), Some("auth.local:8080"));
    assert_eq!(req.method.as_deref(), Some("POST"));
    match &req.forward {
        Forward::Allowlist(set) => {
            assert!(set.matches("x-request-id"));
            assert!(set.matches("x-b3-traceid"));
            for always in ALWAYS_FORWARDED {
                assert!(set.matches(always), "{always}");
            }
            assert!(!set.matches("cookie"));
        }
        Forward::All => panic!("allowlist expected"),
    }
    assert_eq!(
        req.headers_to_add,
        vec![("x-caller".to_owned(), "edge".to_owned())]
    );
    assert!(config.failure.allow);
    assert!(!config.failure.add_header);
    assert_eq!(config.failure.status_on_error, 503);
    assert_eq!(config.deny.status, 401);
    assert!(config.response.upstream.matches("x-user-id"));
    assert!(config.response.upstream_append.matches("x-b3-trace"));
    assert!(!config.response.strip_client_copies);
    assert!(config
        .response
        .client
        .as_ref()
        .unwrap()
        .matches("x-auth-reason"));
    assert!(config.response.client_on_success.matches("set-cookie"));
    assert!(config.exempt.has_path("/healthz"));
    assert_eq!(config.exempt.path_prefixes, vec!["/public/".to_owned()]);
    assert!(config.exempt.has_method("OPTIONS"));
    assert_eq!(config.stat_prefix, "edge.authz");
    assert_eq!(config.max_response_body_bytes, 1024);
}

#[test]
fn path_prefix_goes_before_the_clients_path() {
    let config = parse(r#"{"decision": "fnv_parity", "path_prefix": "/authz/"}"#).unwrap();
    assert_eq!(
        config.auth_request.path,
        PathRule::Prefixed("/authz".to_owned())
    );
}

#[test]
fn unknown_fields_are_refused_by_name() {
    let err = error_of(r#"{"clustr": "httpbin"}"#);
    assert!(err.reason.contains("unknown field `clustr`"), "{err}");
    let err = error_of(r#"{"decision": "fnv_parity", "deny": {"satus": 401}}"#);
    assert_eq!(err.field, "deny.satus");
    assert!(err.reason.contains("unknown field `satus`"), "{err}");
}

#[test]
fn an_empty_field_name_is_refused_too() {
    // Found by fuzzing: the error named no field at all.
    let err = error_of(r#"{"": 1}"#);
    assert_eq!(err.field, "configuration");
    assert!(err.reason.contains("unknown field ``"), "{err}");
    let err = error_of(r#"{"decision": "fnv_parity", "deny": {"": 1}}"#);
    assert_eq!(err.field, "deny");
}

#[test]
fn wrong_types_name_the_field() {
    let err = error_of(r#"{"decision": "fnv_parity", "timeout_ms": "5s"}"#);
    assert_eq!(err.field, "timeout_ms");
    let err =
        error_of(r#"{"decision": "fnv_parity", "deny": {"headers": [{"key": "a", "value": 1}]}}"#);
    assert_eq!(err.field, "deny.headers[0].value");
    let err = error_of(r#"{"decision": "coin_flip"}"#);
    assert_eq!(err.field, "decision");
}

#[test]
fn bad_values_name_the_field_and_reason() {
    let cases = [
        (
            r#"{"decision": "fnv_parity", "timeout_ms": 0}"#,
            "timeout_ms",
            "out of range",
        ),
        (
            r#"{"decision": "fnv_parity", "timeout_ms": 18446744073709551615}"#,
            "timeout_ms",
            "out of range",
        ),
        (
            r#"{"decision": "fnv_parity", "cluster": ""}"#,
            "cluster",
            "empty",
        ),
        (
            r#"{"decision": "fnv_parity", "cluster": "a b"}"#,
            "cluster",
            "contains",
        ),
        (
            r#"{"decision": "fnv_parity", "status_on_error": 99}"#,
            "status_on_error",
            "not a refusal's status",
        ),
        (
            r#"{"decision": "fnv_parity", "status_on_error": 4294967295}"#,
            "status_on_error",
            "not a refusal's status",
        ),
        (
            r#"{"decision": "fnv_parity", "deny": {"status": 600}}"#,
            "deny.status",
            "not a refusal's status",
        ),
        (
            r#"{"decision": "fnv_parity", "path": "check"}"#,
            "path",
            "must start with '/'",
        ),
        (
            r#"{"decision": "fnv_parity", "path": "/a\r\nx: y"}"#,
            "path",
            "contains",
        ),
        (
            r#"{"decision": "fnv_parity", "method": "GET /"}"#,
            "method",
            "not an HTTP method",
        ),
        (
            r#"{"decision": "fnv_parity", "authority": "a/b"}"#,
            "authority",
            "without '/'",
        ),
        (
            r#"{"decision": "fnv_parity", "headers_to_add": [{"key": "", "value": "v"}]}"#,
            "headers_to_add[0].key",
            "empty",
        ),
        (
            r#"{"decision": "fnv_parity", "headers_to_add": [{"key": "x", "value": "a\nb"}]}"#,
            "headers_to_add[0].value",
            "not allowed",
        ),
        (
            r#"{"decision": "fnv_parity", "deny": {"headers": [{"key": "x y", "value": "v"}]}}"#,
            "deny.headers[0].key",
            "not allowed",
        ),
        (
            r#"{"decision": "fnv_parity", "allowed_headers": [{}]}"#,
            "allowed_headers[0]",
            "needs one of",
        ),
        (
            r#"{"decision": "fnv_parity", "allowed_headers": [{"exact": "a", "prefix": "b"}]}"#,
            "allowed_headers[0]",
            "more than one",
        ),
        (
            r#"{"decision": "fnv_parity", "allowed_headers": [{"prefix": ""}]}"#,
            "allowed_headers[0].prefix",
            "empty",
        ),
        (
            r#"{"decision": "fnv_parity", "exempt": {"paths": ["healthz"]}}"#,
            "exempt.paths[0]",
            "must start with '/'",
        ),
        (
            r#"{"decision": "fnv_parity", "exempt": {"methods": [""]}}"#,
            "exempt.methods[0]",
            "not an HTTP method",
        ),
        (
            r#"{"decision": "fnv_parity", "stat_prefix": "a..b"}"#,
            "stat_prefix",
            "dot-separated",
        ),
        (
            r#"{"decision": "fnv_parity", "max_response_body_bytes": 99999999999}"#,
            "max_response_body_bytes",
            "out of range",
        ),
    ];
    for (json, field, reason) in cases {
        let err = error_of(json);
        assert_eq!(err.field, field, "{json}: {err}");
        assert!(err.reason.contains(reason), "{json}: {err}");
    }
}

#[test]
fn malformed_json_is_refused() {
    for bad in [
        "{",
        "[]",
        "[\"httpbin\"]",
        "null",
        "\"x\"",
        "{} {}",
        "\u{0}",
    ] {
        let err = error_of(bad);
        assert!(!err.reason.is_empty(), "{bad}");
    }
}

#[test]
fn whole_doubles_from_a_protobuf_struct_are_integers() {
    let config =
        parse(r#"{"decision": "fnv_parity", "timeout_ms": 500.0, "status_on_error": 503.0}"#)
            .unwrap();
    assert_eq!(config.auth_request.timeout, Duration::from_millis(500));
    assert_eq!(config.failure.status_on_error, 503);
    for bad in [
        r#"{"decision": "fnv_parity", "timeout_ms": 0.5}"#,
        r#"{"decision": "fnv_parity", "timeout_ms": -1.0}"#,
        r#"{"decision": "fnv_parity", "timeout_ms": 1e300}"#,
    ] {
        assert_eq!(error_of(bad).field, "timeout_ms", "{bad}");
    }
}

#[test]
fn longest_timeout_is_accepted_and_fits_envoys_u32_milliseconds() {
    let config = parse(&format!(
        r#"{{"decision": "fnv_parity", "timeout_ms": {MAX_TIMEOUT_MS}}}"#
    ))
    .unwrap();
    assert!(u32::try_from(config.auth_request.timeout.as_millis()).is_ok());
}

#[test]
fn an_allowlist_of_any_size_is_a_lookup() {
    let names: Vec<String> = (0..20_000)
        .map(|i| format!(r#"{{"exact": "x-h{i}"}}"#))
        .collect();
    let config = parse(&format!(
        r#"{{"decision": "fnv_parity", "allowed_headers": [{}]}}"#,
        names.join(",")
    ))
    .unwrap();
    match config.auth_request.forward {
        Forward::Allowlist(set) => {
            assert!(set.matches("x-h19999"));
            assert!(!set.matches("x-h20000"));
        }
        Forward::All => panic!("allowlist expected"),
    }
}

#[test]
fn limits_are_read_and_range_checked() {
    let config = parse(
        r#"{"decision": "status", "max_calls_in_flight": 100, "max_orphaned_calls": 7, "max_success_header_bytes": 0, "max_held_bytes": 1048576}"#,
    )
    .unwrap();
    assert_eq!(config.limits.max_calls_in_flight, 100);
    assert_eq!(config.limits.max_orphaned_calls, 7);
    assert_eq!(config.limits.max_success_header_bytes, 0);
    assert_eq!(config.limits.max_held_bytes, 1_048_576);
    for (json, field) in [
        (
            r#"{"decision": "fnv_parity", "max_calls_in_flight": 0}"#,
            "max_calls_in_flight",
        ),
        (
            r#"{"decision": "fnv_parity", "max_orphaned_calls": 0}"#,
            "max_orphaned_calls",
        ),
        (
            r#"{"decision": "fnv_parity", "max_held_bytes": 1024}"#,
            "max_held_bytes",
        ),
        (
            r#"{"decision": "fnv_parity", "max_held_bytes": 4294967296}"#,
            "max_held_bytes",
        ),
        (
            r#"{"decision": "fnv_parity", "max_success_header_bytes": 2000000}"#,
            "max_success_header_bytes",
        ),
    ] {
        assert_eq!(error_of(json).field, field, "{json}");
    }
}

#[test]
fn pseudo_headers_and_host_are_refused_where_they_would_be_taken_from_the_answer() {
    for key in [
        "allowed_upstream_headers",
        "allowed_upstream_headers_to_append",
        "allowed_client_headers",
        "allowed_client_headers_on_success",
    ] {
        for name in [":path", ":method", ":authority", "host", "Host"] {
            let json = format!(
                r#"{{"decision": "fnv_parity", "{key}": [{{"exact": "x-ok"}}, {{"exact": "{name}"}}]}}"#
            );
            let err = error_of(&json);
            assert_eq!(err.field, format!("{key}[1].exact"), "{json}");
            assert!(err.reason.contains("never passed on"), "{err}");
        }
    }
    // The auth service may still be sent pseudo-headers.
    assert!(
        parse(r#"{"decision": "fnv_parity", "allowed_headers": [{"exact": ":path"}]}"#).is_ok()
    );
}

#[test]
fn lower_case_exempt_methods_are_refused_with_the_spelling_that_works() {
    let err = error_of(r#"{"decision": "fnv_parity", "exempt": {"methods": ["OPTIONS", "get"]}}"#);
    assert_eq!(err.field, "exempt.methods[1]");
    assert!(err.reason.contains("write \"GET\""), "{err}");
    assert!(
        parse(r#"{"decision": "fnv_parity", "exempt": {"methods": ["GET", "PROPFIND"]}}"#).is_ok()
    );
}

#[test]
fn underscore_spellings_of_trusted_headers_count_as_copies() {
    let config =
        parse(r#"{"decision": "fnv_parity", "allowed_upstream_headers": [{"exact": "x-user-id"}, {"prefix": "x-auth-"}]}"#)
            .unwrap();
    let response = &config.response;
    for forged in [
        "x-user-id",
        "x_user_id",
        "x_user-id",
        "x_auth_role",
        "x-auth-role",
    ] {
        assert!(response.is_spoofed(forged), "{forged}");
    }
    for other in ["x-user", "x-userid", "user-id", "x_other"] {
        assert!(!response.is_spoofed(other), "{other}");
    }
}

#[test]
fn added_headers_that_frame_route_or_steer_the_message_are_refused() {
    for (name, value) in [
        ("content-length", "10"),
        ("Transfer-Encoding", "chunked"),
        ("host", "evil"),
        ("connection", "close"),
        ("upgrade", "websocket"),
        ("x-envoy-upstream-rq-timeout-ms", "1"),
        ("grpc-timeout", "1S"),
        ("content-type", "application/grpc"),
    ] {
        for key in ["headers_to_add", "deny"] {
            let json = if key == "deny" {
                format!(
                    r#"{{"decision": "fnv_parity", "deny": {{"headers": [{{"key": "{name}", "value": "{value}"}}]}}}}"#
                )
            } else {
                format!(
                    r#"{{"decision": "fnv_parity", "headers_to_add": [{{"key": "{name}", "value": "{value}"}}]}}"#
                )
            };
            let err = error_of(&json);
            assert!(err.field.ends_with("[0].key"), "{json}: {err}");
            assert!(err.reason.contains("Envoy's to set"), "{json}: {err}");
        }
    }
    assert!(
        parse(r#"{"decision": "fnv_parity", "headers_to_add": [{"key": "content-type", "value": "application/json"}]}"#)
            .is_ok()
    );
}

#[test]
fn a_budget_that_cannot_hold_one_waiting_request_is_refused() {
    let err = error_of(
        r#"{"decision": "fnv_parity", "max_held_bytes": 65536, "max_success_header_bytes": 1048576,
            "allowed_client_headers_on_success": [{"exact": "x-s"}]}"#,
    );
    assert_eq!(err.field, "max_held_bytes");
    assert!(err.reason.contains("cannot hold even one"), "{err}");
    // Without success headers to keep, the cap reserves nothing.
    assert!(parse(r#"{"decision": "fnv_parity", "max_held_bytes": 65536, "max_success_header_bytes": 1048576}"#).is_ok());
}

#[test]
fn the_cache_is_off_unless_configured_and_then_needs_a_key() {
    assert!(parse("{}").unwrap().cache.is_none());
    let cache = parse(r#"{"decision": "fnv_parity", "cache": {"key": ["Authorization", ":method", ":path_without_query"]}}"#)
        .unwrap()
        .cache
        .unwrap();
    assert_eq!(
        cache.key,
        vec![
            crate::config::KeyPart::Header("authorization".into()),
            crate::config::KeyPart::Method,
            crate::config::KeyPart::PathWithoutQuery
        ]
    );
    assert_eq!(cache.ttl, Duration::from_secs(10));
    assert_eq!(cache.max_ttl, Duration::from_secs(300));
    assert!(cache.deny_ttl.is_zero() && cache.stale_if_error.is_zero());
    assert_eq!((cache.max_entries, cache.max_entry_bytes), (10_000, 8192));
    assert_eq!(
        cache.slot_prefix,
        concat!("http_auth_random.cache.", env!("CARGO_PKG_VERSION"), ".")
    );
    assert!(!cache.cache_missing_headers);
    for (json, field, reason) in [
        (
            r#"{"decision": "fnv_parity", "cache": {}}"#,
            "cache.key",
            "is missing",
        ),
        (
            r#"{"decision": "fnv_parity", "cache": {"key": []}}"#,
            "cache.key",
            "is empty",
        ),
        (
            r#"{"decision": "fnv_parity", "cache": {"key": [":scheme"]}}"#,
            "cache.key[0]",
            "not a key part",
        ),
        (
            r#"{"decision": "fnv_parity", "cache": {"key": ["a b"]}}"#,
            "cache.key[0]",
            "not allowed",
        ),
        (
            r#"{"decision": "fnv_parity", "cache": {"key": ["x"], "ttl_ms": 400000, "max_ttl_ms": 300000}}"#,
            "cache.ttl_ms",
            "over max_ttl_ms",
        ),
        (
            r#"{"decision": "fnv_parity", "cache": {"key": ["x"], "ttl_ms": 1000, "deny_ttl_ms": 999999, "max_ttl_ms": 1000}}"#,
            "cache.deny_ttl_ms",
            "over max_ttl_ms",
        ),
        (
            r#"{"decision": "fnv_parity", "cache": {"key": ["x"], "max_entries": 0}}"#,
            "cache.max_entries",
            "out of range",
        ),
        (
            r#"{"decision": "fnv_parity", "cache": {"key": ["x"], "ttl": 5}}"#,
            "cache.ttl",
            "unknown field",
        ),
    ] {
        let err = error_of(json);
        assert_eq!(err.field, field, "{json}: {err}");
        assert!(err.reason.contains(reason), "{json}: {err}");
    }
}

#[test]
fn every_configuration_has_its_own_fingerprint() {
    let a = parse(r#"{"decision": "fnv_parity", "cache": {"key": ["x"]}}"#)
        .unwrap()
        .cache
        .unwrap();
    let b = parse(r#"{"decision": "fnv_parity", "cache": {"key": ["x"]}, "timeout_ms": 100}"#)
        .unwrap()
        .cache
        .unwrap();
    assert_ne!(a.fingerprint, b.fingerprint);
}

#[test]
fn with_request_body_needs_a_limit_and_excludes_the_cache() {
    let body = parse(
        r#"{"decision": "fnv_parity", "with_request_body": {"max_request_bytes": 1024, "allow_partial_message": true}}"#,
    )
    .unwrap()
    .request_body
    .unwrap();
    assert_eq!(
        (body.max_bytes, body.allow_partial, body.pack_as_bytes),
        (1024, true, false)
    );
    assert_eq!(
        error_of(r#"{"decision": "fnv_parity", "with_request_body": {}}"#).field,
        "with_request_body.max_request_bytes"
    );
    let err = error_of(
        r#"{"decision": "fnv_parity", "with_request_body": {"max_request_bytes": 10}, "cache": {"key": ["x"]}}"#,
    );
    assert_eq!(err.field, "with_request_body");
    assert!(err.reason.contains("cannot be used with cache"), "{err}");
}

#[test]
fn a_configuration_that_says_anything_must_say_how_the_answer_decides() {
    // No configuration at all is the seed's, coin flip included.
    assert_eq!(parse("").unwrap().rule, Rule::FnvParity);
    assert_eq!(parse("{}").unwrap().rule, Rule::FnvParity);
    let err = error_of(r#"{"cluster": "authz"}"#);
    assert_eq!(err.field, "decision");
    assert!(err.to_string().contains("\"status\""), "{err}");
    assert_eq!(
        parse(r#"{"cluster": "authz", "decision": "fnv_parity"}"#)
            .unwrap()
            .rule,
        Rule::FnvParity
    );
    // gRPC's CheckResponse decides: no rule to name.
    assert!(parse(r#"{"protocol": "grpc", "cluster": "authz"}"#).is_ok());
}

#[test]
fn host_in_a_cache_key_is_the_authority_and_connection_headers_are_refused() {
    use crate::config::KeyPart;
    let cache = parse(r#"{"decision": "status", "cache": {"key": ["Host", "authorization"]}}"#)
        .unwrap()
        .cache
        .unwrap();
    assert_eq!(
        cache.key,
        vec![KeyPart::Authority, KeyPart::Header("authorization".into())]
    );
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
    ] {
        let err = error_of(&format!(
            r#"{{"decision": "status", "cache": {{"key": ["{name}"]}}}}"#
        ));
        assert_eq!(err.field, "cache.key[0]", "{name}");
    }
}

#[test]
fn a_grpc_check_with_its_body_fits_the_servers_message_limit() {
    let with_body = |bytes: u64| {
        format!(r#"{{"protocol": "grpc", "with_request_body": {{"max_request_bytes": {bytes}}}}}"#)
    };
    assert!(parse(&with_body(3 * 1024 * 1024)).is_ok());
    let err = error_of(&with_body(4 * 1024 * 1024));
    assert_eq!(err.field, "with_request_body.max_request_bytes");
    // The check's bounds: HTTP takes what an Envoy with its defaults takes; gRPC, a message.
    let http = parse(r#"{"decision": "status"}"#).unwrap().auth_request;
    assert_eq!(
        (http.max_check_headers, http.max_check_header_bytes),
        (100, 60 * 1024)
    );
    let grpc = parse(r#"{"protocol": "grpc"}"#).unwrap().auth_request;
    assert_eq!(grpc.max_check_header_bytes, 1024 * 1024);
    assert_eq!(
        error_of(r#"{"protocol": "grpc", "max_check_headers": 50}"#).field,
        "max_check_headers"
    );
}

#[test]
fn an_unknown_field_names_the_nearest_accepted_one() {
    for (json, field, near) in [
        (r#"{"decison": "status"}"#, "decison", "decision"),
        (
            r#"{"decision": "status", "timeout": 500}"#,
            "timeout",
            "timeout_ms",
        ),
        (
            r#"{"decision": "status", "Failure_Mode_Allow": true}"#,
            "Failure_Mode_Allow",
            "failure_mode_allow",
        ),
        (
            r#"{"decision": "fnv_parity", "deny": {"satus": 401}}"#,
            "deny.satus",
            "status",
        ),
        // Two neighbours swapped count as one slip.
        (
            r#"{"decision": "status", "exempt": {"pahts": ["/healthz"]}}"#,
            "exempt.pahts",
            "paths",
        ),
        (
            r#"{"decision": "status", "cache": {"key": ["x"], "max_entry": 10}}"#,
            "cache.max_entry",
            "max_entries",
        ),
        (
            r#"{"decision": "status", "with_request_body": {"max_request_byte": 10}}"#,
            "with_request_body.max_request_byte",
            "max_request_bytes",
        ),
    ] {
        let err = error_of(json);
        assert_eq!(err.field, field, "{json}: {err}");
        assert!(
            err.reason.contains(&format!("(did you mean `{near}`?)")),
            "{json}: {err}"
        );
        // The list of what is accepted follows, as without a suggestion.
        assert!(err.reason.contains(", expected one of "), "{json}: {err}");
    }
}

#[test]
fn an_unknown_field_far_from_every_accepted_one_gets_no_suggestion() {
    for json in [
        r#"{"upstream": "auth"}"#,
        r#"{"": 1}"#,
        r#"{"decision": "status", "deny": {"x": 1}}"#,
        r#"{"decision": "status", "cache": {"key": ["x"], "size": 10}}"#,
    ] {
        let err = error_of(json);
        assert!(err.reason.contains("unknown field `"), "{json}: {err}");
        assert!(!err.reason.contains("did you mean"), "{json}: {err}");
    }
    // A name as long as a request body is compared without cost and suggests nothing.
    let long = "a".repeat(100_000);
    let err = error_of(&format!(r#"{{"{long}": 1}}"#));
    assert!(!err.reason.contains("did you mean"));
}

#[test]
fn a_bare_header_name_where_a_matcher_goes_shows_the_matchers_form() {
    let err = error_of(r#"{"decision": "status", "allowed_headers": ["authorization"]}"#);
    assert_eq!(err.field, "allowed_headers[0]");
    assert_eq!(
        err.reason,
        r#"expected an object such as {"exact": "authorization"}, got a string"#
    );
    let err = error_of(
        r#"{"decision": "status", "allowed_upstream_headers": [{"exact": "x-user-id"}, "x-tenant"]}"#,
    );
    assert_eq!(err.field, "allowed_upstream_headers[1]");
    assert!(err.reason.contains(r#"{"exact": "x-tenant"}"#), "{err}");
    // A string that could not be shown inside quotes as it is gets a stand-in name.
    for bad in [r#""""#, r#""a\"b""#, r#""x y""#] {
        let err = error_of(&format!(
            r#"{{"decision": "status", "allowed_client_headers": [{bad}]}}"#
        ));
        assert_eq!(err.field, "allowed_client_headers[0]");
        assert_eq!(
            err.reason,
            r#"expected an object such as {"exact": "x-user-id"}, got a string"#
        );
    }
    // Anything else that is not an object keeps the plain message.
    let err = error_of(r#"{"decision": "status", "allowed_headers": [7]}"#);
    assert_eq!(err.reason, "expected an object, got an integer");
}

#[test]
fn the_edit_distance_counts_slips() {
    use super::json::distance;
    for (a, b, edits) in [
        ("", "", 0),
        ("", "abc", 3),
        ("abc", "", 3),
        ("decision", "decision", 0),
        ("decison", "decision", 1),
        ("kitten", "sitting", 3),
        ("pahts", "paths", 1),
        ("ab", "ba", 1),
        // Optimal string alignment: a swapped pair is not edited again.
        ("ca", "abc", 3),
    ] {
        assert_eq!(distance(a.as_bytes(), b.as_bytes()), edits, "{a} → {b}");
    }
    // Against the textbook table, for every pair of words of up to four letters from three.
    fn textbook(a: &[u8], b: &[u8]) -> usize {
        let mut d = vec![vec![0; b.len() + 1]; a.len() + 1];
        for (i, row) in d.iter_mut().enumerate() {
            row[0] = i;
        }
        for (j, cell) in d[0].iter_mut().enumerate() {
            *cell = j;
        }
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                d[i][j] = (d[i - 1][j] + 1)
                    .min(d[i][j - 1] + 1)
                    .min(d[i - 1][j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
                }
            }
        }
        d[a.len()][b.len()]
    }
    let mut words = vec![Vec::new()];
    for length in 1..=4 {
        let shorter: Vec<Vec<u8>> = words
            .iter()
            .filter(|w| w.len() == length - 1)
            .cloned()
            .collect();
        for word in shorter {
            for letter in [b'a', b'b', b'c'] {
                let mut longer = word.clone();
                longer.push(letter);
                words.push(longer);
            }
        }
    }
    assert_eq!(words.len(), 121);
    for a in &words {
        for b in &words {
            assert_eq!(distance(a, b), textbook(a, b), "{a:?} → {b:?}");
        }
    }
    // Longer than any field name: never near.
    assert_eq!(distance(b"a", &[b'a'; 64]), usize::MAX);
}

#[test]
fn a_json_verdict_rule_names_its_pointer_and_headers_and_trusts_them() {
    let config = Config::parse(
        br#"{"decision": {"json": "/result/allowed",
             "headers_from_json": [{"pointer": "/result/user", "header": "X-User-ID"}]}}"#,
    )
    .unwrap();
    let Rule::Json(rule) = &config.rule else {
        panic!("{:?}", config.rule)
    };
    assert_eq!(rule.pointer, "/result/allowed");
    assert_eq!(rule.headers[0].header, "x-user-id");
    assert!(config.response.is_spoofed("x-user-id"));
    assert!(config.response.is_spoofed("x_user_id"));
    for (json, field) in [
        (r#"{"decision": {}}"#, "decision.json"),
        (r#"{"decision": {"json": "allow"}}"#, "decision.json"),
        (r#"{"decision": {"json": "/a~2"}}"#, "decision.json"),
        (r#"{"decision": {"jsn": "/a"}}"#, "decision.jsn"),
        (
            r#"{"decision": {"json": "/a", "headers_from_json": [{"pointer": "/u"}]}}"#,
            "decision.headers_from_json[0].header",
        ),
        (
            r#"{"decision": {"json": "/a", "headers_from_json": [{"pointer": "/u", "header": "host"}]}}"#,
            "decision.headers_from_json[0].header",
        ),
        (
            r#"{"decision": {"json": "/a", "headers_from_json": [{"pointer": "/u", "header": "x-envoy-foo"}]}}"#,
            "decision.headers_from_json[0].header",
        ),
        (
            r#"{"decision": {"json": "/a", "headers_from_json": [{"pointer": "u", "header": "x"}]}}"#,
            "decision.headers_from_json[0].pointer",
        ),
        (r#"{"decision": 3}"#, "decision"),
    ] {
        let err = Config::parse(json.as_bytes()).unwrap_err();
        assert_eq!(err.field, field, "{json}: {err}");
    }
}

#[test]
fn headers_the_auth_service_vouches_for_are_never_the_clients() {
    for (json, field) in [
        (
            r#"{"decision": {"json": "/a", "headers_from_json": [{"pointer": "/u", "header": "x-user"}]},
                "strip_client_upstream_headers": false}"#,
            "strip_client_upstream_headers",
        ),
        (
            r#"{"decision": {"json": "/a", "headers_from_json": [{"pointer": "/u", "header": "authorization"}]}}"#,
            "decision.headers_from_json[0].header",
        ),
        (
            r#"{"decision": {"json": "/a", "headers_from_json": [{"pointer": "/u", "header": "x-request-id"}]}}"#,
            "decision.headers_from_json[0].header",
        ),
        (
            r#"{"decision": "status", "allowed_upstream_headers": [{"exact": "x-user-id"}],
                "cache": {"key": ["x-user-id"]}}"#,
            "cache.key",
        ),
        (
            r#"{"protocol": "authzen", "deny": {"headers": [{"key": "x-reason", "value": "no"}]},
                "authzen": {"subject": {"id_header": "x"}, "deny_reason": {"pointer": "/r", "header": "x-reason"}}}"#,
            "authzen.deny_reason.header",
        ),
        (
            r#"{"protocol": "authzen", "authzen": {"subject": {"id_header": "host"}}}"#,
            "authzen.subject.id_header",
        ),
        (
            r#"{"protocol": "authzen", "authzen": {"subject": {"id_header": "x", "properties": {"c": "connection"}}}}"#,
            "authzen.subject.properties.c",
        ),
    ] {
        let err = Config::parse(json.as_bytes()).unwrap_err();
        assert_eq!(err.field, field, "{json}: {err}");
    }
}
