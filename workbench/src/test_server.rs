//! A programmable HTTP/1.1 server on loopback: the auth service or the protected upstream in
//! tests. Each request is recorded; a handler decides the reply, including misbehaviour.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A request as the server saw it. Header values are shown lossily if they are not UTF-8.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
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
        delay: Duration,
    },
    /// Close the connection without answering.
    Drop,
    /// Accept the request and never answer.
    Hang,
    /// Promise a body of `promised` bytes, send `sent`, then close the connection.
    ResetMidBody { promised: usize, sent: Vec<u8> },
}

impl Reply {
    pub fn status(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply::Answer {
            status,
            headers: Vec::new(),
            body: body.into(),
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
    accept: JoinHandle<()>,
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
        let handler: Arc<Handler> = Arc::new(handler);
        let accept = tokio::spawn(accept_loop(listener, handler, Arc::clone(&seen)));
        Ok(TestServer { addr, seen, accept })
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
) {
    while let Ok((stream, _)) = listener.accept().await {
        let handler = Arc::clone(&handler);
        let seen = Arc::clone(&seen);
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let handler = Arc::clone(&handler);
                let seen = Arc::clone(&seen);
                async move { respond(request, handler.as_ref(), &seen).await }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn respond(
    request: Request<Incoming>,
    handler: &Handler,
    seen: &Mutex<Vec<SeenRequest>>,
) -> Result<Response<ReplyBody>, std::io::Error> {
    let request = SeenRequest {
        method: request.method().to_string(),
        path: request
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: request
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
    };
    if let Ok(mut seen) = seen.lock() {
        seen.push(request.clone());
    }
    match handler(&request) {
        Reply::Answer {
            status,
            headers,
            body,
            delay,
        } => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let mut response = Response::builder().status(status);
            for (name, value) in headers {
                response = response.header(name, value);
            }
            response
                .body(ReplyBody::Full(Full::new(Bytes::from(body))))
                .map_err(std::io::Error::other)
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

/// A whole body, or a part of one followed by an error that aborts the connection.
enum ReplyBody {
    Full(Full<Bytes>),
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
            ReplyBody::Partial(part) => Poll::Ready(Some(match part.take() {
                Some(data) => Ok(Frame::data(data)),
                None => Err(std::io::Error::other("resetting mid-body")),
            })),
        }
    }
}
