//! Load and lifetime in gRPC mode (`protocol: grpc`), short versions (`cargo xtask soak
//! --protocol grpc` is the long one): thousands of paused Checks at once, thousands of client
//! resets mid-Check, and a mixed soak.

use e2e::{
    config, fnv1a, paused_requests_each_get_their_own_answer, resets_leave_nothing_behind,
    short_soak, Stack,
};
use serde_json::json;
use workbench::grpc_auth::pb::OkHttpResponse;
use workbench::grpc_auth::{denied, request_path, Code, GrpcReply};
use workbench::load;
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
            let reply = if fnv1a(request_path(check).as_bytes()) % 2 == 0 {
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
    let service = stack.grpc_auth.as_ref().unwrap();
    paused_requests_each_get_their_own_answer(&stack, &gate, CONCURRENT, || service.seen_count())
        .await;
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
    resets_leave_nothing_behind(&stack, 2_000, " over gRPC").await;
}

#[tokio::test]
async fn short_soak_of_mixed_traffic_over_grpc() {
    short_soak(&mixed_traffic_stack().await).await;
}
