//! Mixed traffic for soak and load runs: allowed, denied, failing and reset requests, each
//! checked against the answer it must get.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::grpc_auth::pb::{CheckRequest, OkHttpResponse};
use crate::grpc_auth::{denied, request_path, Code, GrpcReply};
use crate::stack::UPSTREAM_BODY;
use crate::test_server::{Reply, SeenRequest};

/// Bodies whose FNV-1a hash is even (allow) and odd (deny).
pub const EVEN: &str = "a";
pub const ODD: &str = "b";

/// How long the auth service holds a call that the client will reset.
pub const RESET_HOLD: Duration = Duration::from_millis(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Allow,
    Deny,
    Error,
    Reset,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Allow, Kind::Deny, Kind::Error, Kind::Reset];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Allow => "allow",
            Kind::Deny => "deny",
            Kind::Error => "error",
            Kind::Reset => "reset",
        }
    }

    fn index(self) -> usize {
        match self {
            Kind::Allow => 0,
            Kind::Deny => 1,
            Kind::Error => 2,
            Kind::Reset => 3,
        }
    }
}

/// Request n of a mix: allow, deny, error, reset in turn (a quarter each).
pub fn mixed(n: u64) -> Kind {
    Kind::ALL[(n % 4) as usize]
}

/// The auth service for mixed traffic: the path's first segment says how to answer.
pub fn mixed_auth(request: &SeenRequest) -> Reply {
    let kind = request
        .path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    match kind {
        "allow" => Reply::ok(EVEN),
        "deny" => Reply::ok(ODD),
        "error" => Reply::status(503, EVEN),
        "reset" => Reply::ok(EVEN).after(RESET_HOLD),
        _ => Reply::status(404, "unknown kind"),
    }
}

/// The mixed-traffic Check service (`protocol: grpc`), answering each kind as `mixed_auth`
/// does: OK, a deny with the seed's body, a failed call, and a late OK.
pub fn mixed_grpc_auth(check: &CheckRequest) -> GrpcReply {
    let kind = request_path(check)
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    match kind {
        "allow" => GrpcReply::allow(OkHttpResponse::default()),
        "deny" => GrpcReply::deny(
            Code::PermissionDenied,
            Some(denied(403, "access forbidden", &[])),
        ),
        "error" => GrpcReply::Fail(Code::Unavailable, "failing on purpose".into()),
        "reset" => GrpcReply::allow(OkHttpResponse::default()).after(RESET_HOLD),
        _ => GrpcReply::deny(Code::NotFound, Some(denied(404, "unknown kind", &[]))),
    }
}

/// What a run saw: requests sent per kind, and every answer that was not the expected one.
#[derive(Debug, Default)]
pub struct Tally {
    pub sent: [u64; 4],
    pub wrong: u64,
    pub first_wrong: Vec<String>,
}

impl Tally {
    pub fn total(&self) -> u64 {
        self.sent.iter().sum()
    }

    pub fn add(&mut self, other: Tally) {
        for (mine, theirs) in self.sent.iter_mut().zip(other.sent) {
            *mine += theirs;
        }
        self.wrong += other.wrong;
        for wrong in other.first_wrong {
            if self.first_wrong.len() < 10 {
                self.first_wrong.push(wrong);
            }
        }
    }
}

/// Sends requests `from..to` to the listener on `port`, `concurrency` at a time; request n is of
/// kind `kind(n)`. Allowed requests must reach the upstream; denied and failing ones must get 403
/// (the seed rule, failing closed); reset ones are abandoned while their auth call is pending.
pub async fn drive(
    port: u16,
    from: u64,
    to: u64,
    concurrency: usize,
    kind: fn(u64) -> Kind,
) -> Result<Tally> {
    let next = Arc::new(AtomicU64::new(from));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let next = Arc::clone(&next);
        let tally = Arc::clone(&tally);
        let client = client.clone();
        workers.spawn(async move {
            let mut mine = Tally::default();
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= to {
                    break;
                }
                let kind = kind(n);
                if let Some(wrong) = one(&client, port, n, kind).await {
                    mine.wrong += 1;
                    if mine.first_wrong.len() < 10 {
                        mine.first_wrong.push(wrong);
                    }
                }
                if let Some(slot) = mine.sent.get_mut(kind.index()) {
                    *slot += 1;
                }
            }
            if let Ok(mut tally) = tally.lock() {
                tally.add(mine);
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let mut total = Tally::default();
    if let Ok(mut tally) = tally.lock() {
        total.add(std::mem::take(&mut *tally));
    }
    Ok(total)
}

/// Sends one request; returns a description if its answer was wrong.
async fn one(client: &reqwest::Client, port: u16, n: u64, kind: Kind) -> Option<String> {
    let path = format!("/{}/{n}", kind.name());
    if kind == Kind::Reset {
        return reset(port, &path)
            .await
            .err()
            .map(|err| format!("{path}: {err}"));
    }
    let response = match client
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .await
    {
        Ok(response) => response,
        Err(err) => return Some(format!("{path}: no answer: {err}")),
    };
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let right = match kind {
        Kind::Allow => status == 200 && body == UPSTREAM_BODY,
        Kind::Deny => status == 403 && body == "access forbidden",
        Kind::Error => status == 403 && body.is_empty(),
        Kind::Reset => true,
    };
    (!right).then(|| format!("{path}: got {status} {body:?}"))
}

/// Sends a request and resets the connection while the plugin waits for the auth service.
pub async fn reset(port: u16, path: &str) -> Result<()> {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).await?;
    socket
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: load\r\n\r\n").as_bytes())
        .await?;
    tokio::time::sleep(Duration::from_millis(20)).await;
    // Linger 0: close with a TCP reset rather than a FIN.
    socket2::SockRef::from(&socket).set_linger(Some(Duration::ZERO))?;
    drop(socket);
    Ok(())
}
