//! The plugin's configuration: JSON in, validated typed structs with precomputed lookups out.

mod json;
mod json_value;
mod validate;
pub use validate::is_envoy_owned;

use std::time::Duration;

use json_value::Json;

use crate::matcher::{NameMatcher, NameSet};
use json::{Item, Object};
use validate::Checked;
pub use validate::ConfigError;

pub const DEFAULT_CLUSTER: &str = "httpbin";
pub const DEFAULT_TIMEOUT_MS: u64 = 50_000;
/// ext_authz's default `grpc_service.timeout`.
pub const DEFAULT_GRPC_TIMEOUT_MS: u64 = 200;
pub const DEFAULT_STATUS_ON_ERROR: u32 = 403;
pub const DEFAULT_DENY_STATUS: u32 = 403;
pub const DEFAULT_DENY_BODY: &str = "access forbidden";
pub const DEFAULT_DENY_HEADER: (&str, &str) = ("powered-by", "http_auth_random");
pub const DEFAULT_STAT_PREFIX: &str = "http_auth_random";
pub const DEFAULT_MAX_RESPONSE_BODY_BYTES: u64 = 64 * 1024;

/// Every top-level field; anything else is refused by name.
const FIELDS: &[&str] = &[
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
    "max_success_header_bytes",
    "max_held_bytes",
    "cache",
    "with_request_body",
    "protocol",
    "context_extensions",
    #[cfg(feature = "test-switches")]
    "test_switches",
];

/// The longest auth call timeout accepted. Envoy takes milliseconds as u32, and an auth call
/// longer than an hour is a misconfiguration rather than a policy.
pub const MAX_TIMEOUT_MS: u64 = 3_600_000;
/// The largest auth answer body the plugin will read.
pub const MAX_RESPONSE_BODY_LIMIT: u64 = 16 * 1024 * 1024;
/// The smallest `max_response_body_bytes` with protocol grpc (a CheckResponse with a few headers).
pub const MIN_GRPC_RESPONSE_BYTES: u64 = 1024;
/// Auth calls per worker whose clients have gone (an HTTP call cannot be cancelled, so a reset
/// flood leaves them running). Below Envoy's default circuit breaker (1,024 requests per
/// cluster), so that orphans alone never fill the auth cluster. Calls whose clients wait are not
/// capped by default: the auth cluster's circuit breaker bounds them, as it bounds native
/// ext_authz's, and its overflow is a 503, never an allow.
pub const DEFAULT_MAX_ORPHANED_CALLS: u64 = 500;
pub const DEFAULT_MAX_SUCCESS_HEADER_BYTES: u64 = 8 * 1024;
/// Bytes a worker's waiting requests may hold in the VM. The VM's memory is capped at about
/// 1 GiB and never shrinks; a quarter leaves room for the transient copies of headers and answers.
pub const DEFAULT_MAX_HELD_BYTES: u64 = 256 * 1024 * 1024;
pub const MAX_HELD_BYTES_LIMIT: u64 = 768 * 1024 * 1024;

/// How the plugin asks the auth service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// An HTTP call; the `decision` rule reads the answer.
    Http,
    /// ext_authz's `envoy.service.auth.v3.Authorization/Check`; the `CheckResponse` decides.
    Grpc {
        /// The serialized `GrpcService` naming the cluster, as `proxy_grpc_call` takes it.
        service: Vec<u8>,
    },
}

/// Fields that shape the HTTP call or read its answer, which a gRPC check has no use for.
const HTTP_ONLY: [&str; 10] = [
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

/// `with_request_body`: the request's body goes to the auth service with the check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestBody {
    /// Buffered and sent at most this much; a larger body is refused (413) unless partial.
    pub max_bytes: usize,
    /// Send the first `max_bytes` of a larger body, marked `x-envoy-auth-partial-body: true`.
    pub allow_partial: bool,
    /// gRPC only: send the body as `raw_body` (bytes) rather than `body` (UTF-8).
    pub pack_as_bytes: bool,
}

