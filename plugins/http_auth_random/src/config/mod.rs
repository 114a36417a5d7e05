//! The plugin's configuration: JSON in, validated typed structs with precomputed lookups out.

mod raw;
mod validate;

use std::collections::HashSet;
use std::time::Duration;

use crate::matcher::{NameMatcher, NameSet};
use raw::{RawConfig, RawDecision, RawHeader, RawMatcher};
pub use raw::{DEFAULT_CLUSTER, DEFAULT_TIMEOUT_MS};
use validate::Checked;
pub use validate::ConfigError;

/// The longest auth call timeout accepted. Envoy takes milliseconds as u32, and an auth call
/// longer than an hour is a misconfiguration rather than a policy.
pub const MAX_TIMEOUT_MS: u64 = 3_600_000;
/// The largest auth answer body the plugin will read.
pub const MAX_RESPONSE_BODY_LIMIT: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The seed's rule: an even FNV-1a hash of the answer's body allows.
    FnvParity,
    /// ext_authz's HTTP rule: 200 allows, any other status denies with the service's answer.
    Status,
}

/// Which request headers go to the auth service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forward {
    /// Every request header, pseudo-headers included, as the seed did.
    All,
    /// Only these, plus the ones ext_authz always sends.
    Allowlist(NameSet),
}

/// Headers ext_authz always sends to an HTTP auth service, whatever the allowlist says.
pub const ALWAYS_FORWARDED: [&str; 6] = [
    ":authority",
    ":method",
    ":path",
    "host",
    "content-length",
    "authorization",
];

/// The `:path` sent to the auth service, worked out once from `path` and `path_prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathRule {
    /// The client's own path.
    Client,
    /// The client's path behind a prefix.
    Prefixed(String),
    /// Always this path (prefix included).
    Fixed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    pub cluster: String,
    pub timeout: Duration,
    pub path: PathRule,
    pub authority: Option<String>,
    pub method: Option<String>,
    pub forward: Forward,
    pub headers_to_add: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailurePolicy {
    pub allow: bool,
    pub add_header: bool,
    pub status_on_error: u16,
}

/// A response the plugin sends itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Which auth-response headers travel where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHeaders {
    pub upstream: NameSet,
    pub upstream_append: NameSet,
    pub strip_client_copies: bool,
    /// `None`: every header except hop-by-hop ones.
    pub client: Option<NameSet>,
    pub client_on_success: NameSet,
}

/// Headers that describe one connection or one message's framing, never relayed from the auth
/// answer to the client: the local reply has its own.
pub const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "content-length",
    "host",
];

/// Headers ext_authz always relays on a deny when `allowed_client_headers` is set.
pub const ALWAYS_TO_CLIENT: [&str; 2] = ["www-authenticate", "location"];

impl ResponseHeaders {
    /// Whether an auth-answer header goes to the client when the request is denied.
    pub fn to_client_on_deny(&self, name: &str) -> bool {
        if name.starts_with(':') || HOP_BY_HOP.contains(&name) {
            return false;
        }
        match &self.client {
            None => true,
            Some(set) => set.matches(name),
        }
    }

