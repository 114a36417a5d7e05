//! What a route may set for its own requests (Envoy's per-route configuration in the native
//! shell, in ext_authz's `ExtAuthzPerRoute` shape): parsed and checked once, then applied to the
//! filter's configuration into the one that route's requests get.

use std::collections::BTreeMap;

use super::body::{self, RequestBody};
use super::json::Object;
use super::json_value::{self, Json};
use super::validate::{Checked, ConfigError};
use super::Config;
use crate::digest::{fingerprint, Digest};

/// The fields of a route's settings; anything else is refused by name.
pub const ROUTE_FIELDS: &[&str] = &["disabled", "check_settings", "shadow"];
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
    /// The settings' digest: a route's verdicts are never another route's in the cache.
    pub fingerprint: Digest,
}

impl RouteOverrides {
    pub fn parse(bytes: &[u8]) -> Result<RouteOverrides, ConfigError> {
        let value = json_value::parse(bytes).map_err(|err| {
            ConfigError::new("per-route configuration", format!("not valid JSON: {err}"))
        })?;
        from_json(&value, fingerprint(bytes))
    }

    /// The configuration a request on this route gets.
    pub fn apply(&self, base: &Config) -> Config {
        let mut config = base.clone();
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
        if let Some(cache) = &mut config.cache {
            let mut both = cache.fingerprint.to_vec();
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

fn from_json(value: &Json, fingerprint: Digest) -> Checked<RouteOverrides> {
    let root = Object::new(String::new(), value, ROUTE_FIELDS)?;
    let disabled = root.bool("disabled")?.unwrap_or(false);
    let mut overrides = RouteOverrides {
        disabled,
        shadow: root.bool("shadow")?,
        context_extensions: BTreeMap::new(),
        request_body: None,
        fingerprint,
    };
    if let Some(check) = root.object("check_settings", CHECK_SETTINGS)? {
        if disabled {
            return Err(ConfigError::new(
                "check_settings",
                "has no effect on a disabled route",
            ));
        }
        overrides.context_extensions = check.string_map("context_extensions")?;
        let body = body::parse(&check)?;
        if check
            .bool("disable_request_body_buffering")?
            .unwrap_or(false)
        {
            if body.is_some() {
                return Err(ConfigError::new(
                    "check_settings.disable_request_body_buffering",
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
