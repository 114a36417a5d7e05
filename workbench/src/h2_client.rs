//! HTTP/2 over cleartext (h2c) as hostile and ordinary clients use it: floods of streams reset
//! mid-request, and requests that carry trailers.

use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use h2::client::{self, SendRequest};
use http::{HeaderMap, HeaderName, HeaderValue, Request};
use tokio::net::TcpStream;

/// An h2c connection to a loopback port.
async fn connect(port: u16) -> Result<SendRequest<Bytes>> {
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .with_context(|| format!("connect to 127.0.0.1:{port}"))?;
    let (send, connection) = client::handshake(tcp).await.context("h2c handshake")?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(send)
}

fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Result<Request<()>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1:{port}{path}"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    Ok(builder.body(())?)
}

/// Opens `connections` connections, sends the headers of `streams` requests on each (no end of
/// stream, so each waits for a body), then resets every stream with RST_STREAM(CANCEL). Returns
/// how many streams were reset.
pub async fn reset_flood(
    port: u16,
    connections: usize,
    streams: usize,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<usize> {
    let mut open = Vec::with_capacity(connections * streams);
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut send = connect(port).await?;
        for _ in 0..streams {
            send = send.ready().await.context("h2 connection not ready")?;
            let (response, body) =
                send.send_request(request(port, "GET", path, headers)?, false)?;
            open.push((response, body));
        }
        clients.push(send);
    }
    // Let the HEADERS frames reach Envoy and its filters before the resets do.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let count = open.len();
    for (_, mut body) in open {
        body.send_reset(h2::Reason::CANCEL);
    }
    // Give the connections time to write the resets before they are dropped.
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(clients);
    Ok(count)
}

/// A response as an h2 client saw it.
#[derive(Debug)]
pub struct H2Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// An h2c connection that many concurrent requests share, as one stream each.
#[derive(Clone)]
pub struct H2Connection {
    send: SendRequest<Bytes>,
    port: u16,
}

impl H2Connection {
    pub async fn open(port: u16) -> Result<H2Connection> {
        Ok(H2Connection {
            send: connect(port).await?,
            port,
        })
    }

    pub async fn get(&self, path: &str) -> Result<H2Response> {
        let mut send = self.send.clone().ready().await?;
        let (response, _) = send.send_request(request(self.port, "GET", path, &[])?, true)?;
        read_response(response).await
    }
}

async fn read_response(response: h2::client::ResponseFuture) -> Result<H2Response> {
    let response = response.await?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    Ok(H2Response {
        status,
        headers,
        body: bytes,
    })
}

/// Sends one request without a body on a new h2c connection. Header values go as given, even
/// ones HTTP/2 calls malformed (leading or trailing whitespace), as a hostile client sends them.
pub async fn send(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<H2Response> {
    let send = connect(port).await?;
    let mut send = send.ready().await?;
    let (response, _) = send.send_request(request(port, method, path, headers)?, true)?;
    tokio::time::timeout(Duration::from_secs(30), read_response(response))
        .await
        .context("no response in 30 s")?
}

/// Sends one request with a body and trailers on a new h2c connection.
pub async fn send_with_trailers(
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    trailers: &[(&str, &str)],
) -> Result<H2Response> {
    let send = connect(port).await?;
    let mut send = send.ready().await?;
    let (response, mut stream) = send.send_request(request(port, "POST", path, headers)?, false)?;
    stream.send_data(Bytes::copy_from_slice(body), false)?;
    let mut map = HeaderMap::new();
    for (name, value) in trailers {
        map.append(
            HeaderName::from_bytes(name.as_bytes())?,
            HeaderValue::from_str(value)?,
        );
    }
    stream.send_trailers(map)?;
    tokio::time::timeout(Duration::from_secs(30), read_response(response))
        .await
        .context("no response in 30 s")?
}
