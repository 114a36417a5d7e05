//! The decision cache every worker shares: entries in ordinary memory, in a concurrent cache
//! with real eviction (moka), written with compare-and-swap as the core's `Store` asks.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use authz_core::host::{Failure, HostError, HostResult};
use moka::sync::Cache;

/// An entry and the version it was written with.
type Entry = (Arc<[u8]>, u32);

pub struct SharedStore {
    entries: Cache<String, Entry>,
    versions: AtomicU32,
}

impl SharedStore {
    /// A store of at most `capacity` entries; the least useful go first when it is full.
    pub fn new(capacity: u64) -> SharedStore {
        SharedStore {
            entries: Cache::new(capacity.max(1)),
            versions: AtomicU32::new(0),
        }
    }

    /// A version no entry has now: never 0, which the core reads as "whatever it is".
    fn next_version(&self) -> u32 {
        loop {
            let version = self
                .versions
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_add(1);
            if version != 0 {
                return version;
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.entries
            .get(key)
            .map(|(bytes, version)| (bytes.to_vec(), version))
    }

    /// Writes `value` if the entry's version is still `cas` (0: whatever it is).
    pub fn set(&self, key: &str, value: &[u8], cas: u32) -> HostResult<()> {
        let fresh: Entry = (Arc::from(value), self.next_version());
        if cas == 0 {
            self.entries.insert(key.to_owned(), fresh);
            return Ok(());
        }
        let mut lost = false;
        self.entries
            .entry(key.to_owned())
            .and_compute_with(|current| match current {
                Some(entry) if entry.value().1 == cas => moka::ops::compute::Op::Put(fresh),
                _ => {
                    lost = true;
                    moka::ops::compute::Op::Nop
                }
            });
        if lost {
            return Err(HostError::new("set shared data", Failure::CasMismatch));
        }
        Ok(())
    }

    /// Entries now held (after pending evictions are done).
    #[cfg(test)]
    pub fn len(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_with_a_stale_version_loses() {
        let store = SharedStore::new(10);
        store.set("k", b"a", 0).unwrap();
        let (_, version) = store.get("k").unwrap();
        assert_ne!(version, 0);
        store.set("k", b"b", version).unwrap();
        let err = store.set("k", b"c", version).unwrap_err();
        assert_eq!(err.failure, Failure::CasMismatch);
        assert_eq!(store.get("k").unwrap().0, b"b");
        // A versioned write to an entry that has gone is lost too: someone evicted it.
        assert!(store.set("gone", b"x", 7).is_err());
    }

    #[test]
    fn the_store_holds_no_more_than_its_capacity() {
        let store = SharedStore::new(100);
        for i in 0..1_000 {
            store.set(&format!("k{i}"), b"v", 0).unwrap();
        }
        assert!(store.len() <= 100, "{} entries", store.len());
    }
}
