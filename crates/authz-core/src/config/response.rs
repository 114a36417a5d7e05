//! Which auth-answer headers travel where: onto the request (set or appended), onto the
//! client's response on allow, and into a deny; and which client headers are forged copies.

use super::fields::name_set;
use super::json::{Item, Object};
use super::validate::{Checked, ConfigError};
use crate::headers::{is_hop_by_hop, is_reserved};
use crate::matcher::{NameMatcher, NameSet};

/// Headers ext_authz always relays on a deny when `allowed_client_headers` is set.
pub const ALWAYS_TO_CLIENT: [&str; 2] = ["www-authenticate", "location"];

/// Which auth-response headers travel where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHeaders {
    pub upstream: NameSet,
    /// The names in `upstream` and `upstream_append`, with `_` read as `-`: a client header is a
    /// forged copy when its dashed name matches this.
    pub trusted_dashed: NameSet,
    pub upstream_append: NameSet,
    pub strip_client_copies: bool,
    /// `None`: every header except hop-by-hop ones.
    pub client: Option<NameSet>,
    pub client_on_success: NameSet,
    /// Answer headers written as dynamic metadata (`dynamic_metadata_from_headers`).
    pub metadata_from: NameSet,
    /// Request headers an AuthZEN evaluation reads (the subject's, as an earlier filter sets
    /// them): a client's `_` spelling of one is forged, since CGI-style upstreams read it as
    /// the same header, though the filter does not.
    pub underscored: NameSet,
}

impl ResponseHeaders {
    pub fn new(
        upstream: NameSet,
        upstream_append: NameSet,
        strip_client_copies: bool,
        client: Option<NameSet>,
        client_on_success: NameSet,
    ) -> Self {
        let mut trusted = upstream.clone();
        trusted.extend(&upstream_append);
        ResponseHeaders {
            metadata_from: NameSet::default(),
            underscored: NameSet::default(),
            trusted_dashed: trusted.with_dashes(),
            upstream,
            upstream_append,
            strip_client_copies,
            client,
            client_on_success,
        }
    }

    /// Treats `name` as one the auth service sets (from its answer's body): the client's own
    /// copies are removed as forged.
    pub fn trust(&mut self, name: &str) {
        self.trusted_dashed
            .insert(crate::matcher::NameMatcher::Exact(name.replace('_', "-")));
    }

    /// Whether an auth-answer header replaces the request's on allow.
    pub fn sets_upstream(&self, name: &str) -> bool {
        !is_reserved(name) && self.upstream.matches(name)
    }

    /// Whether an auth-answer header is appended to the request on allow.
    pub fn appends_upstream(&self, name: &str) -> bool {
        !is_reserved(name) && self.upstream_append.matches(name)
    }

    /// Whether an auth-answer header goes on the client's response on allow.
    pub fn to_client_on_success(&self, name: &str) -> bool {
        !is_reserved(name) && !is_hop_by_hop(name) && self.client_on_success.matches(name)
    }

    /// Whether a client's request header or trailer is a copy of one the auth service is trusted
    /// to set or append to: the same name, or the same once each `_` reads as `-`. (A client copy
    /// of an appended header would come first, where most frameworks read.)
    pub fn is_spoofed(&self, name: &str) -> bool {
        if name.as_bytes().contains(&b'_') {
            let dashed = name.replace('_', "-");
            self.trusted_dashed.matches(&dashed) || self.underscored.matches(&dashed)
        } else {
            self.trusted_dashed.matches(name)
        }
    }

    /// Whether an auth-answer header goes to the client when the request is denied.
    pub fn to_client_on_deny(&self, name: &str) -> bool {
        if name.starts_with(':') || is_hop_by_hop(name) {
            return false;
        }
        match &self.client {
            None => true,
            Some(set) => set.matches(name),
        }
    }

    /// Whether the client's own copies of trusted headers must be removed from each request.
    pub fn strips_client_copies(&self) -> bool {
        self.strip_client_copies && !(self.trusted_dashed.is_empty() && self.underscored.is_empty())
    }

    /// Whether an allowed request needs all of the auth answer's headers (otherwise only
    /// `x-envoy-auth-headers-to-remove` is read).
    pub fn used_on_allow(&self) -> bool {
        !(self.upstream.is_empty()
            && self.upstream_append.is_empty()
            && self.client_on_success.is_empty())
    }
}

/// Reads the header lists from the configuration's root.
pub fn parse(root: &Object) -> Checked<ResponseHeaders> {
    let mut headers = ResponseHeaders::new(
        response_set(root, "allowed_upstream_headers")?,
        response_set(root, "allowed_upstream_headers_to_append")?,
        root.bool("strip_client_upstream_headers")?.unwrap_or(true),
        root.list("allowed_client_headers")?
            .map(|list| {
                let mut set = response_names(list)?;
                for name in ALWAYS_TO_CLIENT {
                    set.insert(NameMatcher::Exact(name.to_owned()));
                }
                Ok(set)
            })
            .transpose()?,
        response_set(root, "allowed_client_headers_on_success")?,
    );
    headers.metadata_from = root
        .list("dynamic_metadata_from_headers")?
        .map_or(Ok(NameSet::default()), name_set)?;
    Ok(headers)
}

/// A list of auth-answer headers to pass on. Pseudo-headers and `host` are refused: set on the
/// request they would reroute or break it (a `:path` from the auth service sends every request
/// to the wrong place).
fn response_set(root: &Object, key: &str) -> Checked<NameSet> {
    root.list(key)?
        .map_or(Ok(NameSet::default()), response_names)
}

fn response_names(list: Vec<Item>) -> Checked<NameSet> {
    for item in &list {
        let object = item.object(&["exact", "prefix", "suffix", "contains", "ignore_case"])?;
        if let Some(name) = object.string("exact")? {
            if name.starts_with(':') || name.eq_ignore_ascii_case("host") {
                return Err(ConfigError::new(
                    object.field("exact"),
                    format!("\"{name}\" cannot be taken from the auth answer: pseudo-headers and host are never passed on"),
                ));
            }
        }
    }
    name_set(list)
}
