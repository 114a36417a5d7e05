//! Any bytes as the plugin configuration: parsed or refused with a named field, never a panic.
#![no_main]

use authz_core::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Config::parse(data) {
        Ok(config) => {
            assert!((200..=599).contains(&config.failure.status_on_error));
            assert!(!config.auth_request.timeout.is_zero());
        }
        Err(err) => assert!(!err.field.is_empty() && !err.reason.is_empty()),
    }
});
