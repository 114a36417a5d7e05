//! `routes`: rules that give requests on some routes settings of their own, each checked
//! against the filter's configuration and turned into the configuration its requests get, once.

use std::rc::Rc;

use super::json::Object;
use super::route::{self, RouteOverrides, ROUTE_FIELDS};
use super::validate::{self, Checked, ConfigError};
use super::{Config, Protocol, GRPC_MAX_MESSAGE_BYTES};
use crate::digest::fingerprint;
use crate::paths::is_plain;
use crate::route_match::{host_of, PathCondition, RouteMatch};

const MATCH_FIELDS: &[&str] = &[
    "route_name",
    "virtual_host",
    "authority",
    "path",
    "path_prefix",
    "methods",
];

/// One rule: its name (in the decision record and logs), when it applies, and the whole
/// configuration its requests get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRule {
    pub name: String,
    pub when: RouteMatch,
    pub config: Rc<Config>,
}

/// Reads `routes`, each rule's settings laid over `base`.
pub fn parse(root: &Object, base: &Config) -> Checked<Vec<RouteRule>> {
    let Some(items) = root.list("routes")? else {
        return Ok(Vec::new());
    };
    let mut fields = vec!["name", "match"];
    fields.extend_from_slice(ROUTE_FIELDS);
    let mut rules: Vec<RouteRule> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let rule = item.object(&fields)?;
        let name = rule
            .string("name")?
            .ok_or_else(|| ConfigError::new(rule.field("name"), "is missing"))?;
        let name = validate::stat_prefix(&rule.field("name"), name)?;
        if rules.iter().any(|earlier| earlier.name == name) {
            return Err(ConfigError::new(
                rule.field("name"),
                format!("\"{name}\" names an earlier rule too"),
            ));
        }
        let when = conditions(&rule)?;
        // Each rule's verdicts are its own in the cache, whatever its settings.
        let mut seed = base.fingerprint.to_vec();
        seed.extend_from_slice(&u64::try_from(index).unwrap_or(u64::MAX).to_le_bytes());
        let overrides = route::from_object(&rule, fingerprint(&seed))?;
        let mut config = overrides.apply(base);
        config.route_rule = Some(name.clone());
        fits(&rule, &overrides, &config, base)?;
        rules.push(RouteRule {
            name,
            when,
            config: Rc::new(config),
        });
    }
    Ok(rules)
}

/// `match`: at least one condition, each one a request can meet.
fn conditions(rule: &Object) -> Checked<RouteMatch> {
    let field = rule.field("match");
    let when = rule
        .object("match", MATCH_FIELDS)?
        .ok_or_else(|| ConfigError::new(&field, "is missing"))?;
    if when.is_empty() {
        return Err(ConfigError::new(
            field,
            "matches every request: give its settings at the top level instead",
        ));
    }
    let plain_path = |key: &str| -> Checked<Option<String>> {
        let Some(path) = when.string(key)? else {
            return Ok(None);
        };
        let path = validate::path(&when.field(key), path)?;
        if path.contains(['?', '#', '*']) {
            return Err(ConfigError::new(
                when.field(key),
                format!("\"{path}\" has a query, a fragment or a `*`: a rule matches the path before `?`, exactly or as a plain prefix"),
            ));
        }
        if !is_plain(&path) {
            return Err(ConfigError::new(
                when.field(key),
                format!("\"{path}\" has dot segments, percent-encoding, '\\', '//' or ';': no request path selects a rule by it"),
            ));
        }
        Ok(Some(path))
    };
    let path = match (plain_path("path")?, plain_path("path_prefix")?) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                when.field("path_prefix"),
                "with path: give one or the other",
            ))
        }
        (Some(exact), None) => Some(PathCondition::Exact(exact)),
        (None, Some(prefix)) => Some(PathCondition::Prefix(prefix)),
        (None, None) => None,
    };
    let authority = match when.string("authority")? {
        None => None,
        Some(value) => {
            let field = when.field("authority");
            let value = validate::authority(&field, value)?;
            if value.contains(['*', '@']) {
                return Err(ConfigError::new(
                    field,
                    format!("\"{value}\" is not a host: a rule matches one host exactly (without regard to case); for wildcards, match on Envoy's virtual_host"),
                ));
            }
            Some(host_of(&value))
        }
    };
    let methods = match when.list("methods")? {
        None => Vec::new(),
        Some(list) if list.is_empty() => {
            return Err(ConfigError::new(when.field("methods"), "is empty"))
        }
        Some(list) => list
            .iter()
            // Compared without regard to case, so written in any case.
            .map(|item| Ok(validate::method(&item.path, item.string()?)?.to_ascii_uppercase()))
            .collect::<Checked<_>>()?,
    };
    let name = |key: &str| -> Checked<Option<String>> {
        match when.string(key)? {
            Some("") => Err(ConfigError::new(when.field(key), "is empty")),
            other => Ok(other.map(str::to_owned)),
        }
    };
    let parsed = RouteMatch {
        route_name: name("route_name")?,
        virtual_host: name("virtual_host")?,
        authority,
        path,
        methods,
    };
    // `{"path": null}` is no condition at all, and a rule without one would match everything.
    if parsed == RouteMatch::default() {
        return Err(ConfigError::new(
            rule.field("match"),
            "has no condition (null is none): give its settings at the top level instead",
        ));
    }
    Ok(parsed)
}

