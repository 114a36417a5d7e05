//! External authorization for Envoy as a proxy-wasm plugin: the proxy-wasm shell over
//! `authz-core`. `abi` is the ABI as data (status codes, enum values, the header-map format) and
//! tests natively; `glue` binds the core's host traits and worker to the ABI, for wasm only.

pub mod abi;

#[cfg(target_arch = "wasm32")]
mod glue;
