//! Header-name matchers (ext_authz's `StringMatcher` subset) compiled once into a lookup set.

/// One way a header name can match. Names are compared lowercased, as Envoy stores them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameMatcher {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
}

/// A set of matchers with the exact names sorted, so the common case is one binary search.
/// (A sorted `Vec` instead of a `HashSet` keeps hashing and its random seed out of the wasm.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameSet {
    exact: Vec<String>,
    patterns: Vec<NameMatcher>,
}

impl NameSet {
    pub fn new(matchers: impl IntoIterator<Item = NameMatcher>) -> Self {
        let mut set = NameSet::default();
        for matcher in matchers {
            set.insert(matcher);
        }
        set
    }

    pub fn insert(&mut self, matcher: NameMatcher) {
        match matcher {
            NameMatcher::Exact(name) => {
                if let Err(at) = self.exact.binary_search(&name) {
                    self.exact.insert(at, name);
                }
            }
            pattern => {
                if !self.patterns.contains(&pattern) {
                    self.patterns.push(pattern);
                }
            }
        }
    }

    /// Adds every matcher of `other`.
    pub fn extend(&mut self, other: &NameSet) {
        for name in &other.exact {
            self.insert(NameMatcher::Exact(name.clone()));
        }
        for pattern in &other.patterns {
            self.insert(pattern.clone());
        }
    }

    /// The same set with every `_` read as `-`, for matching names the way CGI-style upstreams
    /// read them (`x_user_id` and `x-user-id` become the same variable).
    pub fn with_dashes(&self) -> NameSet {
        let dash = |s: &String| s.replace('_', "-");
        NameSet::new(
            self.exact
                .iter()
                .map(|name| NameMatcher::Exact(dash(name)))
                .chain(self.patterns.iter().map(|pattern| match pattern {
                    NameMatcher::Exact(s) => NameMatcher::Exact(dash(s)),
                    NameMatcher::Prefix(s) => NameMatcher::Prefix(dash(s)),
                    NameMatcher::Suffix(s) => NameMatcher::Suffix(dash(s)),
                    NameMatcher::Contains(s) => NameMatcher::Contains(dash(s)),
                })),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.patterns.is_empty()
    }

    /// `name` must already be lowercase (Envoy hands header names over lowercased).
    pub fn matches(&self, name: &str) -> bool {
        self.exact
            .binary_search_by(|e| e.as_str().cmp(name))
            .is_ok()
            || self.patterns.iter().any(|pattern| match pattern {
                NameMatcher::Exact(exact) => exact == name,
                NameMatcher::Prefix(prefix) => name.starts_with(prefix.as_str()),
                NameMatcher::Suffix(suffix) => name.ends_with(suffix.as_str()),
                NameMatcher::Contains(part) => contains(name.as_bytes(), part.as_bytes()),
            })
    }
}

/// Substring search by windows: header names are short, and `str::contains` brings a two-way
/// searcher into the wasm that costs more than it saves here.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> NameSet {
        NameSet::new([
            NameMatcher::Exact("x-user".into()),
            NameMatcher::Prefix("x-auth-".into()),
            NameMatcher::Suffix("-token".into()),
            NameMatcher::Contains("tenant".into()),
        ])
    }

    #[test]
    fn each_kind_matches_its_own_shape() {
        let set = set();
        assert!(set.matches("x-user"));
        assert!(set.matches("x-auth-scope"));
        assert!(set.matches("refresh-token"));
        assert!(set.matches("x-tenant-id"));
    }

    #[test]
    fn near_misses_do_not_match() {
        let set = set();
        assert!(!set.matches("x-users"));
        assert!(!set.matches("x-auth"));
        assert!(!set.matches("token-refresh"));
        assert!(!set.matches("cookie"));
    }

    #[test]
    fn with_dashes_reads_underscores_as_dashes() {
        let set = NameSet::new([
            NameMatcher::Exact("x_user".into()),
            NameMatcher::Prefix("x_auth_".into()),
        ])
        .with_dashes();
        assert!(set.matches("x-user"));
        assert!(set.matches("x-auth-scope"));
        assert!(!set.matches("x_user"), "names are dashed before matching");
    }

    #[test]
    fn empty_set_matches_nothing() {
        let set = NameSet::default();
        assert!(set.is_empty());
        assert!(!set.matches(""));
        assert!(!set.matches("x-user"));
    }
}
