//! What a request path is made of: whether it has one reading only, whatever server reads it.

use crate::matcher::contains;

/// Whether a path has one reading only: no dot segments, percent-encoding, backslashes, doubled
/// slashes or path parameters.
pub fn is_plain(path: &str) -> bool {
    path.starts_with('/')
        && !path.contains(['%', '\\', ';'])
        && !contains(path.as_bytes(), b"//")
        && !path
            .split('/')
            .any(|segment| segment == "." || segment == "..")
}
