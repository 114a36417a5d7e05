//! A programmable HTTP server on loopback (HTTP/1.1, or HTTP/2 with prior knowledge): the auth
//! service or the protected upstream in tests. Each request is recorded; a handler decides the reply, including misbehaviour.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A request as the server saw it. Header values are shown lossily if they are not UTF-8.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
}

impl SeenRequest {
    /// Every value of a header, in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_all(name).first().copied()
    }
}

/// What the server does with a request.
#[derive(Debug, Clone)]
pub enum Reply {
    Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        /// Sent after the body (HTTP/2, e.g. a gRPC status).
        trailers: Vec<(String, String)>,
        delay: Duration,
    },
    /// Close the connection without answering.
    Drop,
    /// Accept the request and never answer.
    Hang,
    /// Promise a body of `promised` bytes, send `sent`, then close the connection.
    ResetMidBody { promised: usize, sent: Vec<u8> },
    /// Wait until the gate opens, then reply.
    Gated(Gate, Box<Reply>),
}

/// Holds gated replies until the test opens it.
#[derive(Debug, Clone, Default)]
pub struct Gate(Arc<(AtomicBool, tokio::sync::Notify)>);

impl Gate {
    pub fn open(&self) {
        self.0 .0.store(true, Ordering::SeqCst);
        self.0 .1.notify_waiters();
    }

