//! The auth call's shape: cluster, timeout, path, authority, method, which request headers go,
//! and the headers added to it.

use std::time::Duration;

use super::fields::{headers, limit, name_set};
use super::json::Object;
use super::validate::{self, Checked};
use crate::matcher::{NameMatcher, NameSet};

pub const DEFAULT_CLUSTER: &str = "httpbin";
pub const DEFAULT_TIMEOUT_MS: u64 = 50_000;
/// ext_authz's default `grpc_service.timeout`.
pub const DEFAULT_GRPC_TIMEOUT_MS: u64 = 200;
/// The longest auth call timeout accepted. Envoy takes milliseconds as u32, and an auth call
/// longer than an hour is a misconfiguration rather than a policy.
pub const MAX_TIMEOUT_MS: u64 = 3_600_000;

/// The bounds of an Envoy with its defaults in front of the auth service (100 headers, 60 KiB),
/// which servers such as hyper's HTTP/2 also answer with a 431 rather than a reset.
pub const DEFAULT_MAX_CHECK_HEADERS: u64 = 100;
pub const DEFAULT_MAX_CHECK_HEADER_BYTES: u64 = 60 * 1024;
/// gRPC checks carry headers in a message: bounded by the server's message limit instead.
pub const DEFAULT_GRPC_MAX_CHECK_HEADER_BYTES: u64 = 1024 * 1024;

/// Headers ext_authz always sends to an HTTP auth service, whatever the allowlist says.
pub const ALWAYS_FORWARDED: [&str; 6] = [
    ":authority",
    ":method",
    ":path",
    "host",
    "content-length",
    "authorization",
];

/// Which request headers go to the auth service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forward {
    /// Every request header, pseudo-headers included, as the seed did.
    All,
    /// Only these (in HTTP mode, plus the ones ext_authz always sends).
    Allowlist(NameSet),
}

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
    /// The configured `path`, which a route's own `path_prefix` goes before.
    pub fixed_path: Option<String>,
    pub authority: Option<String>,
    pub method: Option<String>,
    pub forward: Forward,
    pub headers_to_add: Vec<(String, String)>,
    /// The most headers the auth server takes in a call (HTTP).
    pub max_check_headers: usize,
    /// The most header bytes the auth server takes in a call, counted as HTTP/2 does.
    pub max_check_header_bytes: usize,
}

/// Reads the auth call's fields from the configuration's root.
pub fn parse(root: &Object, grpc: bool) -> Checked<AuthRequest> {
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
    Ok(AuthRequest {
        cluster: validate::cluster(
            "cluster",
            root.string("cluster")?.unwrap_or(DEFAULT_CLUSTER),
        )?,
        timeout: Duration::from_millis(timeout_ms),
        path: path_rule(
            root.string("path")?,
            root.string("path_prefix")?.unwrap_or_default(),
        )?,
        fixed_path: root
            .string("path")?
            .map(|path| validate::path("path", path))
            .transpose()?,
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
        max_check_headers: if grpc {
            usize::MAX
        } else {
            limit(
                root,
                "max_check_headers",
                DEFAULT_MAX_CHECK_HEADERS,
                16,
                1024,
            )?
        },
        max_check_header_bytes: limit(
            root,
            "max_check_header_bytes",
            if grpc {
                DEFAULT_GRPC_MAX_CHECK_HEADER_BYTES
            } else {
                DEFAULT_MAX_CHECK_HEADER_BYTES
            },
            4 * 1024,
            1024 * 1024,
        )?,
    })
}

fn path_rule(path: Option<&str>, prefix: &str) -> Checked<PathRule> {
    let prefix = validate::path_prefix("path_prefix", prefix)?;
    Ok(match path {
        Some(path) => PathRule::Fixed(prefix + &validate::path("path", path)?),
        None if prefix.is_empty() => PathRule::Client,
        None => PathRule::Prefixed(prefix),
    })
}
