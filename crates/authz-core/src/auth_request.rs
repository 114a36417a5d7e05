//! Builds the auth call's headers from the client's request and the configuration.

use std::borrow::Cow;

use crate::call_limits::{HEADER_OVERHEAD_BYTES, MAX_BYTES, MAX_HEADERS};
use crate::config::{AuthRequest, Forward, PathRule};
use crate::host::Headers;

/// A request the auth service cannot be asked about as it stands. This is the client's doing, so
/// the request is refused (400), never handed to the failure policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadRequest {
    /// A header that must go to the auth service has a value that is not UTF-8: the host's call
    /// API only carries text, and checking altered input would check something else.
    NotUtf8(String),
    /// The request has no `:authority` (nor a configured one), which every call needs.
    NoAuthority,
    /// The request has no `:method` (nor a configured one).
    NoMethod,
    /// The check would be larger than the host can send (over 1,024 headers or 1 MiB): the
    /// client's headers are too large to check, as Envoy says of headers it cannot take (431).
    TooLarge { headers: usize, bytes: usize },
}

impl BadRequest {
    /// The status the client gets.
    pub fn status(&self) -> u16 {
        match self {
            BadRequest::TooLarge { .. } => 431,
            _ => 400,
        }
    }
}

impl std::fmt::Display for BadRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadRequest::NotUtf8(name) => {
                write!(
                    f,
                    "request header {name} is not UTF-8 and cannot be sent for checking"
                )
            }
            BadRequest::NoAuthority => write!(f, "request has no :authority to send for checking"),
            BadRequest::NoMethod => write!(f, "request has no :method to send for checking"),
            BadRequest::TooLarge { headers, bytes } => write!(
                f,
                "request is too large to check: the check would carry {headers} headers or \
                 {bytes} bytes, over the host's {MAX_HEADERS} headers or {MAX_BYTES} bytes"
            ),
        }
    }
}

/// Headers the plugin sets on every call from the real request, in the names forward-auth
/// services read (nginx, Traefik): with a fixed `path` they are how the auth service learns what
/// is being asked for, so a client's own copies are never forwarded.
pub const FORWARDED_METHOD: &str = "x-forwarded-method";
pub const FORWARDED_URI: &str = "x-forwarded-uri";
pub const FORWARDED_HOST: &str = "x-forwarded-host";

/// Request headers that never go to the auth service, because they change how Envoy sends the
/// call, which a client could use to make it fail (and choose the failure policy) or to have
/// Envoy's own error read as an allow:
/// - framing: the call has no body, so `content-length: N` would leave the auth service waiting
///   (ext_authz drops it too);
/// - hop-by-hop headers, which describe the client's connection, not the call's (an `upgrade`
///   makes an HTTP/2 call fail);
/// - gRPC: `content-type: application/grpc` makes Envoy answer a failed call with `200` and a
///   `grpc-status`, and `grpc-timeout` sets the call's timeout;
/// - `x-envoy-*`: Envoy obeys them on the call (timeouts, retries) when it trusts the client;
/// - the forward-auth headers, which the plugin sets itself.
fn never_forwarded(name: &str, value: &[u8]) -> bool {
    matches!(
        name,
        "content-length"
            | "transfer-encoding"
            | "connection"
            | "keep-alive"
            | "proxy-connection"
            | "upgrade"
            | "te"
            | "trailer"
            | "http2-settings"
            | "expect"
            | FORWARDED_METHOD
            | FORWARDED_URI
            | FORWARDED_HOST
            | PARTIAL_BODY
    ) || name.starts_with("x-envoy-")
        || name.starts_with("grpc-")
        || (name == "content-type" && value.starts_with(b"application/grpc"))
}

