//! Any bytes as a gRPC `CheckResponse`, and any allow's query edits applied to a path: a verdict
//! or an error, never a panic.
#![no_main]

use authz_core::config::Config;
use authz_core::protocol::grpc;
use authz_core::outcome::Outcome;
use authz_core::query;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for json in [
        &br#"{"protocol": "grpc"}"#[..],
        br#"{"protocol": "grpc", "max_success_header_bytes": 64}"#,
    ] {
        let Ok(config) = Config::parse(json) else {
            continue;
        };
        if let Outcome::Allow(allowed) = grpc::outcome(&config, data) {
            let _ = query::edit(b"/p?a=1&b=%zz&c", &allowed.query_set, &allowed.query_remove);
        }
    }
});
