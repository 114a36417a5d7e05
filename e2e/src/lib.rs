//! The end-to-end harness every test uses: `workbench::stack` (Envoy with the seed config and the
//! plugin, a Rust auth service the test controls, a Rust upstream for `staticreply`), with calls
//! that fail the test with a clear message instead of returning errors.

use std::ops::Deref;
use std::path::PathBuf;
use std::time::Duration;

use workbench::envoy::{Envoy, EnvoyOptions};
use workbench::envoy_config::EnvoyConfig;
use workbench::stack;

pub use workbench::shell::Shell;
pub use workbench::stack::{seed_config, Seen, UPSTREAM_BODY};
pub use workbench::test_server::{Reply, SeenRequest};

pub struct Stack(stack::Stack);

impl Deref for Stack {
    type Target = stack::Stack;

    fn deref(&self) -> &stack::Stack {
        &self.0
    }
}

pub struct StackBuilder(stack::StackBuilder);

impl StackBuilder {
    pub async fn auth<F>(self, handler: F) -> Self
    where
        F: Fn(&SeenRequest) -> Reply + Send + Sync + 'static,
    {
        StackBuilder(must(self.0.auth(handler).await))
    }

    /// The auth service is a gRPC Check service answering as `handler` says.
    pub async fn grpc_auth<F>(self, handler: F) -> Self
    where
        F: Fn(&workbench::grpc_auth::pb::CheckRequest) -> workbench::grpc_auth::GrpcReply
            + Send
            + Sync
            + 'static,
    {
        StackBuilder(must(self.0.grpc_auth(handler).await))
    }

    /// The auth cluster speaks HTTP/2.
    pub fn h2_auth(self) -> Self {
        StackBuilder(self.0.h2_auth())
    }

    /// The upstream answers as `handler` says.
    pub async fn upstream<F>(self, handler: F) -> Self
    where
        F: Fn(&SeenRequest) -> Reply + Send + Sync + 'static,
    {
        StackBuilder(must(self.0.upstream(handler).await))
    }

    /// Changes the Envoy config before it starts.
    pub fn configure(
        self,
        edit: impl FnOnce(&mut EnvoyConfig) -> anyhow::Result<()> + Send + 'static,
    ) -> Self {
        StackBuilder(self.0.configure(edit))
    }

    pub fn wasm(self, wasm: PathBuf) -> Self {
        StackBuilder(self.0.wasm(wasm))
    }

    pub fn large_capacity(self) -> Self {
        StackBuilder(self.0.large_capacity())
    }

    pub fn envoy_options(self, options: EnvoyOptions) -> Self {
        StackBuilder(self.0.envoy_options(options))
    }

    pub async fn start(self) -> Stack {
        Stack(must(self.0.start().await))
    }
}

impl Stack {
    pub fn builder(plugin_config: &str) -> StackBuilder {
        StackBuilder(stack::StackBuilder::new(plugin_config))
    }

    /// Starts everything; `auth` answers each auth call as its handler says.
    pub async fn start<F>(plugin_config: &str, auth: F) -> Stack
    where
        F: Fn(&SeenRequest) -> Reply + Send + Sync + 'static,
    {
        Stack::builder(plugin_config).auth(auth).await.start().await
    }

    /// Starts with the auth cluster pointing at a port nobody listens on.
    pub async fn start_with_auth_down(plugin_config: &str) -> Stack {
        Stack::builder(plugin_config).start().await
    }

    pub async fn get(&self, path: &str) -> Seen {
        must(self.0.get(path).await)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Seen {
        must(self.0.send(request).await)
    }

    pub async fn plugin_stat(&self, name: &str) -> u64 {
        must(self.0.plugin_stat(name).await)
    }

    pub async fn stat(&self, name: &str) -> u64 {
        must(self.0.settled_stat(name).await)
    }
}

/// What a request gets: through to the upstream, or a local reply with this status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Upstream,
    Status(u16),
}

impl Answer {
    pub fn of(seen: &Seen) -> Answer {
        if seen.reached_upstream() {
            Answer::Upstream
        } else {
            Answer::Status(seen.status)
        }
    }
}

