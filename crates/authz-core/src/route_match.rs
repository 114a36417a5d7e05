//! Which `routes` rule a request falls under: each rule's conditions on what Envoy knows of the
//! request, first match wins. A path that could be read two ways selects a rule only if every
//! reading selects the same one, so that a path trick never reaches a more permissive rule.

use crate::paths::is_plain;

/// A rule's conditions; every one given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteMatch {
    /// Envoy's route name (`xds.route_name`).
    pub route_name: Option<String>,
    /// Envoy's virtual host name (`xds.virtual_host_name`).
    pub virtual_host: Option<String>,
    /// A host, compared as [`host_of`] reads a request's `:authority`.
    pub authority: Option<String>,
    pub path: Option<PathCondition>,
    /// Upper case; compared without regard to case.
    pub methods: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathCondition {
    Exact(String),
    Prefix(String),
}

/// What a request brings to rule selection. Envoy's names are `None` when no rule asks for them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    pub route_name: Option<&'a str>,
    pub virtual_host: Option<&'a str>,
    pub authority: Option<&'a str>,
    pub path: Option<&'a str>,
    pub method: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// This rule (an index into the list).
    Rule(usize),
    /// No rule: the filter's own settings.
    Default,
    /// The path's readings select different rules: the request is refused.
    Ambiguous,
}

impl RouteMatch {
    /// `fold_case`: the path compared without regard to ASCII case, as a case-insensitive
    /// server (Express by default, IIS, ASP.NET) reads it.
    fn matches(&self, facts: &Facts, path: Option<&str>, fold_case: bool) -> bool {
        let same = |wanted: &Option<String>, got: Option<&str>| {
            wanted.as_deref().is_none_or(|wanted| got == Some(wanted))
        };
        let starts = |path: &str, prefix: &str| {
            path.get(..prefix.len()).is_some_and(|head| {
                head == prefix || (fold_case && head.eq_ignore_ascii_case(prefix))
            })
        };
        same(&self.route_name, facts.route_name)
            && same(&self.virtual_host, facts.virtual_host)
            && self.authority.as_deref().is_none_or(|wanted| {
                facts
                    .authority
                    .is_some_and(|got| got.eq_ignore_ascii_case(wanted))
            })
            && (self.methods.is_empty()
                || facts.method.is_some_and(|method| {
                    self.methods.iter().any(|m| m.eq_ignore_ascii_case(method))
                }))
            && match (&self.path, path) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(PathCondition::Exact(exact)), Some(path)) => {
                    path.len() == exact.len() && starts(path, exact)
                }
                (Some(PathCondition::Prefix(prefix)), Some(path)) => starts(path, prefix),
            }
    }
}

/// Whether any rule needs Envoy's route or virtual host name (a host call each).
pub fn needs<'r>(rules: impl Iterator<Item = &'r RouteMatch> + Clone) -> (bool, bool) {
    (
        rules.clone().any(|r| r.route_name.is_some()),
        rules.clone().any(|r| r.virtual_host.is_some()),
    )
}

/// The first rule the request matches. Methods and hosts are compared without regard to case
/// (as Envoy picks a virtual host; a server that upper-cases methods reads `delete` as DELETE).
/// The path is read the ways servers read it — as sent, percent-decoded, with dot segments
/// and parameters resolved, and without regard to case — and every reading must select the
/// same rule.
pub fn select<'r>(rules: impl Iterator<Item = &'r RouteMatch> + Clone, facts: &Facts) -> Selection {
    let first = |path: Option<&str>, fold_case: bool| {
        rules
            .clone()
            .position(|rule| rule.matches(facts, path, fold_case))
            .map_or(Selection::Default, Selection::Rule)
    };
    let Some(path) = facts.path else {
        return first(None, false);
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let chosen = first(Some(path), false);
    let uses_paths = rules.clone().any(|rule| rule.path.is_some());
    if !uses_paths {
        return chosen;
    }
    let agree = |reading: &str| {
        first(Some(reading), false) == chosen && first(Some(reading), true) == chosen
    };
    if is_plain(path) {
        return if agree(path) {
            chosen
        } else {
            Selection::Ambiguous
        };
    }
    let decoded = decode(path);
    let readings = [normalize(path), normalize(&decoded), decoded];
    if agree(path) && readings.iter().all(|reading| agree(reading)) {
        chosen
    } else {
        Selection::Ambiguous
    }
}

/// An `:authority` as a rule's `authority` is written: lower case, as Envoy compares a virtual
/// host's domains (port and trailing dot kept: Envoy keeps them too, by default).
pub fn host_of(authority: &str) -> String {
    authority.to_ascii_lowercase()
}

/// The path with percent-encoding decoded and `\` read as `/`, as some servers read it.
fn decode(path: &str) -> String {
    // Decoded first: an encoded backslash (`%5C`) is a backslash to the servers that read
    // one as `/`.
    percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .replace('\\', "/")
}

/// A decoded path as the most lenient server resolves it: path parameters (`;jsessionid=…`,
/// `..;`) dropped from each segment, empty and `.` segments gone, `..` taking one back.
fn normalize(decoded: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        let segment = segment.split(';').next().unwrap_or_default();
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            kept => segments.push(kept),
        }
    }
    let mut path = String::with_capacity(decoded.len());
    for segment in &segments {
        path.push('/');
        path.push_str(segment);
    }
    // A trailing slash is kept: `/admin/` and `/admin` are different paths to a prefix rule.
    if path.is_empty()
        || decoded.ends_with('/')
        || decoded.ends_with("/.")
        || decoded.ends_with("/..")
    {
        path.push('/');
    }
    path
}

#[cfg(test)]
mod tests;