/// The checks the filter's configuration gets, for what a rule changed in it.
fn fits(rule: &Object, overrides: &RouteOverrides, config: &Config, base: &Config) -> Checked<()> {
    let grpc = config.protocol == Protocol::Grpc;
    let check_settings = rule.field("check_settings");
    if !grpc && !overrides.context_extensions.is_empty() {
        return Err(ConfigError::new(
            format!("{check_settings}.context_extensions"),
            "is sent only with protocol grpc",
        ));
    }
    let authzen = config.protocol == Protocol::AuthZen;
    if (grpc || authzen) && overrides.path_prefix.is_some() {
        return Err(ConfigError::new(
            rule.field("path_prefix"),
            "has no effect with protocol grpc or authzen",
        ));
    }
    if authzen && matches!(overrides.request_body, Some(Some(_))) {
        return Err(ConfigError::new(
            format!("{check_settings}.with_request_body"),
            "has no effect with protocol authzen: an evaluation carries no body",
        ));
    }
    let Some(body) = &config.request_body else {
        return Ok(());
    };
    let cached = match &overrides.cache {
        Some(cache) => cache.is_some(),
        None => base.cache.is_some(),
    };
    if cached {
        let field = match overrides.request_body {
            Some(Some(_)) => format!("{check_settings}.with_request_body"),
            _ => rule.field("cache"),
        };
        return Err(ConfigError::new(
            field,
            "with_request_body cannot be used with cache: a verdict that depends on the body cannot be keyed",
        ));
    }
    let most = body.max_bytes + config.auth_request.max_check_header_bytes;
    if grpc && most > GRPC_MAX_MESSAGE_BYTES {
        return Err(ConfigError::new(
            format!("{check_settings}.with_request_body.max_request_bytes"),
            format!(
                "with max_check_header_bytes, a CheckRequest could be {most} bytes, over the {GRPC_MAX_MESSAGE_BYTES} bytes gRPC servers take by default"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(rules: &str) -> Result<Config, ConfigError> {
        Config::parse(format!(r#"{{"decision": "status", "routes": {rules}}}"#).as_bytes())
    }

    #[test]
    fn each_rule_becomes_the_configuration_its_requests_get() {
        let config = routes(
            r#"[{"name": "admin", "match": {"path_prefix": "/admin/", "authority": "Admin.Example.com."},
                 "cluster": "strict", "timeout_ms": 99, "failure_mode_allow": true,
                 "cache": {"key": ["authorization"]}},
                {"name": "off", "match": {"methods": ["options"]}, "disabled": true}]"#,
        )
        .unwrap();
        let admin = &config.routes[0];
        assert_eq!(admin.when.authority.as_deref(), Some("admin.example.com."));
        assert_eq!(admin.config.route_rule.as_deref(), Some("admin"));
        assert!(admin.config.routes.is_empty());
        assert_eq!(admin.config.auth_request.cluster, "strict");
        assert_eq!(admin.config.auth_request.timeout.as_millis(), 99);
        assert!(admin.config.failure.allow);
        assert!(admin.config.cache.is_some() && config.cache.is_none());
        assert!(config.routes[1].config.disabled);
        assert_eq!(config.routes[1].when.methods, ["OPTIONS"]);
        assert!(!config.disabled && !config.failure.allow);
    }

    #[test]
    fn mistakes_in_rules_are_named() {
        for (rules, field) in [
            (r#"[{"match": {"path": "/a"}}]"#, "routes[0].name"),
            (
                r#"[{"name": "a b", "match": {"path": "/a"}}]"#,
                "routes[0].name",
            ),
            (
                r#"[{"name": "a", "match": {"path": "/a"}}, {"name": "a", "match": {"path": "/b"}}]"#,
                "routes[1].name",
            ),
            (r#"[{"name": "a"}]"#, "routes[0].match"),
            (r#"[{"name": "a", "match": {}}]"#, "routes[0].match"),
            (
                r#"[{"name": "a", "match": {"paht": "/a"}}]"#,
                "routes[0].match.paht",
            ),
            (
                r#"[{"name": "a", "match": {"path": "/a", "path_prefix": "/b"}}]"#,
                "routes[0].match.path_prefix",
            ),
            (
                r#"[{"name": "a", "match": {"path_prefix": "/a/../b"}}]"#,
                "routes[0].match.path_prefix",
            ),
            (
                r#"[{"name": "a", "match": {"path": "a"}}]"#,
                "routes[0].match.path",
            ),
            (
                r#"[{"name": "a", "match": {"authority": "*.a.com"}}]"#,
                "routes[0].match.authority",
            ),
            (
                r#"[{"name": "a", "match": {"path": null, "methods": null}}]"#,
                "routes[0].match",
            ),
            (
                r#"[{"name": "a", "match": {"path_prefix": "/api/*"}}]"#,
                "routes[0].match.path_prefix",
            ),
            (
                r#"[{"name": "a", "match": {"methods": ["G T"]}}]"#,
                "routes[0].match.methods[0]",
            ),
            (
                r#"[{"name": "a", "match": {"path": "/a?b=1"}}]"#,
                "routes[0].match.path",
            ),
            (
                r#"[{"name": "a", "match": {"methods": []}}]"#,
                "routes[0].match.methods",
            ),
            (
                r#"[{"name": "a", "match": {"route_name": ""}}]"#,
                "routes[0].match.route_name",
            ),
            (
                r#"[{"name": "a", "match": {"path": "/a"}, "clustre": "x"}]"#,
                "routes[0].clustre",
            ),
            (
                r#"[{"name": "a", "match": {"path": "/a"}, "cache": true}]"#,
                "routes[0].cache",
            ),
            (
                r#"[{"name": "a", "match": {"path": "/a"}, "disabled": true, "shadow": true}]"#,
                "routes[0].shadow",
            ),
            (
                r#"[{"name": "a", "match": {"path": "/a"}, "check_settings": {"context_extensions": {"k": "v"}}}]"#,
                "routes[0].check_settings.context_extensions",
            ),
            (
                r#"[{"name": "a", "match": {"path": "/a"}, "cache": {"key": [":path"]}, "check_settings": {"with_request_body": {"max_request_bytes": 10}}}]"#,
                "routes[0].check_settings.with_request_body",
            ),
            (r#"{"name": "a"}"#, "routes"),
        ] {
            let err = routes(rules).unwrap_err();
            assert_eq!(err.field, field, "{rules}: {err}");
        }
        let grpc = Config::parse(
            br#"{"protocol": "grpc", "routes": [{"name": "a", "match": {"path": "/a"}, "path_prefix": "/x"}]}"#,
        )
        .unwrap_err();
        assert_eq!(grpc.field, "routes[0].path_prefix");
        let authzen = Config::parse(
            br#"{"protocol": "authzen", "authzen": {"subject": {"id_header": "x"}},
                 "routes": [{"name": "a", "match": {"path": "/a"},
                             "check_settings": {"with_request_body": {"max_request_bytes": 9}}}]}"#,
        )
        .unwrap_err();
        assert_eq!(authzen.field, "routes[0].check_settings.with_request_body");
    }

    #[test]
    fn a_body_rule_under_a_cached_filter_turns_the_cache_off_by_saying_so() {
        let cached = |rule: &str| {
            Config::parse(
                format!(
                    r#"{{"decision": "status", "cache": {{"key": [":path"]}}, "routes": [{rule}]}}"#
                )
                .as_bytes(),
            )
        };
        let body = r#""check_settings": {"with_request_body": {"max_request_bytes": 10}}"#;
        let err = cached(&format!(
            r#"{{"name": "a", "match": {{"path": "/a"}}, {body}}}"#
        ))
        .unwrap_err();
        assert_eq!(err.field, "routes[0].check_settings.with_request_body");
        let ok = cached(&format!(
            r#"{{"name": "a", "match": {{"path": "/a"}}, "cache": false, {body}}}"#
        ))
        .unwrap();
        assert!(ok.routes[0].config.cache.is_none() && ok.routes[0].config.request_body.is_some());
    }
}
