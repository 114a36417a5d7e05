//! Building and sending a request's auth call: HTTP or gRPC, with the body when it goes with
//! the check, after the cache and the worker's caps; and what a refused dispatch means.

use std::rc::Rc;

use log::{debug, warn};

use super::consult::Consulted;
use super::{Flow, State};
use crate::call_limits;
use crate::config::{AuthZen, Protocol, ResourceId};
use crate::host::{Action, Failure, Headers, Host, HostError};
use crate::metrics::Counter;
use crate::outcome::{Denied, Outcome};
use crate::protocol::http::{auth_headers, check_sendable, SentBody};
use crate::protocol::BadRequest;
use crate::protocol::{authzen, grpc};
use crate::state::{Call, Root};

impl Flow {
    /// Asks the auth service (or the cache) about the request, with the body if there is one.
    pub(super) fn ask(
        &mut self,
        host: &impl Host,
        root: &mut Root,
        request: &Headers,
        body: Option<(Vec<u8>, bool, usize)>,
        use_cache: bool,
    ) -> Action {
        let config = Rc::clone(&self.config);
        // An AuthZEN evaluation is built first: whether the request can be described, or has
        // a subject at all, decides before the cache does.
        let facts = match &config.authzen {
            Some(authzen) => authzen_facts(host, authzen),
            None => authzen::Facts::default(),
        };
        let evaluation = match &config.authzen {
            Some(authzen) => match authzen::evaluation(&config, authzen, request, &facts) {
                Ok(authzen::Evaluation::NoSubject) => {
                    debug!("#{} has no {}: denied", self.id, authzen.subject.id_header);
                    let deny = &config.deny;
                    let denied = Outcome::Deny(Denied {
                        status: deny.status,
                        headers: deny.headers.clone(),
                        body: deny.body.as_bytes().to_vec(),
                        metadata: Default::default(),
                    });
                    return self.apply(host, root, &denied, self.phase);
                }
                Ok(authzen::Evaluation::Ask { headers, body }) => Some((headers, body)),
                Err(bad) => return self.refuse_bad_request(host, root, &bad),
            },
            None => None,
        };
        // A request the auth service could not be asked about is refused, from the cache too.
        let sendable = match config.protocol {
            Protocol::Http => check_sendable(&config.auth_request, request),
            Protocol::Grpc => grpc::check_sendable(&config.auth_request, request),
            Protocol::AuthZen => Ok(()),
        };
        if let Err(bad) = sendable {
            return self.refuse_bad_request(host, root, &bad);
        }
        // A hit needs no auth call, so the call's headers are built only after a miss.
        let cache_write = match (&config.cache, use_cache) {
            (Some(cache), true) => match self.consult_cache(
                host,
                root,
                cache,
                request,
                evaluation.as_ref().map(|(_, body)| body.as_slice()),
            ) {
                Consulted::Decided(action) => return action,
                Consulted::Missed(write) => Some(write),
                Consulted::Uncached => None,
            },
            _ => None,
        };
        // The call is built before the in-flight cap is checked: a request that cannot be
        // described is refused (400) whatever the load.
        let outgoing = match &config.protocol {
            Protocol::Http => {
                let sent = body.as_ref().map(|(bytes, partial, _)| SentBody {
                    len: bytes.len(),
                    partial: *partial,
                });
                #[cfg_attr(not(feature = "test-switches"), allow(unused_mut))]
                let mut headers = match auth_headers(&config.auth_request, request, sent) {
                    Ok(headers) => headers,
                    Err(bad) => return self.refuse_bad_request(host, root, &bad),
                };
                #[cfg(feature = "test-switches")]
                config.test.edit_auth_headers(&mut headers);
                // `check_sendable` bounds the call from above; this is the exact check, so
                // that the host never refuses a call the client made too large.
                if !call_limits::within(headers.iter().map(|(n, v)| (n.len(), v.len()))) {
                    let bad = BadRequest::TooLarge {
                        headers: headers.len(),
                        bytes: headers.iter().map(|(n, v)| n.len() + v.len()).sum(),
                    };
                    return self.refuse_bad_request(host, root, &bad);
                }
                Outgoing::Http(headers)
            }
            Protocol::Grpc => {
                let service = root.grpc_service(&config.auth_request.cluster);
                let context = grpc::Context {
                    source: property_text(host, &["source", "address"]),
                    destination: property_text(host, &["destination", "address"]),
                    protocol: property_text(host, &["request", "protocol"]).unwrap_or_default(),
                    now_nanos: host.now_nanos(),
                };
                let sent = body.as_ref().map(|(bytes, partial, received)| grpc::Body {
                    bytes,
                    partial: *partial,
                    received: *received,
                });
                match grpc::check_request(&config, request, &context, sent) {
                    Ok(message) => Outgoing::Grpc { service, message },
                    Err(bad) => return self.refuse_bad_request(host, root, &bad),
                }
            }
            Protocol::AuthZen => match evaluation {
                Some((headers, body)) => {
                    if !call_limits::within(headers.iter().map(|(n, v)| (n.len(), v.len()))) {
                        let bad = BadRequest::TooLarge {
                            headers: headers.len(),
                            bytes: headers.iter().map(|(n, v)| n.len() + v.len()).sum(),
                        };
                        return self.refuse_bad_request(host, root, &bad);
                    }
                    Outgoing::Evaluation { headers, body }
                }
                None => {
                    return self.fail_request(
                        host,
                        root,
                        HostError::new("authzen", Failure::BadArgument),
                    )
                }
            },
        };
        if let Some(why) = root.refuses_call() {
            return self.overloaded(host, root, &why);
        }
        let spec = &config.auth_request;
        let dispatched = match &outgoing {
            Outgoing::Http(headers) => {
                let pairs: Vec<(&str, &str)> =
                    headers.iter().map(|(n, v)| (*n, v.as_ref())).collect();
                let body = body.map(|(bytes, _, _)| bytes).unwrap_or_default();
                host.dispatch(&spec.cluster, &pairs, &body, spec.timeout)
            }
            Outgoing::Evaluation { headers, body } => {
                let pairs: Vec<(&str, &str)> =
                    headers.iter().map(|(n, v)| (*n, v.as_ref())).collect();
                host.dispatch(&spec.cluster, &pairs, body, spec.timeout)
            }
            Outgoing::Grpc { service, message } => host.dispatch_grpc(
                &spec.cluster,
                service,
                grpc::SERVICE,
                grpc::METHOD,
                message,
                spec.timeout,
            ),
        };
        let grpc = matches!(config.protocol, Protocol::Grpc);
        match dispatched {
            Ok(token) => {
                root.start_call(
                    token,
                    Call {
                        stream: Some(self.id),
                        waiters: crate::state::Waiters::default(),
                        deadline_nanos: root.deadline(spec.timeout),
                        started_nanos: config.latency_histogram.then(|| host.now_nanos()),
                        config: Rc::clone(&config),
                        cache: cache_write,
                        grpc,
                    },
                );
                self.state = State::AwaitingAuth { token };
                if config.record_decisions {
                    self.asked_at_nanos = Some(host.now_nanos());
                }
                Action::Pause
            }
            Err(err) if err.is_out_of_memory() => {
                self.overloaded(host, root, &format!("out of VM memory ({err})"))
            }
            // Envoy refuses a call inline when it cannot be sent at all: the auth cluster's
            // circuit breaker overflowed (which a client can cause), or the cluster has no
            // healthy host. Envoy does not say which, so both are an overload, never open.
            // A gRPC check to a cluster Envoy does not have is refused the same way.
            Err(err) if err.failure == Failure::Unavailable => self.overloaded(
                host,
                root,
                &format!(
                    "auth call to cluster \"{}\" refused by Envoy: circuit breaker overflow, no healthy host, or (gRPC) no such cluster ({err})",
                    spec.cluster
                ),
            ),
            // Any other refusal (an unknown cluster; a call the host cannot send) is never
            // the failure policy's: a client may have caused it.
            Err(err) => self.dispatch_refused(host, root, &spec.cluster, err),
        }
    }

