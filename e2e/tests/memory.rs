//! Memory as an attacker spends it: allowed requests held at a slow upstream, each keeping large
//! success headers for the client. The VM must never run out (it would trap, and with it every
//! request on the worker): success headers are capped per request, admission reserves the cap
//! against a per-worker budget, and requests past the budget get 503 and reach nothing.
//!
//! CI runs a small budget; `HELD=30000 cargo test -p e2e --test memory -- --nocapture` runs the
//! full-size version (the default 256 MiB budget) and prints the memory figures.

use std::time::Duration;

use e2e::{config, Reply, Stack};
use serde_json::json;
use workbench::h2_client::H2Connection;
use workbench::soak::VMS_CREATED;
use workbench::test_server::Gate;

/// The auth service's success headers: 20 of 560 bytes, about 11 KiB, over the 8 KiB cap.
const SUCCESS_HEADERS: usize = 20;
const SUCCESS_VALUE_BYTES: usize = 560;
/// What the plugin reserves per waiting request (`flow::STREAM_COST_BYTES` + the 8 KiB cap).
const PER_REQUEST: usize = 512 + 8192;
/// How many of the 629-byte headers (`x-sNN`, 560 bytes, 64 of bookkeeping) fit in 8 KiB.
const KEPT_PER_REQUEST: usize = 13;

/// Requests sent at once; the next batch goes when these are held at the upstream.
const BATCH: usize = 2_000;

/// Streams per client connection: Envoy allows 1,024 at once on one HTTP/2 connection.
const STREAMS_PER_CONNECTION: usize = 1_000;

/// The upstream's answer. The h2 client takes a burst of small DATA frames (under 256 bytes) on
/// one connection for a flood and closes it, so the held requests' answers are not small.
fn upstream_body() -> String {
    format!("{}{}", e2e::UPSTREAM_BODY, " ".repeat(500))
}

fn held_total() -> Option<usize> {
    std::env::var("HELD").ok().and_then(|v| v.parse().ok())
}

struct Outcome {
    served: usize,
    refused: usize,
}

/// Sends `count` requests at once, as HTTP/2 streams spread over the connections.
fn send_wave(
    connections: &[H2Connection],
    count: usize,
    first: usize,
    requests: &mut tokio::task::JoinSet<(u16, usize, String)>,
) {
    for n in first..first + count {
        let connection = connections[n % connections.len()].clone();
        requests.spawn(async move {
            let response = connection
                .get(&format!("/held/{n}"))
                .await
                .expect("an answer");
            let kept = response
                .headers
                .iter()
                .filter(|(name, _)| name.starts_with("x-s"))
                .count();
            let body = String::from_utf8_lossy(&response.body).into_owned();
            (response.status, kept, body)
        });
    }
}

