//! How large a check would be, bounded from above before it is built, so that a request whose
//! check would be too large is refused (431) rather than sent: the host would refuse the call,
//! or the auth server would reset it, and either must never reach the failure policy.

use crate::call_limits::{HEADER_OVERHEAD_BYTES, MAX_BYTES, MAX_HEADERS};
use crate::config::{AuthRequest, PathRule};
use crate::protocol::BadRequest;

/// What an HTTP/2 header list counts per header besides its name and value (RFC 9113's
/// `SETTINGS_MAX_HEADER_LIST_SIZE`); more than HTTP/1 needs, so the bound holds for both.
pub const LIST_OVERHEAD_BYTES: usize = 32;

/// Headers and bytes Envoy adds to a call on its way (`x-envoy-expected-rq-timeout-ms`,
/// `x-request-id`, `x-forwarded-proto`, …), kept free within the configured bounds.
pub const ENVOY_ADDS_HEADERS: usize = 8;
pub const ENVOY_ADDS_BYTES: usize = 512;

/// An upper bound on a check's headers, accumulated header by header, both as the proxy-wasm
/// host encodes them and as an auth server counts them.
#[derive(Debug, Clone, Copy)]
pub struct CallSize {
    headers: usize,
    /// As the host encodes a header map.
    encoded: usize,
    /// As an auth server's header-list limit counts.
    listed: usize,
}

impl CallSize {
    /// What the call carries whatever the request: `content-length`, the partial-body marker,
    /// the configured path, authority and method, and `headers_to_add`.
    pub fn of_additions(spec: &AuthRequest) -> CallSize {
        let mut size = CallSize {
            headers: 0,
            encoded: 4,
            listed: 0,
        };
        size.add("content-length".len(), 20);
        size.add("x-envoy-auth-partial-body".len(), 5);
        // A CONNECT's check has a `:path` of its own.
        size.add(":path".len(), 1);
        let configured = match &spec.path {
            PathRule::Client => 0,
            PathRule::Prefixed(prefix) | PathRule::Fixed(prefix) => prefix.len(),
        } + spec.authority.as_ref().map_or(0, String::len)
            + spec.method.as_ref().map_or(0, String::len);
        size.encoded = size.encoded.saturating_add(configured);
        size.listed = size.listed.saturating_add(configured);
        for (name, value) in &spec.headers_to_add {
            size.add(name.len(), value.len());
        }
        size
    }

    pub fn add(&mut self, name: usize, value: usize) {
        self.headers += 1;
        self.encoded = self
            .encoded
            .saturating_add(name + value + HEADER_OVERHEAD_BYTES);
        self.listed = self
            .listed
            .saturating_add(name + value + LIST_OVERHEAD_BYTES);
    }

    /// Within the host's limits, and within the configured bounds of the auth server with room
    /// for what Envoy adds.
    pub fn check(self, spec: &AuthRequest) -> Result<(), BadRequest> {
        let max_headers =
            MAX_HEADERS.min(spec.max_check_headers.saturating_sub(ENVOY_ADDS_HEADERS));
        let max_listed = spec.max_check_header_bytes.saturating_sub(ENVOY_ADDS_BYTES);
        if self.headers > max_headers || self.encoded > MAX_BYTES || self.listed > max_listed {
            return Err(BadRequest::TooLarge {
                headers: self.headers,
                bytes: self.listed.max(self.encoded),
            });
        }
        Ok(())
    }
}
