//! Load and lifetime, short versions (`cargo xtask soak` is the long one): thousands of paused
//! requests at once, thousands of client resets mid-call, and a mixed soak.

use e2e::{
    config, fnv1a, paused_requests_each_get_their_own_answer, resets_leave_nothing_behind,
    short_soak, Reply, Stack,
};
use serde_json::json;
use workbench::load::{self, EVEN, ODD};
use workbench::test_server::Gate;

const CONCURRENT: usize = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_paused_requests_all_get_their_own_answer_once() {
    let gate = Gate::default();
    let held = gate.clone();
    // Every auth call waits at the gate, so all requests are paused in the plugin at once (the
    // per-worker cap, 500 by default, raised to let them all wait).
    let stack = Stack::builder(&config(
        json!({"decision": "fnv_parity", "max_calls_in_flight": 10_000}),
    ))
    .auth(move |request| {
        let body = if fnv1a(request.path.as_bytes()) % 2 == 0 {
            EVEN
        } else {
            ODD
        };
        Reply::Gated(held.clone(), Box::new(Reply::ok(body)))
    })
    .await
    .large_capacity()
    .start()
    .await;
    let auth = stack.auth.as_ref().unwrap();
    paused_requests_each_get_their_own_answer(&stack, &gate, CONCURRENT, || auth.seen_count())
        .await;
    assert_eq!(
        auth.most_at_once(),
        CONCURRENT,
        "all were paused at the same time"
    );
}

/// The seed's configuration, the mixed-traffic auth service, and room for many requests at once.
async fn mixed_traffic_stack() -> Stack {
    Stack::builder(&config(json!({})))
        .auth(load::mixed_auth)
        .await
        .large_capacity()
        .start()
        .await
}

/// `RESETS` overrides the count (the figure is 10,000).
fn resets() -> u64 {
    std::env::var("RESETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

#[tokio::test]
async fn client_resets_while_calls_are_pending_leave_nothing_behind() {
    let stack = mixed_traffic_stack().await;
    resets_leave_nothing_behind(&stack, resets(), "").await;
}

#[tokio::test]
async fn short_soak_of_mixed_traffic() {
    short_soak(&mixed_traffic_stack().await).await;
}
