//! A programmable ext_authz gRPC service on loopback (`envoy.service.auth.v3.Authorization`,
//! tonic with the `envoy-types` messages): the auth service in gRPC tests, benchmarks and
//! `cargo xtask run --protocol grpc`. Each Check is recorded; a handler decides the answer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, DeniedHttpResponse,
    HeaderValue, HeaderValueOption, HttpStatus, OkHttpResponse, QueryParameter,
};
use envoy_types::pb::google::protobuf::BoolValue;
use envoy_types::pb::google::rpc;
use tokio::net::TcpListener;

use crate::test_server::Gate;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

pub use envoy_types::ext_authz::v3::pb::{self as pb, HttpResponse};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest;
pub use envoy_types::pb::google::rpc::Status as RpcStatus;
pub use tonic::Code;

/// What the service does with a Check.
#[derive(Debug, Clone)]
pub enum GrpcReply {
    Answer(Box<CheckResponse>, Duration),
    /// The call fails with this gRPC status (no CheckResponse).
    Fail(Code, String),
    /// Accept the call and never answer.
    Hang,
    /// Wait until the gate opens, then answer.
    Gated(Gate, Box<GrpcReply>),
}

impl GrpcReply {
    /// `status.code = OK` with the given `ok_response` (which may be empty).
    pub fn allow(ok: OkHttpResponse) -> GrpcReply {
        GrpcReply::answer(CheckResponse {
            status: Some(rpc::Status::default()),
            http_response: Some(HttpResponse::OkResponse(ok)),
            ..CheckResponse::default()
        })
    }

    /// An allow whose `dynamic_metadata` holds these string fields.
    pub fn allow_with_metadata(fields: &[(&str, &str)]) -> GrpcReply {
        use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value};
        let fields = fields
            .iter()
            .map(|(key, value)| {
                let value = Value {
                    kind: Some(Kind::StringValue((*value).to_owned())),
                };
                ((*key).to_owned(), value)
            })
            .collect();
        GrpcReply::answer(CheckResponse {
            status: Some(rpc::Status::default()),
            http_response: Some(HttpResponse::OkResponse(OkHttpResponse::default())),
            dynamic_metadata: Some(Struct { fields }),
        })
    }

    /// `status.code = code` (not OK) with an optional `denied_response`.
    pub fn deny(code: Code, denied: Option<DeniedHttpResponse>) -> GrpcReply {
        GrpcReply::answer(CheckResponse {
            status: Some(rpc::Status {
                code: code as i32,
                ..rpc::Status::default()
            }),
            http_response: denied.map(HttpResponse::DeniedResponse),
            ..CheckResponse::default()
        })
    }

    pub fn answer(response: CheckResponse) -> GrpcReply {
        GrpcReply::Answer(Box::new(response), Duration::ZERO)
    }

    pub fn after(self, wait: Duration) -> GrpcReply {
        match self {
            GrpcReply::Answer(response, _) => GrpcReply::Answer(response, wait),
            other => other,
        }
    }
}

/// The request a Check asks about (`attributes.request.http`), if it says.
pub fn http_request(check: &CheckRequest) -> Option<&HttpRequest> {
    check
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref())
}

/// The path (with its query) a Check asks about; empty if it does not say.
pub fn request_path(check: &CheckRequest) -> &str {
    http_request(check).map_or("", |http| http.path.as_str())
}

/// A `DeniedHttpResponse` with a status, a body and headers (set, as ext_authz applies them).
pub fn denied(status: u16, body: &str, headers: &[(&str, &str)]) -> DeniedHttpResponse {
    DeniedHttpResponse {
        status: Some(HttpStatus {
            code: i32::from(status),
        }),
        headers: headers
            .iter()
            .map(|(k, v)| header_option(k, v, Some(false)))
            .collect(),
        body: (*body).to_owned(),
    }
}

/// A header option: `append` as given (None leaves it unset, so `append_action` decides).
// `append` is deprecated in the API but is what ext_authz servers still send and Envoy reads.
#[allow(deprecated)]
pub fn header_option(key: &str, value: &str, append: Option<bool>) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            value: value.to_owned(),
            ..HeaderValue::default()
        }),
        append: append.map(|value| BoolValue { value }),
        ..HeaderValueOption::default()
    }
}

/// A header option with an explicit `append_action` (and `append` unset).
pub fn header_action(key: &str, value: &str, action: i32) -> HeaderValueOption {
    HeaderValueOption {
        append_action: action,
        ..header_option(key, value, None)
    }
}

pub fn query_parameter(key: &str, value: &str) -> QueryParameter {
    QueryParameter {
        key: key.to_owned(),
        value: value.to_owned(),
    }
}

/// A Check as the service received it: the message and the call's metadata.
#[derive(Debug, Clone)]
pub struct SeenCheck {
    pub request: CheckRequest,
    pub metadata: Vec<(String, String)>,
}

type Handler = dyn Fn(&CheckRequest) -> GrpcReply + Send + Sync;

struct Service {
    handler: Arc<Handler>,
    /// None when the Checks are only counted (long runs and benchmarks).
    seen: Option<Arc<Mutex<Vec<SeenCheck>>>>,
    count: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl Authorization for Service {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        self.count.fetch_add(1, Ordering::SeqCst);
        let Some(seen) = &self.seen else {
            return answer((self.handler)(request.get_ref())).await;
        };
        let metadata = request
            .metadata()
            .clone()
            .into_headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let request = request.into_inner();
        let reply = (self.handler)(&request);
        if let Ok(mut seen) = seen.lock() {
            seen.push(SeenCheck { request, metadata });
        }
        answer(reply).await
    }
}