    pub(crate) async fn wait(&self) {
        loop {
            let notified = self.0 .1.notified();
            if self.0 .0.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }
}

impl Reply {
    pub fn status(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply::Answer {
            status,
            headers: Vec::new(),
            body: body.into(),
            trailers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply::status(200, body)
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Answer { headers, .. } = &mut self {
            headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    pub fn trailer(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Answer { trailers, .. } = &mut self {
            trailers.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    pub fn after(mut self, wait: Duration) -> Reply {
        if let Reply::Answer { delay, .. } = &mut self {
            *delay = wait;
        }
        self
    }
}

type Handler = dyn Fn(&SeenRequest) -> Reply + Send + Sync;

pub struct TestServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    load: Arc<Load>,
    accept: JoinHandle<()>,
}

/// Requests being handled now, and the most there have been at once.
#[derive(Default)]
struct Load {
    now: AtomicUsize,
    most: AtomicUsize,
}

impl Load {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

impl TestServer {
    /// Starts on 127.0.0.1 with a kernel-chosen port.
    pub async fn start<F>(handler: F) -> Result<TestServer>
    where
        F: Fn(&SeenRequest) -> Reply + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let load = Arc::new(Load::default());
        let handler: Arc<Handler> = Arc::new(handler);
        let accept = tokio::spawn(accept_loop(
            listener,
            handler,
            Arc::clone(&seen),
            Arc::clone(&load),
        ));
        Ok(TestServer {
            addr,
            seen,
            load,
            accept,
        })
    }

    /// The protected upstream: answers 200 `upstream ok` to everything.
    pub async fn upstream() -> Result<TestServer> {
        TestServer::start(|_| Reply::ok("upstream ok")).await
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn seen(&self) -> Vec<SeenRequest> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn seen_count(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or_default()
    }

    /// Forgets the requests seen so far (long runs would otherwise keep them all).
    pub fn clear_seen(&self) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.clear();
        }
    }

    /// The most requests this server has been handling at the same time.
    pub fn most_at_once(&self) -> usize {
        self.load.most.load(Ordering::SeqCst)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    handler: Arc<Handler>,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    load: Arc<Load>,
) {
    while let Ok((stream, _)) = listener.accept().await {
        let handler = Arc::clone(&handler);
        let seen = Arc::clone(&seen);
        let load = Arc::clone(&load);
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let handler = Arc::clone(&handler);
                let seen = Arc::clone(&seen);
                let load = Arc::clone(&load);
                async move {
                    load.enter();
                    let (parts, body) = request.into_parts();
                    let (body, trailers) = read_body(body).await;
                    let reply = handler_reply(&parts, body, trailers, handler.as_ref(), &seen);
                    let response = respond(reply).await;
                    load.leave();
                    response
                }
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            // hyper's default of 200 streams per connection makes Envoy queue, then reset, the
            // thousands of streams the load tests hold at once.
            builder.http2().max_concurrent_streams(100_000);
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The whole body and its trailers, as far as the client sent them.
async fn read_body(mut body: Incoming) -> (Vec<u8>, Vec<(String, String)>) {
    let (mut data, mut trailers) = (Vec::new(), Vec::new());
    while let Some(Ok(frame)) = body.frame().await {
        match frame.into_data() {
            Ok(chunk) => data.extend_from_slice(&chunk),
            Err(frame) => {
                if let Ok(map) = frame.into_trailers() {
                    trailers.extend(map.iter().map(|(n, v)| {
                        (
                            n.to_string(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    }));
                }
            }
        }
    }
    (data, trailers)
}

/// Records the request and asks the handler what to do with it.
fn handler_reply(
    request: &hyper::http::request::Parts,
    body: Vec<u8>,
    trailers: Vec<(String, String)>,
    handler: &Handler,
    seen: &Mutex<Vec<SeenRequest>>,
) -> Reply {
    let request = SeenRequest {
        body,
        trailers,
        method: request.method.to_string(),
        path: request
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: request
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
    };
    let reply = handler(&request);
    if let Ok(mut seen) = seen.lock() {
        seen.push(request);
    }
    reply
}

async fn respond(mut reply: Reply) -> Result<Response<ReplyBody>, std::io::Error> {
    while let Reply::Gated(gate, then) = reply {
        gate.wait().await;
        reply = *then;
    }
    match reply {
        Reply::Gated(..) => Err(std::io::Error::other("unreachable: gates are waited above")),
        Reply::Answer {
            status,
            headers,
            body,
            trailers,
            delay,
        } => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let mut response = Response::builder().status(status);
            for (name, value) in headers {
                response = response.header(name, value);
            }
            let body = if trailers.is_empty() {
                ReplyBody::Full(Full::new(Bytes::from(body)))
            } else {
                let mut map = hyper::HeaderMap::new();
                for (name, value) in trailers {
                    let name =
                        hyper::header::HeaderName::try_from(name).map_err(std::io::Error::other)?;
                    let value = hyper::header::HeaderValue::try_from(value)
                        .map_err(std::io::Error::other)?;
                    map.append(name, value);
                }
                ReplyBody::WithTrailers(Some(Bytes::from(body)), Some(map))
            };
            response.body(body).map_err(std::io::Error::other)
        }
        // An error from the service makes hyper close the connection without a response.
        Reply::Drop => Err(std::io::Error::other("dropping the connection")),
        Reply::Hang => std::future::pending().await,
        Reply::ResetMidBody { promised, sent } => Response::builder()
            .status(200)
            .header("content-length", promised.to_string())
            .body(ReplyBody::Partial(Some(Bytes::from(sent))))
            .map_err(std::io::Error::other),
    }
}

/// A whole body, one followed by trailers, or a part of one followed by an error that aborts
/// the connection.
enum ReplyBody {
    Full(Full<Bytes>),
    WithTrailers(Option<Bytes>, Option<hyper::HeaderMap>),
    Partial(Option<Bytes>),
}

impl Body for ReplyBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            ReplyBody::Full(full) => Pin::new(full)
                .poll_frame(cx)
                .map(|frame| frame.map(|f| f.map_err(|never: Infallible| match never {}))),
            ReplyBody::WithTrailers(data, trailers) => Poll::Ready(match data.take() {
                Some(data) => Some(Ok(Frame::data(data))),
                None => trailers.take().map(|t| Ok(Frame::trailers(t))),
            }),
            ReplyBody::Partial(part) => Poll::Ready(Some(match part.take() {
                Some(data) => Ok(Frame::data(data)),
                None => Err(std::io::Error::other("resetting mid-body")),
            })),
        }
    }
}