/// The largest body the plugin will buffer for a check (Envoy's own buffer limit, 1 MiB per
/// connection by default, may refuse earlier, with a 413 of its own).
pub const MAX_REQUEST_BODY_LIMIT: u64 = 16 * 1024 * 1024;

/// The decision cache (`cache`); absent, every request is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// The request parts that decide the verdict.
    pub key: Vec<crate::cache::KeyPart>,
    pub ttl: Duration,
    pub max_ttl: Duration,
    /// Zero: denies are not cached.
    pub deny_ttl: Duration,
    /// How long past its expiry an allow may be served when the auth call fails.
    pub stale_if_error: Duration,
    /// Shared-data slots; the key space never grows past them.
    pub max_entries: u32,
    pub max_entry_bytes: usize,
    /// The configuration's digest, part of every key.
    pub fingerprint: crate::cache::Digest,
    /// Shared-data keys are this plus the slot number.
    pub slot_prefix: String,
    /// Cache (and coalesce) requests that lack a header the key names.
    pub cache_missing_headers: bool,
}

/// Hop-by-hop headers: they describe the client's connection, not the request, so they cannot
/// decide a verdict, and a key naming one would leave requests uncached.
const NEVER_SEEN_BY_FILTERS: [&str; 4] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
];

pub const CACHE_FIELDS: &[&str] = &[
    "key",
    "ttl_ms",
    "max_ttl_ms",
    "deny_ttl_ms",
    "stale_if_error_ms",
    "max_entries",
    "max_entry_bytes",
    "cache_missing_headers",
];
/// The most shared data a cache may hold (`max_entries` × `max_entry_bytes`).
pub const MAX_CACHE_BYTES: u64 = 1024 * 1024 * 1024;
pub const DEFAULT_CACHE_TTL_MS: u64 = 10_000;
pub const DEFAULT_CACHE_MAX_TTL_MS: u64 = 300_000;
pub const DEFAULT_CACHE_MAX_ENTRIES: u64 = 10_000;
pub const DEFAULT_CACHE_MAX_ENTRY_BYTES: u64 = 8 * 1024;
/// The longest any TTL may be: a day.
pub const MAX_CACHE_TTL_MS: u64 = 86_400_000;

/// Bounds on what one worker takes on: a flood of requests gets 503s, never a trapped VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// All outstanding calls per worker; `None`: no cap of the plugin's own.
    pub max_calls_in_flight: Option<usize>,
    /// Outstanding calls nobody waits for any more.
    pub max_orphaned_calls: usize,
    pub max_success_header_bytes: usize,
    pub max_held_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The seed's rule: an even FNV-1a hash of the answer's body allows.
    FnvParity,
    /// ext_authz's HTTP rule: 200 allows, any other status denies with the service's answer.
    Status,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::FnvParity => "fnv_parity",
            Rule::Status => "status",
        }
    }
}

/// Which request headers go to the auth service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forward {
    /// Every request header, pseudo-headers included, as the seed did.
    All,
    /// Only these (in HTTP mode, plus the ones ext_authz always sends).
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
    /// The names in `upstream` and `upstream_append`, with `_` read as `-`: a client header is a
    /// forged copy when its dashed name matches this.
    pub trusted_dashed: NameSet,
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