/// Carries out a reply: waits at its gate or for its delay, then answers or fails.
async fn answer(mut reply: GrpcReply) -> Result<Response<CheckResponse>, Status> {
    while let GrpcReply::Gated(gate, then) = reply {
        gate.wait().await;
        reply = *then;
    }
    match reply {
        GrpcReply::Gated(..) => Err(Status::internal("unreachable: gates are waited above")),
        GrpcReply::Answer(response, delay) => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Ok(Response::new(*response))
        }
        GrpcReply::Fail(code, message) => Err(Status::new(code, message)),
        GrpcReply::Hang => std::future::pending().await,
    }
}

pub struct GrpcAuthServer {
    port: u16,
    seen: Arc<Mutex<Vec<SeenCheck>>>,
    count: Arc<AtomicUsize>,
    serve: JoinHandle<()>,
}

impl GrpcAuthServer {
    /// Starts on 127.0.0.1 with a kernel-chosen port, recording every Check.
    pub async fn start<F>(handler: F) -> Result<GrpcAuthServer>
    where
        F: Fn(&CheckRequest) -> GrpcReply + Send + Sync + 'static,
    {
        GrpcAuthServer::listen("127.0.0.1:0", handler, true).await
    }

    /// Starts on `address` (`host:port`), only counting the Checks, for as long as it runs.
    pub async fn serve_on<F>(address: &str, handler: F) -> Result<GrpcAuthServer>
    where
        F: Fn(&CheckRequest) -> GrpcReply + Send + Sync + 'static,
    {
        GrpcAuthServer::listen(address, handler, false).await
    }

    async fn listen<F>(address: &str, handler: F, record: bool) -> Result<GrpcAuthServer>
    where
        F: Fn(&CheckRequest) -> GrpcReply + Send + Sync + 'static,
    {
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        let port = listener.local_addr()?.port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let service = Service {
            handler: Arc::new(handler),
            seen: record.then(|| Arc::clone(&seen)),
            count: Arc::clone(&count),
        };
        let server = tonic::transport::Server::builder()
            // Load tests hold thousands of Checks on one connection at once.
            .max_concurrent_streams(Some(100_000))
            .add_service(AuthorizationServer::new(service));
        let serve = tokio::spawn(async move {
            let _ = server
                .serve_with_incoming(TcpIncoming::from(listener))
                .await;
        });
        Ok(GrpcAuthServer {
            port,
            seen,
            count,
            serve,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn seen(&self) -> Vec<SeenCheck> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Checks received so far, recorded or not.
    pub fn seen_count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Forgets the Checks seen so far (long runs would otherwise keep them all).
    pub fn clear_seen(&self) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.clear();
        }
    }
}

impl Drop for GrpcAuthServer {
    fn drop(&mut self) {
        self.serve.abort();
    }
}

/// The example Check service `cargo xtask run --protocol grpc` serves: a request with
/// `authorization: Bearer <name>` is allowed, and the upstream told `x-user-id: <name>`; any
/// other is denied 401 with a `www-authenticate` challenge.
pub fn example_policy(check: &CheckRequest) -> GrpcReply {
    let authorization = http_request(check).and_then(|h| h.headers.get("authorization"));
    let name = authorization
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|name| !name.is_empty());
    match name {
        Some(name) => GrpcReply::allow(OkHttpResponse {
            headers: vec![header_option("x-user-id", name, Some(false))],
            response_headers_to_add: vec![header_option("x-auth-example", "allowed", Some(false))],
            ..OkHttpResponse::default()
        }),
        None => GrpcReply::deny(
            Code::Unauthenticated,
            Some(denied(
                401,
                "send authorization: Bearer <name>\n",
                &[("www-authenticate", "Bearer realm=\"example\"")],
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::service::auth::v3::attribute_context::{
        HttpRequest, Request as AttributeRequest,
    };
    use envoy_types::pb::envoy::service::auth::v3::AttributeContext;

    fn check(headers: &[(&str, &str)]) -> CheckRequest {
        CheckRequest {
            attributes: Some(AttributeContext {
                request: Some(AttributeRequest {
                    http: Some(HttpRequest {
                        headers: headers
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                        ..HttpRequest::default()
                    }),
                    ..AttributeRequest::default()
                }),
                ..AttributeContext::default()
            }),
        }
    }

    #[test]
    fn the_example_policy_allows_a_bearer_and_names_it_upstream() {
        match example_policy(&check(&[("authorization", "Bearer alice")])) {
            GrpcReply::Answer(response, _) => match response.http_response {
                Some(HttpResponse::OkResponse(ok)) => {
                    let header = ok.headers[0].header.as_ref().unwrap();
                    assert_eq!(
                        (header.key.as_str(), header.value.as_str()),
                        ("x-user-id", "alice")
                    );
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        for headers in [
            &[][..],
            &[("authorization", "Basic x")],
            &[("authorization", "Bearer  ")],
        ] {
            match example_policy(&check(headers)) {
                GrpcReply::Answer(response, _) => assert!(matches!(
                    response.http_response,
                    Some(HttpResponse::DeniedResponse(_))
                )),
                other => panic!("{other:?}"),
            }
        }
    }
}
