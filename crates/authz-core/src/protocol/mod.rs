//! The protocols an auth service is asked in: HTTP (ext_authz's HTTP service, or the seed's
//! call) and ext_authz's gRPC `Check`. Each builds its check from the request and reads its
//! answer into an `Outcome`; both refuse a request the same way.

pub mod authzen;
pub mod grpc;
pub mod http;
mod size;

pub use size::CallSize;

use crate::call_limits::{MAX_BYTES, MAX_HEADERS};

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
    /// A header the check is built from is sent more than once: which one counts would be the
    /// client's choice.
    Repeated(String),
    /// The check would be larger than the host can send (1,024 headers, 1 MiB) or the auth
    /// server takes (`max_check_headers`, `max_check_header_bytes`): the client's headers are
    /// too large to check, as Envoy says of headers it cannot take (431).
    TooLarge { headers: usize, bytes: usize },
    /// The path reads one way as sent and another once decoded or resolved, and the readings
    /// fall under different `routes` rules: which one applies depends on the server.
    AmbiguousPath,
}

impl BadRequest {
    /// The status the client gets.
    pub fn status(&self) -> u16 {
        match self {
            BadRequest::TooLarge { .. } => 431,
            _ => 400,
        }
    }
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
            BadRequest::Repeated(name) => {
                write!(f, "request header {name} is sent more than once")
            }
            BadRequest::AmbiguousPath => write!(
                f,
                "request path falls under different routes rules as sent and as a server may \
                 resolve it"
            ),
            BadRequest::TooLarge { headers, bytes } => write!(
                f,
                "request is too large to check: the check would carry {headers} headers and \
                 {bytes} bytes, over max_check_headers or max_check_header_bytes (or the host's \
                 {MAX_HEADERS} headers and {MAX_BYTES} bytes)"
            ),
        }
    }
}
