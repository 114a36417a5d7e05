//! Builds the auth call's headers from the client's request and the configuration.

use std::borrow::Cow;

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
        }
    }
}

/// The auth call carries no body, so the client's framing headers must not go with it: a
/// `content-length: N` with no body would leave the auth service waiting. ext_authz does the same.
const FRAMING: [&str; 2] = ["content-length", "transfer-encoding"];

/// Carries a CONNECT request's method to the auth service, whose check cannot itself be a CONNECT
/// (the name nginx's and Traefik's forward-auth checks use for the original method).
pub const FORWARDED_METHOD: &str = "x-forwarded-method";

/// The headers of the auth call, borrowing from the request wherever nothing changes. The call
/// always has `:method`, `:path` and `:authority`, which the host requires. A CONNECT request
/// has no `:path`, and a CONNECT check would be refused on its way to the auth service (Envoy
/// only tunnels CONNECT on routes configured for it): its check is a GET (or the configured
/// method) for the configured path or `/`, with `x-forwarded-method: CONNECT`, and its
/// `:authority` is the tunnel's target.
pub fn auth_headers<'a>(
    spec: &'a AuthRequest,
    request: &'a Headers,
) -> Result<Vec<(&'a str, Cow<'a, str>)>, BadRequest> {
    let mut out: Vec<(&str, Cow<str>)> =
        Vec::with_capacity(request.len() + spec.headers_to_add.len() + 1);
    out.push(("content-length", Cow::Borrowed("0")));
    let mut connect = false;
    for (name, value) in request {
        let name = name.as_str();
        if FRAMING.contains(&name) {
            continue;
        }
        if let Forward::Allowlist(set) = &spec.forward {
            if !set.matches(name) {
                continue;
            }
        }
        let value = match (name, &spec.path, &spec.authority, &spec.method) {
            (":path", PathRule::Fixed(path), _, _) => Cow::Borrowed(path.as_str()),
            (":path", PathRule::Prefixed(prefix), _, _) => {
                Cow::Owned(format!("{prefix}{}", text(name, value)?))
            }
            (":authority", _, Some(authority), _) => Cow::Borrowed(authority.as_str()),
            (":method", _, _, method) if value.as_slice() == b"CONNECT" => {
                connect = true;
                Cow::Borrowed(method.as_deref().unwrap_or("GET"))
            }
            (":method", _, _, Some(method)) => Cow::Borrowed(method.as_str()),
            _ => Cow::Borrowed(text(name, value)?),
        };
        out.push((name, value));
    }
    if connect {
        // The client's own copy would contradict ours.
        out.retain(|(name, _)| *name != FORWARDED_METHOD);
        out.push((FORWARDED_METHOD, Cow::Borrowed("CONNECT")));
    }
    if !out.iter().any(|(name, _)| *name == ":path") {
        out.push((
            ":path",
            match &spec.path {
                PathRule::Fixed(path) => Cow::Borrowed(path.as_str()),
                PathRule::Prefixed(prefix) => Cow::Owned(format!("{prefix}/")),
                PathRule::Client => Cow::Borrowed("/"),
            },
        ));
    }
    if !out.iter().any(|(name, _)| *name == ":authority") {
        let authority = spec.authority.as_deref().ok_or(BadRequest::NoAuthority)?;
        out.push((":authority", Cow::Borrowed(authority)));
    }
    if !out.iter().any(|(name, _)| *name == ":method") {
        let method = spec.method.as_deref().ok_or(BadRequest::NoMethod)?;
        out.push((":method", Cow::Borrowed(method)));
    }
    for (name, value) in &spec.headers_to_add {
        // ext_authz's headers_to_add overwrites a header of the same name.
        out.retain(|(existing, _)| *existing != name.as_str());
        out.push((name.as_str(), Cow::Borrowed(value.as_str())));
    }
    Ok(out)
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
        auth_headers(&config.auth_request, request).map(|h| {
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
        let json =
            r#"{"path": "/check", "path_prefix": "/v1", "authority": "auth", "method": "POST"}"#;
        let headers = build(json, &request()).unwrap();
        assert_eq!(get(&headers, ":path"), vec!["/v1/check"]);
        assert_eq!(get(&headers, ":authority"), vec!["auth"]);
        assert_eq!(get(&headers, ":method"), vec!["POST"]);
    }

    #[test]
    fn path_prefix_keeps_the_clients_path() {
        let headers = build(r#"{"path_prefix": "/authz"}"#, &request()).unwrap();
        assert_eq!(get(&headers, ":path"), vec!["/authz/uuid?x=1"]);
    }

    #[test]
    fn allowlist_forwards_only_matches_and_the_always_set() {
        let headers = build(
            r#"{"allowed_headers": [{"prefix": "x-request"}]}"#,
            &request(),
        )
        .unwrap();
        let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "content-length",
                ":authority",
                ":path",
                ":method",
                "authorization",
                "x-request-id"
            ]
        );
    }

    #[test]
    fn headers_to_add_overwrite_the_clients_copy() {
        let json = r#"{"headers_to_add": [{"key": "x-request-id", "value": "fixed"}, {"key": "x-new", "value": "1"}]}"#;
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
        assert!(build(r#"{"allowed_headers": [{"exact": "cookie"}]}"#, &req).is_ok());
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
        assert_eq!(get(&headers, ":authority"), vec!["db.internal:5432"]);
        let headers = build(r#"{"path": "/tunnel", "method": "POST"}"#, &connect()).unwrap();
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
        let headers = build(r#"{"path_prefix": "/authz"}"#, &connect()).unwrap();
        assert_eq!(get(&headers, ":path"), vec!["/authz/"]);
    }

    #[test]
    fn a_request_without_authority_is_refused_unless_one_is_configured() {
        let request: Headers = vec![
            (":method".into(), b"GET".to_vec()),
            (":path".into(), b"/".to_vec()),
        ];
        assert_eq!(build("", &request), Err(BadRequest::NoAuthority));
        let headers = build(r#"{"authority": "auth"}"#, &request).unwrap();
        assert_eq!(get(&headers, ":authority"), vec!["auth"]);
    }
}
