//! How large a check would be, bounded from above before it is built, so that a request whose
//! check would exceed the call limits is refused (431) rather than sent and refused by the host.

use crate::call_limits::{HEADER_OVERHEAD_BYTES, MAX_BYTES, MAX_HEADERS};
use crate::config::{AuthRequest, PathRule};
use crate::protocol::BadRequest;

/// An upper bound on a check's header map, accumulated header by header.
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
        size.add("x-envoy-auth-partial-body".len(), 5);
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
