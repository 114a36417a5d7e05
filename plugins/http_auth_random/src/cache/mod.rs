//! The decision cache: verdicts shared by every worker through proxy-wasm shared data, in a fixed
//! number of slots (the host cannot delete a key, so the key space is bounded by design).

mod entry;
mod key;
mod ttl;

pub use entry::{CachedVerdict, Entry};
pub use key::{digest, fingerprint, slot, Digest, KeyPart};
pub use ttl::ttl;

use crate::abi::Status;
use crate::config::CacheConfig;
use crate::host::{Host, HostResult};
use crate::outcome::{Allowed, Answer};
use crate::worker::CacheWrite;

/// What the slot held for a request's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Fresh(CachedVerdict),
    /// An expired allow that may still be served if the auth service fails, until then.
    Stale {
        allowed: Allowed,
        stale_until_ms: u64,
    },
    Nothing,
}

/// A lookup: what was found, and where to store the answer (with the slot's version, so that a
/// store never overwrites a newer one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub found: Found,
    pub slot_key: String,
    pub cas: u32,
}

pub fn slot_key(cache: &CacheConfig, digest: &Digest) -> String {
    format!("{}{}", cache.slot_prefix, slot(digest, cache.max_entries))
}

/// Looks the key up in its slot. Another key's entry in the slot, or an expired one, is not a
/// hit: an expired entry is never served fresh.
pub fn lookup(
    host: &impl Host,
    cache: &CacheConfig,
    digest: &Digest,
    now_ms: u64,
) -> HostResult<Probe> {
    let slot_key = slot_key(cache, digest);
    let (bytes, cas) = host.get_shared_data(&slot_key)?.unwrap_or_default();
    let found = match Entry::decode(&bytes) {
        Some(entry) if entry.digest == *digest => {
            if now_ms < entry.fresh_until_ms {
                Found::Fresh(entry.verdict)
            } else {
                match entry.verdict {
                    CachedVerdict::Allow(allowed) if now_ms < entry.stale_until_ms => {
                        Found::Stale {
                            allowed,
                            stale_until_ms: entry.stale_until_ms,
                        }
                    }
                    _ => Found::Nothing,
                }
            }
        }
        _ => Found::Nothing,
    };
    Ok(Probe {
        found,
        slot_key,
        cas,
    })
}

/// Why an entry was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotStored {
    /// Over `max_entry_bytes`: served, not cached.
    TooLarge(usize),
    /// Another worker wrote the slot since it was read, or the host refused the write.
    Failed(String),
}

/// Stores an entry in its slot, if the slot has not changed since `cas` was read.
pub fn store(
    host: &impl Host,
    cache: &CacheConfig,
    slot_key: &str,
    cas: u32,
    entry: &Entry,
) -> Result<(), NotStored> {
    let bytes = entry
        .encode()
        .ok_or_else(|| NotStored::Failed("cannot encode the entry".to_owned()))?;
    if bytes.len() > cache.max_entry_bytes {
        return Err(NotStored::TooLarge(bytes.len()));
    }
    host.set_shared_data(slot_key, &bytes, cas).map_err(|err| {
        NotStored::Failed(if err.status == Status::CasMismatch {
            "the slot changed since it was read".to_owned()
        } else {
            err.to_string()
        })
    })
}

/// Caches an answer in the slot its call's lookup read, if the answer may be cached: an allow,
/// or a deny with `deny_ttl_ms`, for as long as its `Cache-Control` and the configuration allow.
/// Errors and overloads never are.
pub fn remember(
    host: &impl Host,
    cache: &CacheConfig,
    write: &CacheWrite,
    answer: &Answer,
) -> Result<(), NotStored> {
    let Some(verdict) = CachedVerdict::from_outcome(&answer.outcome) else {
        return Ok(());
    };
    let allow = matches!(verdict, CachedVerdict::Allow(_));
    let Some(ttl) = ttl(cache, allow, answer.cache_control.as_deref()) else {
        return Ok(());
    };
    let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let fresh_until_ms = (host.now_nanos() / 1_000_000).saturating_add(millis(ttl));
    let stale_until_ms = if allow {
        fresh_until_ms.saturating_add(millis(cache.stale_if_error))
    } else {
        fresh_until_ms
    };
    let entry = Entry {
        digest: write.digest,
        fresh_until_ms,
        stale_until_ms,
        verdict,
    };
    store(host, cache, &write.slot_key, write.cas, &entry)
}