/// One case of a fault matrix, on a stack whose auth service misbehaves on `/fault`: the answer
/// (failing closed `closed`, `status_on_error` (403) for a fault of the auth service; failing open
/// `open`), within the timeout plus
/// a second, nothing upstream while failing closed, the failure-mode mark when let through, the
/// next request served normally (or, when the fault is permanent, answered the same way), and
/// no call left counted.
pub async fn check_fault(
    stack: &Stack,
    name: &str,
    fail_open: bool,
    closed: Answer,
    open: Answer,
    next_is_normal: bool,
    timeout: Duration,
) {
    let seen = stack.get("/fault").await;
    let answer = Answer::of(&seen);
    let mode = if fail_open { "open" } else { "closed" };
    println!(
        "| {name} | {mode} | {answer:?} | {} ms |",
        seen.elapsed.as_millis()
    );
    let expected = if fail_open { open } else { closed };
    assert_eq!(answer, expected, "{name} failing {mode}");
    if !fail_open || open != Answer::Upstream {
        assert!(
            stack.upstream.seen().is_empty(),
            "{name}: allowed while failing closed"
        );
    }
    if fail_open && answer == Answer::Upstream {
        let upstream = &stack.upstream.seen()[0];
        assert_eq!(
            upstream.header("x-envoy-auth-failure-mode-allowed"),
            Some("true"),
            "{name}"
        );
    }
    let bound = timeout + Duration::from_secs(1);
    assert!(
        seen.elapsed < bound,
        "{name} failing {mode} took {:?}",
        seen.elapsed
    );
    let next = Answer::of(&stack.get("/next").await);
    if next_is_normal {
        assert_eq!(
            next,
            Answer::Upstream,
            "{name}: the next request was not served"
        );
    } else {
        assert_eq!(
            next, expected,
            "{name}: Envoy answers the next request the same way"
        );
    }
    assert_eq!(stack.plugin_stat("calls_in_flight").await, 0, "{name}");
}

/// Sends `count` requests (`/r/0` …) to a stack whose auth service holds every call at `gate`:
/// all must reach the service and be counted in flight at once; once the gate opens, each must
/// get its own verdict exactly once: even FNV-1a hash of the path through to the upstream, odd
/// denied `403 access forbidden`. `checks_seen` reads how many calls the service has got.
pub async fn paused_requests_each_get_their_own_answer(
    stack: &Stack,
    gate: &workbench::test_server::Gate,
    count: usize,
    checks_seen: impl Fn() -> usize,
) {
    let mut requests = tokio::task::JoinSet::new();
    for n in 0..count {
        let client = stack.client.clone();
        let url = format!("{}/r/{n}", stack.base);
        requests.spawn(async move {
            let response = client.get(&url).send().await.expect("an answer");
            let status = response.status().as_u16();
            (n, status, response.text().await.unwrap_or_default())
        });
    }
    for _ in 0..600 {
        if checks_seen() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        checks_seen(),
        count,
        "every request reached the auth service, while none was answered"
    );
    assert_eq!(stack.plugin_stat("calls_in_flight").await, count as u64);
    gate.open();

    let (mut allowed, mut denied) = (0, 0);
    while let Some(result) = requests.join_next().await {
        let (n, status, body) = result.unwrap();
        if fnv1a(format!("/r/{n}").as_bytes()) % 2 == 0 {
            assert_eq!((status, body.as_str()), (200, UPSTREAM_BODY), "/r/{n}");
            allowed += 1;
        } else {
            assert_eq!((status, body.as_str()), (403, "access forbidden"), "/r/{n}");
            denied += 1;
        }
    }
    assert_eq!(allowed + denied, count, "none lost");
    // Each request was decided exactly once, and only allowed ones went upstream.
    assert_eq!(stack.plugin_stat("ok").await, allowed as u64);
    assert_eq!(stack.plugin_stat("denied").await, denied as u64);
    assert_eq!(stack.upstream.seen_count(), allowed);
    assert_eq!(stack.plugin_stat("calls_in_flight").await, 0);
}

/// `count` client resets while their auth calls are pending, after a warm-up of the same
/// traffic (so that "before" already holds Envoy's high-water buffers and pools): no wrong
/// answer, no call left counted, normal service afterwards, and RSS within 10% of before.
pub async fn resets_leave_nothing_behind(stack: &Stack, count: u64, what: &str) {
    use workbench::load::{self, Kind};
    let port = stack.port();
    let warm = must(load::drive(port, 0, 1_000, 50, |_| Kind::Reset).await);
    // Reset calls still count against max_orphaned_calls until answered (HTTP cannot cancel
    // them): let them end, or the allows that follow could meet a full worker (503).
    tokio::time::sleep(load::RESET_HOLD + Duration::from_millis(500)).await;
    let warm_allow = must(load::drive(port, 0, 2_000, 16, |_| Kind::Allow).await);
    assert_eq!(
        warm.wrong + warm_allow.wrong,
        0,
        "{:?} {:?}",
        warm.first_wrong,
        warm_allow.first_wrong
    );
    tokio::time::sleep(load::RESET_HOLD + Duration::from_millis(500)).await;
    let rss_before = stack.envoy.rss_kib().expect("Envoy's RSS");

    let tally = must(load::drive(port, 0, count, 50, |_| Kind::Reset).await);
    assert_eq!(tally.wrong, 0, "{:?}", tally.first_wrong);
    tokio::time::sleep(load::RESET_HOLD + Duration::from_millis(500)).await;
    // On a loaded machine Envoy may still be working through the resets: wait (bounded) for
    // the count to settle rather than read it once.
    let mut in_flight = stack.plugin_stat("calls_in_flight").await;
    for _ in 0..20 {
        if in_flight == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        in_flight = stack.plugin_stat("calls_in_flight").await;
    }
    assert_eq!(in_flight, 0, "no call is left counted as in flight");

    let after = must(load::drive(port, 0, 2_000, 16, |_| Kind::Allow).await);
    assert_eq!(after.wrong, 0, "Envoy serves normally after the resets");
    let rss_after = stack.envoy.rss_kib().expect("Envoy's RSS");
    let growth = (rss_after as f64 - rss_before as f64) / rss_before as f64;
    println!(
        "{count} resets{what}: Envoy RSS {:.1} MiB before, {:.1} MiB after ({:+.1}%)",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        growth * 100.0
    );
    assert!(
        growth < 0.10,
        "RSS grew {:.1}% over {count} resets",
        growth * 100.0
    );
}

