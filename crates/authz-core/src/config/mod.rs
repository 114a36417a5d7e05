//! The filter's configuration: JSON in, validated typed structs with precomputed lookups out.
//! Each section lives in its own file with its type, defaults and parsing; this file puts them
//! together and checks how they combine.

mod authzen;
mod body;
mod cache;
mod exempt;
mod fields;
mod json;
mod json_rule;
mod json_value;
mod limits;
mod reply;
mod request;
mod response;
mod route;
mod routes;
mod validate;

pub use authzen::{AuthZen, RequestPart, ResourceId, DEFAULT_AUTHZEN_PATH};
pub use body::{RequestBody, MAX_REQUEST_BODY_LIMIT};
pub use cache::{
    CacheConfig, KeyPart, CACHE_FIELDS, DEFAULT_CACHE_MAX_ENTRIES, DEFAULT_CACHE_MAX_ENTRY_BYTES,
    DEFAULT_CACHE_MAX_TTL_MS, DEFAULT_CACHE_TTL_MS, MAX_CACHE_BYTES, MAX_CACHE_TTL_MS,
};
pub use exempt::Exemptions;
pub use json_rule::{JsonHeader, JsonRule};
pub use json_value::{parse as parse_json, Json, Number};
pub use limits::{
    Limits, DEFAULT_MAX_CALLS_IN_FLIGHT, DEFAULT_MAX_HELD_BYTES, DEFAULT_MAX_ORPHANED_CALLS,
    DEFAULT_MAX_SUCCESS_HEADER_BYTES, MAX_HELD_BYTES_LIMIT, STREAM_COST_BYTES,
};
pub use reply::{
    FailurePolicy, LocalReply, DEFAULT_DENY_BODY, DEFAULT_DENY_HEADER, DEFAULT_DENY_STATUS,
    DEFAULT_STATUS_ON_ERROR,
};
pub use request::{
    AuthRequest, Forward, PathRule, ALWAYS_FORWARDED, DEFAULT_CLUSTER,
    DEFAULT_GRPC_MAX_CHECK_HEADER_BYTES, DEFAULT_GRPC_TIMEOUT_MS, DEFAULT_MAX_CHECK_HEADERS,
    DEFAULT_MAX_CHECK_HEADER_BYTES, DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS,
};
pub use response::{ResponseHeaders, ALWAYS_TO_CLIENT};
pub use route::{RouteOverrides, ROUTE_FIELDS};
pub use routes::RouteRule;
pub use validate::ConfigError;

use json::Object;
use validate::Checked;

use crate::digest::{fingerprint, Digest};

pub const DEFAULT_STAT_PREFIX: &str = "http_auth_random";
pub const DEFAULT_MAX_RESPONSE_BODY_BYTES: u64 = 64 * 1024;
/// The largest auth answer body the plugin will read.
pub const MAX_RESPONSE_BODY_LIMIT: u64 = 16 * 1024 * 1024;
/// The smallest `max_response_body_bytes` with protocol grpc (a CheckResponse with a few headers).
pub const MIN_GRPC_RESPONSE_BYTES: u64 = 1024;

/// The largest message gRPC servers take by default (grpc-go, grpc-java, tonic).
pub const GRPC_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Every top-level field; anything else is refused by name.
pub const FIELDS: &[&str] = &[
    "cluster",
    "timeout_ms",
    "decision",
    "path",
    "path_prefix",
    "authority",
    "method",
    "allowed_headers",
    "headers_to_add",
    "failure_mode_allow",
    "failure_mode_allow_header_add",
    "status_on_error",
    "deny",
    "allowed_upstream_headers",
    "allowed_upstream_headers_to_append",
    "strip_client_upstream_headers",
    "allowed_client_headers",
    "allowed_client_headers_on_success",
    "exempt",
    "stat_prefix",
    "max_response_body_bytes",
    "latency_histogram",
    "max_calls_in_flight",
    "max_orphaned_calls",
    "max_check_headers",
    "max_check_header_bytes",
    "max_success_header_bytes",
    "max_held_bytes",
    "cache",
    "with_request_body",
    "protocol",
    "context_extensions",
    "dynamic_metadata_from_headers",
    "shadow",
    "record_decisions",
    "routes",
    "authzen",
    #[cfg(feature = "test-switches")]
    "test_switches",
];

/// How the plugin asks the auth service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// An HTTP call; the `decision` rule reads the answer.
    Http,
    /// ext_authz's `envoy.service.auth.v3.Authorization/Check` on the auth cluster; the
    /// `CheckResponse` decides.
    Grpc,
    /// An OpenID AuthZEN 1.0 evaluation (`POST` of JSON); `{"decision": true}` allows.
    AuthZen,
}

