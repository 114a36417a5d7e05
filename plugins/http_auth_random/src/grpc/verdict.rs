//! What a `CheckResponse` means, as native ext_authz (Envoy 1.40) reads it: OK allows with the
//! `ok_response`'s mutations, any other code denies with the `denied_response` (403 by default),
//! and an `error_response`, a failed call or a message that does not decode is an error.

use prost::Message;

use super::messages::{CheckResponse, HeaderValueOption, HttpResponse};
use crate::config::{is_reserved, Config};
use crate::decision::AuthError;
use crate::outcome::{header_cost, Allowed, Denied, Outcome, ResponseAction};

/// gRPC's OK status code.
const OK: i32 = 0;

/// A header option's name and value (`raw_value` when set, as Envoy reads it).
fn header(option: &HeaderValueOption) -> Option<(String, Vec<u8>)> {
    let header = option.header.as_ref()?;
    let value = if header.raw_value.is_empty() {
        header.value.as_bytes().to_vec()
    } else {
        header.raw_value.clone()
    };
    Some((header.key.to_ascii_lowercase(), value))
}

/// The outcome of a `CheckResponse`'s bytes.
pub fn outcome(config: &Config, bytes: &[u8]) -> Outcome {
    let response = match CheckResponse::decode(bytes) {
        Ok(response) => response,
        Err(_) => {
            return Outcome::Failed(AuthError::Malformed("a CheckResponse that does not decode"))
        }
    };
    let code = response.status.as_ref().map_or(OK, |status| status.code);
    match (code, response.http_response) {
        (OK, Some(HttpResponse::OkResponse(ok))) => Outcome::Allow(Box::new(allowed(config, ok))),
        (OK, _) => Outcome::Allow(Box::default()),
        (code, Some(HttpResponse::ErrorResponse(_))) => Outcome::Failed(AuthError::GrpcError(code)),
        (_, Some(HttpResponse::DeniedResponse(denied))) => {
            let status = denied
                .status
                .as_ref()
                .and_then(|s| u16::try_from(s.code).ok())
                .filter(|code| (200..=599).contains(code))
                .unwrap_or(403);
            // A denial's headers replace the reply's own; native drops those marked `append`.
            let headers = denied
                .headers
                .iter()
                .filter(|option| !option.append.as_ref().is_some_and(|a| a.value))
                .filter_map(header)
                .filter(|(name, _)| !is_reserved(name))
                .filter_map(|(name, value)| Some((name, String::from_utf8(value).ok()?)))
                .collect();
            Outcome::Deny(Denied {
                status,
                headers,
                body: denied.body.into_bytes(),
            })
        }
        (_, _) => Outcome::Deny(Denied {
            status: 403,
            headers: Vec::new(),
            body: Vec::new(),
        }),
    }
}

/// An OK's mutations, as native 1.40 applies them to the request: `append: true` appends to a
/// header the request has (and adds nothing otherwise); anything else replaces. Pseudo-headers
/// and `host` are never taken from an answer.
fn allowed(config: &Config, ok: super::messages::OkHttpResponse) -> Allowed {
    let mut allowed = Allowed::default();
    for option in &ok.headers {
        let Some((name, value)) = header(option) else {
            continue;
        };
        if is_reserved(&name) {
            continue;
        }
        if option.append.as_ref().is_some_and(|a| a.value) {
            allowed.append_existing.push((name, value));
        } else {
            allowed.set.push((name, value));
        }
    }
    allowed.remove = ok
        .headers_to_remove
        .iter()
        .map(|name| name.to_ascii_lowercase())
        .filter(|name| !is_reserved(name))
        .collect();
    let cap = config.limits.max_success_header_bytes;
    let mut kept = 0;
    for option in &ok.response_headers_to_add {
        let Some(header) = header(option) else {
            continue;
        };
        if is_reserved(&header.0) {
            continue;
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
    allowed.query_set = ok
        .query_parameters_to_set
        .into_iter()
        .map(|p| (p.key, p.value))
        .collect();
    allowed.query_remove = ok.query_parameters_to_remove;
    allowed
}
