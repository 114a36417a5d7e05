//! External authorization for Envoy as a proxy-wasm plugin.
//!
//! The pure modules (`config`, `decision`, `fnv`, `auth_request`, `exempt`, `flow`, `worker`,
//! `abi`) hold all the logic and test natively; `glue` binds them to the proxy-wasm ABI and is
//! built for wasm only.

pub mod abi;
pub mod auth_request;
pub mod cache;
pub mod config;
pub mod decision;
pub mod exempt;
pub mod flow;
pub mod fnv;
pub mod grpc;
pub mod host;
pub mod matcher;
pub mod metrics;
pub mod outcome;
pub mod query;
pub mod worker;

#[cfg(target_arch = "wasm32")]
mod glue;

#[cfg(test)]
mod mock_host;

#[cfg(feature = "test-switches")]
pub mod test_switches;