/// Fields that shape the ext_authz HTTP call or read its answer, which an AuthZEN evaluation
/// has no use for.
const NOT_AUTHZEN: [&str; 14] = [
    "decision",
    "max_check_headers",
    "max_check_header_bytes",
    "path",
    "path_prefix",
    "method",
    "allowed_headers",
    "with_request_body",
    "context_extensions",
    "dynamic_metadata_from_headers",
    "allowed_client_headers",
    "allowed_client_headers_on_success",
    "allowed_upstream_headers",
    "allowed_upstream_headers_to_append",
];

/// Fields that shape the HTTP call or read its answer, which a gRPC check has no use for.
const HTTP_ONLY: [&str; 12] = [
    "dynamic_metadata_from_headers",
    "max_check_headers",
    "decision",
    "path",
    "path_prefix",
    "method",
    "authority",
    "headers_to_add",
    "deny",
    "allowed_client_headers",
    "allowed_client_headers_on_success",
    "allowed_upstream_headers_to_append",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// The seed's rule: an even FNV-1a hash of the answer's body allows.
    FnvParity,
    /// ext_authz's HTTP rule: 200 allows, any other status denies with the service's answer.
    Status,
    /// A boolean in the answer's JSON body decides (`{"json": "/allow"}`).
    Json(JsonRule),
}

impl Rule {
    pub fn name(&self) -> &'static str {
        match self {
            Rule::FnvParity => "fnv_parity",
            Rule::Status => "status",
            Rule::Json(_) => "json",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// No check at all (a route's `disabled`): requests pass, forged headers removed.
    pub disabled: bool,
    /// Check, count and record, but never enforce: a deny, an error or an overload lets the
    /// request through unchanged.
    pub shadow: bool,
    /// Keep each request's decision record (dynamic metadata or filter state).
    pub record_decisions: bool,
    pub rule: Rule,
    pub auth_request: AuthRequest,
    pub failure: FailurePolicy,
    pub deny: LocalReply,
    pub response: ResponseHeaders,
    pub exempt: Exemptions,
    pub stat_prefix: String,
    /// Record each auth call's latency in a histogram (two clock reads and a record per request;
    /// Envoy's `cluster.<auth>.upstream_rq_time` already measures the call).
    pub latency_histogram: bool,
    pub max_response_body_bytes: usize,
    pub limits: Limits,
    pub cache: Option<CacheConfig>,
    pub request_body: Option<RequestBody>,
    pub protocol: Protocol,
    /// `protocol: authzen`: how a request maps onto an evaluation.
    pub authzen: Option<AuthZen>,
    /// gRPC: `AttributeContext.context_extensions`.
    pub context_extensions: std::collections::BTreeMap<String, String>,
    /// Rules giving some routes settings of their own; first match wins. Empty in a rule's own
    /// configuration.
    pub routes: Vec<RouteRule>,
    /// The name of the rule this configuration is for; `None` for the filter's own.
    pub route_rule: Option<String>,
    /// The configuration's digest, which its cache entries are keyed under.
    pub fingerprint: Digest,
    #[cfg(feature = "test-switches")]
    pub test: crate::test_switches::TestSwitches,
}

impl Config {
    /// Parses the configuration. No bytes, or only whitespace, means the seed's defaults.
    pub fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
        let value = if bytes.iter().all(u8::is_ascii_whitespace) {
            Json::Object(Vec::new())
        } else {
            json_value::parse(bytes).map_err(|err| {
                ConfigError::new("configuration", format!("not valid JSON: {err}"))
            })?
        };
        Config::from_json(&value, fingerprint(bytes))
    }

