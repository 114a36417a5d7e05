//! The largest check the filter sends: a client must never make the host refuse a call (which
//! would otherwise reach the failure policy), so a check is bounded before it is sent.
//! The bounds are proxy-wasm's header-map limits, applied in every shell alike.

/// The most headers a check carries (proxy-wasm-cpp-host's `PROXY_WASM_HOST_PAIRS_MAX_COUNT`).
pub const MAX_HEADERS: usize = 1024;
/// The most bytes a check's header map takes, serialized (`PROXY_WASM_HOST_PAIRS_MAX_BYTES`).
pub const MAX_BYTES: usize = 1024 * 1024;
/// What one header adds to a serialized map besides its name and value: two lengths and two NULs.
pub const HEADER_OVERHEAD_BYTES: usize = 10;

/// Whether a header map of headers of these (name, value) lengths is within the bounds.
pub fn within(lengths: impl Iterator<Item = (usize, usize)>) -> bool {
    let (count, size) = lengths.fold((0usize, 4usize), |(count, size), (name, value)| {
        (
            count + 1,
            size.saturating_add(name + value + HEADER_OVERHEAD_BYTES),
        )
    });
    count <= MAX_HEADERS && size <= MAX_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lengths(pairs: &[(String, String)]) -> impl Iterator<Item = (usize, usize)> + '_ {
        pairs.iter().map(|(n, v)| (n.len(), v.len()))
    }

    #[test]
    fn the_bounds_are_the_header_count_and_the_serialized_size() {
        let many: Vec<(String, String)> = (0..MAX_HEADERS)
            .map(|i| (format!("h{i}"), String::new()))
            .collect();
        assert!(within(lengths(&many)));
        let mut one_more = many.clone();
        one_more.push(("x".to_owned(), String::new()));
        assert!(!within(lengths(&one_more)));
        // One header that fills the map exactly: a count word, two lengths, two NULs.
        let fill = MAX_BYTES - 4 - HEADER_OVERHEAD_BYTES - 1;
        assert!(within(lengths(&[("a".to_owned(), "v".repeat(fill))])));
        assert!(!within(lengths(&[("a".to_owned(), "v".repeat(fill + 1))])));
    }
}
