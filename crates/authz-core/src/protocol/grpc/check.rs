//! The `CheckRequest` for a request, filled as native ext_authz fills it, as far as proxy-wasm
//! shows the plugin the request and its connection.

use std::collections::BTreeMap;

use prost::Message;

use super::messages::{
    Address, AttributeContext, CheckRequest, HttpRequest, Metadata, Peer, Request, SocketAddress,
    Timestamp,
};
use crate::config::{AuthRequest, Config, Forward};
use crate::host::Headers;
use crate::protocol::http::PARTIAL_BODY;
use crate::protocol::BadRequest;
use crate::protocol::CallSize;

/// What the plugin knows of the request beyond its headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// `source.address` and `destination.address`, as Envoy gives them (`ip:port`).
    pub source: Option<String>,
    pub destination: Option<String>,
    /// `request.protocol`, e.g. `HTTP/1.1`.
    pub protocol: String,
    /// Wall-clock nanoseconds.
    pub now_nanos: u64,
}

/// The body sent with the check, and whether it was cut at `max_request_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Body<'a> {
    pub bytes: &'a [u8],
    pub partial: bool,
    /// The body bytes received so far (`request.http.size`, as native counts them).
    pub received: usize,
}

/// The request-line pseudo-headers a check describes the request by; they must be UTF-8.
const REQUEST_LINE: [&str; 4] = [":method", ":path", ":authority", ":scheme"];

/// Whether a check can describe the request: its request line is UTF-8. Native ext_authz
/// would replace bad bytes, but then the service would authorize a path other than the one
/// the upstream gets. A cache hit refuses what a miss would.
///
/// The headers a check carries are held to the same bounds as an HTTP call's (1,024 headers,
/// 1 MiB): a client able to swell a CheckRequest past the service's message limit (4 MiB in
/// most gRPC servers) would otherwise turn its check into an error for the failure policy.
pub fn check_sendable(spec: &AuthRequest, request: &Headers) -> Result<(), BadRequest> {
    let mut size = CallSize::of_additions(spec);
    for (name, value) in request {
        if REQUEST_LINE.contains(&name.as_str()) && std::str::from_utf8(value).is_err() {
            return Err(BadRequest::NotUtf8(name.clone()));
        }
        let sent = match &spec.forward {
            Forward::All => true,
            Forward::Allowlist(set) => set.matches(name),
        };
        if sent || REQUEST_LINE.contains(&name.as_str()) {
            size.add(name.len(), value.len());
        }
    }
    size.check(spec)
}

/// The serialized `CheckRequest`. Header values and the body go in proto strings, so bytes that
/// are not UTF-8 are replaced as native replaces them; the request line's pseudo-headers must be
/// UTF-8 (Envoy's codecs make them so), or the request is refused.
pub fn check_request(
    config: &Config,
    request: &Headers,
    context: &Context,
    body: Option<Body>,
) -> Result<Vec<u8>, BadRequest> {
    let text = |name: &str, value: &[u8]| -> Result<String, BadRequest> {
        String::from_utf8(value.to_vec()).map_err(|_| BadRequest::NotUtf8(name.to_owned()))
    };
    let pseudo = |wanted: &str| -> Result<String, BadRequest> {
        request.iter().find(|(name, _)| name == wanted).map_or(
            Ok(String::new()),
            |(name, value)| {
                if REQUEST_LINE.contains(&wanted) {
                    text(name, value)
                } else {
                    Ok(sanitized(value))
                }
            },
        )
    };
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in request {
        if let Forward::Allowlist(set) = &config.auth_request.forward {
            if !set.matches(name) {
                continue;
            }
        }
        let value = sanitized(value);
        // Repeated headers are joined with a comma, as native ext_authz joins them.
        headers
            .entry(name.clone())
            .and_modify(|joined| {
                joined.push(',');
                joined.push_str(&value);
            })
            .or_insert(value);
    }
    let (mut body_text, mut raw_body, mut size) = (String::new(), Vec::new(), 0);
    if let Some(body) = body {
        headers.insert(PARTIAL_BODY.to_owned(), body.partial.to_string());
        size = i64::try_from(body.received).unwrap_or(i64::MAX);
        let pack_as_bytes = config
            .request_body
            .as_ref()
            .is_some_and(|rule| rule.pack_as_bytes);
        if pack_as_bytes {
            raw_body = body.bytes.to_vec();
        } else {
            // `body` is a proto string: invalid UTF-8 is replaced, as native replaces it.
            body_text = sanitized(body.bytes);
        }
    }
    let seconds = i64::try_from(context.now_nanos / 1_000_000_000).unwrap_or(i64::MAX);
    let nanos = i32::try_from(context.now_nanos % 1_000_000_000).unwrap_or(0);
    let message = CheckRequest {
        attributes: Some(AttributeContext {
            source: context.source.as_deref().map(peer),
            destination: context.destination.as_deref().map(peer),
            request: Some(Request {
                time: Some(Timestamp { seconds, nanos }),
                http: Some(HttpRequest {
                    id: pseudo("x-request-id")?,
                    method: pseudo(":method")?,
                    path: pseudo(":path")?,
                    host: pseudo(":authority")?,
                    scheme: pseudo(":scheme")?,
                    protocol: context.protocol.clone(),
                    size,
                    headers,
                    body: body_text,
                    raw_body,
                }),
            }),
            context_extensions: config.context_extensions.clone(),
            metadata_context: Some(Metadata {}),
            route_metadata_context: Some(Metadata {}),
        }),
    };
    Ok(message.encode_to_vec())
}

/// Text with each byte that is not part of valid UTF-8 replaced by `!`, as Envoy's
/// `MessageUtil::sanitizeUtf8String` does for native ext_authz.
fn sanitized(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        text.extend(std::iter::repeat_n('!', chunk.invalid().len()));
    }
    text
}

/// A peer from Envoy's `ip:port` (`[ip]:port` for IPv6).
fn peer(address: &str) -> Peer {
    let (host, port) = address.rsplit_once(':').unwrap_or((address, ""));
    Peer {
        address: Some(Address {
            socket_address: Some(SocketAddress {
                address: host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                port_value: port.parse().unwrap_or(0),
            }),
        }),
    }
}
