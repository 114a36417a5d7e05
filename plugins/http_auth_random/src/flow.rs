//! One request's authorization as a state machine: events in from the worker, effects out through
//! the `Host` trait. Every path ends in exactly one of resume, deny, overload, or the failure
//! policy, and only failures of the auth service ever reach the failure policy.

use std::rc::Rc;

use log::{debug, log_enabled, warn, Level};

use crate::abi::{Action, Status};
use crate::auth_request::{auth_headers, BadRequest};
use crate::config::Config;
use crate::decision::{answer_status, decide, needs_body, AuthError, Verdict};
use crate::exempt::is_exempt;
use crate::host::{Headers, Host, HostError};
use crate::metrics::Counter;
use crate::worker::Root;

/// Header ext_authz adds to a request let through by `failure_mode_allow`.
pub const FAILURE_MODE_ALLOWED_HEADER: &str = "x-envoy-auth-failure-mode-allowed";

/// Envoy's router marks the 503 it answers when a cluster's circuit breaker overflows.
pub const ENVOY_OVERLOADED_HEADER: &str = "x-envoy-overloaded";

/// The body of the 503 a request gets when the auth path is saturated.
pub const OVERLOADED_BODY: &[u8] = b"authorization overloaded";

/// What a waiting stream costs the worker's memory budget before it holds any headers: the
/// stream's state and its entries in the worker's maps, rounded up.
pub const STREAM_COST_BYTES: usize = 512;

/// Per header kept for the client's response, on top of its name and value: two allocations
/// and their bookkeeping.
const HEADER_OVERHEAD_BYTES: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Start,
    Exempt,
    AwaitingAuth {
        token: u32,
        started_nanos: u64,
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

/// Which callback is running: in the headers callback the request continues by returning
/// `Continue`; in the call's callback it must be resumed explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Headers,
    Callback,
}

/// Why a request was not decided by a verdict, and so who answers for it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    /// The auth service failed: the failure policy decides.
    Auth(AuthError),
    /// The auth path or the worker is saturated, which a client can cause: 503, never open.
    Overloaded(String),
}

impl From<HostError> for Failure {
    /// A host call on the auth answer that failed. Running out of VM memory is an overload.
    fn from(err: HostError) -> Failure {
        if err.is_out_of_memory() {
            Failure::Overloaded(format!("out of VM memory ({err})"))
        } else {
            Failure::Auth(AuthError::Host(err.to_string()))
        }
    }
}

pub struct Flow {
    id: u32,
    config: Rc<Config>,
    state: State,
    /// Auth-answer headers for the client's response, kept from the allow until it arrives.
    success_headers: Headers,
    /// Bytes this stream has taken from the worker's memory budget.
    held: usize,
}

