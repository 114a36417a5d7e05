//! Any bytes as an auth answer's Cache-Control, for an allow and a deny: a TTL within the cap or
//! none, never a panic.
#![no_main]

use std::time::Duration;

use authz_core::cache::ttl;
use authz_core::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(config) = Config::parse(
        br#"{"cache": {"key": ["authorization"], "ttl_ms": 10000, "max_ttl_ms": 60000, "deny_ttl_ms": 1000}}"#,
    ) else {
        return;
    };
    let Some(cache) = config.cache else {
        return;
    };
    for allow in [true, false] {
        if let Some(t) = ttl(&cache, allow, Some(data)) {
            assert!(t > Duration::ZERO && t <= Duration::from_secs(60));
        }
    }
});
