//! What the native module decodes from Envoy: a gRPC check's answer as its HTTP/2 stream brings
//! it (any headers, data and trailers, in any order, then the stream's end) read into a message
//! and that message into a verdict; and any per-route settings, parsed and applied to the
//! filter's configuration. An ending, a verdict or a named error, never a panic.
#![no_main]

use arbitrary::Arbitrary;
use authz_core::config::{Config, RouteOverrides};
use authz_core::protocol::grpc::{self, wire};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

#[derive(Debug, Arbitrary)]
struct Input {
    /// The stream's events in the order Envoy delivers them.
    stream: Vec<Event>,
    /// The smallest `max_response_body_bytes` gRPC allows rather than the default.
    small_limit: bool,
    /// Per-route settings as any bytes.
    route_bytes: Vec<u8>,
    /// Per-route settings as JSON of the settings' shape, with any values in it.
    route: Route,
}

#[derive(Debug, Arbitrary)]
enum Event {
    /// Headers (ending the stream or not).
    Headers(Vec<(Name, Vec<u8>)>, bool),
    /// Trailers.
    Trailers(Vec<(Name, Vec<u8>)>),
    /// A chunk of data as it comes.
    Data(Vec<u8>),
    /// A whole message with gRPC's length prefix, as a chunk (a shortcut to a well-framed answer).
    Framed(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
enum Name {
    Status,
    GrpcStatus,
    Other(String),
}

impl Name {
    fn as_str(&self) -> &str {
        match self {
            Name::Status => ":status",
            Name::GrpcStatus => "grpc-status",
            Name::Other(name) => name,
        }
    }
}

#[derive(Debug, Arbitrary)]
struct Route {
    disabled: Option<Field>,
    check_settings: Option<CheckSettings>,
    /// A field of any name, set before the known ones (which win a clash).
    other: Option<(String, Field)>,
}

#[derive(Debug, Arbitrary)]
struct CheckSettings {
    context_extensions: Option<Vec<(String, Field)>>,
    disable_request_body_buffering: Option<Field>,
    with_request_body: Option<Body>,
    other: Option<(String, Field)>,
}

#[derive(Debug, Arbitrary)]
struct Body {
    max_request_bytes: Option<Field>,
    allow_partial_message: Option<Field>,
    pack_as_bytes: Option<Field>,
}

#[derive(Debug, Arbitrary)]
enum Field {
    Bool(bool),
    Int(i64),
    Text(String),
    Null,
}

impl Field {
    fn json(&self) -> Value {
        match self {
            Field::Bool(b) => Value::Bool(*b),
            Field::Int(n) => Value::from(*n),
            Field::Text(text) => Value::String(text.clone()),
            Field::Null => Value::Null,
        }
    }
}

fn object(
    other: &Option<(String, Field)>,
    fields: impl IntoIterator<Item = (&'static str, Option<Value>)>,
) -> Value {
    let mut map = Map::new();
    if let Some((name, value)) = other {
        map.insert(name.clone(), value.json());
    }
    for (name, value) in fields {
        if let Some(value) = value {
            map.insert(name.to_owned(), value);
        }
    }
    Value::Object(map)
}

impl Route {
    fn json(&self) -> Vec<u8> {
        let check = self.check_settings.as_ref().map(|check| {
            let extensions = check.context_extensions.as_ref().map(|pairs| {
                Value::Object(
                    pairs
                        .iter()
                        .map(|(key, value)| (key.clone(), value.json()))
                        .collect(),
                )
            });
            let body = check.with_request_body.as_ref().map(|body| {
                object(
                    &None,
                    [
                        (
                            "max_request_bytes",
                            body.max_request_bytes.as_ref().map(Field::json),
                        ),
                        (
                            "allow_partial_message",
                            body.allow_partial_message.as_ref().map(Field::json),
                        ),
                        (
                            "pack_as_bytes",
                            body.pack_as_bytes.as_ref().map(Field::json),
                        ),
                    ],
                )
            });
            object(
                &check.other,
                [
                    ("context_extensions", extensions),
                    (
                        "disable_request_body_buffering",
                        check
                            .disable_request_body_buffering
                            .as_ref()
                            .map(Field::json),
                    ),
                    ("with_request_body", body),
                ],
            )
        });
        let root = object(
            &self.other,
            [
                ("disabled", self.disabled.as_ref().map(Field::json)),
                ("check_settings", check),
            ],
        );
        serde_json::to_vec(&root).unwrap_or_default()
    }

    /// `{"disabled": true, "check_settings": …}`: ext_authz's per-route settings say one or the
    /// other, so the pair is refused.
    fn disabled_with_settings(&self) -> bool {
        matches!(self.disabled, Some(Field::Bool(true))) && self.check_settings.is_some()
    }
}

/// The filter configurations a route's settings are applied to: HTTP and gRPC, cached, with a
/// body and context extensions of their own (a body and a cache do not go together).
const BASES: [&[u8]; 4] = [
    b"{}",
    br#"{"protocol": "grpc"}"#,
    br#"{"decision": "status", "cache": {"key": ["authorization"]}}"#,
    br#"{"protocol": "grpc", "with_request_body": {"max_request_bytes": 8},
         "context_extensions": {"app": "base"}}"#,
];

/// gRPC with the default limit on a message, and with the smallest gRPC allows.
const GRPC: [&[u8]; 2] = [
    br#"{"protocol": "grpc"}"#,
    br#"{"protocol": "grpc", "max_response_body_bytes": 1024}"#,
];

// A configuration holds its route rules' configurations in `Rc`s, so it is not `Sync`: each
// thread (libFuzzer runs one) parses them once and keeps them for the run.
thread_local! {
    static GRPC_CONFIGS: &'static [Config; 2] = Box::leak(Box::new(
        GRPC.map(|json| Config::parse(json).expect("a gRPC configuration")),
    ));
    static BASE_CONFIGS: &'static [Config] = BASES
        .iter()
        .map(|json| Config::parse(json).expect("a base configuration"))
        .collect::<Vec<_>>()
        .leak();
}

