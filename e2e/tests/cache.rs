//! The decision cache in a real Envoy: verdicts never cross identities, revocation within the TTL,
//! Cache-Control, sharing across workers, coalescing, stale-if-error, and a bounded store.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::{config, Reply, SeenRequest, Stack};
use serde_json::{json, Value};
use workbench::envoy::EnvoyOptions;
use workbench::test_server::Gate;

/// The status rule, the identity header the auth service sets, and a cache on `authorization`.
fn cached(cache: Value) -> String {
    config(json!({
        "decision": "status",
        "allowed_upstream_headers": [{"exact": "x-user-id"}],
        "cache": cache,
    }))
}

/// Allows `Bearer alice` as alice, denies everyone else.
fn alice_only(request: &SeenRequest) -> Reply {
    if request.header("authorization") == Some("Bearer alice") {
        Reply::ok("").header("x-user-id", "alice")
    } else {
        Reply::status(403, "not you")
    }
}

fn two_workers() -> EnvoyOptions {
    EnvoyOptions {
        concurrency: 2,
        ..EnvoyOptions::default()
    }
}

/// A client that opens a new connection for every request, so that requests spread over
/// Envoy's workers.
fn fresh_connections() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn get_as(stack: &Stack, client: &reqwest::Client, token: &str, path: &str) -> e2e::Seen {
    stack
        .send(
            client
                .get(format!("{}{path}", stack.base))
                .header("authorization", format!("Bearer {token}")),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_identities_alternating_never_get_each_others_verdict() {
    let plugin = cached(json!({"key": ["authorization"], "ttl_ms": 60_000, "deny_ttl_ms": 60_000}));
    let stack = Stack::builder(&plugin)
        .auth(alice_only)
        .await
        .envoy_options(two_workers())
        .start()
        .await;
    let mut requests = tokio::task::JoinSet::new();
    for n in 0..2_000 {
        let client = stack.client.clone();
        let base = stack.base.clone();
        requests.spawn(async move {
            let who = if n % 2 == 0 { "alice" } else { "mallory" };
            let response = client
                .get(format!("{base}/r/{n}"))
                .header("authorization", format!("Bearer {who}"))
                .send()
                .await
                .unwrap();
            (who, response.status().as_u16())
        });
        if requests.len() >= 32 {
            let (who, status) = requests.join_next().await.unwrap().unwrap();
            assert_eq!(status, if who == "alice" { 200 } else { 403 }, "{who}");
        }
    }
    while let Some(result) = requests.join_next().await {
        let (who, status) = result.unwrap();
        assert_eq!(status, if who == "alice" { 200 } else { 403 }, "{who}");
    }
    // Everything upstream is alice's, with alice's identity.
    let upstream = stack.upstream.seen();
    assert_eq!(upstream.len(), 1_000);
    for request in &upstream {
        assert_eq!(request.header_all("x-user-id"), ["alice"], "{request:?}");
        assert_eq!(request.header("authorization"), Some("Bearer alice"));
    }
    // A handful of calls for 2,000 requests: the first of each key on each worker, and
    // whatever raced them.
    let calls = stack.auth_seen().len();
    let hits = stack.plugin_stat("cache_hit").await;
    assert!(calls < 100, "{calls} auth calls");
    assert_eq!(hits + stack.plugin_stat("cache_miss").await, 2_000);
}

#[tokio::test]
async fn a_revoked_credential_is_denied_once_its_ttl_has_passed() {
    const TTL: Duration = Duration::from_millis(1_000);
    let revoked = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&revoked);
    let plugin = cached(json!({"key": ["authorization"], "ttl_ms": TTL.as_millis() as u64}));
    let stack = Stack::start(&plugin, move |request| {
        if flag.load(Ordering::SeqCst) {
            Reply::status(403, "revoked")
        } else {
            alice_only(request)
        }
    })
    .await;
    let client = stack.client.clone();
    assert_eq!(get_as(&stack, &client, "alice", "/a").await.status, 200);
    revoked.store(true, Ordering::SeqCst);
    let revoked_at = Instant::now();
    // Inside the TTL the cached allow may still be served; after it, never.
    while revoked_at.elapsed() < TTL + Duration::from_millis(1_500) {
        let sent_at = revoked_at.elapsed();
        let seen = get_as(&stack, &client, "alice", "/a").await;
        if sent_at > TTL {
            assert_eq!(seen.status, 403, "served {sent_at:?} after the revocation");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Counts the auth calls a stack's auth service received for one path.
fn calls_for(stack: &Stack, path: &str) -> usize {
    stack.auth_seen().iter().filter(|r| r.path == path).count()
}

#[tokio::test]
async fn cache_control_and_the_kind_of_answer_decide_what_is_cached() {
    let plugin = cached(json!({"key": [":path"], "ttl_ms": 2_000, "max_ttl_ms": 2_000}));
    let failing_open = config(json!({
        "decision": "status",
        "failure_mode_allow": true,
        "cache": {"key": [":path"], "ttl_ms": 60_000},
    }));
    let answer = |request: &SeenRequest| match request.path.as_str() {
        "/no-store" => Reply::ok("").header("cache-control", "no-store"),
        "/private" => Reply::ok("").header("cache-control", "Private, max-age=60"),
        "/max-age-1" => Reply::ok("").header("cache-control", "max-age=1"),
        "/max-age-3600" => Reply::ok("").header("cache-control", "max-age=3600"),
        "/deny" => Reply::status(403, ""),
        "/error" => Reply::status(503, ""),
        _ => Reply::ok(""),
    };
    let stack = Stack::start(&plugin, answer).await;
    let open = Stack::start(&failing_open, answer).await;
    let client = stack.client.clone();
    for path in [
        "/no-store",
        "/private",
        "/max-age-1",
        "/max-age-3600",
        "/deny",
        "/error",
        "/plain",
    ] {
        for _ in 0..3 {
            get_as(&stack, &client, "x", path).await;
        }
    }
    for _ in 0..3 {
        assert!(get_as(&open, &client, "x", "/error")
            .await
            .reached_upstream());
    }
    assert_eq!(
        calls_for(&stack, "/no-store"),
        3,
        "no-store is never cached"
    );
    assert_eq!(calls_for(&stack, "/private"), 3, "private is never cached");
    assert_eq!(
        calls_for(&stack, "/deny"),
        3,
        "denies only with deny_ttl_ms"
    );
    assert_eq!(calls_for(&stack, "/error"), 3, "errors never");
    assert_eq!(calls_for(&open, "/error"), 3, "failure-mode allows never");
    assert_eq!(calls_for(&stack, "/plain"), 1, "the default TTL");
    assert_eq!(calls_for(&stack, "/max-age-1"), 1);
    assert_eq!(calls_for(&stack, "/max-age-3600"), 1);
    // max-age=1 s is honoured; max-age=3600 is capped at max_ttl_ms = 2 s.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    get_as(&stack, &client, "x", "/max-age-1").await;
    get_as(&stack, &client, "x", "/max-age-3600").await;
    assert_eq!(calls_for(&stack, "/max-age-1"), 2, "expired after 1 s");
    assert_eq!(
        calls_for(&stack, "/max-age-3600"),
        1,
        "still fresh before 2 s"
    );
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    get_as(&stack, &client, "x", "/max-age-3600").await;
    assert_eq!(calls_for(&stack, "/max-age-3600"), 2, "capped at 2 s");

    // A cached deny, with deny_ttl_ms.
    let plugin = cached(json!({"key": [":path"], "deny_ttl_ms": 60_000}));
    let denies = Stack::start(&plugin, answer).await;
    for _ in 0..3 {
        assert_eq!(get_as(&denies, &client, "x", "/deny").await.status, 403);
    }
    assert_eq!(calls_for(&denies, "/deny"), 1);
}

#[tokio::test]
async fn a_verdict_cached_by_one_worker_is_served_by_the_other() {
    let plugin = cached(json!({"key": ["authorization"], "ttl_ms": 60_000}));
    let stack = Stack::builder(&plugin)
        .auth(alice_only)
        .await
        .envoy_options(two_workers())
        .start()
        .await;
    let client = fresh_connections();
    assert_eq!(get_as(&stack, &client, "alice", "/first").await.status, 200);
    for n in 0..40 {
        let seen = get_as(&stack, &client, "alice", &format!("/then/{n}")).await;
        assert!(seen.reached_upstream());
    }
    assert_eq!(stack.auth_seen().len(), 1, "one call for 41 requests");
    // Both workers served some of them (each connection goes to one worker).
    let stats = stack.envoy.stats().await.unwrap();
    let per_worker: Vec<u64> = stats
        .iter()
        .filter(|(name, _)| {
            name.starts_with("listener.127.0.0.1_")
                && name.ends_with(".downstream_cx_total")
                && name.contains(".worker_")
        })
        .filter_map(|(_, value)| value.parse().ok())
        .collect();
    assert_eq!(per_worker.len(), 2, "{per_worker:?}");
    assert!(
        per_worker.iter().all(|n| *n > 0),
        "both workers served: {per_worker:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_with_one_key_share_one_call_even_when_the_first_leaves() {
    let gate = Gate::default();
    let held = gate.clone();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let plugin = cached(json!({"key": ["authorization"], "ttl_ms": 60_000}));
    let stack = Stack::start(&plugin, move |request| {
        counted.fetch_add(1, Ordering::SeqCst);
        Reply::Gated(held.clone(), Box::new(alice_only(request)))
    })
    .await;
    // The first request makes the call, then its client leaves.
    let mut first = std::net::TcpStream::connect(("127.0.0.1", stack.port())).unwrap();
    use std::io::Write;
    first
        .write_all(b"GET /first HTTP/1.1\r\nhost: t\r\nauthorization: Bearer alice\r\n\r\n")
        .unwrap();
    while calls.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut waiting = tokio::task::JoinSet::new();
    for n in 0..20 {
        let client = stack.client.clone();
        let base = stack.base.clone();
        waiting.spawn(async move {
            client
                .get(format!("{base}/w/{n}"))
                .header("authorization", "Bearer alice")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    while stack.plugin_stat("coalesced").await < 20 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    gate.open();
    while let Some(status) = waiting.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    // In wasm the call outlives the client that made it and answers everyone. A native
    // module's call ends with the stream that made it (as native ext_authz's): the waiters then
    // make one new call together, and share it.
    let expected_calls = match e2e::shell() {
        e2e::Shell::Wasm => 1,
        e2e::Shell::Native => 2,
    };
    assert_eq!(
        calls.load(Ordering::SeqCst),
        expected_calls,
        "calls for 21 requests"
    );
    assert_eq!(stack.upstream.seen_count(), 20, "the first client had gone");
}

#[tokio::test]
async fn an_expired_allow_is_served_during_an_outage_only_inside_the_stale_window() {
    let down = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&down);
    let plugin =
        cached(json!({"key": ["authorization"], "ttl_ms": 300, "stale_if_error_ms": 1_500}));
    // The outage: the service says it is unavailable (a dropped connection is a reset, which
    // a client may provoke, and never serves stale).
    let stack = Stack::start(&plugin, move |request| {
        if flag.load(Ordering::SeqCst) {
            Reply::status(503, "unavailable")
        } else {
            alice_only(request)
        }
    })
    .await;
    let client = stack.client.clone();
    assert_eq!(get_as(&stack, &client, "alice", "/a").await.status, 200);
    down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Expired, inside the window, the auth service failing: served, counted.
    let stale = get_as(&stack, &client, "alice", "/b").await;
    assert!(stale.reached_upstream(), "{stale:?}");
    assert_eq!(stack.plugin_stat("cache_stale_served").await, 1);
    // Someone never cached is not let through.
    assert_eq!(get_as(&stack, &client, "mallory", "/c").await.status, 403);
    // Past the window: the failure policy (closed).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(get_as(&stack, &client, "alice", "/d").await.status, 403);
    assert!(stack
        .envoy
        .log()
        .contains("serving an expired allow from the cache"));
}

/// `KEYS` overrides the count (the figure is 100,000).
fn distinct_keys() -> usize {
    std::env::var("KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn far_more_keys_than_entries_keep_memory_bounded_and_verdicts_right() {
    let plugin = cached(
        json!({"key": ["authorization"], "ttl_ms": 60_000, "deny_ttl_ms": 60_000, "max_entries": 1_000}),
    );
    // Even-numbered tokens are allowed, as themselves.
    let stack = Stack::start(&plugin, |request| {
        let token = request.header("authorization").unwrap_or("");
        let n: usize = token.trim_start_matches("Bearer k").parse().unwrap_or(1);
        if n % 2 == 0 {
            Reply::ok("").header("x-user-id", token)
        } else {
            Reply::status(403, "")
        }
    })
    .await;
    let keys = distinct_keys();
    let mut rss = Vec::new();
    let mut requests = tokio::task::JoinSet::new();
    for n in 0..keys {
        let client = stack.client.clone();
        let base = stack.base.clone();
        requests.spawn(async move {
            // Each key twice: the second may be a hit, and must give the same verdict.
            let mut statuses = Vec::new();
            for _ in 0..2 {
                let status = client
                    .get(format!("{base}/k"))
                    .header("authorization", format!("Bearer k{n}"))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16();
                statuses.push(status);
            }
            (n, statuses)
        });
        while requests.len() >= 32 {
            let (n, statuses) = requests.join_next().await.unwrap().unwrap();
            let expected = if n % 2 == 0 { 200 } else { 403 };
            assert_eq!(statuses, [expected, expected], "k{n}");
        }
        if n % (keys / 4) == keys / 4 - 1 {
            rss.push(stack.envoy.rss_kib().unwrap());
        }
    }
    while let Some(result) = requests.join_next().await {
        let (n, statuses) = result.unwrap();
        let expected = if n % 2 == 0 { 200 } else { 403 };
        assert_eq!(statuses, [expected, expected], "k{n}");
    }
    for request in stack.upstream.seen() {
        assert_eq!(
            request.header_all("x-user-id"),
            [request.header("authorization").unwrap()],
            "each allowed request carries its own identity"
        );
    }
    // The store holds at most 1,000 small entries: after the first quarter, Envoy's memory
    // stays where it was.
    let (first, last) = (rss[0] as f64, *rss.last().unwrap() as f64);
    println!("{keys} keys: Envoy RSS by quarter {rss:?} KiB");
    assert!(
        (last - first) / first < 0.10,
        "RSS grew from {first} to {last} KiB over {keys} distinct keys"
    );
}

#[tokio::test]
async fn a_request_without_the_key_header_cannot_fill_the_cache_for_everyone_without_it() {
    // The auth service also accepts a key in the query string, which the cache key leaves out.
    let plugin = cached(json!({"key": ["x-api-key"], "ttl_ms": 60_000}));
    let stack = Stack::start(&plugin, |request| {
        let key = request
            .header("x-api-key")
            .map(str::to_owned)
            .or_else(|| request.path.split("api_key=").nth(1).map(str::to_owned));
        match key {
            Some(key) => Reply::ok("").header("x-user-id", &key),
            None => Reply::status(401, ""),
        }
    })
    .await;
    let client = stack.client.clone();
    let anonymous = || client.get(format!("{}/x", stack.base));
    assert_eq!(stack.send(anonymous()).await.status, 401);
    let mallory = client.get(format!("{}/x?api_key=mallory", stack.base));
    assert_eq!(stack.send(mallory).await.status, 200);
    for _ in 0..3 {
        assert_eq!(
            stack.send(anonymous()).await.status,
            401,
            "never mallory's allow"
        );
    }
    for request in stack.upstream.seen() {
        assert!(request.path.contains("api_key=mallory"), "{request:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cookie_set_by_the_auth_service_reaches_only_the_client_it_was_made_for() {
    let gate = Gate::default();
    let held = gate.clone();
    let sessions = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&sessions);
    let plugin = config(json!({
        "decision": "status",
        "allowed_client_headers_on_success": [{"exact": "set-cookie"}],
        "cache": {"key": ["authorization"], "ttl_ms": 60_000},
    }));
    let stack = Stack::start(&plugin, move |_| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        Reply::Gated(
            held.clone(),
            Box::new(Reply::ok("").header("set-cookie", &format!("sid={n}"))),
        )
    })
    .await;
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let client = stack.client.clone();
        let base = stack.base.clone();
        clients.spawn(async move {
            let response = client
                .get(format!("{base}/login"))
                .header("authorization", "Bearer same")
                .send()
                .await
                .unwrap();
            response
                .headers()
                .get("set-cookie")
                .map(|v| v.to_str().unwrap().to_owned())
        });
    }
    while stack.auth_seen().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    gate.open();
    let mut cookies = Vec::new();
    while let Some(cookie) = clients.join_next().await {
        cookies.push(cookie.unwrap().expect("a cookie"));
    }
    cookies.sort();
    cookies.dedup();
    assert_eq!(
        cookies.len(),
        5,
        "every client its own session: {cookies:?}"
    );
}
