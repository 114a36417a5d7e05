//! The decision rules: what an auth service's answer means for the request.

#[cfg(test)]
use crate::config::JsonRule;
use crate::config::{parse_json, Json, JsonHeader, Number, Rule};
use crate::fnv::fnv1a_32;

/// What the auth call came back with, once it is known to be a real answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Deny with the configured reply (the seed rule).
    DenyConfigured,
    /// Deny with the auth service's own status, headers and body (the status rule).
    DenyWithAnswer(u16),
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Allow => "allowed",
            Verdict::DenyConfigured => "denied",
            Verdict::DenyWithAnswer(_) => "denied with the auth answer",
        }
    }
}

/// Why an auth call did not produce a verdict. Only an outage (`is_outage`) goes to the failure
/// policy or the stale cache; every other failure fails closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// The call was reset, or its answer was over Envoy's buffer limit.
    CallFailed,
    /// An interim (1xx) status: not an answer, and never relayed as one.
    NotFinal(u16),
    /// No answer by the call's deadline, not even Envoy's own 504.
    NoAnswer,
    /// A gRPC check that did not complete: its gRPC status (14 unavailable, 4 deadline, …).
    GrpcFailed(u32),
    /// A `CheckResponse` with an `error_response`: the auth service reports its own error.
    GrpcError(i32),
    /// An answer that cannot be read.
    Malformed(&'static str),
    MissingStatus,
    /// A 5xx answer (from the auth service, or Envoy's own timeout).
    ServerError(u16),
    /// Envoy's own 503: it could not reach the auth service (the reason as Envoy gives it).
    Unreachable(String),
    /// Envoy's own 503: the auth service reset the call or closed its connection after the
    /// call went out (the reason as Envoy gives it).
    Reset(String),
    BodyTooLarge {
        size: usize,
        limit: usize,
    },
    /// An HTTP-mode answer from a gRPC server (`content-type: application/grpc…` or a
    /// `grpc-status`): the configuration asks a gRPC service over HTTP, and its 200 means
    /// nothing. Never an allow.
    GrpcAnswerOverHttp,
    Host(String),
}

/// gRPC's UNAVAILABLE and DEADLINE_EXCEEDED: the check could not reach the service in time.
const UNAVAILABLE_GRPC: [u32; 2] = [14, 4];

impl AuthError {
    /// Whether the failure says the auth service is down or unreachable, rather than that it
    /// failed on this request: it could not be connected to, answered nothing in time, or said
    /// it is unavailable (503, 504; gRPC UNAVAILABLE, DEADLINE_EXCEEDED). Only then may the
    /// failure policy let a request through (`failure_mode_allow`) or an expired allow be
    /// served (`stale_if_error_ms`). Anything else a client can provoke from a service that is
    /// up — a 500 for input it did not expect, a 501 for a method, a reset for headers too
    /// large, an answer it cannot read — fails closed, or it would be a way in.
    pub fn is_outage(&self) -> bool {
        match self {
            AuthError::NoAnswer | AuthError::Unreachable(_) => true,
            AuthError::ServerError(status) => matches!(status, 503 | 504),
            AuthError::GrpcFailed(status) => UNAVAILABLE_GRPC.contains(status),
            AuthError::CallFailed
            | AuthError::Reset(_)
            | AuthError::NotFinal(_)
            | AuthError::GrpcError(_)
            | AuthError::Malformed(_)
            | AuthError::MissingStatus
            | AuthError::BodyTooLarge { .. }
            | AuthError::GrpcAnswerOverHttp
            | AuthError::Host(_) => false,
        }
    }
}

/// What Envoy's own 503 for a call it could not complete begins with.
const ENVOY_UPSTREAM_FAILURE: &str = "upstream connect error or disconnect/reset before headers.";

/// Reads Envoy's own 503 body: `None` if the 503 is the auth service's own; otherwise whether
/// Envoy could not connect (an outage) or the call was reset after it went out.
pub fn envoy_failure(body: &[u8]) -> Option<AuthError> {
    if body.starts_with(b"no healthy upstream") {
        return Some(AuthError::Unreachable("no healthy upstream".to_owned()));
    }
    let rest = body.strip_prefix(ENVOY_UPSTREAM_FAILURE.as_bytes())?;
    let reason = after(rest, b"reset reason:")
        .map(|r| r.split(|b| *b == b',').next().unwrap_or_default())
        .map(|r| String::from_utf8_lossy(r).trim().to_owned())
        .unwrap_or_default();
    let unreachable = [
        &b"connection failure"[..],
        b"connection timeout",
        b"overflow",
    ]
    .iter()
    .any(|kind| after(reason.as_bytes(), kind).is_some());
    Some(if unreachable {
        AuthError::Unreachable(reason)
    } else {
        AuthError::Reset(reason)
    })
}