    /// Whether an allowed request needs the auth answer's headers at all.
    pub fn used_on_allow(&self) -> bool {
        !(self.upstream.is_empty()
            && self.upstream_append.is_empty()
            && self.client_on_success.is_empty())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exemptions {
    pub paths: HashSet<String>,
    pub path_prefixes: Vec<String>,
    pub methods: HashSet<String>,
}

impl Exemptions {
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty() && self.path_prefixes.is_empty() && self.methods.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub rule: Rule,
    pub auth_request: AuthRequest,
    pub failure: FailurePolicy,
    pub deny: LocalReply,
    pub response: ResponseHeaders,
    pub exempt: Exemptions,
    pub stat_prefix: String,
    pub max_response_body_bytes: usize,
    #[cfg(feature = "trap-switch")]
    pub trap_on_request: bool,
}

impl Config {
    /// Parses the plugin configuration. No bytes, or only whitespace, means the seed's defaults.
    pub fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            None => return Config::from_raw(RawConfig::default()),
            Some(b'{') => {}
            // serde would also read a struct from a JSON array, by position.
            Some(_) => return Err(ConfigError::new("configuration", "must be a JSON object")),
        }
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let raw: RawConfig =
            serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
                let path = err.path().to_string();
                let field = if path == "." {
                    "configuration".to_owned()
                } else {
                    path
                };
                ConfigError::new(field, err.inner().to_string())
            })?;
        deserializer
            .end()
            .map_err(|err| ConfigError::new("configuration", err.to_string()))?;
        Config::from_raw(raw)
    }

    fn from_raw(raw: RawConfig) -> Checked<Config> {
        let timeout_ms = validate::in_range("timeout_ms", raw.timeout_ms, 1, MAX_TIMEOUT_MS, "ms")?;
        let forward = match raw.allowed_headers {
            None => Forward::All,
            Some(list) => {
                let mut set = name_set("allowed_headers", list)?;
                for name in ALWAYS_FORWARDED {
                    set.insert(NameMatcher::Exact(name.to_owned()));
                }
                Forward::Allowlist(set)
            }
        };
        let auth_request = AuthRequest {
            cluster: validate::cluster("cluster", &raw.cluster)?,
            timeout: Duration::from_millis(timeout_ms),
            path: path_rule(raw.path.as_deref(), &raw.path_prefix)?,
            authority: raw
                .authority
                .map(|a| validate::authority("authority", &a))
                .transpose()?,
            method: raw
                .method
                .map(|m| validate::method("method", &m))
                .transpose()?,
            forward,
            headers_to_add: headers("headers_to_add", raw.headers_to_add)?,
        };
        let failure = FailurePolicy {
            allow: raw.failure_mode_allow,
            add_header: raw.failure_mode_allow_header_add,
            status_on_error: validate::status("status_on_error", raw.status_on_error)?,
        };
        let deny = LocalReply {
            status: validate::status("deny.status", raw.deny.status)?,
            headers: headers("deny.headers", raw.deny.headers)?,
            body: raw.deny.body,
        };
        let response = ResponseHeaders {
            upstream: name_set("allowed_upstream_headers", raw.allowed_upstream_headers)?,
            upstream_append: name_set(
                "allowed_upstream_headers_to_append",
                raw.allowed_upstream_headers_to_append,
            )?,
            strip_client_copies: raw.strip_client_upstream_headers,
            client: raw
                .allowed_client_headers
                .map(|list| {
                    let mut set = name_set("allowed_client_headers", list)?;
                    for name in ALWAYS_TO_CLIENT {
                        set.insert(NameMatcher::Exact(name.to_owned()));
                    }
                    Ok(set)
                })
                .transpose()?,
            client_on_success: name_set(
                "allowed_client_headers_on_success",
                raw.allowed_client_headers_on_success,
            )?,
        };
        let exempt = Exemptions {
            paths: enumerate("exempt.paths", raw.exempt.paths, validate::path)?,
            path_prefixes: enumerate(
                "exempt.path_prefixes",
                raw.exempt.path_prefixes,
                validate::path,
            )?,
            methods: enumerate("exempt.methods", raw.exempt.methods, validate::method)?,
        };
        let max_body = validate::in_range(
            "max_response_body_bytes",
            raw.max_response_body_bytes,
            0,
            MAX_RESPONSE_BODY_LIMIT,
            "bytes",
        )?;
        Ok(Config {
            rule: match raw.decision {
                RawDecision::FnvParity => Rule::FnvParity,
                RawDecision::Status => Rule::Status,
            },
            auth_request,
            failure,
            deny,
            response,
            exempt,
            stat_prefix: validate::stat_prefix("stat_prefix", &raw.stat_prefix)?,
            max_response_body_bytes: usize::try_from(max_body).unwrap_or(usize::MAX),
            #[cfg(feature = "trap-switch")]
            trap_on_request: raw.trap_on_request,
        })
    }
}

fn path_rule(path: Option<&str>, prefix: &str) -> Checked<PathRule> {
    let prefix = validate::path_prefix("path_prefix", prefix)?;
    Ok(match path {
        Some(path) => PathRule::Fixed(prefix + &validate::path("path", path)?),
        None if prefix.is_empty() => PathRule::Client,
        None => PathRule::Prefixed(prefix),
    })
}

fn headers(field: &str, list: Vec<RawHeader>) -> Checked<Vec<(String, String)>> {
    list.into_iter()
        .enumerate()
        .map(|(i, header)| {
            Ok((
                validate::header_name(&format!("{field}[{i}].key"), &header.key)?,
                validate::header_value(&format!("{field}[{i}].value"), &header.value)?,
            ))
        })
        .collect()
}

fn name_set(field: &str, list: Vec<RawMatcher>) -> Checked<NameSet> {
    let mut set = NameSet::default();
    for (i, raw) in list.into_iter().enumerate() {
        set.insert(matcher(&format!("{field}[{i}]"), raw)?);
    }
    Ok(set)
}

fn matcher(field: &str, raw: RawMatcher) -> Checked<NameMatcher> {
    let kinds = [
        (
            "exact",
            raw.exact,
            NameMatcher::Exact as fn(String) -> NameMatcher,
        ),
        ("prefix", raw.prefix, NameMatcher::Prefix),
        ("suffix", raw.suffix, NameMatcher::Suffix),
        ("contains", raw.contains, NameMatcher::Contains),
    ];
    let mut chosen = kinds
        .into_iter()
        .filter_map(|(kind, value, make)| value.map(|v| (kind, v, make)));
    let (kind, value, make) = chosen
        .next()
        .ok_or_else(|| ConfigError::new(field, "needs one of exact, prefix, suffix or contains"))?;
    if chosen.next().is_some() {
        return Err(ConfigError::new(
            field,
            "has more than one of exact, prefix, suffix and contains",
        ));
    }
    let field = format!("{field}.{kind}");
    if value.is_empty() {
        return Err(ConfigError::new(field, "is empty"));
    }
    let value = if value.starts_with(':') && kind == "exact" {
        // Pseudo-headers may be named exactly (e.g. `:path`); they are lowercase already.
        validate::header_name(&field, value.trim_start_matches(':')).map(|n| format!(":{n}"))?
    } else {
        validate::header_name(&field, &value)?
    };
    Ok(make(value))
}

fn enumerate<T>(
    field: &str,
    list: Vec<String>,
    check: fn(&str, &str) -> Checked<String>,
) -> Checked<T>
where
    T: FromIterator<String>,
{
    list.iter()
        .enumerate()
        .map(|(i, value)| check(&format!("{field}[{i}]"), value))
        .collect()
}

#[cfg(test)]
mod tests;