    /// Sends the check with the body buffered so far: all of it, the first `max_request_bytes`
    /// marked partial, or a 413 when it is larger and partial bodies are not allowed.
    pub(super) fn ask_with_body(
        &mut self,
        host: &impl Host,
        root: &mut Root,
        buffered: usize,
        end_of_stream: bool,
    ) -> Action {
        let Some(rule) = self.config.request_body.clone() else {
            return self.hold_while_undecided();
        };
        let over = buffered > rule.max_bytes || (buffered == rule.max_bytes && !end_of_stream);
        if over && !rule.allow_partial {
            warn!(
                "#{} request body over max_request_bytes ({}): refusing it with 413",
                self.id, rule.max_bytes
            );
            root.count(Counter::Denied);
            self.state = State::Denied;
            // Envoy's own words for it, as ext_authz's buffer filter answers.
            return self.end(host, root, 413, &[], b"Payload Too Large");
        }
        let request = match host.request_headers() {
            Ok(headers) => headers,
            Err(err) => return self.fail_request(host, root, err),
        };
        let body = match host.request_body(rule.max_bytes.min(buffered)) {
            Ok(body) => body,
            Err(err) => return self.fail_request(host, root, err),
        };
        self.state = State::Start;
        self.ask(host, root, &request, Some((body, over, buffered)), true)
    }