/// What follows the first `needle` in `haystack`.
fn after<'a>(haystack: &'a [u8], needle: &[u8]) -> Option<&'a [u8]> {
    let at = haystack
        .windows(needle.len())
        .position(|window| window == needle)?;
    haystack.get(at + needle.len()..)
}

/// A gRPC status code's name, as the gRPC specification spells it.
pub fn grpc_status_name(code: u32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "an unknown status",
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthError::CallFailed => write!(f, "auth call failed (reset or no response)"),
            AuthError::NoAnswer => write!(f, "auth call got no answer by its deadline"),
            AuthError::GrpcFailed(status) => write!(
                f,
                "gRPC check failed with status {status} ({})",
                grpc_status_name(*status)
            ),
            AuthError::GrpcError(code) => write!(
                f,
                "auth service answered an error_response (code {code}, {})",
                u32::try_from(*code).map_or("an unknown status", grpc_status_name)
            ),
            AuthError::Malformed(what) => write!(f, "auth answer is malformed: {what}"),
            AuthError::NotFinal(status) => {
                write!(f, "auth service answered {status}, an interim status")
            }
            AuthError::MissingStatus => write!(f, "auth answer has no valid :status"),
            AuthError::ServerError(status) => write!(f, "auth service answered {status}"),
            AuthError::Unreachable(reason) => {
                write!(f, "auth service could not be reached ({reason})")
            }
            AuthError::Reset(reason) => {
                write!(f, "auth call was reset by the auth service ({reason})")
            }
            AuthError::BodyTooLarge { size, limit } => {
                write!(
                    f,
                    "auth answer body is {size} bytes, over the {limit}-byte limit"
                )
            }
            AuthError::GrpcAnswerOverHttp => write!(
                f,
                "the auth service answered as a gRPC server: set \"protocol\": \"grpc\" to ask it"
            ),
            AuthError::Host(why) => write!(f, "host call failed: {why}"),
        }
    }
}

/// Reads `:status` from the call's answer: three digits, 200 to 499. A 5xx is an error, because
/// Envoy itself answers 503/504 when the auth service is down or slow; a 1xx is not an answer.
pub fn answer_status(status: Option<&[u8]>) -> Result<u16, AuthError> {
    let code = status
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .filter(|text| text.len() == 3)
        .and_then(|text| text.parse::<u16>().ok())
        .filter(|code| (100..=599).contains(code))
        .ok_or(AuthError::MissingStatus)?;
    if code >= 500 {
        return Err(AuthError::ServerError(code));
    }
    if code < 200 {
        return Err(AuthError::NotFinal(code));
    }
    Ok(code)
}

/// Whether the rule must read the answer's body to decide (or to relay it) for this status.
pub fn needs_body(rule: &Rule, status: u16) -> bool {
    match rule {
        Rule::FnvParity | Rule::Json(_) => true,
        Rule::Status => status != 200,
    }
}

/// Decides on a real (non-5xx) answer. `body` is only looked at when `needs_body` said so.
/// Only a JSON verdict can be unreadable.
pub fn decide(rule: &Rule, status: u16, body: &[u8]) -> Result<Verdict, AuthError> {
    Ok(match rule {
        Rule::FnvParity if fnv1a_32(body) % 2 == 0 => Verdict::Allow,
        Rule::FnvParity => Verdict::DenyConfigured,
        Rule::Status if status == 200 => Verdict::Allow,
        Rule::Status => Verdict::DenyWithAnswer(status),
        Rule::Json(rule) if rule.answer_2xx_only && !(200..300).contains(&status) => {
            return Err(AuthError::Malformed("the answer is not a 2xx"))
        }
        Rule::Json(rule) => match parse_json(body)
            .map_err(|_| AuthError::Malformed("the answer is not JSON"))?
            .pointer(&rule.pointer)
        {
            Some(Json::Bool(true)) if (200..300).contains(&status) => Verdict::Allow,
            Some(Json::Bool(true)) => {
                return Err(AuthError::Malformed(
                    "an answer that is not a 2xx says true",
                ))
            }
            Some(Json::Bool(false)) => Verdict::DenyConfigured,
            _ => {
                return Err(AuthError::Malformed(
                    "the answer has no true or false where the json rule points",
                ))
            }
        },
    })
}

