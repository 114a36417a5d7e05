//! External authorization for Envoy, as pure logic: configuration, decision rules, the ext_authz
//! HTTP and gRPC protocols, the decision cache and the per-request state machine, behind the
//! `Host` and `Store` traits that each runtime's shell implements. It names no runtime, and
//! builds and tests natively.

#![forbid(unsafe_code)]

pub mod cache;
pub mod call_limits;
pub mod config;
pub mod decision;
pub mod digest;
pub mod exempt;
pub mod flow;
pub mod fnv;
pub mod headers;
pub mod host;
pub mod matcher;
pub mod metrics;
pub mod outcome;
pub mod paths;
pub mod protocol;
pub mod query;
pub mod record;
pub mod route_match;
pub mod sorted;
pub mod state;
pub mod worker;

#[cfg(test)]
mod mock_host;

#[cfg(feature = "test-switches")]
pub mod test_switches;
