//! One request's authorization as a state machine: events in from the worker, effects out through
//! the `Host` trait. Every path ends in exactly one of resume, deny, overload, or the failure
//! policy, and only failures of the auth service ever reach the failure policy.

use std::rc::Rc;

use log::{debug, log_enabled, warn, Level};

use crate::cache::{self, Found};
use crate::call_limits;
use crate::config::{CacheConfig, Config, Protocol};
use crate::decision::AuthError;
use crate::exempt::is_exempt;
use crate::host::{Action, BodyAction, Failure};
use crate::host::{Headers, Host, HostError};
use crate::metrics::Counter;
use crate::outcome::{Allowed, Denied, Outcome, ResponseAction, HEADER_OVERHEAD_BYTES};
use crate::protocol::grpc;
use crate::protocol::http::{auth_headers, check_sendable, SentBody};
use crate::protocol::BadRequest;
use crate::worker::{CacheWrite, Call, Root};

/// Header ext_authz adds to a request let through by `failure_mode_allow`.
pub const FAILURE_MODE_ALLOWED_HEADER: &str = "x-envoy-auth-failure-mode-allowed";

/// The body of the 503 a request gets when the auth path is saturated.
pub const OVERLOADED_BODY: &[u8] = b"authorization overloaded";

/// How long the plugin waits for the first of a body it is to send with the check. Longer than
/// any client waits for a `100 Continue` before sending anyway (curl: 1 s); only a body that
/// never reaches the plugin (a wasm filter without `allow_on_headers_stop_iteration`) meets it.
pub const FIRST_BODY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The body of the 503 a request gets when Envoy refuses to send its check.
pub const UNAVAILABLE_BODY: &[u8] = b"authorization unavailable";

pub use crate::config::STREAM_COST_BYTES;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Start,
    Exempt,
    /// Buffering the body to send with the check (`with_request_body`).
    AwaitingBody,
    AwaitingAuth {
        token: u32,
    },
    Allowed,
    Denied,
    FailedClosed,
    FailedOpen,
    /// Refused with 503: the auth path or the worker's memory was saturated.
    Overloaded,
    /// The stream ended before a decision; nothing more happens for it.
    Ended,
}

/// Which callback is running: in one of the request's own callbacks (headers, body, trailers)
/// the request continues by returning `Continue`; in the call's answer it must be resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Request,
    Answer,
}

/// An expired allow this request may fall back on if its auth call fails.
#[derive(Debug, Clone)]
struct Stale {
    allowed: Allowed,
    until_ms: u64,
}

pub struct Flow {
    id: u32,
    config: Rc<Config>,
    state: State,
    /// Auth-answer headers for the client's response, kept from the allow until it arrives.
    success_headers: Headers,
    /// gRPC: the same, with how each meets a header the upstream sent.
    response_mutations: Vec<(String, Vec<u8>, ResponseAction)>,
    /// Bytes this stream has taken from the worker's memory budget.
    held: usize,
    stale: Option<Stale>,
    /// A call this stream left without ending, for the worker to cancel if orphaned.
    left_call: Option<u32>,
    /// Whether any of the body reached the plugin (`with_request_body`).
    body_seen: bool,
}

