//! The workbench: everything needed to build the plugin and run it in a real Envoy, shared by
//! `cargo xtask` (run, test, bench, soak) and the end-to-end tests.

pub mod authzen;
pub mod bench;
pub mod decision_log;
pub mod envoy;
pub mod envoy_config;
pub mod grpc_auth;
pub mod h2_client;
pub mod httpbin;
pub mod libfuzzer;
pub mod libtest;
pub mod load;
pub mod oci;
pub mod paths;
pub mod plugin;
pub mod process;
pub mod shell;
pub mod shutdown;
pub mod soak;
pub mod stack;
pub mod test_files;
pub mod test_server;
pub mod tools;
pub mod venv;
pub mod wrk;