fuzz_target!(|input: Input| {
    check_answer(&input);
    let bases = BASE_CONFIGS.with(|bases| *bases);
    if let Ok(route) = RouteOverrides::parse(&input.route_bytes) {
        check_route(&route, bases);
    }
    let json = input.route.json();
    match RouteOverrides::parse(&json) {
        Ok(route) => {
            assert!(
                !input.route.disabled_with_settings(),
                "a disabled route with check_settings was accepted: {}",
                String::from_utf8_lossy(&json)
            );
            check_route(&route, bases);
        }
        Err(err) => assert!(!err.field.is_empty() && !err.reason.is_empty()),
    }
});

/// The stream's events into `wire::Answer`, its ending checked, a message into a verdict.
fn check_answer(input: &Input) {
    let configs = GRPC_CONFIGS.with(|configs| *configs);
    let config = &configs[usize::from(input.small_limit)];
    let max = config.max_response_body_bytes;
    let mut answer = wire::Answer::new(max);
    let mut data = Vec::new();
    for event in &input.stream {
        match event {
            Event::Headers(headers, end_of_stream) => answer.headers(
                headers
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_slice())),
                *end_of_stream,
            ),
            Event::Trailers(trailers) => answer.trailers(
                trailers
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_slice())),
            ),
            Event::Data(chunk) => {
                answer.data(chunk);
                data.extend_from_slice(chunk);
            }
            Event::Framed(message) => {
                let framed = wire::frame(message).expect("a message under 4 GiB");
                answer.data(&framed);
                data.extend_from_slice(&framed);
            }
        }
        assert_eq!(answer.size(), data.len());
    }
    match answer.end() {
        wire::Ended::Message(message) => {
            assert!(message.len() <= max, "{} bytes over {max}", message.len());
            assert_eq!(
                wire::frame(&message).as_deref(),
                Some(data.as_slice()),
                "the message is not the framed bytes received"
            );
            let verdict = grpc::answer(config, &message);
            if let Some(control) = verdict.cache_control {
                assert_eq!(control, b"no-store");
            }
        }
        wire::Ended::Oversized(length) => assert!(length > max, "{length} is within {max}"),
        wire::Ended::Status(status) => assert_ne!(status, wire::OK, "OK without a message"),
    }
}

/// A route's settings applied to each base: the route's choices are the result's.
fn check_route(route: &RouteOverrides, bases: &[Config]) {
    if route.disabled {
        assert!(route.context_extensions.is_empty() && route.request_body.is_none());
    }
    for base in bases {
        let config = route.apply(base);
        assert_eq!(config.disabled, route.disabled);
        for (key, value) in &route.context_extensions {
            assert_eq!(config.context_extensions.get(key), Some(value), "{key}");
        }
        for key in base.context_extensions.keys() {
            assert!(config.context_extensions.contains_key(key), "{key}");
        }
        match &route.request_body {
            Some(body) => assert_eq!(&config.request_body, body),
            None => assert_eq!(config.request_body, base.request_body),
        }
        if config.request_body.is_some() {
            assert!(config.cache.is_none(), "a body route's verdicts cached");
        } else if let (Some(mine), Some(theirs)) = (&config.cache, &base.cache) {
            assert_ne!(
                mine.fingerprint, theirs.fingerprint,
                "the route shares the cache"
            );
        }
        assert_eq!(config.max_response_body_bytes, base.max_response_body_bytes);
        assert_eq!(config.protocol, base.protocol);
    }
}