/// The values `headers_from_json` copies onto an allowed request: strings as they are, whole
/// numbers and booleans as written; a value that is absent or null is not set. Another kind of
/// value, or a string that cannot be a header value, is an unreadable answer.
pub fn json_headers(
    wanted: &[JsonHeader],
    body: &[u8],
) -> Result<Vec<(String, Vec<u8>)>, AuthError> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let answer = parse_json(body).map_err(|_| AuthError::Malformed("the answer is not JSON"))?;
    let mut headers = Vec::new();
    for wanted in wanted {
        let value = match answer.pointer(&wanted.pointer) {
            None | Some(Json::Null) => continue,
            // RFC 9110's field-value: no control characters but tab.
            Some(Json::String(text)) if !text.chars().any(|c| c.is_control() && c != '\t') => {
                text.clone()
            }
            Some(Json::Number(Number::Whole(n))) => n.to_string(),
            Some(Json::Bool(b)) => b.to_string(),
            Some(_) => {
                return Err(AuthError::Malformed(
                    "a headers_from_json value is not a string, whole number or boolean fit for a header",
                ))
            }
        };
        headers.push((wanted.header.clone(), value.into_bytes()));
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(rule: &Rule, status: u16, body: &[u8]) -> Verdict {
        decide(rule, status, body).unwrap()
    }

    #[test]
    fn a_json_verdict_allows_on_true_in_a_2xx_and_denies_on_false() {
        let rule = Rule::Json(JsonRule {
            pointer: "/result/allowed".into(),
            ..JsonRule::default()
        });
        let allowed = br#"{"result": {"allowed": true}}"#;
        assert_eq!(decide(&rule, 200, allowed), Ok(Verdict::Allow));
        assert_eq!(decide(&rule, 204, allowed), Ok(Verdict::Allow));
        assert!(decide(&rule, 403, allowed).is_err(), "a 403 that says true");
        let denied = br#"{"result": {"allowed": false}}"#;
        assert_eq!(decide(&rule, 200, denied), Ok(Verdict::DenyConfigured));
        assert_eq!(decide(&rule, 403, denied), Ok(Verdict::DenyConfigured));
        for bad in [
            &br#"{"result": {"allowed": "true"}}"#[..],
            br#"{"result": {"allowed": 1}}"#,
            br#"{"result": {}}"#,
            br#"{"result": {"allowed": true, "allowed": false}}"#,
            br#"{"result": {"allowed": true}"#,
            b"",
            b"true",
        ] {
            assert!(
                matches!(decide(&rule, 200, bad), Err(AuthError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn json_headers_copy_strings_numbers_and_booleans() {
        let rule = JsonRule {
            pointer: "/allow".into(),
            headers: [
                "/user/id",
                "/user/level",
                "/user/admin",
                "/user/none",
                "/user/absent",
            ]
            .iter()
            .map(|pointer| crate::config::JsonHeader {
                pointer: (*pointer).into(),
                header: format!("x{}", pointer.replace('/', "-")),
            })
            .collect(),
            ..JsonRule::default()
        };
        let body = br#"{"allow": true, "user": {"id": "alice", "level": 3, "admin": false, "none": null}}"#;
        let text = |pairs: Vec<(String, Vec<u8>)>| -> Vec<(String, String)> {
            pairs
                .into_iter()
                .map(|(n, v)| (n, String::from_utf8(v).unwrap()))
                .collect()
        };
        assert_eq!(
            text(json_headers(&rule.headers, body).unwrap()),
            vec![
                ("x-user-id".into(), "alice".into()),
                ("x-user-level".into(), "3".into()),
                ("x-user-admin".into(), "false".into()),
            ]
        );
        for bad in [
            &br#"{"user": {"id": "a
x-admin: 1"}}"#[..],
            br#"{"user": {"id": ["alice"]}}"#,
            br#"{"user": {"id": -1}}"#,
        ] {
            assert!(
                json_headers(&rule.headers, bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn only_an_unreachable_or_unavailable_service_is_an_outage() {
        for outage in [
            AuthError::NoAnswer,
            AuthError::ServerError(503),
            AuthError::ServerError(504),
            AuthError::GrpcFailed(14),
            AuthError::GrpcFailed(4),
            AuthError::Unreachable("connection failure".into()),
        ] {
            assert!(outage.is_outage(), "{outage:?}");
        }
        for provoked in [
            AuthError::ServerError(500),
            AuthError::ServerError(501),
            AuthError::ServerError(502),
            AuthError::ServerError(505),
            AuthError::CallFailed,
            AuthError::Reset("remote reset".into()),
            AuthError::GrpcFailed(11),
            AuthError::GrpcFailed(13),
            AuthError::GrpcError(14),
            AuthError::GrpcAnswerOverHttp,
            AuthError::Malformed("x"),
            AuthError::BodyTooLarge { size: 2, limit: 1 },
        ] {
            assert!(!provoked.is_outage(), "{provoked:?}");
        }
    }

    #[test]
    fn envoys_own_503_says_whether_it_could_connect() {
        let said = |text: &str| envoy_failure(text.as_bytes());
        assert_eq!(
            said("upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, transport failure reason: delayed connect error: Connection refused"),
            Some(AuthError::Unreachable("remote connection failure".into()))
        );
        assert_eq!(
            said("upstream connect error or disconnect/reset before headers. reset reason: connection timeout"),
            Some(AuthError::Unreachable("connection timeout".into()))
        );
        assert_eq!(
            said("upstream connect error or disconnect/reset before headers. reset reason: remote reset"),
            Some(AuthError::Reset("remote reset".into()))
        );
        assert_eq!(
            said("upstream connect error or disconnect/reset before headers. reset reason: connection termination"),
            Some(AuthError::Reset("connection termination".into()))
        );
        assert!(matches!(
            said("no healthy upstream"),
            Some(AuthError::Unreachable(_))
        ));
        assert_eq!(
            said("service unavailable, try later"),
            None,
            "the service's own"
        );
        assert_eq!(envoy_failure(&[0xff, 0xfe]), None);
    }

    #[test]
    fn parity_rule_hashes_the_body_whatever_the_status() {
        // fnv1a("a") = 0xe40c292c (even), fnv1a("b") = 0xe70c2de5 (odd).
        assert_eq!(verdict(&Rule::FnvParity, 200, b"a"), Verdict::Allow);
        assert_eq!(
            verdict(&Rule::FnvParity, 200, b"b"),
            Verdict::DenyConfigured
        );
        assert_eq!(verdict(&Rule::FnvParity, 404, b"a"), Verdict::Allow);
    }

    #[test]
    fn parity_rule_denies_an_empty_body() {
        assert_eq!(verdict(&Rule::FnvParity, 200, b""), Verdict::DenyConfigured);
    }

    #[test]
    fn status_rule_allows_only_200() {
        assert_eq!(verdict(&Rule::Status, 200, b"b"), Verdict::Allow);
        for status in [201, 204, 302, 401, 403, 404, 499] {
            assert_eq!(
                verdict(&Rule::Status, status, b""),
                Verdict::DenyWithAnswer(status)
            );
        }
    }

    #[test]
    fn body_is_needed_only_when_the_rule_uses_it() {
        assert!(needs_body(&Rule::FnvParity, 200));
        assert!(!needs_body(&Rule::Status, 200));
        assert!(needs_body(&Rule::Status, 403));
    }

    #[test]
    fn statuses_are_parsed_strictly() {
        assert_eq!(answer_status(Some(b"200")), Ok(200));
        assert_eq!(answer_status(Some(b"403")), Ok(403));
        for bad in [
            &b""[..],
            b"20",
            b"2000",
            b"abc",
            b"099",
            b"+20",
            b"\xff\xfe\xfd",
        ] {
            assert_eq!(
                answer_status(Some(bad)),
                Err(AuthError::MissingStatus),
                "{bad:?}"
            );
        }
        assert_eq!(answer_status(None), Err(AuthError::MissingStatus));
    }

    #[test]
    fn interim_statuses_are_errors_never_relayed() {
        for code in [100, 101, 103, 199] {
            assert_eq!(
                answer_status(Some(code.to_string().as_bytes())),
                Err(AuthError::NotFinal(code))
            );
        }
    }

    #[test]
    fn envoy_generated_failures_are_errors_not_answers() {
        // Envoy answers 503 when the auth service is down and 504 when it is too slow.
        assert_eq!(
            answer_status(Some(b"503")),
            Err(AuthError::ServerError(503))
        );
        assert_eq!(
            answer_status(Some(b"504")),
            Err(AuthError::ServerError(504))
        );
        assert_eq!(
            answer_status(Some(b"500")),
            Err(AuthError::ServerError(500))
        );
    }

    mod properties {
        use super::super::*;
        use super::verdict;
        use proptest::prelude::*;

        fn json_rule(pointer: &str) -> Rule {
            Rule::Json(JsonRule {
                pointer: pointer.to_owned(),
                ..JsonRule::default()
            })
        }

        proptest! {
            #[test]
            fn any_status_bytes_are_a_status_or_an_error(bytes in prop::collection::vec(any::<u8>(), 0..6)) {
                match answer_status(Some(&bytes)) {
                    Ok(code) => prop_assert!((200..=499).contains(&code)),
                    Err(AuthError::ServerError(code)) => prop_assert!((500..=599).contains(&code)),
                    Err(AuthError::NotFinal(code)) => prop_assert!((100..=199).contains(&code)),
                    Err(err) => prop_assert_eq!(err, AuthError::MissingStatus),
                }
            }

            #[test]
            fn the_seed_rule_is_exactly_the_parity_of_the_hash(status in 100u16..500, body in prop::collection::vec(any::<u8>(), 0..128)) {
                let verdict = verdict(&Rule::FnvParity, status, &body);
                let even = fnv1a_32(&body) % 2 == 0;
                prop_assert_eq!(verdict == Verdict::Allow, even);
            }

            #[test]
            fn the_status_rule_allows_200_only(status in 100u16..500, body in prop::collection::vec(any::<u8>(), 0..16)) {
                prop_assert_eq!(verdict(&Rule::Status, status, &body) == Verdict::Allow, status == 200);
            }
        }

        proptest! {
            /// Only a JSON `true` at the pointer allows; `false` denies; any other value, or
            /// none, is an error and never an allow.
            #[test]
            fn only_true_at_the_pointer_allows(
                key in "[a-z~/]{1,6}",
                value in prop_oneof![
                    Just("true".to_owned()), Just("false".to_owned()), Just("null".to_owned()),
                    Just("\"true\"".to_owned()), Just("1".to_owned()), Just("0".to_owned()),
                    Just("[true]".to_owned()), Just("{\"allow\": true}".to_owned()),
                ],
                nest in any::<bool>(),
            ) {
                let name = serde_json::to_string(&key).unwrap();
                let escaped = key.replace('~', "~0").replace('/', "~1");
                let (body, pointer) = if nest {
                    (format!("{{\"result\": {{{name}: {value}}}}}"), format!("/result/{escaped}"))
                } else {
                    (format!("{{{name}: {value}}}"), format!("/{escaped}"))
                };
                let decided = decide(&json_rule(&pointer), 200, body.as_bytes());
                match value.as_str() {
                    "true" => prop_assert_eq!(decided, Ok(Verdict::Allow)),
                    "false" => prop_assert_eq!(decided, Ok(Verdict::DenyConfigured)),
                    _ => prop_assert!(matches!(decided, Err(AuthError::Malformed(_))), "{:?}", decided),
                }
                // The same pointer one level off never finds it.
                let off = if nest { format!("/{escaped}") } else { format!("/result/{escaped}") };
                prop_assert!(decide(&json_rule(&off), 200, body.as_bytes()).is_err());
            }

            /// Any bytes at all are a verdict or an error, never a panic; an allow only where
            /// the bytes hold a JSON `true` at the pointer.
            #[test]
            fn any_body_is_a_verdict_or_an_error(body in prop::collection::vec(any::<u8>(), 0..64)) {
                if let Ok(Verdict::Allow) = decide(&json_rule("/allow"), 200, &body) {
                    let parsed = parse_json(&body).unwrap();
                    prop_assert_eq!(parsed.pointer("/allow"), Some(&Json::Bool(true)));
                }
            }
        }
    }
}