    fn from_json(value: &Json, fingerprint: Digest) -> Checked<Config> {
        let root = Object::new(String::new(), value, FIELDS)?;
        // Sections in the order a reader meets them, so that the first mistake is the one named.
        let grpc = protocol(&root)? == Protocol::Grpc;
        let auth_request = request::parse(&root, grpc)?;
        let failure = reply::failure_policy(&root)?;
        let deny = reply::deny(&root)?;
        let mut response = response::parse(&root)?;
        let exempt = exempt::parse(&root)?;
        let max_response_body_bytes = max_response_body(&root, grpc)?;
        let protocol = protocol_fields_checked(&root, grpc)?;
        let authzen = match protocol {
            Protocol::AuthZen => {
                let authzen = authzen::parse(&root)?;
                for name in authzen.request_headers() {
                    response
                        .underscored
                        .insert(crate::matcher::NameMatcher::Exact(name.replace('_', "-")));
                }
                Some(authzen)
            }
            _ if root.has("authzen") => {
                return Err(ConfigError::new(
                    "authzen",
                    "is read only with protocol authzen",
                ))
            }
            _ => None,
        };
        let context_extensions = root.string_map("context_extensions")?;
        if !context_extensions.is_empty() && !grpc {
            return Err(ConfigError::new(
                "context_extensions",
                "is sent only with protocol grpc",
            ));
        }
        let rule = match &authzen {
            // `{"decision": true}` allows, `false` denies; anything else, or an answer that is
            // not a 2xx, is an error.
            Some(authzen) => Rule::Json(JsonRule {
                pointer: "/decision".to_owned(),
                headers: Vec::new(),
                deny_headers: authzen.deny_reason.iter().cloned().collect(),
                answer_2xx_only: true,
            }),
            None => rule(&root, grpc)?,
        };
        if let Rule::Json(json) = &rule {
            json_headers_checked(json, &response, &deny)?;
            for header in &json.headers {
                response.trust(&header.header);
            }
        }
        let limits = limits::parse(&root, &response, grpc)?;
        let stat_prefix = validate::stat_prefix(
            "stat_prefix",
            root.string("stat_prefix")?.unwrap_or(DEFAULT_STAT_PREFIX),
        )?;
        let cache = match root.object("cache", CACHE_FIELDS)? {
            None => None,
            Some(cache) => Some(cache::parse(&cache, fingerprint, &stat_prefix)?),
        };
        if let Some(cache) = &cache {
            // A header the auth service sets is removed from every request before the cache is
            // consulted: a key naming one would never be complete.
            if let Some(part) = cache.key.iter().find(|part| match part {
                KeyPart::Header(name) => response.is_spoofed(name),
                _ => false,
            }) {
                return Err(ConfigError::new(
                    "cache.key",
                    format!(
                        "\"{}\" is a header the auth service sets: clients' copies are removed before the cache is consulted",
                        part.header_name()
                    ),
                ));
            }
        }
        let request_body = body::parse(&root)?;
        if let (true, Some(body)) = (grpc, &request_body) {
            // A check over the server's message limit fails on every server with the default.
            let most = body.max_bytes + auth_request.max_check_header_bytes;
            if most > GRPC_MAX_MESSAGE_BYTES {
                return Err(ConfigError::new(
                    "with_request_body.max_request_bytes",
                    format!(
                        "with max_check_header_bytes, a CheckRequest could be {most} bytes, over the {GRPC_MAX_MESSAGE_BYTES} bytes gRPC servers take by default"
                    ),
                ));
            }
        }
        if request_body.is_some() && cache.is_some() {
            return Err(ConfigError::new(
                "with_request_body",
                "cannot be used with cache: a verdict that depends on the body cannot be keyed",
            ));
        }
        let mut config = Config {
            disabled: false,
            shadow: root.bool("shadow")?.unwrap_or(false),
            record_decisions: root.bool("record_decisions")?.unwrap_or(false),
            rule,
            auth_request,
            failure,
            deny,
            response,
            exempt,
            stat_prefix,
            latency_histogram: root.bool("latency_histogram")?.unwrap_or(false),
            max_response_body_bytes,
            limits,
            cache,
            request_body,
            protocol,
            context_extensions,
            authzen,
            routes: Vec::new(),
            route_rule: None,
            fingerprint,
            #[cfg(feature = "test-switches")]
            test: test_switches(&root)?,
        };
        config.routes = routes::parse(&root, &config)?;
        Ok(config)
    }
}

/// What `headers_from_json` may not name, and how it combines with the rest: its values are
/// identities the auth service vouches for, so clients' copies must always go, and a header the
/// check itself is built from (or Envoy sets) must not be taken from every request.
fn json_headers_checked(
    json: &JsonRule,
    response: &ResponseHeaders,
    deny: &LocalReply,
) -> Checked<()> {
    if !json.headers.is_empty() && !response.strip_client_copies {
        return Err(ConfigError::new(
            "strip_client_upstream_headers",
            "must stay true with headers_from_json: clients' copies of the headers it sets are forged",
        ));
    }
    for (index, header) in json.headers.iter().enumerate() {
        let name = header.header.as_str();
        if ALWAYS_FORWARDED.contains(&name)
            || ["x-forwarded-for", "x-forwarded-proto", "x-request-id"].contains(&name)
        {
            return Err(ConfigError::new(
                format!("decision.headers_from_json[{index}].header"),
                format!("\"{name}\" is sent with the check or set by Envoy: clients' copies would be removed from every request"),
            ));
        }
    }
    for reason in &json.deny_headers {
        let name = reason.header.as_str();
        if name == "content-type" || deny.headers.iter().any(|(n, _)| n == name) {
            return Err(ConfigError::new(
                "authzen.deny_reason.header",
                format!("\"{name}\" is already a header of the deny reply"),
            ));
        }
    }
    Ok(())
}

