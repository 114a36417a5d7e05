//! External authorization for Envoy as a native dynamic module: the authz-core filter bound to
//! Envoy's dynamic-module C ABI. Unsafe code lives in `ffi` only; everything else is safe Rust
//! over the core, one worker's state per Envoy worker thread.

mod config;
mod ffi;
mod host;
mod logger;
mod module;
mod registry;
mod store;
