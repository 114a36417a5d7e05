//! `cache`: the decision cache's key, TTLs, size and stale-if-error window.

use std::time::Duration;

use super::json::Object;
use super::validate::{self, Checked, ConfigError};
use crate::digest::Digest;
use crate::headers::is_connection_only;

/// The decision cache (`cache`); absent, every request is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// The request parts that decide the verdict.
    pub key: Vec<KeyPart>,
    pub ttl: Duration,
    pub max_ttl: Duration,
    /// Zero: denies are not cached.
    pub deny_ttl: Duration,
    /// How long past its expiry an allow may be served when the auth call fails.
    pub stale_if_error: Duration,
    /// Shared-data slots; the key space never grows past them.
    pub max_entries: u32,
    pub max_entry_bytes: usize,
    /// The configuration's digest, part of every key.
    pub fingerprint: Digest,
    /// Shared-data keys are this plus the slot number.
    pub slot_prefix: String,
    /// Cache (and coalesce) requests that lack a header the key names.
    pub cache_missing_headers: bool,
}

pub const CACHE_FIELDS: &[&str] = &[
    "key",
    "ttl_ms",
    "max_ttl_ms",
    "deny_ttl_ms",
    "stale_if_error_ms",
    "max_entries",
    "max_entry_bytes",
    "cache_missing_headers",
];
/// The most shared data a cache may hold (`max_entries` × `max_entry_bytes`).
pub const MAX_CACHE_BYTES: u64 = 1024 * 1024 * 1024;
pub const DEFAULT_CACHE_TTL_MS: u64 = 10_000;
pub const DEFAULT_CACHE_MAX_TTL_MS: u64 = 300_000;
pub const DEFAULT_CACHE_MAX_ENTRIES: u64 = 10_000;
pub const DEFAULT_CACHE_MAX_ENTRY_BYTES: u64 = 8 * 1024;
/// The longest any TTL may be: a day.
pub const MAX_CACHE_TTL_MS: u64 = 86_400_000;

/// One part of the request that decides the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    /// A header (lowercase), with every value it has, in order.
    Header(String),
    Method,
    Authority,
    Path,
    /// The path up to the first `?`.
    PathWithoutQuery,
}

impl KeyPart {
    /// The name a part is written as in the configuration. `host` is `:authority`: Envoy keeps
    /// the Host header there, so a `host` header is never in a request.
    pub fn parse(name: &str) -> Option<KeyPart> {
        Some(match name {
            ":method" => KeyPart::Method,
            ":authority" | "host" => KeyPart::Authority,
            ":path" => KeyPart::Path,
            ":path_without_query" => KeyPart::PathWithoutQuery,
            other if other.starts_with(':') => return None,
            header => KeyPart::Header(header.to_owned()),
        })
    }

    /// The request header (or pseudo-header) the part reads.
    pub fn header_name(&self) -> &str {
        match self {
            KeyPart::Header(name) => name,
            KeyPart::Method => ":method",
            KeyPart::Authority => ":authority",
            KeyPart::Path | KeyPart::PathWithoutQuery => ":path",
        }
    }
}

pub fn parse(cache: &Object, fingerprint: Digest, stat_prefix: &str) -> Checked<CacheConfig> {
    let list = cache.list("key")?.ok_or_else(|| {
        ConfigError::new(
            cache.field("key"),
            "is missing: name the request parts that decide the verdict",
        )
    })?;
    if list.is_empty() {
        return Err(ConfigError::new(
            cache.field("key"),
            "is empty: name the request parts that decide the verdict",
        ));
    }
    let mut key = Vec::with_capacity(list.len());
    for item in &list {
        let name = item.string()?;
        let part = match name.starts_with(':') || name.eq_ignore_ascii_case("host") {
            true => KeyPart::parse(&name.to_ascii_lowercase()).ok_or_else(|| {
                ConfigError::new(
                    &item.path,
                    format!("\"{name}\" is not a key part: use a header name, :method, :authority, :path or :path_without_query"),
                )
            })?,
            false => KeyPart::Header(validate::header_name(&item.path, name)?),
        };
        if let KeyPart::Header(header) = &part {
            if is_connection_only(header) {
                return Err(ConfigError::new(
                    &item.path,
                    format!(
                        "\"{header}\" is hop-by-hop: it describes the connection, not the request"
                    ),
                ));
            }
        }
        key.push(part);
    }
    let millis = |field: &str, default: u64, min: u64| -> Checked<u64> {
        validate::in_range(
            &cache.field(field),
            cache.integer(field)?.unwrap_or(default),
            min,
            MAX_CACHE_TTL_MS,
            "ms",
        )
    };
    let ttl = millis("ttl_ms", DEFAULT_CACHE_TTL_MS, 1)?;
    let max_ttl = millis("max_ttl_ms", DEFAULT_CACHE_MAX_TTL_MS.max(ttl), 1)?;
    let deny_ttl = millis("deny_ttl_ms", 0, 0)?;
    for (field, value) in [("ttl_ms", ttl), ("deny_ttl_ms", deny_ttl)] {
        if value > max_ttl {
            return Err(ConfigError::new(
                cache.field(field),
                format!("{value} is over max_ttl_ms ({max_ttl})"),
            ));
        }
    }
    let stale_if_error = millis("stale_if_error_ms", 0, 0)?;
    let max_entries = validate::in_range(
        &cache.field("max_entries"),
        cache
            .integer("max_entries")?
            .unwrap_or(DEFAULT_CACHE_MAX_ENTRIES),
        1,
        1_000_000,
        "",
    )?;
    let max_entry_bytes = validate::in_range(
        &cache.field("max_entry_bytes"),
        cache
            .integer("max_entry_bytes")?
            .unwrap_or(DEFAULT_CACHE_MAX_ENTRY_BYTES),
        256,
        1024 * 1024,
        "bytes",
    )?;
    if max_entries.saturating_mul(max_entry_bytes) > MAX_CACHE_BYTES {
        return Err(ConfigError::new(
            cache.field("max_entries"),
            format!(
                "{max_entries} entries of up to {max_entry_bytes} bytes could hold more than 1 GiB of Envoy's memory"
            ),
        ));
    }
    Ok(CacheConfig {
        key,
        ttl: Duration::from_millis(ttl),
        max_ttl: Duration::from_millis(max_ttl),
        deny_ttl: Duration::from_millis(deny_ttl),
        stale_if_error: Duration::from_millis(stale_if_error),
        max_entries: u32::try_from(max_entries).unwrap_or(u32::MAX),
        max_entry_bytes: usize::try_from(max_entry_bytes).unwrap_or(usize::MAX),
        fingerprint,
        slot_prefix: slot_prefix(stat_prefix),
        cache_missing_headers: cache.bool("cache_missing_headers")?.unwrap_or(false),
    })
}

/// Where a configuration's entries live in shared data: its stat prefix and this version (an
/// entry another version wrote may not decode the same).
pub fn slot_prefix(stat_prefix: &str) -> String {
    format!("{stat_prefix}.cache.{}.", env!("CARGO_PKG_VERSION"))
}