/// The headers of the auth call, borrowing from the request wherever nothing changes.
///
/// The call always has `:method`, `:path` and `:authority`, which the host requires. A CONNECT
/// request has no `:path`, and a CONNECT check would be refused on its way to the auth service
/// (Envoy only tunnels CONNECT on routes configured for it): its check is a GET (or the
/// configured method) for the configured path or `/`, with `x-forwarded-method: CONNECT` and
/// `x-forwarded-uri` set to the tunnel's target, which is also the `:authority`.
/// Says whether the body sent with a check was cut at `max_request_bytes`, as ext_authz does.
pub const PARTIAL_BODY: &str = "x-envoy-auth-partial-body";

/// The body sent with the check (`with_request_body`): its length, and whether it was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentBody {
    pub len: usize,
    pub partial: bool,
}

/// Whether the auth service could be asked about the request, as `auth_headers` would build the
/// call, without building it: a cache hit must refuse what a miss would refuse. The call's size
/// is bounded from above (the path and authority travel twice), so that the host never refuses
/// a call a client made too large: that refusal would otherwise reach the failure policy.
pub fn check_sendable(spec: &AuthRequest, request: &Headers) -> Result<(), BadRequest> {
    let (mut method, mut authority) = (spec.method.is_some(), spec.authority.is_some());
    let mut seen = [false; 3];
    let mut size = CallSize::of_additions(spec);
    for (name, value) in request {
        // The call carries the first of each pseudo-header, as `auth_headers` reads it.
        let pseudo = [":method", ":path", ":authority"]
            .iter()
            .position(|p| p == name);
        if let Some(index) = pseudo {
            if seen.get(index).copied().unwrap_or(true) {
                continue;
            }
            if let Some(flag) = seen.get_mut(index) {
                *flag = true;
            }
            // Forwarded again as x-forwarded-method, -uri or -host (a CONNECT's authority as
            // both of the last two).
            size.add(FORWARDED_METHOD.len(), value.len());
            if name == ":authority" {
                size.add(FORWARDED_URI.len(), value.len());
            }
        }
        method |= name == ":method";
        authority |= name == ":authority";
        let sent = pseudo.is_some()
            || (!never_forwarded(name, value)
                && match &spec.forward {
                    Forward::All => true,
                    Forward::Allowlist(set) => set.matches(name),
                });
        if sent {
            text(name, value)?;
            size.add(name.len(), value.len());
        }
    }
    if !method {
        return Err(BadRequest::NoMethod);
    }
    if !authority {
        return Err(BadRequest::NoAuthority);
    }
    size.check()
}

/// An upper bound on a call's header map as the host encodes it.
#[derive(Debug, Clone, Copy)]
pub struct CallSize {
    headers: usize,
    bytes: usize,
}

impl CallSize {
    /// What the call carries whatever the request: `content-length`, the partial-body marker,
    /// the configured path, authority and method, and `headers_to_add`.
    pub fn of_additions(spec: &AuthRequest) -> CallSize {
        let mut size = CallSize {
            headers: 0,
            bytes: 4,
        };
        size.add("content-length".len(), 20);
        size.add(PARTIAL_BODY.len(), 5);
        // A CONNECT's check has a `:path` of its own.
        size.add(":path".len(), 1);
        let configured = match &spec.path {
            PathRule::Client => 0,
            PathRule::Prefixed(prefix) | PathRule::Fixed(prefix) => prefix.len(),
        } + spec.authority.as_ref().map_or(0, String::len)
            + spec.method.as_ref().map_or(0, String::len);
        size.bytes = size.bytes.saturating_add(configured);
        for (name, value) in &spec.headers_to_add {
            size.add(name.len(), value.len());
        }
        size
    }

    pub fn add(&mut self, name: usize, value: usize) {
        self.headers += 1;
        self.bytes = self
            .bytes
            .saturating_add(name + value + HEADER_OVERHEAD_BYTES);
    }

    pub fn check(self) -> Result<(), BadRequest> {
        if self.headers > MAX_HEADERS || self.bytes > MAX_BYTES {
            return Err(BadRequest::TooLarge {
                headers: self.headers,
                bytes: self.bytes,
            });
        }
        Ok(())
    }
}

