//! `cargo xtask check-service` (hidden): a gRPC Check service that always allows or always
//! denies, run as its own process so that the benchmark can pin it to the load's CPU.

use anyhow::Result;
use clap::{Args, ValueEnum};
use workbench::grpc_auth::pb::OkHttpResponse;
use workbench::grpc_auth::{denied, Code, GrpcAuthServer, GrpcReply};
use workbench::shutdown::StopSignals;

#[derive(Clone, Copy, ValueEnum)]
enum Answer {
    Allow,
    Deny,
}

#[derive(Args)]
pub struct CheckServiceArgs {
    /// Where to listen (`host:port`).
    #[arg(long)]
    address: String,
    #[arg(long, value_enum)]
    answer: Answer,
}

pub async fn serve(args: CheckServiceArgs) -> Result<()> {
    let service = match args.answer {
        Answer::Allow => {
            GrpcAuthServer::serve_on(&args.address, |_| {
                GrpcReply::allow(OkHttpResponse::default())
            })
            .await?
        }
        Answer::Deny => {
            GrpcAuthServer::serve_on(&args.address, |_| {
                GrpcReply::deny(Code::PermissionDenied, Some(denied(403, "b", &[])))
            })
            .await?
        }
    };
    // Serves until a stop signal (or the benchmark kills it).
    let signal = StopSignals::install()?.recv().await;
    eprintln!("check-service: {signal} received, stopping");
    drop(service);
    Ok(())
}
