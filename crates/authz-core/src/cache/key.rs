//! The cache key: a SHA-256 digest of the configuration's fingerprint and of every request part
//! the key names, encoded so that no two different requests can give the same input.

use sha2::{Digest as _, Sha256};

use crate::config::KeyPart;
use crate::digest::Digest;
use crate::headers::names;
use crate::host::Headers;

/// Entries of another version of the plugin are never read as this one's: the version is part of
/// every digest (and of the slots' names).
pub const DOMAIN: &str = concat!("http_auth_random.cache.", env!("CARGO_PKG_VERSION"), ".v1");

/// Whether every header the key names is in the request. A request missing one is neither
/// cached nor coalesced unless the configuration asks for it: anonymous requests would share one
/// key, and one of them could fill it with a verdict the auth service gave on other grounds.
pub fn complete(parts: &[KeyPart], request: &Headers) -> bool {
    missing(parts, request).is_none()
}

/// The first header the key names that the request lacks.
pub fn missing<'a>(parts: &'a [KeyPart], request: &Headers) -> Option<&'a str> {
    parts
        .iter()
        .map(KeyPart::header_name)
        .find(|name| !request.iter().any(|(n, _)| names(n, name)))
}

/// A key's digest extended with the body of the check it stands for.
pub fn with_evaluation(digest: &Digest, evaluation: &[u8]) -> Digest {
    let mut hash = Sha256::new();
    hash.update(digest);
    hash.update(evaluation);
    hash.finalize().into()
}

/// The digest of a request's key. A missing header and an empty one differ, and so do one value
/// and the same bytes split over two headers, and a header spelled with underscores.
pub fn digest(fingerprint: &Digest, parts: &[KeyPart], request: &Headers) -> Digest {
    let mut hash = Sha256::new();
    hash.update(DOMAIN.as_bytes());
    hash.update([0u8]);
    hash.update(fingerprint);
    for part in parts {
        let name = part.header_name();
        for (header, value) in request.iter().filter(|(n, _)| names(n, name)) {
            // The spelling is part of the key: `x_api_key` and `x-api-key` are not one value.
            hash.update(
                u64::try_from(header.len())
                    .unwrap_or(u64::MAX)
                    .to_le_bytes(),
            );
            hash.update(header.as_bytes());
            let value = match part {
                KeyPart::PathWithoutQuery => value.split(|b| *b == b'?').next().unwrap_or_default(),
                _ => value.as_slice(),
            };
            hash.update([1u8]);
            hash.update(u64::try_from(value.len()).unwrap_or(u64::MAX).to_le_bytes());
            hash.update(value);
        }
        // The end of this part's values: a missing header is just this.
        hash.update([0u8]);
    }
    hash.finalize().into()
}

/// The shared-data slot a digest lives in.
pub fn slot(digest: &Digest, slots: u32) -> u32 {
    let mut first = [0u8; 8];
    first.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    let slots = u64::from(slots.max(1));
    u32::try_from(u64::from_le_bytes(first) % slots).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn request(pairs: &[(&str, &[u8])]) -> Headers {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_vec()))
            .collect()
    }

    const FP: Digest = [7; 32];

    fn key(parts: &[&str], pairs: &[(&str, &[u8])]) -> Digest {
        let parts: Vec<KeyPart> = parts.iter().map(|p| KeyPart::parse(p).unwrap()).collect();
        digest(&FP, &parts, &request(pairs))
    }

    #[test]
    fn a_missing_header_is_its_own_key_not_a_wildcard() {
        let missing = key(&["authorization"], &[]);
        let empty = key(&["authorization"], &[("authorization", b"")]);
        let token = key(&["authorization"], &[("authorization", b"Bearer a")]);
        assert_ne!(missing, empty);
        assert_ne!(missing, token);
        assert_ne!(empty, token);
    }

    #[test]
    fn values_cannot_be_shifted_between_parts_or_headers() {
        assert_ne!(
            key(&["a", "b"], &[("a", b"xy"), ("b", b"")]),
            key(&["a", "b"], &[("a", b"x"), ("b", b"y")])
        );
        assert_ne!(
            key(&["cookie"], &[("cookie", b"a=1; b=2")]),
            key(&["cookie"], &[("cookie", b"a=1"), ("cookie", b"b=2")])
        );
    }

    #[test]
    fn the_path_without_query_ignores_only_the_query() {
        let a = key(&[":path_without_query"], &[(":path", b"/a?x=1")]);
        assert_eq!(a, key(&[":path_without_query"], &[(":path", b"/a?x=2")]));
        assert_ne!(a, key(&[":path_without_query"], &[(":path", b"/b?x=1")]));
        assert_ne!(
            key(&[":path"], &[(":path", b"/a?x=1")]),
            key(&[":path"], &[(":path", b"/a?x=2")])
        );
    }

    #[test]
    fn another_configuration_gives_another_key() {
        let parts = [KeyPart::Method];
        let req = request(&[(":method", b"GET")]);
        assert_ne!(
            digest(&[1; 32], &parts, &req),
            digest(&[2; 32], &parts, &req)
        );
        use crate::digest::fingerprint;
        assert_ne!(fingerprint(b"{}"), fingerprint(b"{ }"));
    }

    #[test]
    fn underscore_spellings_count_in_the_key_and_host_is_the_authority() {
        assert_ne!(
            key(&["x-api-key"], &[("x-api-key", b"a")]),
            key(&["x-api-key"], &[("x-api-key", b"a"), ("x_api_key", b"m")])
        );
        assert_ne!(
            key(&["x-api-key"], &[("x-api-key", b"a")]),
            key(&["x-api-key"], &[("x_api_key", b"a")])
        );
        assert_eq!(KeyPart::parse("host"), Some(KeyPart::Authority));
    }

    #[test]
    fn a_key_is_complete_only_with_every_header_it_names() {
        let parts: Vec<KeyPart> = ["authorization", ":path"]
            .iter()
            .map(|p| KeyPart::parse(p).unwrap())
            .collect();
        assert!(complete(
            &parts,
            &request(&[(":path", b"/"), ("authorization", b"")])
        ));
        assert!(!complete(&parts, &request(&[(":path", b"/")])));
        assert!(!complete(
            &parts,
            &request(&[(":path", b"/"), ("Authorization_", b"")])
        ));
        // A CONNECT has no :path.
        assert!(!complete(&parts, &request(&[("authorization", b"x")])));
    }

    #[test]
    fn unknown_pseudo_headers_are_not_key_parts() {
        assert_eq!(KeyPart::parse(":scheme"), None);
        assert_eq!(
            KeyPart::parse("cookie"),
            Some(KeyPart::Header("cookie".into()))
        );
    }

    proptest! {
        #[test]
        fn different_values_give_different_keys(a in prop::collection::vec(any::<u8>(), 0..16), b in prop::collection::vec(any::<u8>(), 0..16)) {
            prop_assume!(a != b);
            prop_assert_ne!(key(&["x-api-key"], &[("x-api-key", &a)]), key(&["x-api-key"], &[("x-api-key", &b)]));
        }

        #[test]
        fn slots_are_in_range(digest in any::<[u8; 32]>(), slots in 0u32..5000) {
            prop_assert!(slot(&digest, slots) < slots.max(1));
        }
    }
}
