//! The header-map wire format of proxy-wasm: a count, then each name's and value's length, then
//! each name and value followed by a NUL. Decoding checks every length against the buffer.

/// A header map from the host that does not follow the format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairsError(pub &'static str);

impl std::fmt::Display for PairsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed header map from the host: {}", self.0)
    }
}

/// Serializes header pairs for the host. Lengths are u32 on the wire; header sizes are far
/// below that, and a longer value is refused rather than cut.
pub fn encode_pairs<N: AsRef<[u8]>, V: AsRef<[u8]>>(
    pairs: &[(N, V)],
) -> Result<Vec<u8>, PairsError> {
    let too_long = || PairsError("a name or value is longer than 4 GiB");
    let payload: usize = pairs
        .iter()
        .map(|(n, v)| n.as_ref().len() + v.as_ref().len() + 10)
        .sum();
    let mut out = Vec::with_capacity(4 + payload);
    let count = u32::try_from(pairs.len()).map_err(|_| too_long())?;
    out.extend_from_slice(&count.to_le_bytes());
    for (name, value) in pairs {
        let name = u32::try_from(name.as_ref().len()).map_err(|_| too_long())?;
        let value = u32::try_from(value.as_ref().len()).map_err(|_| too_long())?;
        out.extend_from_slice(&name.to_le_bytes());
        out.extend_from_slice(&value.to_le_bytes());
    }
    for (name, value) in pairs {
        out.extend_from_slice(name.as_ref());
        out.push(0);
        out.extend_from_slice(value.as_ref());
        out.push(0);
    }
    Ok(out)
}

/// Parses a host header map. Names must be UTF-8 (Envoy's codecs only admit token characters);
/// values stay bytes.
pub fn decode_pairs(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, PairsError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let count = read_u32(bytes, 0).ok_or(PairsError("no count"))?;
    let count = usize::try_from(count).map_err(|_| PairsError("count too large"))?;
    let sizes_end = count
        .checked_mul(8)
        .and_then(|n| n.checked_add(4))
        .filter(|end| *end <= bytes.len())
        .ok_or(PairsError("more pairs than the buffer holds"))?;
    let mut pairs = Vec::with_capacity(count);
    let mut at = sizes_end;
    for index in 0..count {
        let sizes = 4 + index * 8;
        let name_len = read_len(bytes, sizes)?;
        let value_len = read_len(bytes, sizes + 4)?;
        let name = field(bytes, &mut at, name_len)?;
        let value = field(bytes, &mut at, value_len)?;
        let name = std::str::from_utf8(name).map_err(|_| PairsError("a name is not UTF-8"))?;
        pairs.push((name.to_owned(), value.to_vec()));
    }
    Ok(pairs)
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let word = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(word.try_into().ok()?))
}

fn read_len(bytes: &[u8], at: usize) -> Result<usize, PairsError> {
    read_u32(bytes, at)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or(PairsError("a length is missing"))
}

/// One NUL-terminated field at `*at`, advancing past its terminator.
fn field<'a>(bytes: &'a [u8], at: &mut usize, len: usize) -> Result<&'a [u8], PairsError> {
    let end = at
        .checked_add(len)
        .ok_or(PairsError("a length overflows"))?;
    let data = bytes
        .get(*at..end)
        .ok_or(PairsError("a field runs past the buffer"))?;
    if bytes.get(end) != Some(&0) {
        return Err(PairsError("a field is not NUL-terminated"));
    }
    *at = end + 1;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Vec<(String, Vec<u8>)> {
        vec![
            (":path".to_owned(), b"/uuid".to_vec()),
            ("x-empty".to_owned(), Vec::new()),
            ("x-bin".to_owned(), vec![0xff, 0x00, 0x7f]),
        ]
    }

    #[test]
    fn encodes_the_documented_layout() {
        let bytes = encode_pairs(&[("a", "bc")]).unwrap();
        assert_eq!(
            bytes,
            [1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, b'a', 0, b'b', b'c', 0]
        );
    }

    #[test]
    fn round_trips_values_with_any_bytes() {
        let pairs = sample();
        assert_eq!(decode_pairs(&encode_pairs(&pairs).unwrap()), Ok(pairs));
        assert_eq!(decode_pairs(&[]), Ok(Vec::new()));
    }

    #[test]
    fn malformed_maps_are_errors() {
        let good = encode_pairs(&sample()).unwrap();
        // Cut anywhere: an error, never a panic or a partial map.
        for cut in 1..good.len() {
            assert!(decode_pairs(&good[..cut]).is_err(), "cut at {cut}");
        }
        // A count that the buffer cannot hold.
        assert!(decode_pairs(&[0xff, 0xff, 0xff, 0xff]).is_err());
        // A missing terminator.
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] = b'x';
        assert!(decode_pairs(&bad).is_err());
        // A name that is not UTF-8.
        let bad = encode_pairs(&[(vec![0xffu8], b"v".to_vec())]).unwrap();
        assert_eq!(decode_pairs(&bad), Err(PairsError("a name is not UTF-8")));
    }

    proptest! {
        #[test]
        fn any_bytes_decode_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_pairs(&bytes);
        }

        #[test]
        fn any_pairs_round_trip(pairs in prop::collection::vec(("[a-z:-]{0,8}", prop::collection::vec(any::<u8>(), 0..8)), 0..6)) {
            let bytes = encode_pairs(&pairs).unwrap();
            prop_assert_eq!(decode_pairs(&bytes), Ok(pairs));
        }
    }
}