impl Flow {
    pub fn new(id: u32, config: Rc<Config>) -> Self {
        Flow {
            id,
            config,
            state: State::Start,
            success_headers: Vec::new(),
            held: 0,
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// Bytes this stream holds against the worker's budget.
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// What a waiting request may come to hold: its own state, and the most success headers it
    /// may keep. Reserved up front, so that a request admitted can always keep what it is owed,
    /// and a flood is refused at the door rather than half-served.
    fn reservation(&self) -> usize {
        let success = if self.config.response.client_on_success.is_empty() {
            0
        } else {
            self.config.limits.max_success_header_bytes
        };
        STREAM_COST_BYTES + success
    }

    pub fn on_request_headers(&mut self, host: &impl Host, root: &mut Root) -> Action {
        if self.state != State::Start {
            return self.hold_while_undecided();
        }
        #[cfg(feature = "test-switches")]
        self.config
            .test
            .on_request(host.request_header(":path").ok().flatten().as_deref());
        let config = Rc::clone(&self.config);
        let exempt = !config.exempt.is_empty() && self.exempt(host);
        // Exempt requests skip the call, not the anti-spoofing: they need the headers only then.
        if exempt && !config.response.strips_client_copies() {
            return self.exempt_continue(root);
        }
        let request = match host.request_headers() {
            Ok(headers) => headers,
            Err(err) => return self.fail_request(host, root, err),
        };
        if log_enabled!(Level::Debug) {
            debug!("#{} request headers: {}", self.id, dump(&request));
        }
        if let Err(err) = self.strip_spoofed(host, &request, Map::Headers) {
            return self.fail_request(host, root, err);
        }
        if exempt {
            return self.exempt_continue(root);
        }
        #[cfg_attr(not(feature = "test-switches"), allow(unused_mut))]
        let mut headers = match auth_headers(&config.auth_request, &request) {
            Ok(headers) => headers,
            Err(bad) => return self.refuse_bad_request(host, root, &bad),
        };
        #[cfg(feature = "test-switches")]
        config.test.edit_auth_headers(&mut headers);
        let limits = &config.limits;
        if root.calls.len() >= limits.max_calls_in_flight {
            let why = format!(
                "{} auth calls outstanding (max_calls_in_flight)",
                root.calls.len()
            );
            return self.overloaded(host, root, &why);
        }
        let reserve = self.reservation();
        if !root.try_hold(reserve) {
            let why = format!("{} bytes held (max_held_bytes)", root.held_bytes);
            return self.overloaded(host, root, &why);
        }
        self.held = reserve;
        let spec = &config.auth_request;
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_ref())).collect();
        match host.dispatch(&spec.cluster, &pairs, spec.timeout) {
            Ok(token) => {
                let timeout = u64::try_from(spec.timeout.as_nanos()).unwrap_or(u64::MAX);
                root.calls
                    .add(token, self.id, root.clock_nanos.saturating_add(timeout));
                let started_nanos = if config.latency_histogram {
                    host.now_nanos()
                } else {
                    0
                };
                self.state = State::AwaitingAuth {
                    token,
                    started_nanos,
                };
                Action::Pause
            }
            Err(err) if err.is_out_of_memory() => {
                self.overloaded(host, root, &format!("out of VM memory ({err})"))
            }
            // Envoy refuses a call inline when it cannot be sent at all: the auth cluster's
            // circuit breaker overflowed (which a client can cause), or the cluster has no
            // healthy host. Envoy does not say which, so both are an overload, never open.
            Err(err) if err.status == Status::InternalFailure => self.overloaded(
                host,
                root,
                &format!("auth call refused by Envoy: circuit breaker overflow or no healthy auth host ({err})"),
            ),
            Err(err) => self.fail(
                host,
                root,
                AuthError::DispatchRefused(err.to_string()),
                Phase::Headers,
            ),
        }
    }

    fn exempt_continue(&mut self, root: &mut Root) -> Action {
        debug!("#{} exempt from authorization", self.id);
        root.stats.count(Counter::Disabled);
        self.state = State::Exempt;
        Action::Continue
    }

    /// The body must wait for the verdict: a `Continue` here would let Envoy resume the request.
    pub fn on_request_body(&self) -> Action {
        self.hold_while_undecided()
    }

    /// Trailers are request headers too: forged copies of trusted headers are removed from them
    /// while the request is going, or may go, upstream. If they cannot be, the request is
    /// refused, even after it was let through: a local reply then resets the upstream request.
    pub fn on_request_trailers(&mut self, host: &impl Host, root: &mut Root) -> Action {
        let going_upstream = matches!(
            self.state,
            State::AwaitingAuth { .. } | State::Allowed | State::Exempt | State::FailedOpen
        );
        if self.config.response.strips_client_copies() && going_upstream {
            let stripped = host
                .request_trailers()
                .and_then(|trailers| self.strip_spoofed(host, &trailers, Map::Trailers));
            if let Err(err) = stripped {
                if let State::AwaitingAuth { token, .. } = self.state {
                    root.calls.orphan(token);
                }
                return self.fail_request(host, root, err);
            }
        }
        self.hold_while_undecided()
    }

    /// The call's answer. The worker has already taken the call off the outstanding list.
    pub fn on_call_response(
        &mut self,
        host: &impl Host,
        root: &mut Root,
        token: u32,
        num_headers: usize,
        body_size: usize,
    ) {
        let started_nanos = match self.state {
            State::AwaitingAuth {
                token: expected,
                started_nanos,
            } if expected == token => started_nanos,
            _ => {
                debug!(
                    "#{} ignoring answer to call {token}: no such call pending",
                    self.id
                );
                return;
            }
        };
        if self.config.latency_histogram {
            let millis = host.now_nanos().saturating_sub(started_nanos) / 1_000_000;
            root.stats.record_latency(host, millis);
        }
        let (verdict, status, body) = match self.read_answer(host, num_headers, body_size) {
            Ok(answer) => answer,
            Err(Failure::Auth(err)) => {
                self.fail(host, root, err, Phase::Callback);
                return;
            }
            Err(Failure::Overloaded(why)) => {
                self.overloaded(host, root, &why);
                return;
            }
        };
        debug!("#{} {} (auth answered {status})", self.id, verdict.label());
        match verdict {
            Verdict::Allow => self.allow(host, root),
            Verdict::DenyConfigured => {
                let config = Rc::clone(&self.config);
                let deny = &config.deny;
                let headers: Vec<(&str, &str)> = deny
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                self.deny(host, root, deny.status, &headers, deny.body.as_bytes());
            }
            Verdict::DenyWithAnswer(status) => self.deny_with_answer(host, root, status, &body),
        }
    }

