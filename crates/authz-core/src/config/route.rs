//! What a route may set for its own requests (Envoy's per-route configuration in the native
//! shell, in ext_authz's `ExtAuthzPerRoute` shape): parsed and checked once, then applied to the
//! filter's configuration into the one that route's requests get.

use std::collections::BTreeMap;
use std::time::Duration;

use super::body::{self, RequestBody};
use super::cache::{self, CacheConfig, CACHE_FIELDS};
use super::json::Object;
use super::json_value::{self, Json};
use super::request::{PathRule, MAX_TIMEOUT_MS};
use super::validate::{self, Checked, ConfigError};
use super::Config;
use crate::digest::{fingerprint, Digest};

/// The fields of a route's settings; anything else is refused by name.
pub const ROUTE_FIELDS: &[&str] = &[
    "disabled",
    "check_settings",
    "shadow",
    "cluster",
    "path_prefix",
    "timeout_ms",
    "failure_mode_allow",
    "cache",
];
const CHECK_SETTINGS: &[&str] = &[
    "context_extensions",
    "disable_request_body_buffering",
    "with_request_body",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteOverrides {
    /// No check on this route (`ExtAuthzPerRoute.disabled`).
    pub disabled: bool,
    /// Shadow mode on (or off) for this route, over the filter's.
    pub shadow: Option<bool>,
    /// Merged over the filter's, key by key (`check_settings.context_extensions`).
    pub context_extensions: BTreeMap<String, String>,
    /// `Some(None)`: no body with the check on this route; `Some(Some(rule))`: this rule.
    pub request_body: Option<Option<RequestBody>>,
    /// The auth service for this route: its cluster, path prefix (HTTP) and timeout.
    pub cluster: Option<String>,
    pub path_prefix: Option<String>,
    pub timeout: Option<Duration>,
    pub failure_mode_allow: Option<bool>,
    /// `Some(None)`: no cache on this route (`"cache": false`); `Some(Some(_))`: its own.
    pub cache: Option<Option<CacheConfig>>,
    /// The settings' digest: a route's verdicts are never another route's in the cache.
    pub fingerprint: Digest,
}

impl RouteOverrides {
    pub fn parse(bytes: &[u8]) -> Result<RouteOverrides, ConfigError> {
        let value = json_value::parse(bytes).map_err(|err| {
            ConfigError::new("per-route configuration", format!("not valid JSON: {err}"))
        })?;
        let root = Object::new(String::new(), &value, ROUTE_FIELDS)?;
        from_object(&root, fingerprint(bytes))
    }

    /// What in these settings the filter's configuration has no use for (Envoy's per-route
    /// settings are checked before a filter is known): the field and why.
    pub fn conflict(&self, base: &Config) -> Option<(&'static str, &'static str)> {
        use super::Protocol;
        if !self.context_extensions.is_empty() && base.protocol != Protocol::Grpc {
            return Some((
                "check_settings.context_extensions",
                "is sent only with protocol grpc",
            ));
        }
        if self.path_prefix.is_some() && base.protocol != Protocol::Http {
            return Some(("path_prefix", "has no effect with protocol grpc or authzen"));
        }
        if matches!(self.request_body, Some(Some(_))) && base.protocol == Protocol::AuthZen {
            return Some((
                "check_settings.with_request_body",
                "has no effect with protocol authzen: an evaluation carries no body",
            ));
        }
        None
    }

    /// The configuration a request on this route gets. It selects no further `routes` rule.
    pub fn apply(&self, base: &Config) -> Config {
        let mut config = base.clone();
        config.routes = Vec::new();
        config.disabled = self.disabled;
        if let Some(shadow) = self.shadow {
            config.shadow = shadow;
        }
        for (key, value) in &self.context_extensions {
            config.context_extensions.insert(key.clone(), value.clone());
        }
        if let Some(body) = &self.request_body {
            config.request_body = body.clone();
        }
        let request = &mut config.auth_request;
        if let Some(cluster) = &self.cluster {
            request.cluster = cluster.clone();
        }
        if let Some(prefix) = &self.path_prefix {
            request.path = match &request.fixed_path {
                Some(path) => PathRule::Fixed(format!("{prefix}{path}")),
                None if prefix.is_empty() => PathRule::Client,
                None => PathRule::Prefixed(prefix.clone()),
            };
        }
        if let Some(timeout) = self.timeout {
            request.timeout = timeout;
        }
        if let Some(allow) = self.failure_mode_allow {
            config.failure.allow = allow;
        }
        if let Some(cache) = &self.cache {
            config.cache = cache.clone().map(|mut cache| {
                cache.slot_prefix = cache::slot_prefix(&base.stat_prefix);
                cache
            });
        }
        if let Some(cache) = &mut config.cache {
            let mut both = base.fingerprint.to_vec();
            both.extend_from_slice(&self.fingerprint);
            cache.fingerprint = fingerprint(&both);
        }
        // A verdict that depends on the body is never cached.
        if config.request_body.is_some() {
            config.cache = None;
        }
        config
    }
}

/// A route's settings from an object whose fields are already checked against [`ROUTE_FIELDS`]
/// (and, in a `routes` rule, the rule's own).
pub(super) fn from_object(root: &Object, fingerprint: Digest) -> Checked<RouteOverrides> {
    let disabled = root.bool("disabled")?.unwrap_or(false);
    let mut overrides = RouteOverrides {
        disabled,
        shadow: root.bool("shadow")?,
        context_extensions: BTreeMap::new(),
        request_body: None,
        cluster: root
            .string("cluster")?
            .map(|c| validate::cluster(&root.field("cluster"), c))
            .transpose()?,
        path_prefix: root
            .string("path_prefix")?
            .map(|p| validate::path_prefix(&root.field("path_prefix"), p))
            .transpose()?,
        timeout: root
            .integer("timeout_ms")?
            .map(|ms| validate::in_range(&root.field("timeout_ms"), ms, 1, MAX_TIMEOUT_MS, "ms"))
            .transpose()?
            .map(Duration::from_millis),
        failure_mode_allow: root.bool("failure_mode_allow")?,
        cache: route_cache(root)?,
        fingerprint,
    };
    if disabled {
        if let Some(field) = ROUTE_FIELDS.iter().skip(1).find(|f| root.has(f)) {
            return Err(ConfigError::new(
                root.field(field),
                "has no effect on a disabled route",
            ));
        }
    }
    if let Some(check) = root.object("check_settings", CHECK_SETTINGS)? {
        overrides.context_extensions = check.string_map("context_extensions")?;
        let body = body::parse(&check)?;
        if check
            .bool("disable_request_body_buffering")?
            .unwrap_or(false)
        {
            if body.is_some() {
                return Err(ConfigError::new(
                    check.field("disable_request_body_buffering"),
                    "contradicts with_request_body",
                ));
            }
            overrides.request_body = Some(None);
        } else if body.is_some() {
            overrides.request_body = Some(body);
        }
    }
    Ok(overrides)
}

/// `cache`: `false` for none on this route, or a cache section of its own.
fn route_cache(root: &Object) -> Checked<Option<Option<CacheConfig>>> {
    let Some(item) = root.item("cache") else {
        return Ok(None);
    };
    if let Json::Bool(false) = item.value {
        return Ok(Some(None));
    }
    let section = item.object(CACHE_FIELDS).map_err(|err| match item.value {
        Json::Bool(true) => ConfigError::new(
            &item.path,
            "true is not a cache: write a cache section, or false for none on this route",
        ),
        _ => err,
    })?;
    // Fingerprint and slot prefix come from the filter's configuration when applied.
    Ok(Some(Some(cache::parse(&section, [0; 32], "")?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(json: &str) -> Config {
        Config::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn a_route_disables_the_check_or_sets_its_own_settings() {
        let off = RouteOverrides::parse(br#"{"disabled": true}"#).unwrap();
        assert!(off.apply(&base(r#"{"protocol": "grpc"}"#)).disabled);
        let route = RouteOverrides::parse(
            br#"{"check_settings": {"context_extensions": {"app": "shop", "tier": "gold"},
                "with_request_body": {"max_request_bytes": 64}}}"#,
        )
        .unwrap();
        let config = route.apply(&base(
            r#"{"protocol": "grpc", "context_extensions": {"app": "base", "zone": "eu"}}"#,
        ));
        assert!(!config.disabled);
        assert_eq!(config.context_extensions["app"], "shop", "the route wins");
        assert_eq!(config.context_extensions["zone"], "eu", "the filter's stay");
        assert_eq!(config.request_body.unwrap().max_bytes, 64);
        let plain = RouteOverrides::parse(
            br#"{"check_settings": {"disable_request_body_buffering": true}}"#,
        )
        .unwrap();
        let with_body =
            base(r#"{"protocol": "grpc", "with_request_body": {"max_request_bytes": 8}}"#);
        assert!(plain.apply(&with_body).request_body.is_none());
    }

    #[test]
    fn a_routes_cache_is_its_own_and_a_body_route_is_never_cached() {
        let cached = base(r#"{"decision": "status", "cache": {"key": ["authorization"]}}"#);
        let a = RouteOverrides::parse(br#"{"check_settings": {}}"#).unwrap();
        let b = RouteOverrides::parse(br#"{"check_settings": {"context_extensions": {"x": "1"}}}"#)
            .unwrap();
        let fp = |r: &RouteOverrides| r.apply(&cached).cache.unwrap().fingerprint;
        assert_ne!(fp(&a), fp(&b));
        assert_ne!(fp(&a), cached.cache.as_ref().unwrap().fingerprint);
        let body = RouteOverrides::parse(
            br#"{"check_settings": {"with_request_body": {"max_request_bytes": 8}}}"#,
        )
        .unwrap();
        assert!(body.apply(&cached).cache.is_none());
    }

    #[test]
    fn mistakes_are_named() {
        for (json, field) in [
            (r#"{"disable": true}"#, "disable"),
            (
                r#"{"disabled": true, "check_settings": {}}"#,
                "check_settings",
            ),
            (r#"{"disabled": true, "cluster": "x"}"#, "cluster"),
            (r#"{"cache": true}"#, "cache"),
            (r#"{"cache": {"ttl_ms": 5}}"#, "cache.key"),
            (r#"{"timeout_ms": 0}"#, "timeout_ms"),
            (r#"{"cluster": ""}"#, "cluster"),
            (
                r#"{"check_settings": {"disable_request_body_buffering": true, "with_request_body": {"max_request_bytes": 1}}}"#,
                "check_settings.disable_request_body_buffering",
            ),
            (
                r#"{"check_settings": {"context_extensions": {"a": 1}}}"#,
                "check_settings.context_extensions.a",
            ),
        ] {
            let err = RouteOverrides::parse(json.as_bytes()).unwrap_err();
            assert_eq!(err.field, field, "{json}: {err}");
        }
    }
}