/// Names never taken from an auth answer onto the request or the response, whatever a prefix or
/// suffix matcher says: they would reroute or reframe the message.
pub fn is_reserved(name: &str) -> bool {
    name.starts_with(':') || name == "host"
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
            trusted_dashed: trusted.with_dashes(),
            upstream,
            upstream_append,
            strip_client_copies,
            client,
            client_on_success,
        }
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
        !is_reserved(name) && !HOP_BY_HOP.contains(&name) && self.client_on_success.matches(name)
    }

    /// Whether a client's request header or trailer is a copy of one the auth service is trusted
    /// to set or append to: the same name, or the same once each `_` reads as `-`. (A client copy
    /// of an appended header would come first, where most frameworks read.)
    pub fn is_spoofed(&self, name: &str) -> bool {
        if name.contains('_') {
            self.trusted_dashed.matches(&name.replace('_', "-"))
        } else {
            self.trusted_dashed.matches(name)
        }
    }

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

    /// Whether the client's own copies of trusted headers must be removed from each request.
    pub fn strips_client_copies(&self) -> bool {
        self.strip_client_copies && !self.trusted_dashed.is_empty()
    }

    /// Whether an allowed request needs all of the auth answer's headers (otherwise only
    /// `x-envoy-auth-headers-to-remove` is read).
    pub fn used_on_allow(&self) -> bool {
        !(self.upstream.is_empty()
            && self.upstream_append.is_empty()
            && self.client_on_success.is_empty())
    }
}

/// Paths and methods are kept sorted for binary search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exemptions {
    pub paths: Vec<String>,
    pub path_prefixes: Vec<String>,
    pub methods: Vec<String>,
}

impl Exemptions {
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty() && self.path_prefixes.is_empty() && self.methods.is_empty()
    }

    pub fn has_path(&self, path: &str) -> bool {
        contains(&self.paths, path)
    }

    pub fn has_method(&self, method: &str) -> bool {
        contains(&self.methods, method)
    }
}

fn contains(sorted: &[String], value: &str) -> bool {
    sorted.binary_search_by(|s| s.as_str().cmp(value)).is_ok()
}

fn sorted(mut values: Vec<String>) -> Vec<String> {
    values.sort();
    values.dedup();
    values
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
    /// Record each auth call's latency in a histogram (two clock reads and a record per request;
    /// Envoy's `cluster.<auth>.upstream_rq_time` already measures the call).
    pub latency_histogram: bool,
    pub max_response_body_bytes: usize,
    pub limits: Limits,
    pub cache: Option<CacheConfig>,
    pub request_body: Option<RequestBody>,
    pub protocol: Protocol,
    /// gRPC: `AttributeContext.context_extensions`.
    pub context_extensions: std::collections::BTreeMap<String, String>,
    #[cfg(feature = "test-switches")]
    pub test: crate::test_switches::TestSwitches,
}

