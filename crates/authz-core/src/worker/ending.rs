//! How an auth call ended, as the host reported it, and reading its answer from the host once.

use log::warn;

use crate::config::Config;
use crate::decision::AuthError;
use crate::host::Host;
use crate::outcome::{Answer, Denied, Outcome};
use crate::protocol::{grpc, http};

/// How a call ended, as the host said: its answer is read from the host by it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Ending {
    Http {
        num_headers: usize,
        body_size: usize,
    },
    GrpcMessage {
        size: usize,
    },
    GrpcClosed {
        status: u32,
    },
}

impl Ending {
    /// The answer, read once, in the context the host delivered it to.
    pub(super) fn read(self, host: &impl Host, config: &Config) -> Answer {
        match self {
            Ending::Http {
                num_headers,
                body_size,
            } => http::read(host, config, num_headers, body_size),
            Ending::GrpcMessage { size } => {
                // An answer over the limit is never copied into the VM, whose memory never shrinks.
                // The service did answer, so this is not the failure policy's to allow: a client
                // able to swell a deny (say, one echoing its path) must not turn it into an allow.
                // Nor is the deny the service's own, so it is not cached for the key.
                if size > config.max_response_body_bytes {
                    warn!(
                        "a {size}-byte CheckResponse is over max_response_body_bytes ({}): denying",
                        config.max_response_body_bytes
                    );
                    return Answer {
                        outcome: Outcome::Deny(Denied {
                            status: 403,
                            headers: Vec::new(),
                            body: Vec::new(),
                            metadata: Default::default(),
                        }),
                        cache_control: Some(b"no-store".to_vec()),
                    };
                }
                match host.grpc_response(size) {
                    Ok(bytes) => grpc::answer(config, &bytes),
                    Err(err) => Answer {
                        outcome: Outcome::from_host_error(err),
                        cache_control: None,
                    },
                }
            }
            Ending::GrpcClosed { status } => Answer {
                outcome: Outcome::Failed(AuthError::GrpcFailed(status)),
                cache_control: None,
            },
        }
    }
}
