//! The decision cache: verdicts shared by every worker through proxy-wasm shared data, in a fixed
//! number of slots (the host cannot delete a key, so the key space is bounded by design).

mod entry;
mod key;
mod ttl;

pub use crate::digest::Digest;
pub use entry::{CachedVerdict, Entry};
pub use key::{complete, digest, missing, slot, with_evaluation};
pub use ttl::{freshness, ttl, Freshness};

use crate::config::CacheConfig;
use crate::host::Failure;
use crate::host::{Host, HostResult, Store};
use crate::outcome::{Allowed, Answer};

/// Where a call's answer goes in the cache, as the leader's lookup found the slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheWrite {
    pub digest: Digest,
    pub slot_key: String,
    pub cas: u32,
    /// The slot held this key's entry when it was read.
    pub ours: bool,
}

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
    /// The slot held an entry for this key (fresh, stale or expired), which a newer answer that
    /// may not be cached must take back.
    pub ours: bool,
}

/// Where a digest's entry lives: the digest itself in a store that evicts, else one of the
/// fixed slots.
pub fn slot_key(store: &impl Store, cache: &CacheConfig, digest: &Digest) -> String {
    if store.evicts() {
        let mut key = String::with_capacity(cache.slot_prefix.len() + 2 * digest.len());
        key.push_str(&cache.slot_prefix);
        key.push_str(&hex::encode(digest));
        key
    } else {
        format!("{}{}", cache.slot_prefix, slot(digest, cache.max_entries))
    }
}

/// Looks the key up in its slot. Another key's entry in the slot, or an expired one, is not a
/// hit: an expired entry is never served fresh. An empty slot is claimed with a tombstone first,
/// so that the answer's store has a version to check: a CAS of 0 would overwrite whatever
/// another worker stored meanwhile.
pub fn lookup(
    host: &impl Host,
    cache: &CacheConfig,
    digest: &Digest,
    now_ms: u64,
) -> HostResult<Probe> {
    let slot_key = slot_key(host, cache, digest);
    let (bytes, cas) = match host.get_shared_data(&slot_key)? {
        Some(found) => found,
        None => {
            let claim = Entry::tombstone([0; 32]).encode().unwrap_or_default();
            host.set_shared_data(&slot_key, &claim, 0)?;
            host.get_shared_data(&slot_key)?.unwrap_or_default()
        }
    };
    let entry = Entry::decode(&bytes).filter(|entry| entry.digest == *digest);
    let ours = entry.is_some();
    let found = match entry.and_then(|e| Some((e.fresh_until_ms, e.stale_until_ms, e.verdict?))) {
        Some((fresh_until, _, verdict)) if now_ms < fresh_until => Found::Fresh(verdict),
        Some((_, stale_until, CachedVerdict::Allow(allowed))) if now_ms < stale_until => {
            Found::Stale {
                allowed,
                stale_until_ms: stale_until,
            }
        }
        _ => Found::Nothing,
    };
    Ok(Probe {
        found,
        slot_key,
        cas,
        ours,
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
        NotStored::Failed(if err.failure == Failure::CasMismatch {
            "the slot changed since it was read".to_owned()
        } else {
            err.to_string()
        })
    })
}

/// What became of an answer in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remembered {
    Stored,
    /// A verdict that may not be cached (a deny without `deny_ttl_ms`, `no-store`, `private`,
    /// `no-cache`, a `Set-Cookie`), nor shared with other requests waiting for it.
    NotCacheable,
    /// An error or an overload: never cached, and the key's entry (a stale allow) is left as it is.
    Error,
    /// Cacheable, but not stored.
    NotStored(NotStored),
}

/// Whether an answer carries a cookie for the client: a session or CSRF cookie must reach only
/// the client it was made for, never one served from the cache.
fn sets_cookie(verdict: &CachedVerdict) -> bool {
    match verdict {
        CachedVerdict::Allow(allowed) => {
            allowed.client.iter().any(|(n, _)| n == "set-cookie")
                || allowed
                    .client_mutations
                    .iter()
                    .any(|(n, _, _)| n == "set-cookie")
        }
        CachedVerdict::Deny(denied) => denied.headers.iter().any(|(n, _)| n == "set-cookie"),
    }
}

/// Caches an answer in the slot its call's lookup read, if the answer may be cached: an allow, or
/// a deny with `deny_ttl_ms`, for as long as its `Cache-Control` and the configuration allow, and
/// never one that sets a cookie. A verdict that may not be cached takes back the key's own entry,
/// so that a stale allow is not served after the auth service has said otherwise.
pub fn remember(
    host: &impl Host,
    cache: &CacheConfig,
    write: &CacheWrite,
    answer: &Answer,
) -> Remembered {
    let Some(verdict) = CachedVerdict::from_outcome(&answer.outcome) else {
        return Remembered::Error;
    };
    let allow = matches!(verdict, CachedVerdict::Allow(_));
    let freshness = if sets_cookie(&verdict) {
        None
    } else {
        freshness(cache, allow, answer.cache_control.as_deref())
    };
    let Some(freshness) = freshness else {
        if write.ours {
            let _ = store(
                host,
                cache,
                &write.slot_key,
                write.cas,
                &Entry::tombstone(write.digest),
            );
        }
        return Remembered::NotCacheable;
    };
    let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let fresh_until_ms = (host.now_nanos() / 1_000_000).saturating_add(millis(freshness.ttl));
    let stale_until_ms = if allow && !freshness.must_revalidate {
        fresh_until_ms.saturating_add(millis(cache.stale_if_error))
    } else {
        fresh_until_ms
    };
    let entry = Entry {
        digest: write.digest,
        fresh_until_ms,
        stale_until_ms,
        verdict: Some(verdict),
    };
    match store(host, cache, &write.slot_key, write.cas, &entry) {
        Ok(()) => Remembered::Stored,
        Err(err) => Remembered::NotStored(err),
    }
}