    /// No answer came by the call's deadline (Envoy should have answered 504 by then).
    pub fn on_call_expired(&mut self, host: &impl Host, root: &mut Root) {
        if matches!(self.state, State::AwaitingAuth { .. }) {
            self.fail(host, root, AuthError::NoAnswer, Phase::Callback);
        }
    }

    pub fn on_response_headers(&mut self, host: &impl Host, root: &mut Root) -> Action {
        // The room reserved for success headers is free once the response starts.
        let reserved = self.held.saturating_sub(STREAM_COST_BYTES);
        root.release(reserved);
        self.held -= reserved;
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
            State::AwaitingAuth { token, .. } => {
                debug!("#{} stream ended while its auth call was pending", self.id);
                root.calls.orphan(token);
                self.state = State::Ended;
            }
            State::Start => self.state = State::Ended,
            _ => {}
        }
    }

    /// The stream is deleted: whatever it held goes back to the budget.
    pub fn on_delete(&mut self, root: &mut Root) {
        self.on_done(root);
        root.release(self.held);
        self.held = 0;
        self.success_headers = Vec::new();
    }

    /// Anything not let through stays held: undecided, denied, failed closed, or gone.
    fn hold_while_undecided(&self) -> Action {
        match self.state {
            State::Start | State::Exempt | State::Allowed | State::FailedOpen => Action::Continue,
            State::AwaitingAuth { .. }
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
    /// case, number or `_` spelling.
    /// The marker `failure_mode_allow` sets is only ever the plugin's to set, so a client's copy
    /// goes whatever the configuration says.
    fn strip_spoofed(&self, host: &impl Host, map: &Headers, kind: Map) -> Result<(), HostError> {
        let response = &self.config.response;
        let strips = response.strips_client_copies();
        let mut removed: Vec<&str> = Vec::new();
        for (name, _) in map {
            let forged = (strips && response.is_spoofed(name))
                || (matches!(kind, Map::Headers) && name == FAILURE_MODE_ALLOWED_HEADER);
            if forged && !removed.contains(&name.as_str()) {
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

    /// Turns the call's answer into a verdict, reading only what the rule needs.
    fn read_answer(
        &self,
        host: &impl Host,
        num_headers: usize,
        body_size: usize,
    ) -> Result<(Verdict, u16, Vec<u8>), Failure> {
        if num_headers == 0 {
            return Err(Failure::Auth(AuthError::CallFailed));
        }
        let status_header = host.call_response_header(":status")?;
        let status = match answer_status(status_header.as_deref()) {
            Ok(status) => status,
            Err(AuthError::ServerError(503))
                if host
                    .call_response_header(ENVOY_OVERLOADED_HEADER)?
                    .is_some() =>
            {
                return Err(Failure::Overloaded(
                    "the auth cluster's circuit breaker overflowed".to_owned(),
                ))
            }
            Err(err) => return Err(Failure::Auth(err)),
        };
        let rule = self.config.rule;
        let body = if needs_body(rule, status) {
            self.answer_body(host, rule, body_size)?
        } else {
            Vec::new()
        };
        Ok((decide(rule, status, &body), status, body))
    }

    /// The answer's body, within `max_response_body_bytes`. Under the status rule the status is
    /// the verdict, so a deny with a larger body is still a deny, relayed without its body; under
    /// the seed rule the body is the verdict, so a larger one is an error.
    fn answer_body(
        &self,
        host: &impl Host,
        rule: crate::config::Rule,
        body_size: usize,
    ) -> Result<Vec<u8>, Failure> {
        let limit = self.config.max_response_body_bytes;
        if body_size > limit {
            if rule == crate::config::Rule::Status {
                warn!(
                    "#{} the auth answer's {body_size}-byte body is over the {limit}-byte limit: denying without it",
                    self.id
                );
                return Ok(Vec::new());
            }
            return Err(Failure::Auth(AuthError::BodyTooLarge {
                size: body_size,
                limit,
            }));
        }
        if body_size == 0 {
            return Ok(Vec::new());
        }
        Ok(host.call_response_body(body_size)?)
    }

    fn allow(&mut self, host: &impl Host, root: &mut Root) {
        root.stats.count(Counter::Ok);
        self.state = State::Allowed;
        let config = Rc::clone(&self.config);
        let response = &config.response;
        if response.used_on_allow() {
            match host.call_response_headers() {
                Ok(answer) => {
                    let mut dropped = 0;
                    for (name, value) in answer {
                        dropped += usize::from(!self.apply_on_allow(host, name, value));
                    }
                    if dropped > 0 {
                        // One line per request, not per header: the log is a target too.
                        warn!(
                            "#{} dropped {dropped} auth header(s) for the client: over max_success_header_bytes ({})",
                            self.id, self.config.limits.max_success_header_bytes
                        );
                        root.stats.count(Counter::SuccessHeadersDropped);
                    }
                }
                Err(err) => warn!(
                    "#{} could not read the auth answer's headers: {err}",
                    self.id
                ),
            }
        }
        self.proceed(host, Phase::Callback);
    }

    /// Applies one auth-answer header on allow; false if it was meant for the client and had
    /// to be dropped (over `max_success_header_bytes`; the room for it was reserved on admission).
    fn apply_on_allow(&mut self, host: &impl Host, name: String, value: Vec<u8>) -> bool {
        let response = &self.config.response;
        let result = if response.sets_upstream(&name) {
            host.set_request_header(&name, &value)
        } else if response.appends_upstream(&name) {
            host.add_request_header(&name, &value)
        } else {
            Ok(())
        };
        if let Err(err) = result {
            warn!("#{} could not pass header {name} upstream: {err}", self.id);
        }
        if !response.to_client_on_success(&name) {
            return true;
        }
        let header = (name, value);
        let kept: usize = self.success_headers.iter().map(header_cost).sum();
        if kept + header_cost(&header) > self.config.limits.max_success_header_bytes {
            return false;
        }
        self.success_headers.push(header);
        true
    }

    fn deny_with_answer(&mut self, host: &impl Host, root: &mut Root, status: u16, body: &[u8]) {
        let answer = match host.call_response_headers() {
            Ok(answer) => answer,
            Err(err) => {
                match Failure::from(err) {
                    Failure::Overloaded(why) => self.overloaded(host, root, &why),
                    Failure::Auth(err) => self.fail(host, root, err, Phase::Callback),
                };
                return;
            }
        };
        let response = &self.config.response;
        let headers: Vec<(&str, &str)> = answer
            .iter()
            .filter(|(name, _)| response.to_client_on_deny(name))
            .filter_map(|(name, value)| Some((name.as_str(), std::str::from_utf8(value).ok()?)))
            .collect();
        self.deny(host, root, status, &headers, body);
    }

    fn deny(
        &mut self,
        host: &impl Host,
        root: &mut Root,
        status: u16,
        headers: &[(&str, &str)],
        body: &[u8],
    ) {
        root.stats.count(Counter::Denied);
        self.state = State::Denied;
        self.reply(host, status, headers, body);
    }

    fn refuse_bad_request(
        &mut self,
        host: &impl Host,
        root: &mut Root,
        bad: &BadRequest,
    ) -> Action {
        warn!("#{} {bad}: refusing it", self.id);
        root.stats.count(Counter::Denied);
        self.state = State::Denied;
        self.reply(host, 400, &[], b"")
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

    /// The failure policy: every failure of the auth service ends here, and nothing else does.
    fn fail(&mut self, host: &impl Host, root: &mut Root, err: AuthError, phase: Phase) -> Action {
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
            Phase::Headers => Action::Continue,
            Phase::Callback => {
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

/// Which of the request's maps a header came from.
#[derive(Debug, Clone, Copy)]
enum Map {
    Headers,
    Trailers,
}

/// What keeping a header costs the memory budget.
fn header_cost((name, value): &(String, Vec<u8>)) -> usize {
    name.len() + value.len() + HEADER_OVERHEAD_BYTES
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
