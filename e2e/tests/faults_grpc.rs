//! The fault matrix in gRPC mode (`protocol: grpc`): every way a Check can go wrong, failing
//! closed and failing open. Each case must give a defined answer in bounded time, never allow
//! while failing closed, and leave Envoy serving the next request normally. Run with
//! `--nocapture` to see the figures.

use std::time::Duration;

use e2e::{check_fault, config, Answer, Reply, SeenRequest, Stack};
use serde_json::json;
use workbench::grpc_auth::pb::{CheckRequest, DeniedHttpResponse, HttpResponse, OkHttpResponse};
use workbench::grpc_auth::{denied, request_path, Code, GrpcReply, RpcStatus};

const TIMEOUT_MS: u64 = 500;

/// Who answers the Check.
#[derive(Clone, Copy)]
enum Service {
    /// Nobody listens.
    Down,
    Grpc(fn(&CheckRequest) -> GrpcReply),
    /// A plain HTTP/2 server, to send what a gRPC library would not.
    Raw(fn(&SeenRequest) -> Reply),
}

struct Case {
    name: &'static str,
    service: Service,
    /// The answer failing open: through, marked, for an outage; 403 for a failure of a service
    /// that is up (failing closed is always 403, the default `status_on_error`).
    open: Answer,
    /// Whether the next request is served normally; false when the fault is permanent.
    next_is_normal: bool,
}

/// The service misbehaves on `/fault` and allows anything else.
fn on_fault(check: &CheckRequest, fault: GrpcReply) -> GrpcReply {
    if request_path(check) == "/fault" {
        fault
    } else {
        GrpcReply::allow(OkHttpResponse::default())
    }
}

/// A gRPC answer frame (uncompressed, length-prefixed) around `message`.
fn frame(message: &[u8]) -> Vec<u8> {
    let mut framed = vec![0];
    framed.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    framed.extend_from_slice(message);
    framed
}

async fn run(case: Case) {
    for fail_open in [false, true] {
        let plugin = config(json!({
            "protocol": "grpc",
            "timeout_ms": TIMEOUT_MS,
            "failure_mode_allow": fail_open,
            "failure_mode_allow_header_add": true,
        }));
        let builder = Stack::builder(&plugin);
        let builder = match case.service {
            Service::Down => builder.h2_auth(),
            Service::Grpc(handler) => builder.grpc_auth(handler).await,
            Service::Raw(handler) => builder.auth(handler).await.h2_auth(),
        };
        let stack = builder.start().await;
        check_fault(
            &stack,
            case.name,
            fail_open,
            Answer::Status(403),
            case.open,
            case.next_is_normal,
            Duration::from_millis(TIMEOUT_MS),
        )
        .await;
    }
}

fn case(name: &'static str, service: Service) -> Case {
    Case {
        name,
        service,
        open: Answer::Upstream,
        next_is_normal: true,
    }
}

#[tokio::test]
async fn check_service_refuses_the_connection() {
    run(Case {
        next_is_normal: false,
        ..case("refused connection", Service::Down)
    })
    .await;
}

#[tokio::test]
async fn check_service_accepts_and_never_answers() {
    run(case(
        "never answers",
        Service::Grpc(|c| on_fault(c, GrpcReply::Hang)),
    ))
    .await;
}

#[tokio::test]
async fn check_service_answers_slower_than_the_timeout() {
    run(case(
        "slower than the timeout",
        Service::Grpc(|c| {
            on_fault(
                c,
                GrpcReply::allow(OkHttpResponse::default()).after(Duration::from_secs(3)),
            )
        }),
    ))
    .await;
}

#[tokio::test]
async fn check_service_is_unavailable() {
    run(case(
        "UNAVAILABLE",
        Service::Grpc(|c| on_fault(c, GrpcReply::Fail(Code::Unavailable, "down".into()))),
    ))
    .await;
}

#[tokio::test]
async fn check_service_does_not_implement_check() {
    // The service is up and failed on this check: closed, whatever failure_mode_allow says.
    run(Case {
        open: Answer::Status(403),
        ..case(
            "UNIMPLEMENTED",
            Service::Grpc(|c| on_fault(c, GrpcReply::Fail(Code::Unimplemented, "no".into()))),
        )
    })
    .await;
}

#[tokio::test]
async fn check_service_reports_its_own_error() {
    // The service is up and failed on this check: closed, whatever failure_mode_allow says.
    run(Case {
        open: Answer::Status(403),
        ..case(
            "error_response",
            Service::Grpc(|c| {
                let mut reply = workbench::grpc_auth::pb::CheckResponse {
                    status: Some(envoy_status(Code::Internal)),
                    ..Default::default()
                };
                reply.http_response =
                    Some(HttpResponse::ErrorResponse(DeniedHttpResponse::default()));
                on_fault(c, GrpcReply::answer(reply))
            }),
        )
    })
    .await;
}

fn envoy_status(code: Code) -> RpcStatus {
    RpcStatus {
        code: code as i32,
        ..Default::default()
    }
}

#[tokio::test]
async fn check_service_answers_a_message_that_does_not_decode() {
    // The service is up and failed on this check: closed, whatever failure_mode_allow says.
    run(Case {
        open: Answer::Status(403),
        ..case(
            "undecodable CheckResponse",
            Service::Raw(|r| {
                // An empty CheckResponse is an OK; four 0xff bytes are no message at all.
                let message: &[u8] = if is_fault(r) { &[0xff; 4] } else { &[] };
                Reply::ok(frame(message))
                    .header("content-type", "application/grpc")
                    .trailer("grpc-status", "0")
            }),
        )
    })
    .await;
}

/// Whether a raw Check is about `/fault` (the path is in the serialized CheckRequest).
fn is_fault(request: &SeenRequest) -> bool {
    request.body.windows(6).any(|w| w == b"/fault")
}

#[tokio::test]
async fn check_service_is_not_a_grpc_server() {
    // The service is up and failed on this check: closed, whatever failure_mode_allow says.
    run(Case {
        open: Answer::Status(403),
        ..case(
            "plain HTTP answer, no grpc-status",
            Service::Raw(|r| {
                if is_fault(r) {
                    Reply::ok("hello")
                } else {
                    Reply::ok(frame(&[]))
                        .header("content-type", "application/grpc")
                        .trailer("grpc-status", "0")
                }
            }),
        )
    })
    .await;
}

#[tokio::test]
async fn an_answer_over_the_size_limit_denies_even_failing_open() {
    // A deny swollen past max_response_body_bytes (64 KiB), say by echoing the request, must
    // stay a deny: the service answered, so the failure policy has no say.
    run(Case {
        open: Answer::Status(403),
        ..case(
            "CheckResponse over 64 KiB",
            Service::Grpc(|c| {
                on_fault(
                    c,
                    GrpcReply::deny(
                        Code::PermissionDenied,
                        Some(denied(401, &"x".repeat(70_000), &[])),
                    ),
                )
            }),
        )
    })
    .await;
}
