//! The HTTP protocol's answer: read from the host once, only as much as the rule and the
//! configuration need, into an `Outcome`.

use crate::config::{Config, Rule};
use crate::decision::{
    answer_status, decide, envoy_failure, json_headers, needs_body, AuthError, Verdict,
};
use crate::headers::is_reserved;
use crate::host::Metadata;
use crate::host::{Headers, Host};
use crate::outcome::{header_cost, Allowed, Answer, Denied, Outcome};

/// Envoy's router marks the 503 it answers when a cluster's circuit breaker overflows.
pub const ENVOY_OVERLOADED_HEADER: &str = "x-envoy-overloaded";

/// The auth answer header listing request headers to remove on allow, as ext_authz reads it.
pub const HEADERS_TO_REMOVE: &str = "x-envoy-auth-headers-to-remove";

/// The most of a 503's body read to tell Envoy's own from the auth service's.
const ENVOY_FAILURE_BODY_BYTES: usize = 512;

/// Reads the call's answer: its headers in one host call (the status, what says who answered,
/// and the headers applied all come from them), the body only when the rule needs it.
pub fn read(host: &impl Host, config: &Config, num_headers: usize, body_size: usize) -> Answer {
    if num_headers == 0 {
        return Answer {
            outcome: Outcome::Failed(AuthError::CallFailed),
            cache_control: None,
        };
    }
    let headers = match host.call_response_headers() {
        Ok(headers) => headers,
        Err(err) => {
            return Answer {
                outcome: Outcome::from_host_error(err),
                cache_control: None,
            }
        }
    };
    let outcome = match read_outcome(host, config, &headers, body_size) {
        Ok(outcome) | Err(outcome) => outcome,
    };
    let cacheable = matches!(outcome, Outcome::Allow(_) | Outcome::Deny(_));
    let cache_control = if cacheable && config.cache.is_some() {
        find(&headers, "cache-control")
    } else {
        None
    };
    Answer {
        outcome,
        cache_control,
    }
}

/// The first value of a header in the answer.
fn find(headers: &Headers, name: &str) -> Option<Vec<u8>> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

fn read_outcome(
    host: &impl Host,
    config: &Config,
    headers: &Headers,
    body_size: usize,
) -> Result<Outcome, Outcome> {
    let status_header = headers
        .iter()
        .find(|(n, _)| n == ":status")
        .map(|(_, v)| v.as_slice());
    let status = match answer_status(status_header) {
        Ok(status) => status,
        Err(AuthError::ServerError(503))
            if headers.iter().any(|(n, _)| n == ENVOY_OVERLOADED_HEADER) =>
        {
            return Err(Outcome::Overloaded(
                "the auth cluster's circuit breaker overflowed".to_owned(),
            ))
        }
        // Envoy answers a call it could not complete with a 503 of its own: whether it could
        // not connect (an outage) or the call was reset after it went out, its body says.
        Err(AuthError::ServerError(503)) => {
            let body = host
                .call_response_body(body_size.min(ENVOY_FAILURE_BODY_BYTES))
                .map_err(Outcome::from_host_error)?;
            return Err(Outcome::Failed(
                envoy_failure(&body).unwrap_or(AuthError::ServerError(503)),
            ));
        }
        Err(err) => return Err(Outcome::Failed(err)),
    };
    let rule = &config.rule;
    let body = if needs_body(rule, status) {
        answer_body(host, config, body_size)?
    } else {
        Vec::new()
    };
    let metadata = metadata_from(headers, config);
    let verdict = decide(rule, status, &body).map_err(Outcome::Failed)?;
    Ok(match verdict {
        Verdict::Allow => {
            let mut allowed = allowed(headers, config)?;
            if let Rule::Json(json) = rule {
                // Set last: the values the body names win over answer headers of the same name.
                allowed
                    .set
                    .extend(json_headers(&json.headers, &body).map_err(Outcome::Failed)?);
            }
            allowed.metadata = metadata;
            Outcome::Allow(Box::new(allowed))
        }
        Verdict::DenyConfigured => {
            let deny = &config.deny;
            let mut headers = deny.headers.clone();
            if let Rule::Json(json) = rule {
                for (name, value) in
                    json_headers(&json.deny_headers, &body).map_err(Outcome::Failed)?
                {
                    headers.push((name, String::from_utf8(value).unwrap_or_default()));
                }
            }
            Outcome::Deny(Denied {
                status: deny.status,
                headers,
                body: deny.body.as_bytes().to_vec(),
                metadata,
            })
        }
        Verdict::DenyWithAnswer(status) => {
            let response = &config.response;
            let headers = headers
                .iter()
                .filter(|(name, _)| response.to_client_on_deny(name))
                .filter_map(|(name, value)| {
                    Some((name.clone(), String::from_utf8(value.clone()).ok()?))
                })
                .collect();
            Outcome::Deny(Denied {
                status,
                headers,
                body,
                metadata,
            })
        }
    })
}

