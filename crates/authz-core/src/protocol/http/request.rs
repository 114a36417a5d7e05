//! The HTTP auth call: its headers, built from the client's request and the configuration.

use std::borrow::Cow;

use crate::config::{AuthRequest, Forward, PathRule};
use crate::headers::is_envoy_owned;
use crate::host::Headers;
use crate::protocol::BadRequest;
use crate::protocol::CallSize;

/// Headers the plugin sets on every call from the real request, in the names forward-auth
/// services read (nginx, Traefik): with a fixed `path` they are how the auth service learns what
/// is being asked for, so a client's own copies are never forwarded.
pub const FORWARDED_METHOD: &str = "x-forwarded-method";
pub const FORWARDED_URI: &str = "x-forwarded-uri";
pub const FORWARDED_HOST: &str = "x-forwarded-host";

/// Request headers that never go to the auth service: those Envoy owns, which change how it
/// sends the call (a client could use them to make the call fail, and so choose the failure
/// policy, or to have Envoy's own error read as an allow; `content-length: N` would leave the
/// auth service waiting, as ext_authz drops it too), and the forward-auth headers the plugin
/// sets itself.
fn never_forwarded(name: &str, value: &[u8]) -> bool {
    is_envoy_owned(name, value)
        || matches!(
            name,
            FORWARDED_METHOD | FORWARDED_URI | FORWARDED_HOST | PARTIAL_BODY
        )
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
    size.check(spec)
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
#[path = "request_tests.rs"]
mod tests;
