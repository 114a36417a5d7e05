//! `with_request_body`: the request's body goes to the auth service with the check.

use super::json::Object;
use super::validate::{self, Checked, ConfigError};

/// The largest body the plugin will buffer for a check (Envoy's own buffer limit, 1 MiB per
/// connection by default, may refuse earlier, with a 413 of its own).
pub const MAX_REQUEST_BODY_LIMIT: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestBody {
    /// Buffered and sent at most this much; a larger body is refused (413) unless partial.
    pub max_bytes: usize,
    /// Send the first `max_bytes` of a larger body, marked `x-envoy-auth-partial-body: true`.
    pub allow_partial: bool,
    /// gRPC only: send the body as `raw_body` (bytes) rather than `body` (UTF-8).
    pub pack_as_bytes: bool,
}

pub fn parse(root: &Object) -> Checked<Option<RequestBody>> {
    let Some(body) = root.object(
        "with_request_body",
        &[
            "max_request_bytes",
            "allow_partial_message",
            "pack_as_bytes",
        ],
    )?
    else {
        return Ok(None);
    };
    let max = body
        .integer("max_request_bytes")?
        .ok_or_else(|| ConfigError::new(body.field("max_request_bytes"), "is missing"))?;
    Ok(Some(RequestBody {
        max_bytes: usize::try_from(validate::in_range(
            &body.field("max_request_bytes"),
            max,
            1,
            MAX_REQUEST_BODY_LIMIT,
            "bytes",
        )?)
        .unwrap_or(usize::MAX),
        allow_partial: body.bool("allow_partial_message")?.unwrap_or(false),
        pack_as_bytes: body.bool("pack_as_bytes")?.unwrap_or(false),
    }))
}
