//! SHA-256 digests: the configuration's fingerprint, and the type a cache key digests to.

use sha2::{Digest as _, Sha256};

pub type Digest = [u8; 32];

/// The configuration's fingerprint: a new configuration never serves an old one's verdicts.
pub fn fingerprint(configuration: &[u8]) -> Digest {
    Sha256::digest(configuration).into()
}
