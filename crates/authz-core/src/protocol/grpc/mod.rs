//! ext_authz's gRPC protocol (`envoy.service.auth.v3.Authorization/Check`): the request the plugin
//! sends and what the answer means, in prost messages of the fields used.

mod check;
pub mod messages;
mod verdict;
pub mod wire;

pub use check::{check_request, check_sendable, Body, Context};
pub use verdict::{answer, outcome};

use prost::Message;

/// The service and method of the check.
pub const SERVICE: &str = "envoy.service.auth.v3.Authorization";
pub const METHOD: &str = "Check";

/// The serialized `GrpcService` naming `cluster`: `proxy_grpc_call`'s target.
pub fn service(cluster: &str) -> Vec<u8> {
    messages::GrpcService {
        envoy_grpc: Some(messages::EnvoyGrpc {
            cluster_name: cluster.to_owned(),
        }),
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests;