pub fn auth_headers<'a>(
    spec: &'a AuthRequest,
    request: &'a Headers,
    body: Option<SentBody>,
) -> Result<Vec<(&'a str, Cow<'a, str>)>, BadRequest> {
    let pseudo = |wanted: &'static str| -> Result<Option<&'a str>, BadRequest> {
        request
            .iter()
            .find(|(name, _)| name == wanted)
            .map(|(name, value)| text(name, value))
            .transpose()
    };
    let method = pseudo(":method")?;
    let path = pseudo(":path")?;
    let authority = pseudo(":authority")?;
    let connect = method == Some("CONNECT");

    let mut out: Vec<(&str, Cow<str>)> =
        Vec::with_capacity(request.len() + spec.headers_to_add.len() + 4);
    match body {
        None => out.push(("content-length", Cow::Borrowed("0"))),
        Some(body) => {
            out.push(("content-length", Cow::Owned(body.len.to_string())));
            out.push((
                PARTIAL_BODY,
                Cow::Borrowed(if body.partial { "true" } else { "false" }),
            ));
        }
    }
    let call_method = match (&spec.method, method) {
        (Some(configured), _) => configured.as_str(),
        (None, _) if connect => "GET",
        (None, Some(method)) => method,
        (None, None) => return Err(BadRequest::NoMethod),
    };
    out.push((":method", Cow::Borrowed(call_method)));
    out.push((
        ":path",
        match (&spec.path, path) {
            (PathRule::Fixed(fixed), _) => Cow::Borrowed(fixed.as_str()),
            (PathRule::Prefixed(prefix), Some(path)) => Cow::Owned(format!("{prefix}{path}")),
            (PathRule::Prefixed(prefix), None) => Cow::Owned(format!("{prefix}/")),
            (PathRule::Client, Some(path)) => Cow::Borrowed(path),
            (PathRule::Client, None) => Cow::Borrowed("/"),
        },
    ));
    let call_authority = spec
        .authority
        .as_deref()
        .or(authority)
        .ok_or(BadRequest::NoAuthority)?;
    out.push((":authority", Cow::Borrowed(call_authority)));

    for (name, value) in request {
        let name = name.as_str();
        if matches!(name, ":method" | ":path" | ":authority") || never_forwarded(name, value) {
            continue;
        }
        if let Forward::Allowlist(set) = &spec.forward {
            if !set.matches(name) {
                continue;
            }
        }
        out.push((name, Cow::Borrowed(trimmed(text(name, value)?))));
    }

    if let Some(method) = method {
        out.push((FORWARDED_METHOD, Cow::Borrowed(method)));
    }
    if let Some(uri) = if connect { authority } else { path } {
        out.push((FORWARDED_URI, Cow::Borrowed(uri)));
    }
    if let Some(authority) = authority {
        out.push((FORWARDED_HOST, Cow::Borrowed(authority)));
    }
    for (name, value) in &spec.headers_to_add {
        // ext_authz's headers_to_add overwrites a header of the same name.
        out.retain(|(existing, _)| *existing != name.as_str());
        out.push((name.as_str(), Cow::Borrowed(value.as_str())));
    }
    Ok(out)
}

/// A value without leading or trailing spaces and tabs. HTTP/2 calls such a value malformed
/// (RFC 9113 8.2.1) and a strict auth server resets the whole connection for it, failing every
/// check in flight there; RFC 9110 lets a recipient trim it, and it means the same.
fn trimmed(value: &str) -> &str {
    value.trim_matches([' ', '\t'])
}

fn text<'a>(name: &str, value: &'a [u8]) -> Result<&'a str, BadRequest> {
    std::str::from_utf8(value).map_err(|_| BadRequest::NotUtf8(name.to_owned()))
}

#[cfg(test)]
mod tests {
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
        let config = Config::parse(br#"{"decision": "status"}"#).unwrap();
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
}