/// The answer headers `dynamic_metadata_from_headers` names, as strings (a header given twice,
/// comma-joined, as native joins it).
fn metadata_from(headers: &Headers, config: &Config) -> Metadata {
    let names = &config.response.metadata_from;
    if names.is_empty() {
        return Metadata::default();
    }
    let mut strings: Vec<(String, String)> = Vec::new();
    for (name, value) in headers.iter().filter(|(n, _)| names.matches(n)) {
        let text = String::from_utf8_lossy(value);
        match strings.iter_mut().find(|(n, _)| n == name) {
            Some((_, joined)) => {
                joined.push(',');
                joined.push_str(&text);
            }
            None => strings.push((name.clone(), text.into_owned())),
        }
    }
    Metadata {
        fields: Vec::new(),
        strings,
    }
}

/// The answer's body, within `max_response_body_bytes`. Under the status rule the status is the
/// verdict, so a deny with a larger body is still a deny, relayed without its body; under the
/// seed rule the body is the verdict, so a larger one is an error.
fn answer_body(host: &impl Host, config: &Config, body_size: usize) -> Result<Vec<u8>, Outcome> {
    let limit = config.max_response_body_bytes;
    if body_size > limit {
        if config.rule == Rule::Status {
            log::warn!(
                "the auth answer's {body_size}-byte body is over the {limit}-byte limit: denying without it"
            );
            return Ok(Vec::new());
        }
        return Err(Outcome::Failed(AuthError::BodyTooLarge {
            size: body_size,
            limit,
        }));
    }
    if body_size == 0 {
        return Ok(Vec::new());
    }
    host.call_response_body(body_size)
        .map_err(Outcome::from_host_error)
}

/// The headers an allow passes on. An answer from a gRPC server is never an allow in HTTP mode
/// (its 200 carries the gRPC status of a failed call), and only its headers say so.
fn allowed(answer: &Headers, config: &Config) -> Result<Allowed, Outcome> {
    if answer
        .iter()
        .any(|(name, value)| is_grpc_answer(name, value))
    {
        warn_grpc_over_http_once(&config.auth_request.cluster);
        return Err(Outcome::Failed(AuthError::GrpcAnswerOverHttp));
    }
    let response = &config.response;
    let mut allowed = Allowed::default();
    let cap = config.limits.max_success_header_bytes;
    let mut kept = 0;
    for header in answer.iter().cloned() {
        let name = header.0.as_str();
        if name == HEADERS_TO_REMOVE {
            // ext_authz's HTTP protocol; an AuthZEN decision point decides, and edits nothing.
            if config.protocol != crate::config::Protocol::AuthZen {
                allowed.remove.extend(headers_to_remove(&header.1));
            }
            continue;
        }
        if !response.used_on_allow() {
            continue;
        }
        if response.sets_upstream(name) {
            allowed.set.push(header.clone());
        } else if response.appends_upstream(name) {
            allowed.append.push(header.clone());
        }
        if response.to_client_on_success(name) {
            let cost = header_cost(&header);
            if kept + cost > cap {
                allowed.dropped += 1;
            } else {
                kept += cost;
                allowed.client.push(header);
            }
        }
    }
    Ok(allowed)
}

/// Whether an answer header says a gRPC server answered.
fn is_grpc_answer(name: &str, value: &[u8]) -> bool {
    name == "grpc-status" || (name == "content-type" && value.starts_with(b"application/grpc"))
}

/// The misconfiguration is the operator's to fix: said once per worker at error level (each
/// request still logs its own failure).
fn warn_grpc_over_http_once(cluster: &str) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        log::error!("cluster \"{cluster}\" answers as a gRPC server: set \"protocol\": \"grpc\"");
    }
}

/// The names in an `x-envoy-auth-headers-to-remove` value: comma-separated, lowercased;
/// pseudo-headers and `host` are never removed (ext_authz refuses them too).
fn headers_to_remove(value: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(value)
        .split(',')
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty() && !is_reserved(name))
        .collect()
}