    /// The call this request waited for (made by another request with its key) will not
    /// answer it: its verdict may not be shared (`no-store`, `private`, a cookie, a deny that
    /// is not cached), and this request asks alone; or the host ended it with the stream that
    /// made it (`together`), and the requests that waited ask again through the cache, where
    /// the first makes a new call and the others join it.
    pub fn ask_again(&mut self, host: &impl Host, root: &mut Root, token: u32, together: bool) {
        if self.state != (State::AwaitingAuth { token }) {
            return;
        }
        debug!(
            "#{} call {token} will not answer this request: asking {}",
            self.id,
            if together { "again" } else { "alone" }
        );
        self.state = State::Start;
        // Outside the request's callbacks: whatever ends it resumes it or replies.
        self.phase = super::Phase::Answer;
        // The record speaks of this request's own ask, not of the call it waited for.
        self.cache_use = crate::record::CacheUse::None;
        self.asked_at_nanos = None;
        self.auth_ms = None;
        let request = match host.request_headers() {
            Ok(headers) => headers,
            Err(err) => {
                self.fail_request(host, root, err);
                return;
            }
        };
        // Decided at once (a cache hit, a fail-open): the request, held since its headers, goes
        // on. A reply (a refusal, an overload) has been sent.
        if self.ask(host, root, &request, None, together) == Action::Continue {
            if let Err(err) = host.resume_request() {
                debug!("#{} could not resume the request: {err}", self.id);
            }
        }
    }
}

/// An auth call, built and ready to send.
enum Outgoing<'a> {
    Http(Vec<(&'a str, std::borrow::Cow<'a, str>)>),
    /// An AuthZEN evaluation: an HTTP call with its JSON body.
    Evaluation {
        headers: Vec<(&'a str, std::borrow::Cow<'a, str>)>,
        body: Vec<u8>,
    },
    Grpc {
        service: std::rc::Rc<[u8]>,
        message: Vec<u8>,
    },
}

/// What an AuthZEN mapping needs beyond the request's headers, asked of the host only if it
/// needs it.
fn authzen_facts(host: &impl Host, authzen: &AuthZen) -> authzen::Facts {
    authzen::Facts {
        route_name: (authzen.resource.id == ResourceId::RouteName)
            .then(|| property_text(host, &["xds", "route_name"]))
            .flatten(),
        source_address: authzen
            .context
            .source_address
            .then(|| property_text(host, &["source", "address"]))
            .flatten(),
    }
}

/// A property as text, if the host has it.
fn property_text(host: &impl Host, path: &[&str]) -> Option<String> {
    let bytes = host.property(path).ok().flatten()?;
    String::from_utf8(bytes).ok()
}
