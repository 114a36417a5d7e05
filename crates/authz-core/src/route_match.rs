//! Which `routes` rule a request falls under: each rule's conditions on what Envoy knows of the
//! request, first match wins. A path that could be read two ways selects a rule only if every
//! reading selects the same one, so that a path trick never reaches a more permissive rule.

use std::borrow::Cow;

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
    fn matches(&self, facts: &Facts, host: Option<&str>, path: Option<&str>) -> bool {
        let same = |wanted: &Option<String>, got: Option<&str>| {
            wanted.as_deref().is_none_or(|wanted| got == Some(wanted))
        };
        same(&self.route_name, facts.route_name)
            && same(&self.virtual_host, facts.virtual_host)
            && same(&self.authority, host)
            && (self.methods.is_empty()
                || facts.method.is_some_and(|method| {
                    self.methods.iter().any(|m| m.eq_ignore_ascii_case(method))
                }))
            && match (&self.path, path) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(PathCondition::Exact(exact)), Some(path)) => path == exact,
                (Some(PathCondition::Prefix(prefix)), Some(path)) => {
                    path.starts_with(prefix.as_str())
                }
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

/// The first rule the request matches. Methods are compared without regard to case: a
/// server that upper-cases methods reads `delete` as DELETE, which must not miss DELETE's rule.
pub fn select<'r>(rules: impl Iterator<Item = &'r RouteMatch> + Clone, facts: &Facts) -> Selection {
    let host = facts.authority.map(host_of);
    let host = host.as_deref();
    let first = |path: Option<&str>| {
        rules
            .clone()
            .position(|rule| rule.matches(facts, host, path))
            .map_or(Selection::Default, Selection::Rule)
    };
    let Some(path) = facts.path else {
        return first(None);
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let chosen = first(Some(path));
    if is_plain(path) {
        return chosen;
    }
    let decoded = decode(path);
    let normalized = normalize(&decoded);
    if first(Some(&decoded)) == chosen && first(Some(&normalized)) == chosen {
        chosen
    } else {
        Selection::Ambiguous
    }
}

/// The host an `:authority` names, as a rule's `authority` is written: lower case, without a
/// port or a trailing dot (`API.example.com.:443` is `api.example.com`).
pub fn host_of(authority: &str) -> Cow<'_, str> {
    let host = match authority.strip_prefix('[') {
        // An IPv6 literal: the port, if any, follows the bracket.
        Some(rest) => rest.split_once(']').map_or(authority, |(inner, _)| {
            authority.get(..inner.len() + 2).unwrap_or(authority)
        }),
        None => match authority.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => authority,
        },
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

/// The path with percent-encoding decoded and `\` read as `/`, as some servers read it.
fn decode(path: &str) -> String {
    let plain = path.replace('\\', "/");
    percent_encoding::percent_decode_str(&plain)
        .decode_utf8_lossy()
        .into_owned()
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
