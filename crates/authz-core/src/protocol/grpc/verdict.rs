//! What a `CheckResponse` means, as native ext_authz (Envoy 1.40) reads it: OK allows with the
//! `ok_response`'s mutations, any other code denies with the `denied_response` (403 by default),
//! and an `error_response`, a failed call or a message that does not decode is an error.

use prost::Message;

use super::messages::{CheckResponse, HeaderValueOption, HttpResponse};
use crate::config::Config;
use crate::decision::AuthError;
use crate::headers::{is_envoy_owned, is_reserved};
use crate::host::Metadata;
use crate::outcome::{header_cost, Allowed, Answer, Denied, Outcome, ResponseAction};

/// gRPC's OK status code.
const OK: i32 = 0;

/// What an OK may do to the request at most: Envoy's default request header limits
/// (`max_request_headers_kb`, `max_headers_count`), over which native ext_authz answers 500.
const MAX_REQUEST_MUTATION_BYTES: usize = 60 * 1024;
const MAX_REQUEST_MUTATIONS: usize = 100;

/// A header option's lowercase name and its `value` (native 1.40 reads `value`, not
/// `raw_value`).
fn header(option: &HeaderValueOption) -> Option<(String, Vec<u8>)> {
    let header = option.header.as_ref()?;
    Some((
        header.key.to_ascii_lowercase(),
        header.value.as_bytes().to_vec(),
    ))
}

/// Why a header from an answer may not be applied: not a valid HTTP field (a CR or LF in it
/// would split the message on an HTTP/1 hop), or one Envoy frames the message with.
fn unusable(name: &str, value: &[u8]) -> Option<&'static str> {
    if name.is_empty() || !name.bytes().all(is_token_char) {
        return Some("a name that is not an HTTP token");
    }
    if http::HeaderValue::from_bytes(value).is_err() {
        return Some("a value with a control character");
    }
    let text = std::str::from_utf8(value).unwrap_or_default();
    is_envoy_owned(name, text.as_bytes())
        .then_some("a header Envoy frames or routes the message with")
}

/// RFC 9110's `tchar`. (`http::HeaderName::from_bytes` says the same, but brings its table of
/// standard headers, 13 KB of wasm, for a character class.)
fn is_token_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// An answer the plugin will not apply: 500, as native ext_authz answers a mutation it
/// rejects, and never the failure policy's to allow, because the service did answer.
fn rejected(what: &str, name: &str) -> Outcome {
    log::warn!("the CheckResponse's {what} for \"{name}\" cannot be applied: answering 500");
    Outcome::Deny(Denied {
        status: 500,
        headers: Vec::new(),
        body: Vec::new(),
        metadata: Metadata::default(),
    })
}

/// The outcome of a `CheckResponse`'s bytes.
pub fn outcome(config: &Config, bytes: &[u8]) -> Outcome {
    read(config, bytes).unwrap_or_else(|rejection| rejection)
}

/// A `CheckResponse` as the cache and the waiting requests take it: an answer the plugin
/// rejected is the plugin's verdict, not the service's, so it is marked not to be cached.
pub fn answer(config: &Config, bytes: &[u8]) -> Answer {
    match read(config, bytes) {
        Ok(outcome) => Answer {
            outcome,
            cache_control: None,
        },
        Err(rejection) => Answer {
            outcome: rejection,
            cache_control: Some(b"no-store".to_vec()),
        },
    }
}

