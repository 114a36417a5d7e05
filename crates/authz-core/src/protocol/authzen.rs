//! OpenID AuthZEN 1.0: the evaluation request built from the request and the `authzen`
//! mapping, serialized by serde_json (header values are JSON strings, never spliced in as text).
//! The answer is read by the JSON verdict rule at `/decision`.

use std::borrow::Cow;

use serde::ser::{Serialize, Serializer};

use super::BadRequest;
use crate::config::{AuthZen, Config, RequestPart, ResourceId};
use crate::host::Headers;

/// What the request brings that is not a header: asked of the host only when the mapping
/// uses it.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub route_name: Option<String>,
    pub source_address: Option<String>,
}

/// The call for a request, or why there is none.
#[derive(Debug, PartialEq, Eq)]
pub enum Evaluation<'a> {
    Ask {
        headers: Vec<(&'a str, Cow<'a, str>)>,
        body: Vec<u8>,
    },
    /// The request has no subject, and the mapping has no anonymous id, or the resource is
    /// Envoy's route name and the route has none: denied unasked.
    NoSubject,
}

#[derive(serde::Serialize)]
struct Body<'a> {
    subject: Entity<'a>,
    action: Action<'a>,
    resource: Entity<'a>,
    #[serde(skip_serializing_if = "Properties::is_empty")]
    context: Properties<'a>,
}

#[derive(serde::Serialize)]
struct Entity<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Properties::is_empty")]
    properties: Properties<'a>,
}

#[derive(serde::Serialize)]
struct Action<'a> {
    name: &'a str,
}

/// Named strings, as a JSON object in this order.
struct Properties<'a>(Vec<(&'a str, &'a str)>);

impl Properties<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Properties<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().copied())
    }
}

/// The one value of a request header as text: absent is `None`; sent twice, or not UTF-8, the
/// request cannot be described (which of two subjects would be asked about?).
fn single<'a>(request: &'a Headers, name: &str) -> Result<Option<&'a str>, BadRequest> {
    let mut values = request.iter().filter(|(n, _)| n == name);
    let Some((_, value)) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(BadRequest::Repeated(name.to_owned()));
    }
    std::str::from_utf8(value)
        .map(Some)
        .map_err(|_| BadRequest::NotUtf8(name.to_owned()))
}

/// The evaluation for a request, headers and body.
pub fn evaluation<'a>(
    config: &'a Config,
    authzen: &'a AuthZen,
    request: &'a Headers,
    facts: &'a Facts,
) -> Result<Evaluation<'a>, BadRequest> {
    let subject = &authzen.subject;
    // An empty value is no subject: an earlier filter that found no identity may leave one.
    let sent = single(request, &subject.id_header)?.filter(|id| !id.trim().is_empty());
    let Some(subject_id) = sent.or(subject.anonymous_id.as_deref()) else {
        return Ok(Evaluation::NoSubject);
    };
    let route_name = facts.route_name.as_deref().filter(|name| !name.is_empty());
    if authzen.resource.id == ResourceId::RouteName && route_name.is_none() {
        return Ok(Evaluation::NoSubject);
    }
    let method = single(request, ":method")?.ok_or(BadRequest::NoMethod)?;
    let full_path = single(request, ":path")?.unwrap_or("/");
    let (path, query) = full_path
        .split_once('?')
        .map_or((full_path, ""), |(path, query)| (path, query));
    let path = path.split('#').next().unwrap_or(path);
    let mut subject_properties = Vec::new();
    for (name, header) in &subject.properties {
        if let Some(value) = single(request, header)? {
            subject_properties.push((name.as_str(), value));
        }
    }
    let resource = &authzen.resource;
    let mut resource_properties = Vec::new();
    for part in &resource.properties {
        let value = match part {
            RequestPart::Method => method,
            RequestPart::Path => path,
            RequestPart::Query => query,
            RequestPart::Host => single(request, ":authority")?.unwrap_or_default(),
            RequestPart::Scheme => single(request, ":scheme")?.unwrap_or_default(),
        };
        resource_properties.push((part.name(), value));
    }
    let context = &authzen.context;
    let mut context_properties: Vec<(&str, &str)> = context
        .values
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    for (name, header) in &context.headers {
        if let Some(value) = single(request, header)? {
            context_properties.push((name.as_str(), value));
        }
    }
    if let Some(address) = facts
        .source_address
        .as_deref()
        .filter(|_| context.source_address)
    {
        context_properties.push(("source_address", address));
    }
    let body = Body {
        subject: Entity {
            kind: &subject.kind,
            id: subject_id,
            properties: Properties(subject_properties),
        },
        action: Action {
            name: authzen.action.as_deref().unwrap_or(method),
        },
        resource: Entity {
            kind: &resource.kind,
            id: match resource.id {
                ResourceId::Path => path,
                ResourceId::RouteName => route_name.unwrap_or_default(),
            },
            properties: Properties(resource_properties),
        },
        context: Properties(context_properties),
    };
    // Only strings, written to memory: serializing cannot fail.
    let body = serde_json::to_vec(&body).unwrap_or_default();
    let spec = &config.auth_request;
    let authority = spec.authority.as_deref().unwrap_or(spec.cluster.as_str());
    let mut headers: Vec<(&str, Cow<str>)> = vec![
        (":method", Cow::Borrowed("POST")),
        (":path", Cow::Borrowed(authzen.path.as_str())),
        (":authority", Cow::Borrowed(authority)),
        ("content-type", Cow::Borrowed("application/json")),
        ("content-length", Cow::Owned(body.len().to_string())),
    ];
    // AuthZEN's request id, so that the decision point's log and Envoy's name the same request.
    // (Only a single, readable one: an id is for logs, and no reason to refuse a request.)
    if let Ok(Some(id)) = single(request, "x-request-id") {
        headers.push(("x-request-id", Cow::Borrowed(id)));
    }
    for (name, value) in &spec.headers_to_add {
        headers.push((name.as_str(), Cow::Borrowed(value.as_str())));
    }
    Ok(Evaluation::Ask { headers, body })
}

#[cfg(test)]
mod tests;
