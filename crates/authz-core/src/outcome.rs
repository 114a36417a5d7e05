//! What an auth answer means for the requests waiting on it, whichever protocol read it: an
//! allow and what it applies, a deny and its reply, a failure, or an overload.

use serde::{Deserialize, Serialize};

use crate::decision::AuthError;
use crate::host::{Headers, HostError, Metadata};

/// Per header kept for the client's response, on top of its name and value: two allocations
/// and their bookkeeping.
pub const HEADER_OVERHEAD_BYTES: usize = 64;

/// What an allow applies to the request and to its response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allowed {
    /// Headers that replace the request's own.
    pub set: Headers,
    /// Headers appended to the request.
    pub append: Headers,
    /// Headers added to the upstream's response.
    pub client: Headers,
    /// Request headers the auth service asked to remove (`x-envoy-auth-headers-to-remove`).
    pub remove: Vec<String>,
    /// Headers for the client left out, over `max_success_header_bytes`.
    pub dropped: usize,
    /// gRPC: values appended to request headers the request already has (`append: true`).
    pub append_existing: Headers,
    /// gRPC: headers for the client's response, each with how it meets one already there.
    pub client_mutations: Vec<(String, Vec<u8>, ResponseAction)>,
    /// gRPC: query parameters to set (replacing every value of the key) and to remove.
    pub query_set: Vec<(String, String)>,
    pub query_remove: Vec<String>,
    /// Dynamic metadata for the filters after this one and the access log.
    pub metadata: Metadata,
}

/// How a header for the client's response meets one the upstream already sent (ext_authz's
/// `HeaderValueOption.append_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseAction {
    /// Add another value.
    Append,
    /// Add only if absent.
    AddIfAbsent,
    /// Replace, or add.
    Set,
    /// Replace only if present.
    OverwriteIfExists,
}

/// The reply a deny sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denied {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// As on an allow.
    pub metadata: Metadata,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Boxed: an allow carries lists, every other outcome a few words.
    Allow(Box<Allowed>),
    Deny(Denied),
    /// The auth service failed: the failure policy decides.
    Failed(AuthError),
    /// The auth path or the worker is saturated, which a client can cause: 503, never open.
    Overloaded(String),
}

/// An answer as read: what it means, and what it says about caching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub outcome: Outcome,
    pub cache_control: Option<Vec<u8>>,
}

impl Outcome {
    /// A host call on the auth answer that failed. Running out of VM memory is an overload.
    pub fn from_host_error(err: HostError) -> Outcome {
        if err.is_out_of_memory() {
            Outcome::Overloaded(format!("out of VM memory ({err})"))
        } else {
            Outcome::Failed(AuthError::Host(err.to_string()))
        }
    }
}

/// What keeping a header costs the memory budget.
pub fn header_cost((name, value): &(String, Vec<u8>)) -> usize {
    name.len() + value.len() + HEADER_OVERHEAD_BYTES
}
