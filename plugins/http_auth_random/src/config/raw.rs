//! The configuration's JSON schema as serde types: field names, defaults, unknown fields refused.

use serde::Deserialize;

pub const DEFAULT_CLUSTER: &str = "httpbin";
pub const DEFAULT_TIMEOUT_MS: u64 = 50_000;
pub const DEFAULT_STATUS_ON_ERROR: u32 = 403;
pub const DEFAULT_DENY_STATUS: u32 = 403;
pub const DEFAULT_DENY_BODY: &str = "access forbidden";
pub const DEFAULT_STAT_PREFIX: &str = "http_auth_random";
pub const DEFAULT_MAX_RESPONSE_BODY_BYTES: u64 = 64 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub cluster: String,
    pub timeout_ms: u64,
    pub decision: RawDecision,
    pub path: Option<String>,
    pub authority: Option<String>,
    pub method: Option<String>,
    pub path_prefix: String,
    pub allowed_headers: Option<Vec<RawMatcher>>,
    pub headers_to_add: Vec<RawHeader>,
    pub failure_mode_allow: bool,
    pub failure_mode_allow_header_add: bool,
    pub status_on_error: u32,
    pub deny: RawDeny,
    pub allowed_upstream_headers: Vec<RawMatcher>,
    pub allowed_upstream_headers_to_append: Vec<RawMatcher>,
    pub strip_client_upstream_headers: bool,
    pub allowed_client_headers: Option<Vec<RawMatcher>>,
    pub allowed_client_headers_on_success: Vec<RawMatcher>,
    pub exempt: RawExempt,
    pub stat_prefix: String,
    pub max_response_body_bytes: u64,
    #[cfg(feature = "trap-switch")]
    pub trap_on_request: bool,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            cluster: DEFAULT_CLUSTER.to_owned(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            decision: RawDecision::default(),
            path: None,
            authority: None,
            method: None,
            path_prefix: String::new(),
            allowed_headers: None,
            headers_to_add: Vec::new(),
            failure_mode_allow: false,
            failure_mode_allow_header_add: true,
            status_on_error: DEFAULT_STATUS_ON_ERROR,
            deny: RawDeny::default(),
            allowed_upstream_headers: Vec::new(),
            allowed_upstream_headers_to_append: Vec::new(),
            strip_client_upstream_headers: true,
            allowed_client_headers: None,
            allowed_client_headers_on_success: Vec::new(),
            exempt: RawExempt::default(),
            stat_prefix: DEFAULT_STAT_PREFIX.to_owned(),
            max_response_body_bytes: DEFAULT_MAX_RESPONSE_BODY_BYTES,
            #[cfg(feature = "trap-switch")]
            trap_on_request: false,
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawDecision {
    #[default]
    FnvParity,
    Status,
}

/// ext_authz's `StringMatcher`, restricted to the kinds that make sense for header names.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawMatcher {
    pub exact: Option<String>,
    pub prefix: Option<String>,
    pub suffix: Option<String>,
    pub contains: Option<String>,
    /// Accepted for ext_authz compatibility; names are always compared lowercased.
    pub ignore_case: bool,
}

/// ext_authz's `HeaderValue`: `{"key": ..., "value": ...}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeader {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDeny {
    pub status: u32,
    pub body: String,
    pub headers: Vec<RawHeader>,
}

impl Default for RawDeny {
    fn default() -> Self {
        RawDeny {
            status: DEFAULT_DENY_STATUS,
            body: DEFAULT_DENY_BODY.to_owned(),
            headers: vec![RawHeader {
                key: "powered-by".to_owned(),
                value: "http_auth_random".to_owned(),
            }],
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawExempt {
    pub paths: Vec<String>,
    pub path_prefixes: Vec<String>,
    pub methods: Vec<String>,
}
