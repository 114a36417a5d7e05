//! One request's authorization as a state machine: events in from the worker, effects out through
//! the `Host` trait. Every path ends in exactly one of resume, deny, overload, or the failure
//! policy, and only failures of the auth service ever reach the failure policy.

use std::rc::Rc;

use log::{debug, log_enabled, warn, Level};

use crate::config::Config;
use crate::decision::AuthError;
use crate::exempt::is_exempt;
use crate::host::{Action, Headers, Host};
use crate::metrics::Counter;
use crate::outcome::{Allowed, Outcome, ResponseAction};
use crate::record::{CacheUse, Record, Verdict};
use crate::state::Root;
use spoofing::Map;

/// Header ext_authz adds to a request let through by `failure_mode_allow`.
pub const FAILURE_MODE_ALLOWED_HEADER: &str = "x-envoy-auth-failure-mode-allowed";

/// The body of the 503 a request gets when the auth path is saturated.
pub const OVERLOADED_BODY: &[u8] = b"authorization overloaded";

/// How long the plugin waits for the first of a body it is to send with the check. Longer than
/// any client waits for a `100 Continue` before sending anyway (curl: 1 s); only a body that
/// never reaches the plugin (a wasm filter without `allow_on_headers_stop_iteration`) meets it.
pub const FIRST_BODY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What a body that never reaches the plugin says of the wasm filter's configuration.
pub const BODY_FLAG_HINT: &str =
    "with_request_body needs allow_on_headers_stop_iteration: true in the wasm filter's config";

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
    /// Shadow mode: a deny, an error or an overload was counted and not enforced.
    Shadowed,
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
    /// Which callback is running, so that an ending knows how the request goes on.
    phase: Phase,
    /// What the cache did, and when the call this request waits for was made (or joined),
    /// for the decision record.
    cache_use: CacheUse,
    asked_at_nanos: Option<u64>,
    auth_ms: Option<u64>,
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
            phase: Phase::Request,
            cache_use: CacheUse::None,
            asked_at_nanos: None,
            auth_ms: None,
        }
    }

    /// Hands the request's decision to the host, when the configuration asks for it.
    /// The reason is `why`, with the status the client got when there is one (`denied_403`).
    pub(super) fn record(
        &self,
        host: &impl Host,
        verdict: Verdict,
        why: &str,
        status: Option<u16>,
    ) {
        if !self.config.record_decisions {
            return;
        }
        let mut reason = why.to_owned();
        if let Some(status) = status {
            reason.push('_');
            reason.push_str(&status.to_string());
        }
        let record = Record {
            verdict,
            reason,
            cache: self.cache_use,
            auth_ms: self.auth_ms,
            rule: self.config.route_rule.clone(),
        };
        if let Err(err) = host.record_decision(&record) {
            debug!("#{} decision record not kept: {err}", self.id);
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
        self.phase = Phase::Request;
        if self.state != State::Start {
            return self.hold_while_undecided();
        }
        #[cfg(feature = "test-switches")]
        self.config
            .test
            .on_request(host.request_header(":path").ok().flatten().as_deref());
        let mut request = match host.request_headers() {
            Ok(headers) => headers,
            Err(err) => return self.fail_request(host, root, err),
        };
        if !self.config.routes.is_empty() {
            if let Some(refused) = self.follow_routes(host, root, &request) {
                return refused;
            }
        }
        let config = Rc::clone(&self.config);
        // Exempt requests skip the call, not the anti-spoofing (the failure marker included).
        let exempt = config.disabled || (!config.exempt.is_empty() && self.exempt(host));
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
            return self.exempt_continue(host, root);
        }
        let reserve = config.limits.reservation;
        if !root.try_hold(reserve) {
            let why = format!("{} bytes held (max_held_bytes)", root.held_bytes());
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
            if !host.delivers_body_while_paused() {
                root.await_first_body(self.id, root.deadline(FIRST_BODY_WAIT));
            }
            return Action::Pause;
        }
        self.ask(host, root, &request, None, true)
    }

    fn exempt_continue(&mut self, host: &impl Host, root: &mut Root) -> Action {
        debug!("#{} exempt from authorization", self.id);
        root.count(Counter::Disabled);
        self.state = State::Exempt;
        let reason = if self.config.disabled {
            "disabled"
        } else {
            "exempt"
        };
        self.record(host, Verdict::Exempt, reason, None);
        Action::Continue
    }

    /// Trailers are request headers too: forged copies of trusted headers are removed from them
    /// while the request is going, or may go, upstream. If they cannot be, the request is
    /// refused, even after it was let through: a local reply then resets the upstream request.
    pub fn on_request_trailers(&mut self, host: &impl Host, root: &mut Root) -> Action {
        self.phase = Phase::Request;
        let going_upstream = |state: &State| {
            matches!(
                state,
                State::AwaitingAuth { .. }
                    | State::Allowed
                    | State::Exempt
                    | State::FailedOpen
                    | State::Shadowed
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
                    root.leave_call(token, self.id);
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
        self.phase = Phase::Answer;
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

    /// No answer came by the call's deadline (Envoy should have answered 504 by then).
    pub fn on_call_expired(&mut self, host: &impl Host, root: &mut Root) {
        self.phase = Phase::Answer;
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
                root.leave_call(token, self.id);
                self.state = State::Ended;
            }
            State::AwaitingBody => {
                root.stop_awaiting_first_body(self.id);
                if !self.body_seen {
                    log::error!("#{} ended with no body: {BODY_FLAG_HINT}", self.id);
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
            State::Start | State::Exempt | State::Allowed | State::FailedOpen | State::Shadowed => {
                Action::Continue
            }
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

mod allow;
#[cfg(test)]
mod authzen_tests;
mod body;
mod call;
mod consult;
mod end;
mod routes;
#[cfg(test)]
mod routes_tests;
mod spoofing;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