impl Config {
    /// Parses the plugin configuration. No bytes, or only whitespace, means the seed's defaults.
    pub fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
        let value = if bytes.iter().all(u8::is_ascii_whitespace) {
            Json::Object(Vec::new())
        } else {
            json_value::parse(bytes).map_err(|err| {
                ConfigError::new("configuration", format!("not valid JSON: {err}"))
            })?
        };
        Config::from_json(&value, crate::cache::fingerprint(bytes))
    }

    fn from_json(value: &Json, fingerprint: crate::cache::Digest) -> Checked<Config> {
        let root = Object::new(String::new(), value, FIELDS)?;
        let grpc = match root.string("protocol")? {
            None | Some("http") => false,
            Some("grpc") => true,
            Some(other) => {
                return Err(ConfigError::new(
                    "protocol",
                    format!("unknown protocol \"{other}\", expected http or grpc"),
                ))
            }
        };
        // gRPC follows ext_authz's `grpc_service.timeout` default; HTTP keeps the seed's.
        let default_timeout_ms = if grpc {
            DEFAULT_GRPC_TIMEOUT_MS
        } else {
            DEFAULT_TIMEOUT_MS
        };
        let timeout_ms = validate::in_range(
            "timeout_ms",
            root.integer("timeout_ms")?.unwrap_or(default_timeout_ms),
            1,
            MAX_TIMEOUT_MS,
            "ms",
        )?;
        // ext_authz adds its always-sent headers to an HTTP service's allowlist only; a gRPC
        // CheckRequest carries exactly the allowed ones.
        let forward = match root.list("allowed_headers")? {
            None => Forward::All,
            Some(list) => {
                let mut set = name_set(list)?;
                if !grpc {
                    for name in ALWAYS_FORWARDED {
                        set.insert(NameMatcher::Exact(name.to_owned()));
                    }
                }
                Forward::Allowlist(set)
            }
        };
        let auth_request = AuthRequest {
            cluster: validate::cluster(
                "cluster",
                root.string("cluster")?.unwrap_or(DEFAULT_CLUSTER),
            )?,
            timeout: Duration::from_millis(timeout_ms),
            path: path_rule(
                root.string("path")?,
                root.string("path_prefix")?.unwrap_or_default(),
            )?,
            authority: root
                .string("authority")?
                .map(|a| validate::authority("authority", a))
                .transpose()?,
            method: root
                .string("method")?
                .map(|m| validate::method("method", m))
                .transpose()?,
            forward,
            headers_to_add: headers(root.list("headers_to_add")?.unwrap_or_default())?,
        };
        let failure = FailurePolicy {
            allow: root.bool("failure_mode_allow")?.unwrap_or(false),
            add_header: root.bool("failure_mode_allow_header_add")?.unwrap_or(true),
            status_on_error: status(&root, "status_on_error", DEFAULT_STATUS_ON_ERROR)?,
        };
        let deny = match root.object("deny", &["status", "body", "headers"])? {
            None => LocalReply {
                status: 403,
                headers: vec![(
                    DEFAULT_DENY_HEADER.0.to_owned(),
                    DEFAULT_DENY_HEADER.1.to_owned(),
                )],
                body: DEFAULT_DENY_BODY.to_owned(),
            },
            Some(deny) => LocalReply {
                status: status(&deny, "status", DEFAULT_DENY_STATUS)?,
                headers: match deny.list("headers")? {
                    Some(list) => headers(list)?,
                    None => vec![(
                        DEFAULT_DENY_HEADER.0.to_owned(),
                        DEFAULT_DENY_HEADER.1.to_owned(),
                    )],
                },
                body: deny.string("body")?.unwrap_or(DEFAULT_DENY_BODY).to_owned(),
            },
        };
        let response = ResponseHeaders::new(
            response_set(&root, "allowed_upstream_headers")?,
            response_set(&root, "allowed_upstream_headers_to_append")?,
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
            response_set(&root, "allowed_client_headers_on_success")?,
        );
        let exempt = match root.object("exempt", &["paths", "path_prefixes", "methods"])? {
            None => Exemptions::default(),
            Some(exempt) => Exemptions {
                paths: sorted(strings(&exempt, "paths", validate::path)?),
                path_prefixes: strings(&exempt, "path_prefixes", validate::path)?,
                methods: sorted(strings(&exempt, "methods", validate::exempt_method)?),
            },
        };
        let max_body = validate::in_range(
            "max_response_body_bytes",
            root.integer("max_response_body_bytes")?
                .unwrap_or(DEFAULT_MAX_RESPONSE_BODY_BYTES),
            0,
            MAX_RESPONSE_BODY_LIMIT,
            "bytes",
        )?;
        let protocol = if grpc {
            // A CheckResponse over the limit denies: a limit that fits no real answer
            // (an HTTP-mode 0 carried over, say) would deny every request.
            if max_body < MIN_GRPC_RESPONSE_BYTES {
                return Err(ConfigError::new(
                    "max_response_body_bytes",
                    format!(
                        "{max_body} is too small for a CheckResponse with protocol grpc: at least {MIN_GRPC_RESPONSE_BYTES} bytes"
                    ),
                ));
            }
            if let Some(field) = HTTP_ONLY.iter().find(|f| root.has(f)) {
                return Err(ConfigError::new(
                    *field,
                    "has no effect with protocol grpc: the CheckResponse decides and says what to apply",
                ));
            }
            Protocol::Grpc {
                service: crate::grpc::service(&auth_request.cluster),
            }
        } else {
            Protocol::Http
        };
        let context_extensions = root.string_map("context_extensions")?;
        if !context_extensions.is_empty() && protocol == Protocol::Http {
            return Err(ConfigError::new(
                "context_extensions",
                "is sent only with protocol grpc",
            ));
        }
        let rule = match root.string("decision")? {
            // The seed's coin flip is the behaviour with no configuration at all. Once a
            // configuration says anything, it must say how the answer decides: a demo rule
            // in force by omission would let about half of all requests through.
            None if !root.is_empty() && !grpc => {
                return Err(ConfigError::new(
                    "decision",
                    "is missing: say how the auth answer decides, \"status\" (200 allows, as \
                     ext_authz) or \"fnv_parity\" (the seed's demo rule: an even FNV-1a hash of \
                     the answer's body allows)",
                ))
            }
            None | Some("fnv_parity") => Rule::FnvParity,
            Some("status") => Rule::Status,
            Some(other) => {
                return Err(ConfigError::new(
                    "decision",
                    format!("unknown rule \"{other}\", expected fnv_parity or status"),
                ))
            }
        };
        let limits = Limits {
            max_calls_in_flight: match root.has("max_calls_in_flight") {
                true => Some(limit(&root, "max_calls_in_flight", 0, 1, 1_000_000)?),
                false => None,
            },
            max_orphaned_calls: limit(
                &root,
                "max_orphaned_calls",
                DEFAULT_MAX_ORPHANED_CALLS,
                1,
                1_000_000,
            )?,
            max_success_header_bytes: limit(
                &root,
                "max_success_header_bytes",
                DEFAULT_MAX_SUCCESS_HEADER_BYTES,
                0,
                1024 * 1024,
            )?,
            max_held_bytes: limit(
                &root,
                "max_held_bytes",
                DEFAULT_MAX_HELD_BYTES,
                64 * 1024,
                MAX_HELD_BYTES_LIMIT,
            )?,
        };
        let stat_prefix = validate::stat_prefix(
            "stat_prefix",
            root.string("stat_prefix")?.unwrap_or(DEFAULT_STAT_PREFIX),
        )?;
        let cache = match root.object("cache", CACHE_FIELDS)? {
            None => None,
            Some(cache) => Some(cache_config(&cache, fingerprint, &stat_prefix)?),
        };
        let request_body = match root.object(
            "with_request_body",
            &[
                "max_request_bytes",
                "allow_partial_message",
                "pack_as_bytes",
            ],
        )? {
            None => None,
            Some(body) => {
                let max = body.integer("max_request_bytes")?.ok_or_else(|| {
                    ConfigError::new(body.field("max_request_bytes"), "is missing")
                })?;
                Some(RequestBody {
                    max_bytes: usize::try_from(validate::in_range(
                        &body.field("max_request_bytes"),
                        max,
                        1,
                        MAX_REQUEST_BODY_LIMIT,
                        "bytes",
                    )?)
                    .unwrap_or(usize::MAX),
                    allow_partial: body.bool("allow_partial_message")?.unwrap_or(false),
                    pack_as_bytes: body.bool("pack_as_bytes")?.unwrap_or(false),
                })
            }
        };
        if request_body.is_some() && cache.is_some() {
            return Err(ConfigError::new(
                "with_request_body",
                "cannot be used with cache: a verdict that depends on the body cannot be keyed",
            ));
        }
        let per_request = crate::flow::reservation(&response, &limits, &protocol);
        if limits.max_held_bytes < per_request {
            return Err(ConfigError::new(
                "max_held_bytes",
                format!(
                    "{} cannot hold even one waiting request ({per_request} bytes with max_success_header_bytes)",
                    limits.max_held_bytes
                ),
            ));
        }
        Ok(Config {
            rule,
            auth_request,
            failure,
            deny,
            response,
            exempt,
            stat_prefix,
            latency_histogram: root.bool("latency_histogram")?.unwrap_or(false),
            max_response_body_bytes: usize::try_from(max_body).unwrap_or(usize::MAX),
            limits,
            cache,
            request_body,
            protocol,
            context_extensions,
            #[cfg(feature = "test-switches")]
            test: match root.object("test_switches", &["trap_on_path", "drop_auth_header"])? {
                None => crate::test_switches::TestSwitches::default(),
                Some(switches) => crate::test_switches::TestSwitches {
                    trap_on_path: switches.string("trap_on_path")?.map(str::to_owned),
                    drop_auth_header: switches.string("drop_auth_header")?.map(str::to_owned),
                },
            },
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

fn status(object: &Object, key: &str, default: u32) -> Checked<u16> {
    let code = object
        .integer(key)?
        .map_or(Ok(default), |code| u32::try_from(code).or(Ok(u32::MAX)))?;
    validate::status(&object.field(key), code)
}

/// ext_authz's `HeaderValue` list: `[{"key": ..., "value": ...}]`.
fn headers(list: Vec<Item>) -> Checked<Vec<(String, String)>> {
    list.iter()
        .map(|item| {
            let header = item.object(&["key", "value"])?;
            let key = header
                .string("key")?
                .ok_or_else(|| ConfigError::new(header.field("key"), "is missing"))?;
            let value = header
                .string("value")?
                .ok_or_else(|| ConfigError::new(header.field("value"), "is missing"))?;
            let name = validate::header_name(&header.field("key"), key)?;
            let value = validate::header_value(&header.field("value"), value)?;
            validate::added_header(&header.field("key"), &name, &value)?;
            Ok((name, value))
        })
        .collect()
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

fn cache_config(
    cache: &Object,
    fingerprint: crate::cache::Digest,
    stat_prefix: &str,
) -> Checked<CacheConfig> {
    let list = cache.list("key")?.ok_or_else(|| {
        ConfigError::new(
            cache.field("key"),
            "is missing: name the request parts that decide the verdict",
        )
    })?;
    if list.is_empty() {
        return Err(ConfigError::new(
            cache.field("key"),
            "is empty: name the request parts that decide the verdict",
        ));
    }
    let mut key = Vec::with_capacity(list.len());
    for item in &list {
        let name = item.string()?;
        let part = match name.starts_with(':') || name == "host" {
            true => crate::cache::KeyPart::parse(name).ok_or_else(|| {
                ConfigError::new(
                    &item.path,
                    format!("\"{name}\" is not a key part: use a header name, :method, :authority, :path or :path_without_query"),
                )
            })?,
            false => crate::cache::KeyPart::Header(validate::header_name(&item.path, name)?),
        };
        if let crate::cache::KeyPart::Header(header) = &part {
            if NEVER_SEEN_BY_FILTERS.contains(&header.as_str()) {
                return Err(ConfigError::new(
                    &item.path,
                    format!("\"{header}\" is hop-by-hop: it describes the client's connection, not the request, and Envoy does not pass it to filters"),
                ));
            }
        }
        key.push(part);
    }
    let millis = |field: &str, default: u64, min: u64| -> Checked<u64> {
        validate::in_range(
            &cache.field(field),
            cache.integer(field)?.unwrap_or(default),
            min,
            MAX_CACHE_TTL_MS,
            "ms",
        )
    };
    let ttl = millis("ttl_ms", DEFAULT_CACHE_TTL_MS, 1)?;
    let max_ttl = millis("max_ttl_ms", DEFAULT_CACHE_MAX_TTL_MS.max(ttl), 1)?;
    let deny_ttl = millis("deny_ttl_ms", 0, 0)?;
    for (field, value) in [("ttl_ms", ttl), ("deny_ttl_ms", deny_ttl)] {
        if value > max_ttl {
            return Err(ConfigError::new(
                cache.field(field),
                format!("{value} is over max_ttl_ms ({max_ttl})"),
            ));
        }
    }
    let stale_if_error = millis("stale_if_error_ms", 0, 0)?;
    let max_entries = validate::in_range(
        &cache.field("max_entries"),
        cache
            .integer("max_entries")?
            .unwrap_or(DEFAULT_CACHE_MAX_ENTRIES),
        1,
        1_000_000,
        "",
    )?;
    let max_entry_bytes = validate::in_range(
        &cache.field("max_entry_bytes"),
        cache
            .integer("max_entry_bytes")?
            .unwrap_or(DEFAULT_CACHE_MAX_ENTRY_BYTES),
        256,
        1024 * 1024,
        "bytes",
    )?;
    if max_entries.saturating_mul(max_entry_bytes) > MAX_CACHE_BYTES {
        return Err(ConfigError::new(
            cache.field("max_entries"),
            format!(
                "{max_entries} entries of up to {max_entry_bytes} bytes could hold more than 1 GiB of Envoy's memory"
            ),
        ));
    }
    Ok(CacheConfig {
        key,
        ttl: Duration::from_millis(ttl),
        max_ttl: Duration::from_millis(max_ttl),
        deny_ttl: Duration::from_millis(deny_ttl),
        stale_if_error: Duration::from_millis(stale_if_error),
        max_entries: u32::try_from(max_entries).unwrap_or(u32::MAX),
        max_entry_bytes: usize::try_from(max_entry_bytes).unwrap_or(usize::MAX),
        fingerprint,
        slot_prefix: format!("{stat_prefix}.cache.{}.", env!("CARGO_PKG_VERSION")),
        cache_missing_headers: cache.bool("cache_missing_headers")?.unwrap_or(false),
    })
}

fn limit(root: &Object, key: &str, default: u64, min: u64, max: u64) -> Checked<usize> {
    let value = validate::in_range(key, root.integer(key)?.unwrap_or(default), min, max, "")?;
    Ok(usize::try_from(value).unwrap_or(usize::MAX))
}

fn name_set(list: Vec<Item>) -> Checked<NameSet> {
    let mut set = NameSet::default();
    for item in &list {
        set.insert(matcher(item)?);
    }
    Ok(set)
}

/// ext_authz's `StringMatcher`, restricted to the kinds that make sense for header names.
fn matcher(item: &Item) -> Checked<NameMatcher> {
    let object = item.object(&["exact", "prefix", "suffix", "contains", "ignore_case"])?;
    // Accepted for ext_authz compatibility: names are always compared lowercased.
    object.bool("ignore_case")?;
    let kinds = [
        ("exact", NameMatcher::Exact as fn(String) -> NameMatcher),
        ("prefix", NameMatcher::Prefix),
        ("suffix", NameMatcher::Suffix),
        ("contains", NameMatcher::Contains),
    ];
    let mut chosen = Vec::new();
    for (kind, make) in kinds {
        if let Some(value) = object.string(kind)? {
            chosen.push((kind, value, make));
        }
    }
    let (kind, value, make) = match chosen.as_slice() {
        [one] => *one,
        [] => {
            return Err(ConfigError::new(
                &item.path,
                "needs one of exact, prefix, suffix or contains",
            ))
        }
        _ => {
            return Err(ConfigError::new(
                &item.path,
                "has more than one of exact, prefix, suffix and contains",
            ))
        }
    };
    let field = object.field(kind);
    if value.is_empty() {
        return Err(ConfigError::new(field, "is empty"));
    }
    let name = match value.strip_prefix(':') {
        // Pseudo-headers may be named exactly (e.g. `:path`).
        Some(pseudo) if kind == "exact" => format!(":{}", validate::header_name(&field, pseudo)?),
        _ => validate::header_name(&field, value)?,
    };
    Ok(make(name))
}

fn strings(
    object: &Object,
    key: &str,
    check: fn(&str, &str) -> Checked<String>,
) -> Checked<Vec<String>> {
    object
        .list(key)?
        .unwrap_or_default()
        .iter()
        .map(|item| check(&item.path, item.string()?))
        .collect()
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
