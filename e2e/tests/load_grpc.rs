//! Load and lifetime in gRPC mode (`protocol: grpc`), short versions (`cargo xtask soak
//! --protocol grpc` is the long one): thousands of paused Checks at once, thousands of client
//! resets mid-Check, and a mixed soak.

use std::time::Duration;

use e2e::{config, fnv1a, Stack};
use serde_json::json;
use workbench::grpc_auth::pb::OkHttpResponse;
use workbench::grpc_auth::{denied, Code, GrpcReply};
use workbench::load;
use workbench::soak;
use workbench::test_server::Gate;

const CONCURRENT: usize = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_paused_checks_all_get_their_own_answer_once() {
    let gate = Gate::default();
    let held = gate.clone();
    let plugin =
        config(json!({"protocol": "grpc", "timeout_ms": 60_000, "max_calls_in_flight": 10_000}));
    // Every Check waits at the gate, so all requests are paused in the plugin at once.
    let stack = Stack::builder(&plugin)
        .grpc_auth(move |check| {
            let path = check
                .attributes
                .as_ref()
                .and_then(|a| a.request.as_ref())
                .and_then(|r| r.http.as_ref())
                .map_or("", |h| h.path.as_str());
            let reply = if fnv1a(path.as_bytes()) % 2 == 0 {
                GrpcReply::allow(OkHttpResponse::default())
            } else {
                GrpcReply::deny(
                    Code::PermissionDenied,
                    Some(denied(403, "access forbidden", &[])),
                )
            };
            GrpcReply::Gated(held.clone(), Box::new(reply))
        })
        .await
        .large_capacity()
        .start()
        .await;
    let mut requests = tokio::task::JoinSet::new();
    for n in 0..CONCURRENT {
        let client = stack.client.clone();
        let url = format!("{}/r/{n}", stack.base);
        requests.spawn(async move {
            let response = client.get(&url).send().await.expect("an answer");
            let status = response.status().as_u16();
            (n, status, response.text().await.unwrap_or_default())
        });
    }
    let service = stack.grpc_auth.as_ref().unwrap();
    for _ in 0..600 {
        if service.seen_count() >= CONCURRENT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        service.seen_count(),
        CONCURRENT,
        "every request reached the Check service, while none was answered"
    );
    assert_eq!(
        stack.plugin_stat("calls_in_flight").await,
        CONCURRENT as u64
    );
    gate.open();

    let (mut allowed, mut denied) = (0, 0);
    while let Some(result) = requests.join_next().await {
        let (n, status, body) = result.unwrap();
        if fnv1a(format!("/r/{n}").as_bytes()) % 2 == 0 {
            assert_eq!((status, body.as_str()), (200, e2e::UPSTREAM_BODY), "/r/{n}");
            allowed += 1;
        } else {
            assert_eq!((status, body.as_str()), (403, "access forbidden"), "/r/{n}");
            denied += 1;
        }
    }
    assert_eq!(allowed + denied, CONCURRENT, "none lost");
    assert_eq!(stack.plugin_stat("ok").await, allowed as u64);
    assert_eq!(stack.plugin_stat("denied").await, denied as u64);
    assert_eq!(stack.upstream.seen_count(), allowed);
    assert_eq!(stack.plugin_stat("calls_in_flight").await, 0);
}

async fn mixed_traffic_stack() -> Stack {
    // ext_authz's 200 ms default is short for a loaded two-core machine; allow and reset kinds
    // must not time out.
    Stack::builder(&config(json!({"protocol": "grpc", "timeout_ms": 5_000})))
        .grpc_auth(load::mixed_grpc_auth)
        .await
        .large_capacity()
        .start()
        .await
}

#[tokio::test]
async fn client_resets_while_checks_are_pending_leave_nothing_behind() {
    // A timeout far beyond the test, so that no Check is cleared by its deadline: each must be
    // cancelled (its client reset) or answered.
    let stack = Stack::builder(&config(json!({"protocol": "grpc", "timeout_ms": 120_000})))
        .grpc_auth(load::mixed_grpc_auth)
        .await
        .large_capacity()
        .start()
        .await;
    let warm = load::drive(stack.port(), 0, 1_000, 50, |_| load::Kind::Reset)
        .await
        .unwrap();
    let warm_allow = load::drive(stack.port(), 0, 2_000, 16, |_| load::Kind::Allow)
        .await
        .unwrap();
    assert_eq!(warm.wrong + warm_allow.wrong, 0);
    tokio::time::sleep(load::RESET_HOLD + Duration::from_millis(500)).await;
    let rss_before = stack.envoy.rss_kib().unwrap();

    let count = 2_000;
    let tally = load::drive(stack.port(), 0, count, 50, |_| load::Kind::Reset)
        .await
        .unwrap();
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
    assert_eq!(in_flight, 0, "every reset Check was cancelled or answered");
    let after = load::drive(stack.port(), 0, 2_000, 16, |_| load::Kind::Allow)
        .await
        .unwrap();
    assert_eq!(after.wrong, 0, "Envoy serves normally after the resets");
    let rss_after = stack.envoy.rss_kib().unwrap();
    let growth = (rss_after as f64 - rss_before as f64) / rss_before as f64;
    println!(
        "{count} resets over gRPC: Envoy RSS {:.1} MiB before, {:.1} MiB after ({:+.1}%)",
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

#[tokio::test]
async fn short_soak_of_mixed_traffic_over_grpc() {
    let stack = mixed_traffic_stack().await;
    let report = soak::soak(&stack, 8_000, 16, 4, |_| {}).await.unwrap();
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