impl Flow {
    pub fn new(id: u32, config: Rc<Config>) -> Self {
        Flow {
            id,
            config,
            state: State::Start,
            success_headers: Vec::new(),
            response_mutations: Vec::new(),
            held: 0,
            stale: None,
            left_call: None,
            body_seen: false,
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// Bytes this stream holds against the worker's budget.
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    pub fn on_request_headers(
        &mut self,
        host: &impl Host,
        root: &mut Root,
        end_of_stream: bool,
    ) -> Action {
        if self.state != State::Start {
            return self.hold_while_undecided();
        }
        #[cfg(feature = "test-switches")]
        self.config
            .test
            .on_request(host.request_header(":path").ok().flatten().as_deref());
        let config = Rc::clone(&self.config);
        let exempt = !config.exempt.is_empty() && self.exempt(host);
        // Exempt requests skip the call, not the anti-spoofing (the failure marker included).
        let mut request = match host.request_headers() {
            Ok(headers) => headers,
            Err(err) => return self.fail_request(host, root, err),
        };
        if log_enabled!(Level::Debug) {
            debug!("#{} request headers: {}", self.id, dump(&request));
        }
        if let Err(err) = self.strip_spoofed(host, &request, Map::Headers) {
            return self.fail_request(host, root, err);
        }
        // Gone from the request, so gone from the check too: the auth service must not read
        // a forged identity as one an earlier filter set.
        request.retain(|(name, _)| !self.forged(name));
        if exempt {
            return self.exempt_continue(root);
        }
        let reserve = config.limits.reservation;
        if !root.try_hold(reserve) {
            let why = format!("{} bytes held (max_held_bytes)", root.held_bytes);
            return self.overloaded(host, root, &why);
        }
        self.held = reserve;
        if config.request_body.is_some() && !end_of_stream {
            // As native ext_authz, the plugin waits for the body as long as Envoy lets the
            // stream live, and times only the call: a slow upload, or a client waiting for a
            // `100 Continue`, is Envoy's timeouts' to end, not a failure. Only a body of which
            // nothing at all arrives in FIRST_BODY_WAIT ends the request, with a log saying why.
            debug!("#{} waits for the body to send with the check", self.id);
            self.state = State::AwaitingBody;
            let wait = u64::try_from(FIRST_BODY_WAIT.as_nanos()).unwrap_or(u64::MAX);
            root.awaiting_first_body
                .insert(self.id, root.clock_nanos.saturating_add(wait));
            return Action::Pause;
        }
        self.ask(host, root, &request, None, true)
    }

    /// Asks the auth service (or the cache) about the request, with the body if there is one.
    fn ask(
        &mut self,
        host: &impl Host,
        root: &mut Root,
        request: &Headers,
        body: Option<(Vec<u8>, bool, usize)>,
        use_cache: bool,
    ) -> Action {
        let config = Rc::clone(&self.config);
        // A request the auth service could not be asked about is refused, from the cache too.
        let sendable = match config.protocol {
            Protocol::Http => check_sendable(&config.auth_request, request),
            Protocol::Grpc => grpc::check_sendable(&config.auth_request, request),
        };
        if let Err(bad) = sendable {
            return self.refuse_bad_request(host, root, &bad);
        }
        // A hit needs no auth call, so the call's headers are built only after a miss.
        let cache_write = match (&config.cache, use_cache) {
            (Some(cache), true) => match self.consult_cache(host, root, cache, request) {
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
                let service = std::rc::Rc::clone(&root.grpc_service);
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
        };
        if root.calls.len() >= config.limits.max_calls_in_flight {
            let why = format!(
                "{} auth calls outstanding (max_calls_in_flight)",
                root.calls.len()
            );
            return self.overloaded(host, root, &why);
        }
        if root.calls.orphaned() >= config.limits.max_orphaned_calls {
            let why = format!(
                "{} auth calls whose clients have gone are still outstanding (max_orphaned_calls)",
                root.calls.orphaned()
            );
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
            Outgoing::Grpc { service, message } => {
                host.dispatch_grpc(service, grpc::SERVICE, grpc::METHOD, message, spec.timeout)
            }
        };
        let grpc = matches!(config.protocol, Protocol::Grpc);
        match dispatched {
            Ok(token) => {
                let timeout = u64::try_from(spec.timeout.as_nanos()).unwrap_or(u64::MAX);
                if let Some(write) = &cache_write {
                    root.pending_keys.insert(write.digest, token);
                }
                root.calls.add(
                    token,
                    Call {
                        stream: Some(self.id),
                        waiters: std::collections::BTreeSet::new(),
                        deadline_nanos: root.clock_nanos.saturating_add(timeout),
                        started_nanos: config.latency_histogram.then(|| host.now_nanos()),
                        config: Rc::clone(&config),
                        cache: cache_write,
                        grpc,
                    },
                );
                self.state = State::AwaitingAuth { token };
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

    /// Serves the request from the cache, or joins a call already made for the same key, or
    /// says where this request's own answer should be cached.
    fn consult_cache(
        &mut self,
        host: &impl Host,
        root: &mut Root,
        cache: &CacheConfig,
        request: &Headers,
    ) -> Consulted {
        // A CONNECT has no path and names its target only in `:authority`; a request missing a
        // header the key names would share one key with every other such request. Neither is
        // cached or coalesced (unless the configuration asks for the second).
        let connect = request
            .iter()
            .any(|(n, v)| n == ":method" && v.as_slice() == b"CONNECT");
        if connect {
            debug!("#{} not cached: a CONNECT", self.id);
            return Consulted::Uncached;
        }
        if !cache.cache_missing_headers {
            if let Some(name) = cache::missing(&cache.key, request) {
                if !std::mem::replace(&mut root.said_key_incomplete, true) {
                    log::info!(
                        "#{} not cached: the request has no {name}, which the cache key names; \
                         such requests are checked every time (said once per configuration)",
                        self.id
                    );
                }
                debug!("#{} not cached: no {name}", self.id);
                return Consulted::Uncached;
            }
        }
        let digest = cache::digest(&cache.fingerprint, &cache.key, request);
        let now_ms = host.now_nanos() / 1_000_000;
        let probe = match cache::lookup(host, cache, &digest, now_ms) {
            Ok(probe) => probe,
            Err(err) => {
                debug!("#{} cache lookup failed ({err}): asking, uncached", self.id);
                return Consulted::Uncached;
            }
        };
        match probe.found {
            Found::Fresh(verdict) => {
                debug!("#{} answered from the cache", self.id);
                root.stats.count(Counter::CacheHit);
                let outcome = verdict.into_outcome();
                return Consulted::Decided(self.apply(host, root, &outcome, Phase::Request));
            }
            Found::Stale {
                allowed,
                stale_until_ms,
            } => {
                // Kept only if the budget has room for it: it is a fallback, not a need.
                let cost = allowed_cost(&allowed);
                if root.try_hold(cost) {
                    self.held += cost;
                    self.stale = Some(Stale {
                        allowed,
                        until_ms: stale_until_ms,
                    });
                }
            }
            Found::Nothing => {}
        }
        root.stats.count(Counter::CacheMiss);
        if let Some(&token) = root.pending_keys.get(&digest) {
            if root.calls.join(token, self.id) {
                debug!("#{} waits for call {token}, made for the same key", self.id);
                root.stats.count(Counter::Coalesced);
                self.state = State::AwaitingAuth { token };
                return Consulted::Decided(Action::Pause);
            }
        }
        Consulted::Missed(CacheWrite {
            digest,
            slot_key: probe.slot_key,
            cas: probe.cas,
            ours: probe.ours,
        })
    }

    /// The call this request waited for (made by another request with its key) answered with a
    /// verdict that may not be shared (`no-store`, `private`, a cookie, a deny that is not
    /// cached): this request asks for itself.
    pub fn ask_again(&mut self, host: &impl Host, root: &mut Root, token: u32) {
        if self.state != (State::AwaitingAuth { token }) {
            return;
        }
        debug!(
            "#{} the answer to call {token} is not for sharing: asking alone",
            self.id
        );
        self.state = State::Start;
        let request = match host.request_headers() {
            Ok(headers) => headers,
            Err(err) => {
                self.fail_request(host, root, err);
                return;
            }
        };
        let action = self.ask(host, root, &request, None, false);
        // Decided at once (a refusal, an overload): the reply is sent; a fail-open resumed.
        let _ = action;
    }

    fn exempt_continue(&mut self, root: &mut Root) -> Action {
        debug!("#{} exempt from authorization", self.id);
        root.stats.count(Counter::Disabled);
        self.state = State::Exempt;
        Action::Continue
    }

    /// The body must wait for the verdict: a `Continue` here would let Envoy resume the request.
    /// With `with_request_body`, it is buffered until it is whole or reaches the limit, then sent.
    pub fn on_request_body(
        &mut self,
        host: &impl Host,
        root: &mut Root,
        buffered: usize,
        end_of_stream: bool,
    ) -> BodyAction {
        let Some(rule) = self.config.request_body.clone() else {
            return self.hold_body();
        };
        if self.state != State::AwaitingBody {
            return self.hold_body();
        }
        if !std::mem::replace(&mut self.body_seen, true) {
            root.awaiting_first_body.remove(&self.id);
        }
        debug!(
            "#{} body: {buffered} bytes so far, end {end_of_stream}",
            self.id
        );
        if !end_of_stream && buffered < rule.max_bytes {
            return BodyAction::Buffer;
        }
        match self.ask_with_body(host, root, buffered, end_of_stream) {
            Action::Continue => BodyAction::Continue,
            Action::Pause => self.hold_body(),
        }
    }

    /// What a body callback returns while the request is held: the body the check needs is
    /// buffered; otherwise it is only held, under flow control, so that an upload larger than
    /// Envoy's buffer waits for the verdict rather than getting a 413.
    fn hold_body(&self) -> BodyAction {
        match self.state {
            State::Start | State::Exempt | State::Allowed | State::FailedOpen => {
                BodyAction::Continue
            }
            State::AwaitingBody => BodyAction::Buffer,
            State::AwaitingAuth { .. }
            | State::Denied
            | State::FailedClosed
            | State::Overloaded
            | State::Ended => BodyAction::Watermark,
        }
    }

    /// Sends the check with the body buffered so far: all of it, the first `max_request_bytes`
    /// marked partial, or a 413 when it is larger and partial bodies are not allowed.
    fn ask_with_body(
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
            root.stats.count(Counter::Denied);
            self.state = State::Denied;
            // Envoy's own words for it, as ext_authz's buffer filter answers.
            return self.reply(host, 413, &[], b"Payload Too Large");
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

    /// Trailers are request headers too: forged copies of trusted headers are removed from them
    /// while the request is going, or may go, upstream. If they cannot be, the request is
    /// refused, even after it was let through: a local reply then resets the upstream request.
    pub fn on_request_trailers(&mut self, host: &impl Host, root: &mut Root) -> Action {
        let going_upstream = |state: &State| {
            matches!(
                state,
                State::AwaitingAuth { .. } | State::Allowed | State::Exempt | State::FailedOpen
            )
        };
        if self.state == State::AwaitingBody {
            // The body has ended (trailers follow it): send what there is. The trailers are
            // stripped below whatever that gives, unless it refused the request.
            let buffered = host.request_body(usize::MAX).map_or(0, |b| b.len());
            let action = self.ask_with_body(host, root, buffered, true);
            if !going_upstream(&self.state) {
                return action;
            }
        }
        // The failure marker is the plugin's alone, in trailers too: always looked for.
        if going_upstream(&self.state) {
            let stripped = host
                .request_trailers()
                .and_then(|trailers| self.strip_spoofed(host, &trailers, Map::Trailers));
            if let Err(err) = stripped {
                if let State::AwaitingAuth { token } = self.state {
                    root.calls.leave(token, self.id);
                    self.left_call = Some(token);
                }
                return self.fail_request(host, root, err);
            }
        }
        self.hold_while_undecided()
    }

    /// The call this stream stopped waiting for without ending (refused at its trailers), for
    /// the worker to cancel if nobody else waits for it.
    pub fn take_left_call(&mut self) -> Option<u32> {
        self.left_call.take()
    }

    /// The answer to the call this stream waits for, read once for all its waiters.
    pub fn on_outcome(&mut self, host: &impl Host, root: &mut Root, token: u32, outcome: &Outcome) {
        match self.state {
            State::AwaitingAuth { token: expected } if expected == token => {}
            _ => {
                debug!(
                    "#{} ignoring answer to call {token}: not waiting for it",
                    self.id
                );
                return;
            }
        }
        self.apply(host, root, outcome, Phase::Answer);
    }

    /// Nothing of the body reached the plugin in FIRST_BODY_WAIT. Envoy hands a filter the body
    /// after its headers callback stopped only with `allow_on_headers_stop_iteration: true` in
    /// the wasm filter's config; without it every request with a body would wait for Envoy's
    /// stream timeouts, so it fails closed, saying why.
    pub fn on_first_body_deadline(&mut self, host: &impl Host, root: &mut Root) {
        if self.state != State::AwaitingBody || self.body_seen {
            return;
        }
        log::error!(
            "#{} no request body reached the plugin in {} s: with_request_body needs \
             allow_on_headers_stop_iteration: true in the wasm filter's config",
            self.id,
            FIRST_BODY_WAIT.as_secs()
        );
        root.stats.count(Counter::Error);
        self.state = State::FailedClosed;
        let status = self.config.failure.status_on_error;
        self.reply(host, status, &[], b"");
    }

    /// No answer came by the call's deadline (Envoy should have answered 504 by then).
    pub fn on_call_expired(&mut self, host: &impl Host, root: &mut Root) {
        if matches!(self.state, State::AwaitingAuth { .. }) {
            self.apply(
                host,
                root,
                &Outcome::Failed(AuthError::NoAnswer),
                Phase::Answer,
            );
        }
    }

    pub fn on_response_headers(&mut self, host: &impl Host, root: &mut Root) -> Action {
        // The room reserved for success headers (and a stale entry) is free once the response
        // starts.
        let reserved = self.held.saturating_sub(STREAM_COST_BYTES);
        root.release(reserved);
        self.held -= reserved;
        self.stale = None;
        if self.state == State::Allowed {
            self.apply_response_mutations(host);
        }
        if self.success_headers.is_empty() {
            return Action::Continue;
        }
        let kept = std::mem::take(&mut self.success_headers);
        if self.state == State::Allowed {
            for (name, value) in kept {
                if let Err(err) = host.add_response_header(&name, &value) {
                    warn!("#{} could not add response header {name}: {err}", self.id);
                }
            }
        }
        Action::Continue
    }

    /// The stream is done. A pending call goes on without it (the host cannot cancel it), and
    /// still counts until it ends.
    pub fn on_done(&mut self, root: &mut Root) {
        match self.state {
            State::AwaitingAuth { token } => {
                debug!("#{} stream ended while its auth call was pending", self.id);
                root.calls.leave(token, self.id);
                self.state = State::Ended;
            }
            State::AwaitingBody => {
                root.awaiting_first_body.remove(&self.id);
                if !self.body_seen {
                    // Envoy hands a filter the body after its headers callback stopped only
                    // with `allow_on_headers_stop_iteration: true` in the wasm filter's config.
                    log::error!(
                        "#{} the stream ended while waiting for a body that never reached the \
                         plugin: with_request_body needs allow_on_headers_stop_iteration: true \
                         in the wasm filter's config",
                        self.id
                    );
                }
                self.state = State::Ended;
            }
            State::Start => self.state = State::Ended,
            _ => {}
        }
    }

    /// The call this stream waits for, if it waits for one.
    pub fn awaited(&self) -> Option<u32> {
        match self.state {
            State::AwaitingAuth { token } => Some(token),
            _ => None,
        }
    }

    /// The stream is deleted: whatever it held goes back to the budget. Returns the call it was
    /// waiting for, if any, which may now have nobody waiting.
    pub fn on_delete(&mut self, root: &mut Root) -> Option<u32> {
        let waited = self.awaited();
        self.on_done(root);
        root.release(self.held);
        self.held = 0;
        self.success_headers = Vec::new();
        self.response_mutations = Vec::new();
        self.stale = None;
        waited
    }

    /// Anything not let through stays held: undecided, denied, failed closed, or gone.
    fn hold_while_undecided(&self) -> Action {
        match self.state {
            State::Start | State::Exempt | State::Allowed | State::FailedOpen => Action::Continue,
            State::AwaitingAuth { .. }
            | State::AwaitingBody
            | State::Denied
            | State::FailedClosed
            | State::Overloaded
            | State::Ended => Action::Pause,
        }
    }

    fn exempt(&self, host: &impl Host) -> bool {
        let path = host.request_header(":path").ok().flatten();
        let method = host.request_header(":method").ok().flatten();
        is_exempt(&self.config.exempt, path.as_deref(), method.as_deref())
    }

    /// Removes the client's own copies of the headers the auth service is trusted to set, in any
    /// case, number or `_` spelling. The marker `failure_mode_allow` sets is only ever the
    /// plugin's to set, so a client's copy goes whatever the configuration says.
    fn strip_spoofed(&self, host: &impl Host, map: &Headers, kind: Map) -> Result<(), HostError> {
        let mut removed: Vec<&str> = Vec::new();
        for (name, _) in map {
            if self.forged(name) && !removed.contains(&name.as_str()) {
                match kind {
                    Map::Headers => host.remove_request_header(name)?,
                    Map::Trailers => host.remove_request_trailer(name)?,
                }
                debug!("#{} removed the client's {name}", self.id);
                removed.push(name);
            }
        }
        Ok(())
    }

    /// Whether a client's header is a forged copy of one only the auth service or the plugin may
    /// set, in any case or `_` spelling.
    fn forged(&self, name: &str) -> bool {
        let response = &self.config.response;
        (response.strips_client_copies() && response.is_spoofed(name)) || is_failure_marker(name)
    }

    /// Ends the request as the outcome says.
    fn apply(
        &mut self,
        host: &impl Host,
        root: &mut Root,
        outcome: &Outcome,
        phase: Phase,
    ) -> Action {
        match outcome {
            Outcome::Allow(allowed) => {
                debug!("#{} allowed", self.id);
                self.allow(host, root, allowed, phase)
            }
            Outcome::Deny(denied) => {
                debug!("#{} denied with {}", self.id, denied.status);
                self.deny(host, root, denied)
            }
            // The auth service is up and failed on this request: a client may have caused it.
            Outcome::Failed(err) if !err.is_outage() => self.fail_closed(host, root, err),
            Outcome::Failed(err) => match self.stale.take() {
                Some(stale) if host.now_nanos() / 1_000_000 < stale.until_ms => {
                    warn!(
                        "#{} {err}; serving an expired allow from the cache (stale_if_error_ms)",
                        self.id
                    );
                    root.stats.count(Counter::Error);
                    root.stats.count(Counter::CacheStaleServed);
                    self.allow(host, root, &stale.allowed, phase)
                }
                _ => self.fail(host, root, err, phase),
            },
            Outcome::Overloaded(why) => self.overloaded(host, root, why),
        }
    }

    fn allow(
        &mut self,
        host: &impl Host,
        root: &mut Root,
        allowed: &Allowed,
        phase: Phase,
    ) -> Action {
        root.stats.count(Counter::Ok);
        self.state = State::Allowed;
        for (name, value) in &allowed.set {
            if let Err(err) = host.set_request_header(name, value) {
                warn!("#{} could not pass header {name} upstream: {err}", self.id);
            }
        }
        for (name, value) in &allowed.append {
            if let Err(err) = host.add_request_header(name, value) {
                warn!("#{} could not pass header {name} upstream: {err}", self.id);
            }
        }
        for (name, value) in &allowed.append_existing {
            // ext_authz (1.40) appends to a header the request has, comma-joined, and adds
            // nothing otherwise.
            if let Ok(Some(existing)) = host.request_header(name) {
                let mut joined = existing;
                joined.push(b',');
                joined.extend_from_slice(value);
                if let Err(err) = host.set_request_header(name, &joined) {
                    warn!("#{} could not pass header {name} upstream: {err}", self.id);
                }
            }
        }
        for name in &allowed.remove {
            if let Err(err) = host.remove_request_header(name) {
                warn!("#{} could not remove header {name}: {err}", self.id);
            }
        }
        if !(allowed.query_set.is_empty() && allowed.query_remove.is_empty()) {
            self.edit_query(host, allowed);
        }
        self.success_headers = allowed.client.clone();
        self.response_mutations = allowed.client_mutations.clone();
        if allowed.dropped > 0 {
            // One line per request, not per header: the log is a target too.
            warn!(
                "#{} dropped {} auth header(s) for the client: over max_success_header_bytes ({})",
                self.id, allowed.dropped, self.config.limits.max_success_header_bytes
            );
            root.stats.count(Counter::SuccessHeadersDropped);
        }
        self.proceed(host, phase)
    }

    /// A gRPC allow's `response_headers_to_add`, each as its `append_action` says.
    fn apply_response_mutations(&mut self, host: &impl Host) {
        for (name, value, action) in std::mem::take(&mut self.response_mutations) {
            let present = || matches!(host.response_header(&name), Ok(Some(_)));
            let result = match action {
                ResponseAction::Append => host.add_response_header(&name, &value),
                ResponseAction::Set => host.set_response_header(&name, &value),
                ResponseAction::AddIfAbsent if !present() => {
                    host.add_response_header(&name, &value)
                }
                ResponseAction::OverwriteIfExists if present() => {
                    host.set_response_header(&name, &value)
                }
                ResponseAction::AddIfAbsent | ResponseAction::OverwriteIfExists => Ok(()),
            };
            if let Err(err) = result {
                warn!("#{} could not set response header {name}: {err}", self.id);
            }
        }
    }

    /// Rewrites the request's query string as the auth service asked.
    fn edit_query(&self, host: &impl Host, allowed: &Allowed) {
        let path = match host.request_header(":path") {
            Ok(Some(path)) => path,
            _ => return,
        };
        let edited = crate::query::edit(&path, &allowed.query_set, &allowed.query_remove);
        if let Err(err) = host.set_request_header(":path", &edited) {
            warn!("#{} could not rewrite the query string: {err}", self.id);
        }
    }

    fn deny(&mut self, host: &impl Host, root: &mut Root, denied: &Denied) -> Action {
        root.stats.count(Counter::Denied);
        self.state = State::Denied;
        let headers: Vec<(&str, &str)> = denied
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        self.reply(host, denied.status, &headers, &denied.body)
    }

    fn refuse_bad_request(
        &mut self,
        host: &impl Host,
        root: &mut Root,
        bad: &BadRequest,
    ) -> Action {
        let status = bad.status();
        warn!("#{} {bad}: refusing it with {status}", self.id);
        root.stats.count(Counter::Denied);
        self.state = State::Denied;
        self.reply(host, status, &[], b"")
    }

    /// Envoy refused to send the check (an unknown cluster, a call it cannot send): 503,
    /// whatever the failure policy says, since a client may have caused it.
    fn dispatch_refused(
        &mut self,
        host: &impl Host,
        root: &mut Root,
        cluster: &str,
        err: HostError,
    ) -> Action {
        if root.may_log_overload() {
            log::error!(
                "#{} Envoy refused the auth call to cluster \"{cluster}\" ({err}): is the cluster \
                 defined? Refusing with 503",
                self.id
            );
        }
        root.stats.count(Counter::Error);
        self.state = State::FailedClosed;
        self.reply(host, 503, &[], UNAVAILABLE_BODY)
    }

    /// The auth path or the worker is saturated: 503, whatever the failure policy says, because a
    /// client can cause this on purpose.
    fn overloaded(&mut self, host: &impl Host, root: &mut Root, why: &str) -> Action {
        if root.may_log_overload() {
            warn!("#{} overloaded: {why}; refusing with 503", self.id);
        }
        root.stats.count(Counter::Overloaded);
        self.state = State::Overloaded;
        self.reply(host, 503, &[], OVERLOADED_BODY)
    }

    /// A host call on the client's own request failed: fail closed, never open.
    fn fail_request(&mut self, host: &impl Host, root: &mut Root, err: HostError) -> Action {
        if err.is_out_of_memory() {
            return self.overloaded(host, root, &format!("out of VM memory ({err})"));
        }
        root.stats.count(Counter::Error);
        let status = self.config.failure.status_on_error;
        warn!(
            "#{} cannot handle the request ({err}); failing closed with {status}",
            self.id
        );
        self.state = State::FailedClosed;
        self.reply(host, status, &[], b"")
    }

    /// A failure of the auth service on this request, while it is up: closed with
    /// `status_on_error`, whatever `failure_mode_allow` says.
    fn fail_closed(&mut self, host: &impl Host, root: &mut Root, err: &AuthError) -> Action {
        root.stats.count(Counter::Error);
        let status = self.config.failure.status_on_error;
        warn!(
            "#{} {err}: the auth service failed on this request, which a client may cause; \
             failing closed with {status} whatever failure_mode_allow says",
            self.id
        );
        self.state = State::FailedClosed;
        self.reply(host, status, &[], b"")
    }

    /// The failure policy: an outage of the auth service ends here, and nothing else does.
    fn fail(&mut self, host: &impl Host, root: &mut Root, err: &AuthError, phase: Phase) -> Action {
        root.stats.count(Counter::Error);
        let failure = &self.config.failure;
        if failure.allow {
            warn!(
                "#{} {err}; failure_mode_allow lets the request through",
                self.id
            );
            root.stats.count(Counter::FailureModeAllowed);
            self.state = State::FailedOpen;
            if failure.add_header {
                if let Err(err) = host.set_request_header(FAILURE_MODE_ALLOWED_HEADER, b"true") {
                    warn!(
                        "#{} could not mark the request as failure-mode allowed: {err}",
                        self.id
                    );
                }
            }
            self.proceed(host, phase)
        } else {
            warn!(
                "#{} {err}; failing closed with {}",
                self.id, failure.status_on_error
            );
            self.state = State::FailedClosed;
            self.reply(host, failure.status_on_error, &[], b"")
        }
    }

    fn proceed(&self, host: &impl Host, phase: Phase) -> Action {
        match phase {
            Phase::Request => Action::Continue,
            Phase::Answer => {
                if let Err(err) = host.resume_request() {
                    warn!("#{} could not resume the request: {err}", self.id);
                }
                Action::Pause
            }
        }
    }

    fn reply(
        &self,
        host: &impl Host,
        status: u16,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Action {
        if let Err(err) = host.send_response(status, headers, body) {
            warn!("#{} could not send the {status} reply: {err}", self.id);
        }
        Action::Pause
    }
}

/// An auth call, built and ready to send.
enum Outgoing<'a> {
    Http(Vec<(&'a str, std::borrow::Cow<'a, str>)>),
    Grpc {
        service: std::rc::Rc<[u8]>,
        message: Vec<u8>,
    },
}

/// What consulting the cache came to.
enum Consulted {
    /// The request is decided (a hit) or waits for another request's call.
    Decided(Action),
    /// This request makes the call; its answer is cached here.
    Missed(CacheWrite),
    /// This request is not for the cache: it makes its own call, which is not cached.
    Uncached,
}

/// A property as text, if the host has it.
fn property_text(host: &impl Host, path: &[&str]) -> Option<String> {
    let bytes = host.property(path).ok().flatten()?;
    String::from_utf8(bytes).ok()
}

/// What holding an expired allow as a fallback costs the memory budget.
fn allowed_cost(allowed: &Allowed) -> usize {
    let headers: usize = allowed
        .set
        .iter()
        .chain(&allowed.append)
        .chain(&allowed.client)
        .chain(&allowed.append_existing)
        .map(crate::outcome::header_cost)
        .sum();
    let mutations: usize = allowed
        .client_mutations
        .iter()
        .map(|(name, value, _)| name.len() + value.len() + HEADER_OVERHEAD_BYTES)
        .sum();
    let query: usize = allowed
        .query_set
        .iter()
        .map(|(key, value)| key.len() + value.len() + HEADER_OVERHEAD_BYTES)
        .chain(allowed.query_remove.iter().map(String::len))
        .sum();
    let removed: usize = allowed.remove.iter().map(String::len).sum();
    STREAM_COST_BYTES + headers + mutations + query + removed
}

/// Whether a header is the failure-mode marker, in either spelling (CGI-style frameworks read
/// `x_envoy_auth_failure_mode_allowed` as the marker).
fn is_failure_marker(name: &str) -> bool {
    name.len() == FAILURE_MODE_ALLOWED_HEADER.len()
        && name
            .bytes()
            .zip(FAILURE_MODE_ALLOWED_HEADER.bytes())
            .all(|(n, m)| n == m || (n == b'_' && m == b'-'))
}

/// Which of the request's maps a header came from.
#[derive(Debug, Clone, Copy)]
enum Map {
    Headers,
    Trailers,
}

fn dump(headers: &Headers) -> String {
    let mut line = String::new();
    for (name, value) in headers {
        if !line.is_empty() {
            line.push_str(", ");
        }
        line.push_str(name);
        line.push_str(": ");
        line.push_str(&String::from_utf8_lossy(value));
    }
    line
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