/// `protocol`.
fn protocol(root: &Object) -> Checked<Protocol> {
    match root.string("protocol")? {
        None | Some("http") => Ok(Protocol::Http),
        Some("grpc") => Ok(Protocol::Grpc),
        Some("authzen") => Ok(Protocol::AuthZen),
        Some(other) => Err(ConfigError::new(
            "protocol",
            format!("unknown protocol \"{other}\", expected http, grpc or authzen"),
        )),
    }
}

/// With grpc, the fields only an HTTP call uses are refused by name; with authzen, those of
/// ext_authz's HTTP call.
fn protocol_fields_checked(root: &Object, grpc: bool) -> Checked<Protocol> {
    if protocol(root)? == Protocol::AuthZen {
        if let Some(field) = NOT_AUTHZEN.iter().find(|f| root.has(f)) {
            return Err(ConfigError::new(
                *field,
                "has no effect with protocol authzen: the evaluation is built from the authzen section, and its decision decides",
            ));
        }
        // The evaluation's own headers are the filter's to write.
        if let Some(list) = root.list("headers_to_add")? {
            for item in list {
                let header = item.object(&["key", "value"])?;
                if let Some(key) = header.string("key")? {
                    if ["content-type", "x-request-id"].contains(&key.to_ascii_lowercase().as_str())
                    {
                        return Err(ConfigError::new(
                            header.field("key"),
                            format!(
                                "\"{key}\" is the evaluation's own header with protocol authzen"
                            ),
                        ));
                    }
                }
            }
        }
        return Ok(Protocol::AuthZen);
    }
    if !grpc {
        return Ok(Protocol::Http);
    }
    if let Some(field) = HTTP_ONLY.iter().find(|f| root.has(f)) {
        return Err(ConfigError::new(
            *field,
            "has no effect with protocol grpc: the CheckResponse decides and says what to apply",
        ));
    }
    Ok(Protocol::Grpc)
}

/// `decision`. The seed's coin flip is the behaviour with no configuration at all; once a
/// configuration says anything, it must say how the answer decides: a demo rule in force by
/// omission would let about half of all requests through.
fn rule(root: &Object, grpc: bool) -> Checked<Rule> {
    if let Some(item) = root.item("decision") {
        if let Json::Object(_) = item.value {
            return Ok(Rule::Json(json_rule::parse(&item)?));
        }
    }
    match root.string("decision")? {
        None if !root.is_empty() && !grpc => Err(ConfigError::new(
            "decision",
            "is missing: \"status\" (200 allows, as ext_authz) or \"fnv_parity\" (the \
             seed's demo rule)",
        )),
        None | Some("fnv_parity") => Ok(Rule::FnvParity),
        Some("status") => Ok(Rule::Status),
        Some(other) => Err(ConfigError::new(
            "decision",
            format!("unknown rule \"{other}\", expected fnv_parity, status or {{\"json\": \"/pointer\"}}"),
        )),
    }
}

/// `max_response_body_bytes`. With grpc a CheckResponse over the limit denies, so a limit that
/// fits no real answer (an HTTP-mode 0 carried over, say) would deny every request.
fn max_response_body(root: &Object, grpc: bool) -> Checked<usize> {
    let max = validate::in_range(
        "max_response_body_bytes",
        root.integer("max_response_body_bytes")?
            .unwrap_or(DEFAULT_MAX_RESPONSE_BODY_BYTES),
        0,
        MAX_RESPONSE_BODY_LIMIT,
        "bytes",
    )?;
    if grpc && max < MIN_GRPC_RESPONSE_BYTES {
        return Err(ConfigError::new(
            "max_response_body_bytes",
            format!(
                "{max} is too small for a CheckResponse with protocol grpc: at least {MIN_GRPC_RESPONSE_BYTES} bytes"
            ),
        ));
    }
    Ok(usize::try_from(max).unwrap_or(usize::MAX))
}

#[cfg(feature = "test-switches")]
fn test_switches(root: &Object) -> Checked<crate::test_switches::TestSwitches> {
    Ok(
        match root.object("test_switches", &["trap_on_path", "drop_auth_header"])? {
            None => crate::test_switches::TestSwitches::default(),
            Some(switches) => crate::test_switches::TestSwitches {
                trap_on_path: switches.string("trap_on_path")?.map(str::to_owned),
                drop_auth_header: switches.string("drop_auth_header")?.map(str::to_owned),
            },
        },
    )
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
