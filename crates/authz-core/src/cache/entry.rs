//! A cache entry as a shared-data slot holds it: the digest it is for, until when it is fresh
//! (and may be served stale), and the verdict with everything it applies; postcard-encoded.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::outcome::{Allowed, Denied, Outcome};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CachedVerdict {
    Allow(Allowed),
    Deny(Denied),
}

impl CachedVerdict {
    pub fn from_outcome(outcome: &Outcome) -> Option<CachedVerdict> {
        match outcome {
            Outcome::Allow(allowed) => Some(CachedVerdict::Allow((**allowed).clone())),
            Outcome::Deny(denied) => Some(CachedVerdict::Deny(denied.clone())),
            Outcome::Failed(_) | Outcome::Overloaded(_) => None,
        }
    }

    pub fn into_outcome(self) -> Outcome {
        match self {
            CachedVerdict::Allow(allowed) => Outcome::Allow(Box::new(allowed)),
            CachedVerdict::Deny(denied) => Outcome::Deny(denied),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The whole key's digest: a slot shared by two keys never serves one's verdict to the other.
    #[serde(with = "digest_bytes")]
    pub digest: Digest,
    /// Wall-clock milliseconds.
    pub fresh_until_ms: u64,
    /// An allow may be served until then when the auth service fails (`stale_if_error_ms`).
    pub stale_until_ms: u64,
    /// `None`: a tombstone, which holds the slot (for its version) and serves nothing.
    pub verdict: Option<CachedVerdict>,
}

impl Entry {
    /// An entry that serves nothing: written to claim an empty slot, or to take back a verdict
    /// the auth service no longer gives.
    pub fn tombstone(digest: Digest) -> Entry {
        Entry {
            digest,
            fresh_until_ms: 0,
            stale_until_ms: 0,
            verdict: None,
        }
    }
}

impl Entry {
    pub fn encode(&self) -> Option<Vec<u8>> {
        postcard::to_allocvec(self).ok()
    }

    /// Anything that is not an entry (another version's, or garbage) is no entry.
    pub fn decode(bytes: &[u8]) -> Option<Entry> {
        postcard::from_bytes(bytes).ok()
    }
}

/// A digest as one byte string: serde's impl for a `[u8; 32]` reads it as a 32-field tuple, which
/// costs 2.5 KB of wasm for the same bytes.
mod digest_bytes {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::digest::Digest;

    pub fn serialize<S: Serializer>(digest: &Digest, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(digest)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        let bytes = <&[u8]>::deserialize(deserializer)?;
        Digest::try_from(bytes).map_err(|_| D::Error::custom("a digest is 32 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry() -> Entry {
        Entry {
            digest: [3; 32],
            fresh_until_ms: 10,
            stale_until_ms: 20,
            verdict: Some(CachedVerdict::Allow(Allowed {
                set: vec![("x-user-id".into(), b"alice".to_vec())],
                append: vec![],
                client: vec![("set-cookie".into(), b"s=1".to_vec())],
                remove: vec!["x-internal".into()],
                ..Allowed::default()
            })),
        }
    }

    #[test]
    fn entries_round_trip() {
        let bytes = entry().encode().unwrap();
        assert_eq!(Entry::decode(&bytes), Some(entry()));
        let deny = Entry {
            verdict: Some(CachedVerdict::Deny(Denied {
                status: 401,
                headers: vec![("www-authenticate".into(), "Bearer".into())],
                body: b"no".to_vec(),
                metadata: Default::default(),
            })),
            ..entry()
        };
        assert_eq!(Entry::decode(&deny.encode().unwrap()), Some(deny));
        let tombstone = Entry::tombstone([9; 32]);
        assert_eq!(Entry::decode(&tombstone.encode().unwrap()), Some(tombstone));
    }

    proptest! {
        #[test]
        fn any_bytes_are_an_entry_or_none(bytes in prop::collection::vec(any::<u8>(), 0..128)) {
            let _ = Entry::decode(&bytes);
        }
    }
}