fn tally(outcome: &mut Outcome, (status, kept, body): (u16, usize, String)) {
    match status {
        200 => {
            assert_eq!(body, upstream_body());
            assert_eq!(kept, KEPT_PER_REQUEST, "success headers capped, not lost");
            outcome.served += 1;
        }
        503 => {
            assert_eq!(body, "authorization overloaded");
            outcome.refused += 1;
        }
        other => panic!("a held request got {other}: {body}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_past_the_memory_budget_get_503_and_the_held_ones_complete() {
    let full_size = held_total();
    // CI: room for 240 waiting requests; 200 are held, then 100 more arrive: 40 fit.
    let (budget, first_wave, second_wave) = match full_size {
        Some(total) => (256 * 1024 * 1024, total, 0),
        None => (240 * PER_REQUEST, 200, 100),
    };
    let fits = budget / PER_REQUEST;
    let plugin = config(json!({
        "decision": "status",
        "timeout_ms": 30_000,
        "allowed_client_headers_on_success": [{"prefix": "x-s"}],
        "max_held_bytes": budget,
        "max_calls_in_flight": 100_000,
    }));
    let gate = Gate::default();
    let held = gate.clone();
    let stack = Stack::builder(&plugin)
        .auth(|_| {
            let value = "v".repeat(SUCCESS_VALUE_BYTES);
            (0..SUCCESS_HEADERS).fold(Reply::ok(""), |reply, n| {
                reply.header(&format!("x-s{n:02}"), &value)
            })
        })
        .await
        .upstream(move |_| Reply::Gated(held.clone(), Box::new(Reply::ok(upstream_body()))))
        .await
        .large_capacity()
        .configure(|config| {
            // The upstream holds every stream over HTTP/2, as in the attack; the auth calls go
            // over HTTP/2 too, so that thousands of them need no thousands of connections.
            for cluster in ["staticreply", "httpbin"] {
                config.set_cluster_field(
                    cluster,
                    "typed_extension_protocol_options",
                    json!({"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                        "explicit_http_config": {"http2_protocol_options": {}}
                    }}),
                )?;
            }
            // Held requests must not time out at the route's default 15 s.
            let routes = config
                .hcm_mut("main")?
                .pointer_mut("/route_config/virtual_hosts/0/routes")
                .and_then(|r| r.as_array_mut())
                .ok_or_else(|| anyhow::anyhow!("no routes"))?;
            for route in routes {
                route["route"]["timeout"] = json!("0s");
            }
            Ok(())
        })
        .start()
        .await;
    let vms_before = stack.stat(VMS_CREATED).await;
    let memory_before = stack.plugin_stat("vm_memory_bytes").await;

    let mut connections = Vec::new();
    for _ in 0..(first_wave + second_wave).div_ceil(STREAMS_PER_CONNECTION) {
        connections.push(H2Connection::open(stack.port()).await.unwrap());
    }
    let mut requests = tokio::task::JoinSet::new();
    let mut outcome = Outcome {
        served: 0,
        refused: 0,
    };
    // In batches, so that the test's own auth service keeps up with the calls.
    for start in (0..first_wave).step_by(BATCH) {
        let count = BATCH.min(first_wave - start);
        send_wave(&connections, count, start, &mut requests);
        let held = (start + count).min(fits);
        wait_until(|| stack.upstream.seen_count() >= held, count).await;
    }
    send_wave(&connections, second_wave, first_wave, &mut requests);
    let admitted = (first_wave + second_wave).min(fits);
    let refused = first_wave + second_wave - admitted;
    // The refused ones are answered at once; the admitted ones wait at the upstream.
    for _ in 0..refused {
        let result = requests.join_next().await.unwrap().unwrap();
        tally(&mut outcome, result);
    }
    wait_until(|| stack.upstream.seen_count() >= admitted, admitted).await;
    assert_eq!(outcome.refused, refused, "past the budget: 503");
    assert_eq!(
        stack.upstream.seen_count(),
        admitted,
        "refused requests reach nothing"
    );
    assert_eq!(
        stack.auth_seen().len(),
        admitted,
        "not even the auth service"
    );
    let held_bytes = stack.plugin_stat("held_bytes").await;
    let memory_held = stack.plugin_stat("vm_memory_bytes").await;
    assert!(
        held_bytes <= budget as u64,
        "{held_bytes} held over a {budget}-byte budget"
    );
    assert_eq!(held_bytes, (admitted * PER_REQUEST) as u64);

    gate.open();
    while let Some(result) = requests.join_next().await {
        tally(&mut outcome, result.unwrap());
    }
    assert_eq!(outcome.served, admitted, "every admitted request completed");
    assert_eq!(stack.stat(VMS_CREATED).await, vms_before, "no VM trapped");
    assert_eq!(
        stack.get("/after").await.body,
        upstream_body(),
        "served after"
    );
    assert_eq!(stack.plugin_stat("held_bytes").await, 0, "all given back");
    println!(
        "{admitted} requests held with {KEPT_PER_REQUEST} success headers each, {refused} refused; \
         held {:.1} MiB by the plugin's count; VM memory {:.1} MiB before, {:.1} MiB while held \
         ({:.0} bytes per held request); Envoy RSS {:.1} MiB",
        held_bytes as f64 / 1048576.0,
        memory_before as f64 / 1048576.0,
        memory_held as f64 / 1048576.0,
        (memory_held.saturating_sub(memory_before)) as f64 / admitted as f64,
        stack.envoy.rss_kib().unwrap_or(0) as f64 / 1024.0,
    );
}

/// Polls until `done`, for up to a minute plus a second per 100 requests.
async fn wait_until(done: impl Fn() -> bool, requests: usize) {
    let limit = Duration::from_secs(60 + requests as u64 / 100);
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "not there after {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
