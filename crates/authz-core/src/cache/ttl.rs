//! How long an answer may be served from the cache: the configuration's TTLs, overridden by the
//! answer's `Cache-Control` (parsed by the `headers` crate) and capped.

use std::time::Duration;

use headers::{CacheControl, Header, HeaderValue};

use crate::config::CacheConfig;

/// How long an answer is fresh, and whether it may be served stale afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    pub ttl: Duration,
    /// `must-revalidate`: never served once expired, not even when the
    /// auth service fails.
    pub must_revalidate: bool,
}

/// The freshness of an answer that may be cached; `None` means it is not cached.
pub fn ttl(cache: &CacheConfig, allow: bool, cache_control: Option<&[u8]>) -> Option<Duration> {
    freshness(cache, allow, cache_control).map(|f| f.ttl)
}

/// As `ttl`, with whether the answer may be served stale.
pub fn freshness(
    cache: &CacheConfig,
    allow: bool,
    cache_control: Option<&[u8]>,
) -> Option<Freshness> {
    let default = if allow { cache.ttl } else { cache.deny_ttl };
    if default.is_zero() && !allow {
        // Denies are cached only when the operator asked for it.
        return None;
    }
    let (ttl, must_revalidate) = match cache_control {
        None => (default, false),
        Some(value) => {
            let directives = parse(value)?;
            if directives.no_store() || directives.no_cache() || directives.private() {
                return None;
            }
            // A shared cache reads s-maxage first.
            let ttl = match directives.s_max_age().or_else(|| directives.max_age()) {
                Some(age) => age.min(cache.max_ttl),
                None => default,
            };
            (ttl, directives.must_revalidate())
        }
    };
    (!ttl.is_zero()).then_some(Freshness {
        ttl,
        must_revalidate,
    })
}

/// Directive names are case-insensitive, and the parser compares them as written, so the value
/// is lowercased first. A value that does not parse means the answer is not cached.
fn parse(value: &[u8]) -> Option<CacheControl> {
    let lower = HeaderValue::from_bytes(&value.to_ascii_lowercase()).ok()?;
    CacheControl::decode(&mut std::iter::once(&lower)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use proptest::prelude::*;

    fn cache(json: &str) -> CacheConfig {
        let json = format!(
            r#"{{"decision": "fnv_parity", "cache": {{"key": ["authorization"], {json}}}}}"#
        );
        Config::parse(json.as_bytes()).unwrap().cache.unwrap()
    }

    fn secs(n: u64) -> Option<Duration> {
        Some(Duration::from_secs(n))
    }

    #[test]
    fn without_cache_control_the_configured_ttls_apply() {
        let c = cache(r#""ttl_ms": 10000, "deny_ttl_ms": 2000"#);
        assert_eq!(ttl(&c, true, None), secs(10));
        assert_eq!(ttl(&c, false, None), secs(2));
        let no_denies = cache(r#""ttl_ms": 10000"#);
        assert_eq!(
            ttl(&no_denies, false, None),
            None,
            "denies only with deny_ttl_ms"
        );
        assert_eq!(ttl(&no_denies, false, Some(b"max-age=60")), None);
    }

    #[test]
    fn max_age_overrides_and_is_capped() {
        let c = cache(r#""ttl_ms": 10000, "max_ttl_ms": 30000"#);
        assert_eq!(ttl(&c, true, Some(b"max-age=5")), secs(5));
        assert_eq!(ttl(&c, true, Some(b"max-age=3600")), secs(30));
        assert_eq!(ttl(&c, true, Some(b"max-age=60, s-maxage=20")), secs(20));
        assert_eq!(ttl(&c, true, Some(b"public")), secs(10));
        assert_eq!(ttl(&c, true, Some(b"max-age=0")), None);
    }

    #[test]
    fn no_store_no_cache_and_private_are_never_cached_in_any_case_or_order() {
        let c = cache(r#""ttl_ms": 10000"#);
        for value in [
            "no-store",
            "No-Store",
            "no-cache",
            "private",
            "PRIVATE, max-age=60",
            "public, no-cache",
            "max-age=60, no-store",
        ] {
            assert_eq!(ttl(&c, true, Some(value.as_bytes())), None, "{value}");
        }
    }

    #[test]
    fn must_revalidate_forbids_serving_stale() {
        let c = cache(r#""ttl_ms": 10000"#);
        assert!(
            !freshness(&c, true, Some(b"max-age=5"))
                .unwrap()
                .must_revalidate
        );
        assert!(
            freshness(&c, true, Some(b"max-age=5, Must-Revalidate"))
                .unwrap()
                .must_revalidate
        );
    }

    #[test]
    fn unknown_directives_are_ignored() {
        let c = cache(r#""ttl_ms": 10000"#);
        assert_eq!(ttl(&c, true, Some(b"\xff\xfe, x-custom=1")), secs(10));
    }

    #[test]
    fn a_cache_control_that_does_not_parse_is_not_cached() {
        let c = cache(r#""ttl_ms": 10000"#);
        for value in [&b"max-age=abc"[..], b"max-age=60\r\nx: y", b"no-store,,"] {
            assert_eq!(ttl(&c, true, Some(value)), None, "{value:?}");
        }
    }

    proptest! {
        #[test]
        fn any_cache_control_gives_a_ttl_within_the_cap_or_none(value in prop::collection::vec(any::<u8>(), 0..48), allow in any::<bool>()) {
            let c = cache(r#""ttl_ms": 10000, "max_ttl_ms": 20000, "deny_ttl_ms": 1000"#);
            if let Some(t) = ttl(&c, allow, Some(&value)) {
                prop_assert!(t > Duration::ZERO && t <= Duration::from_secs(20));
            }
        }

        #[test]
        fn any_max_age_is_capped(age in any::<u64>()) {
            let c = cache(r#""ttl_ms": 10000, "max_ttl_ms": 20000"#);
            let value = format!("max-age={age}");
            let t = ttl(&c, true, Some(value.as_bytes()));
            prop_assert!(t.is_none() || t <= secs(20));
        }
    }
}
