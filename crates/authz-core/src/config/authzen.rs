//! `authzen`: how a request maps onto an OpenID AuthZEN 1.0 evaluation (subject, action,
//! resource, context), after the API-gateway profile's defaults, and where the answer's
//! reason goes on a deny.

use super::json::Object;
use super::json_rule::{self, JsonHeader};
use super::validate::{self, Checked, ConfigError};
use crate::headers::is_envoy_owned;

/// A request header the evaluation reads: one Envoy passes to filters as the client sent it.
fn request_header(field: &str, name: &str) -> Checked<String> {
    let name = validate::header_name(field, name)?;
    if is_envoy_owned(&name, b"") {
        return Err(ConfigError::new(
            field,
            format!("\"{name}\" is Envoy's: it frames or routes the request, and is not a value to evaluate"),
        ));
    }
    Ok(name)
}

pub const DEFAULT_AUTHZEN_PATH: &str = "/access/v1/evaluation";
const FIELDS: &[&str] = &[
    "path",
    "subject",
    "action",
    "resource",
    "context",
    "deny_reason",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthZen {
    /// Where evaluations are POSTed on the auth cluster.
    pub path: String,
    pub subject: Subject,
    /// `None`: the request's method.
    pub action: Option<String>,
    pub resource: Resource,
    pub context: Context,
    /// A string from a deny's JSON answer put on the client's reply as a header.
    pub deny_reason: Option<JsonHeader>,
}

impl AuthZen {
    /// The request headers the evaluation is built from.
    pub fn request_headers(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.subject.id_header.as_str())
            .chain(self.subject.properties.iter().map(|(_, h)| h.as_str()))
            .chain(self.context.headers.iter().map(|(_, h)| h.as_str()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub kind: String,
    /// The request header (set by an earlier filter, e.g. `jwt_authn`) whose value is the id.
    pub id_header: String,
    /// The id of a request without the header; `None`: such a request is denied unasked.
    pub anonymous_id: Option<String>,
    /// `properties` by name, each from a request header.
    pub properties: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceId {
    /// The path without its query (the API-gateway profile's default).
    Path,
    /// Envoy's route name (`xds.route_name`).
    RouteName,
}

/// What the resource's `properties` may hold, each under its own name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestPart {
    Method,
    Path,
    Query,
    Host,
    Scheme,
}

impl RequestPart {
    pub fn name(self) -> &'static str {
        match self {
            RequestPart::Method => "method",
            RequestPart::Path => "path",
            RequestPart::Query => "query",
            RequestPart::Host => "host",
            RequestPart::Scheme => "scheme",
        }
    }

    const ALL: [RequestPart; 5] = [
        RequestPart::Method,
        RequestPart::Path,
        RequestPart::Query,
        RequestPart::Host,
        RequestPart::Scheme,
    ];
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub kind: String,
    pub id: ResourceId,
    pub properties: Vec<RequestPart>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// `source_address`: the client's address as Envoy saw it.
    pub source_address: bool,
    /// Fixed values (`values`), e.g. the environment or tenant.
    pub values: Vec<(String, String)>,
    /// Values from request headers (`headers`), by name: e.g. the time, written by an
    /// earlier filter with Envoy's own `%START_TIME%` formatter.
    pub headers: Vec<(String, String)>,
}

/// Reads `authzen`; present or not, a configuration with protocol authzen gets one.
pub fn parse(root: &Object) -> Checked<AuthZen> {
    let field = "authzen";
    let section = root.object(field, FIELDS)?.ok_or_else(|| {
        ConfigError::new(
            field,
            "is missing: protocol authzen needs at least subject.id_header",
        )
    })?;
    let path = match section.string("path")? {
        Some(path) => validate::path(&section.field("path"), path)?,
        None => DEFAULT_AUTHZEN_PATH.to_owned(),
    };
    let subject = subject(&section)?;
    let action = match section.object("action", &["name"])? {
        None => None,
        Some(action) => Some(non_empty(&action, "name")?.ok_or_else(|| {
            ConfigError::new(
                action.field("name"),
                "is missing (leave out action for the method)",
            )
        })?),
    };
    Ok(AuthZen {
        path,
        subject,
        action,
        resource: resource(&section)?,
        context: context(&section)?,
        deny_reason: section
            .item("deny_reason")
            .map(|item| json_rule::header(&item))
            .transpose()?,
    })
}

fn subject(section: &Object) -> Checked<Subject> {
    let subject = section
        .object(
            "subject",
            &["type", "id_header", "anonymous_id", "properties"],
        )?
        .ok_or_else(|| {
            ConfigError::new(
                section.field("subject"),
                "is missing: name the header that holds the subject's id (id_header)",
            )
        })?;
    let id_field = subject.field("id_header");
    let id_header = subject.string("id_header")?.ok_or_else(|| {
        ConfigError::new(
            &id_field,
            "is missing: the request header holding the subject's id, set by an earlier filter",
        )
    })?;
    let mut properties = Vec::new();
    for (name, header) in subject.string_map("properties")? {
        let field = format!("{}.{name}", subject.field("properties"));
        properties.push((name, request_header(&field, &header)?));
    }
    Ok(Subject {
        kind: non_empty(&subject, "type")?.unwrap_or_else(|| "identity".to_owned()),
        id_header: request_header(&id_field, id_header)?,
        anonymous_id: non_empty(&subject, "anonymous_id")?,
        properties,
    })
}

fn resource(section: &Object) -> Checked<Resource> {
    let Some(resource) = section.object("resource", &["type", "id", "properties"])? else {
        return Ok(Resource {
            kind: "route".to_owned(),
            id: ResourceId::Path,
            properties: Vec::new(),
        });
    };
    let id = match resource.string("id")? {
        None | Some("path") => ResourceId::Path,
        Some("route_name") => ResourceId::RouteName,
        Some(other) => {
            return Err(ConfigError::new(
                resource.field("id"),
                format!("\"{other}\" is not a resource id: path or route_name"),
            ))
        }
    };
    let mut properties = Vec::new();
    for item in resource.list("properties")?.unwrap_or_default() {
        let name = item.string()?;
        let part = RequestPart::ALL
            .into_iter()
            .find(|part| part.name() == name)
            .ok_or_else(|| {
                ConfigError::new(
                    &item.path,
                    format!(
                        "\"{name}\" is not a request part: method, path, query, host or scheme"
                    ),
                )
            })?;
        if !properties.contains(&part) {
            properties.push(part);
        }
    }
    Ok(Resource {
        kind: non_empty(&resource, "type")?.unwrap_or_else(|| "route".to_owned()),
        id,
        properties,
    })
}

fn context(section: &Object) -> Checked<Context> {
    let Some(context) = section.object("context", &["source_address", "values", "headers"])? else {
        return Ok(Context::default());
    };
    let mut headers = Vec::new();
    for (name, header) in context.string_map("headers")? {
        let field = format!("{}.{name}", context.field("headers"));
        headers.push((name, request_header(&field, &header)?));
    }
    let parsed = Context {
        source_address: context.bool("source_address")?.unwrap_or(false),
        values: context.string_map("values")?.into_iter().collect(),
        headers,
    };
    // One name, one member: a decision point that keeps the last of two would read a header
    // where the operator fixed a value.
    let mut names: Vec<&str> = parsed
        .values
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    if parsed.source_address {
        names.push("source_address");
    }
    for (name, _) in &parsed.headers {
        if names.contains(&name.as_str()) {
            return Err(ConfigError::new(
                format!("{}.{name}", context.field("headers")),
                format!("\"{name}\" is also a fixed value or source_address: each context member comes from one place"),
            ));
        }
        names.push(name);
    }
    Ok(parsed)
}

fn non_empty(object: &Object, key: &str) -> Checked<Option<String>> {
    match object.string(key)? {
        Some("") => Err(ConfigError::new(object.field(key), "is empty")),
        other => Ok(other.map(str::to_owned)),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ResourceId, Rule};

    fn authzen(section: &str) -> Result<Config, crate::config::ConfigError> {
        Config::parse(format!(r#"{{"protocol": "authzen", "authzen": {section}}}"#).as_bytes())
    }

    #[test]
    fn a_section_with_only_the_subject_header_takes_the_profiles_defaults() {
        let config = authzen(r#"{"subject": {"id_header": "X-User-Id"}}"#).unwrap();
        let section = config.authzen.as_ref().unwrap();
        assert_eq!(section.path, "/access/v1/evaluation");
        assert_eq!(section.subject.kind, "identity");
        assert_eq!(section.subject.id_header, "x-user-id");
        assert_eq!(section.action, None);
        assert_eq!(
            (section.resource.kind.as_str(), section.resource.id),
            ("route", ResourceId::Path)
        );
        let Rule::Json(rule) = &config.rule else {
            panic!("{:?}", config.rule)
        };
        assert_eq!(rule.pointer, "/decision");
        assert!(rule.answer_2xx_only);
    }

    #[test]
    fn mistakes_are_named() {
        for (json, field) in [
            (r#"{"protocol": "authzen"}"#, "authzen"),
            (
                r#"{"protocol": "authzen", "authzen": {}}"#,
                "authzen.subject",
            ),
            (
                r#"{"protocol": "authzen", "authzen": {"subject": {}}}"#,
                "authzen.subject.id_header",
            ),
            (
                r#"{"protocol": "authzen", "authzen": {"subject": {"id_header": "x y"}}}"#,
                "authzen.subject.id_header",
            ),
            (
                r#"{"protocol": "authzen", "authzen": {"subject": {"id_header": "x", "type": ""}}}"#,
                "authzen.subject.type",
            ),
            (
                r#"{"protocol": "authzen", "authzen": {"subject": {"id_header": "x"}, "resource": {"id": "host"}}}"#,
                "authzen.resource.id",
            ),
            (
                r#"{"protocol": "authzen", "authzen": {"subject": {"id_header": "x"}, "resource": {"properties": ["body"]}}}"#,
                "authzen.resource.properties[0]",
            ),
            (
                r#"{"protocol": "authzen", "authzen": {"subject": {"id_header": "x"}, "action": {}}}"#,
                "authzen.action.name",
            ),
            (
                r#"{"protocol": "authzen", "authzen": {"subject": {"id_header": "x"}, "context": {"time": true}}}"#,
                "authzen.context.time",
            ),
            (
                r#"{"protocol": "authzen", "authzen": {"subject": {"id_header": "x"}, "deny_reason": {"pointer": "x", "header": "y"}}}"#,
                "authzen.deny_reason.pointer",
            ),
            (
                r#"{"protocol": "authzen", "authzen": {"subject": {"id_header": "x"}, "path": "v1"}}"#,
                "authzen.path",
            ),
            (
                r#"{"protocol": "authzen", "decision": "status", "authzen": {"subject": {"id_header": "x"}}}"#,
                "decision",
            ),
            (
                r#"{"protocol": "authzen", "allowed_headers": [], "authzen": {"subject": {"id_header": "x"}}}"#,
                "allowed_headers",
            ),
            (
                r#"{"decision": "status", "authzen": {"subject": {"id_header": "x"}}}"#,
                "authzen",
            ),
            (r#"{"protocol": "authzn"}"#, "protocol"),
            (
                r#"{"protocol": "authzen", "authzen": {"subject": {"id_header": "x"},
                    "context": {"values": {"env": "prod"}, "headers": {"env": "x-env"}}}}"#,
                "authzen.context.headers.env",
            ),
            (
                r#"{"protocol": "authzen", "authzen": {"subject": {"id_header": "x"},
                    "context": {"source_address": true, "headers": {"source_address": "x-ip"}}}}"#,
                "authzen.context.headers.source_address",
            ),
            (
                r#"{"protocol": "authzen", "headers_to_add": [{"key": "Content-Type", "value": "text/plain"}],
                    "authzen": {"subject": {"id_header": "x"}}}"#,
                "headers_to_add[0].key",
            ),
            (
                r#"{"protocol": "authzen", "max_check_headers": 20, "authzen": {"subject": {"id_header": "x"}}}"#,
                "max_check_headers",
            ),
        ] {
            let err = Config::parse(json.as_bytes()).unwrap_err();
            assert_eq!(err.field, field, "{json}: {err}");
        }
    }
}