/// The outcome, or the reply to an answer the plugin will not apply.
fn read(config: &Config, bytes: &[u8]) -> Result<Outcome, Outcome> {
    let response = match CheckResponse::decode(bytes) {
        Ok(response) => response,
        Err(_) => {
            return Ok(Outcome::Failed(AuthError::Malformed(
                "a CheckResponse that does not decode",
            )))
        }
    };
    let code = response.status.as_ref().map_or(OK, |status| status.code);
    // Written as native writes it, on an allow and on a deny alike.
    let metadata = Metadata {
        fields: response.dynamic_metadata,
        strings: Vec::new(),
    };
    Ok(match (code, response.http_response) {
        (OK, Some(HttpResponse::OkResponse(ok))) => {
            let mut allowed = allowed(config, ok)?;
            allowed.metadata = metadata;
            Outcome::Allow(Box::new(allowed))
        }
        (OK, _) => Outcome::Allow(Box::new(Allowed {
            metadata,
            ..Allowed::default()
        })),
        (code, Some(HttpResponse::ErrorResponse(_))) => Outcome::Failed(AuthError::GrpcError(code)),
        (_, Some(HttpResponse::DeniedResponse(denied))) => {
            let status = denied
                .status
                .as_ref()
                .and_then(|s| u16::try_from(s.code).ok())
                .filter(|code| (200..=599).contains(code))
                .unwrap_or(403);
            // A denial's headers replace the reply's own; native drops those marked `append`.
            // One that is not a valid field, or frames the reply, is left out: still a deny.
            let headers = denied
                .headers
                .iter()
                .filter(|option| !option.append.as_ref().is_some_and(|a| a.value))
                .filter_map(header)
                .filter(|(name, value)| !is_reserved(name) && unusable(name, value).is_none())
                .filter_map(|(name, value)| Some((name, String::from_utf8(value).ok()?)))
                .collect();
            Outcome::Deny(Denied {
                status,
                headers,
                body: denied.body.into_bytes(),
                metadata,
            })
        }
        (_, _) => Outcome::Deny(Denied {
            status: 403,
            headers: Vec::new(),
            body: Vec::new(),
            metadata,
        }),
    })
}

/// An OK's mutations, as native 1.40 applies them to the request: `append: true` appends to a
/// header the request has (and adds nothing otherwise); anything else replaces. Pseudo-headers
/// and `host` are never taken from an answer. A mutation that is not a valid field or that
/// Envoy owns, or request mutations over Envoy's header limits, reject the whole answer.
fn allowed(config: &Config, ok: super::messages::OkHttpResponse) -> Result<Allowed, Outcome> {
    let mut allowed = Allowed::default();
    let mut request_bytes = 0;
    for option in &ok.headers {
        let Some((name, value)) = header(option) else {
            continue;
        };
        if is_reserved(&name) {
            continue;
        }
        if let Some(why) = unusable(&name, &value) {
            return Err(rejected(why, &name));
        }
        request_bytes += name.len() + value.len();
        if option.append.as_ref().is_some_and(|a| a.value) {
            allowed.append_existing.push((name, value));
        } else {
            allowed.set.push((name, value));
        }
    }
    let mutations = allowed.set.len() + allowed.append_existing.len();
    if request_bytes > MAX_REQUEST_MUTATION_BYTES || mutations > MAX_REQUEST_MUTATIONS {
        return Err(rejected(
            "request headers (over Envoy's 60 KiB or 100 headers)",
            "ok_response.headers",
        ));
    }
    for name in &ok.headers_to_remove {
        let name = name.to_ascii_lowercase();
        if is_reserved(&name) {
            continue;
        }
        if let Some(why) = unusable(&name, b"") {
            return Err(rejected(why, &name));
        }
        allowed.remove.push(name);
    }
    let cap = config.limits.max_success_header_bytes;
    let mut kept = 0;
    for option in &ok.response_headers_to_add {
        let Some(header) = header(option) else {
            continue;
        };
        if is_reserved(&header.0) {
            continue;
        }
        if let Some(why) = unusable(&header.0, &header.1) {
            return Err(rejected(why, &header.0));
        }
        let action = match option.append.as_ref().map(|a| a.value) {
            Some(true) => ResponseAction::Append,
            Some(false) => ResponseAction::Set,
            None => match option.append_action {
                1 => ResponseAction::AddIfAbsent,
                2 => ResponseAction::Set,
                3 => ResponseAction::OverwriteIfExists,
                _ => ResponseAction::Append,
            },
        };
        let cost = header_cost(&header);
        if kept + cost > cap {
            allowed.dropped += 1;
            continue;
        }
        kept += cost;
        allowed.client_mutations.push((header.0, header.1, action));
    }
    // Set query values are URL-encoded, up to three bytes each, into the request's `:path`.
    let query_bytes: usize = ok
        .query_parameters_to_set
        .iter()
        .map(|p| 3 * (p.key.len() + p.value.len()) + 2)
        .sum();
    if request_bytes + query_bytes > MAX_REQUEST_MUTATION_BYTES {
        return Err(rejected(
            "request headers and query (over Envoy's 60 KiB)",
            "ok_response.query_parameters_to_set",
        ));
    }
    allowed.query_set = ok
        .query_parameters_to_set
        .into_iter()
        .map(|p| (p.key, p.value))
        .collect();
    allowed.query_remove = ok.query_parameters_to_remove;
    Ok(allowed)
}
