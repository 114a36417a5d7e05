//! Bounds on what one worker takes on, so that a flood of requests gets 503s, never an exhausted
//! worker; and what each waiting request reserves of them, worked out once.

use super::fields::limit;
use super::json::Object;
use super::response::ResponseHeaders;
use super::validate::{Checked, ConfigError};

/// Auth calls per worker whose clients have gone (an HTTP call cannot be cancelled, so a reset
/// flood leaves them running). Below Envoy's default circuit breaker (1,024 requests per
/// cluster), so that orphans alone never fill the auth cluster. Calls whose clients wait are not
/// capped by default: the auth cluster's circuit breaker bounds them, as it bounds native
/// ext_authz's, and its overflow is a 503, never an allow.
pub const DEFAULT_MAX_ORPHANED_CALLS: u64 = 500;
/// All calls per worker, waited for or orphaned: Envoy's default circuit breaker (1,024 requests
/// per cluster), so that the default never refuses what native ext_authz would serve with
/// Envoy's defaults, and bounds orphans that a flood leaves behind however the breaker is set.
pub const DEFAULT_MAX_CALLS_IN_FLIGHT: u64 = 1024;
pub const DEFAULT_MAX_SUCCESS_HEADER_BYTES: u64 = 8 * 1024;
/// Bytes a worker's waiting requests may hold. A wasm VM's memory is capped at about 1 GiB and
/// never shrinks; a quarter leaves room for the transient copies of headers and answers.
pub const DEFAULT_MAX_HELD_BYTES: u64 = 256 * 1024 * 1024;
pub const MAX_HELD_BYTES_LIMIT: u64 = 768 * 1024 * 1024;

/// What a waiting stream costs the worker's memory budget before it holds any headers: the
/// stream's state and its entries in the worker's maps, rounded up.
pub const STREAM_COST_BYTES: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// All outstanding calls per worker.
    pub max_calls_in_flight: usize,
    /// Outstanding calls nobody waits for any more.
    pub max_orphaned_calls: usize,
    pub max_success_header_bytes: usize,
    pub max_held_bytes: usize,
    /// What a request may come to hold while it waits: its own state and the most success
    /// headers it may keep. Reserved up front, so that a request admitted can always keep what
    /// it is owed, and a flood is refused at the door rather than half-served. (An expired entry
    /// it may fall back on is held only when one is found, and only if it fits.)
    pub reservation: usize,
}

/// Reads the limits; `response` and `grpc` say what a request may come to keep.
pub fn parse(root: &Object, response: &ResponseHeaders, grpc: bool) -> Checked<Limits> {
    let max_success_header_bytes = limit(
        root,
        "max_success_header_bytes",
        DEFAULT_MAX_SUCCESS_HEADER_BYTES,
        0,
        1024 * 1024,
    )?;
    // A gRPC answer may always add headers for the client (`response_headers_to_add`).
    let success = if response.client_on_success.is_empty() && !grpc {
        0
    } else {
        max_success_header_bytes
    };
    let limits = Limits {
        max_calls_in_flight: limit(
            root,
            "max_calls_in_flight",
            DEFAULT_MAX_CALLS_IN_FLIGHT,
            1,
            1_000_000,
        )?,
        max_orphaned_calls: limit(
            root,
            "max_orphaned_calls",
            DEFAULT_MAX_ORPHANED_CALLS,
            1,
            1_000_000,
        )?,
        max_success_header_bytes,
        max_held_bytes: limit(
            root,
            "max_held_bytes",
            DEFAULT_MAX_HELD_BYTES,
            64 * 1024,
            MAX_HELD_BYTES_LIMIT,
        )?,
        reservation: STREAM_COST_BYTES + success,
    };
    if limits.max_held_bytes < limits.reservation {
        return Err(ConfigError::new(
            "max_held_bytes",
            format!(
                "{} cannot hold even one waiting request ({} bytes with max_success_header_bytes)",
                limits.max_held_bytes, limits.reservation
            ),
        ));
    }
    Ok(limits)
}