/// 8,000 mixed requests (allow, deny, error, reset): no wrong answer, no VM restart, no call
/// left, RSS within 10% of the warm-up's.
pub async fn short_soak(stack: &Stack) {
    let report = must(workbench::soak::soak(stack, 8_000, 16, 4, |_| {}).await);
    assert_eq!(report.tally.total(), 8_000);
    assert_eq!(report.tally.wrong, 0, "{:?}", report.tally.first_wrong);
    assert_eq!(report.vm_restarts(), 0);
    assert_eq!(report.calls_in_flight_after, 0);
    assert!(
        report.growth_after_warmup() < 0.10,
        "RSS grew {:.1}% after warm-up",
        report.growth_after_warmup() * 100.0
    );
}

/// The seed's Envoy config without its listeners, for tests that put filters side by side on
/// listeners of their own: admin on a free port, `staticreply` pointed at `upstream_port`.
pub fn side_by_side_config(upstream_port: u16) -> EnvoyConfig {
    let mut config = must(EnvoyConfig::seed());
    config.set_admin("127.0.0.1", 0);
    for listener in ["main", "staticreply"] {
        must(config.remove_listener(listener).map(|_| ()));
    }
    must(
        config
            .set_cluster_endpoint("staticreply", "127.0.0.1", upstream_port)
            .map(|_| ()),
    );
    config
}

/// Headers as a comparable map (lowercased names, repeated ones in order), without those named
/// in `incidental` (which differ between listeners or requests whatever the filter does).
pub fn comparable<'a>(
    headers: impl Iterator<Item = (&'a str, &'a str)>,
    incidental: &[&str],
) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut map: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        if !incidental.contains(&name.as_str()) {
            map.entry(name).or_default().push(value.to_owned());
        }
    }
    map
}

/// Starts Envoy, failing the test with Envoy's own log if it does not come up.
pub async fn start_envoy(config: &EnvoyConfig) -> Envoy {
    must(Envoy::start(config, &EnvoyOptions::default()).await)
}

/// Sends raw bytes as a request on a new connection; returns the status line's code (0 if the
/// connection closed without one) and everything read until the headers end (10 s at most).
pub async fn raw(port: u16, request: &[u8]) -> (u16, String) {
    use tokio::io::AsyncWriteExt;
    let mut socket = must(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(anyhow::Error::from),
    );
    must(socket.write_all(request).await.map_err(anyhow::Error::from));
    let answer = read_head(&mut socket, Duration::from_secs(10)).await;
    let code = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (code, answer)
}

/// Reads from a socket until a response's headers end, the connection closes, or `limit`.
pub async fn read_head(socket: &mut tokio::net::TcpStream, limit: Duration) -> String {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        while let Ok(n) = socket.read(&mut buf).await {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    })
    .await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// A loopback port that refuses connections.
pub async fn closed_port() -> u16 {
    must(stack::closed_port().await)
}

/// The shell the tests run against (`AUTHZ_SHELL`, which `cargo xtask test --shell` sets).
pub fn shell() -> Shell {
    Shell::current()
}

pub fn client() -> reqwest::Client {
    must(stack::client())
}

/// 32-bit FNV-1a, written here independently of the plugin so the tests do not grade the plugin
/// with its own code.
pub fn fnv1a(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in bytes {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// Plugin configuration JSON from `serde_json::json!`.
pub fn config(value: serde_json::Value) -> String {
    value.to_string()
}

fn must<T>(result: anyhow::Result<T>) -> T {
    result.unwrap_or_else(|err| panic!("{err:#}"))
}
