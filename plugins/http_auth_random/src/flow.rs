//! One request's authorization as a state machine: events in from the glue, effects out through
//! the `Host` trait. Every path ends in exactly one of resume, deny, or the failure policy.

use std::rc::Rc;

use log::{debug, log_enabled, warn, Level};

use crate::auth_request::{auth_headers, UnsendableHeader};
use crate::config::Config;
use crate::decision::{answer_status, decide, needs_body, AuthError, Verdict};
use crate::exempt::is_exempt;
use crate::host::{Counter, Headers, Host};

/// Header ext_authz adds to a request let through by `failure_mode_allow`.
pub const FAILURE_MODE_ALLOWED_HEADER: &str = "x-envoy-auth-failure-mode-allowed";

/// What the glue returns to Envoy from a stream callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    Pause,
}

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

pub struct Flow {
    id: u32,
    config: Rc<Config>,
    state: State,
    /// Auth-answer headers for the client's response, kept from the allow until it arrives.
    success_headers: Headers,
}

impl Flow {
    pub fn new(id: u32, config: Rc<Config>) -> Self {
        Flow {
            id,
            config,
            state: State::Start,
            success_headers: Vec::new(),
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn on_request_headers(&mut self, host: &impl Host) -> Action {
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
            return self.exempt_continue(host);
        }
        let request = match host.request_headers() {
            Ok(headers) => headers,
            Err(err) => return self.fail(host, AuthError::Host(err.to_string()), Phase::Headers),
        };
        if log_enabled!(Level::Debug) {
            debug!("#{} request headers: {}", self.id, dump(&request));
        }
        if let Err(err) = self.strip_spoofable(host, &request) {
            return self.fail(host, err, Phase::Headers);
        }
        if exempt {
            return self.exempt_continue(host);
        }
        #[cfg_attr(not(feature = "test-switches"), allow(unused_mut))]
        let mut headers = match auth_headers(&config.auth_request, &request) {
            Ok(headers) => headers,
            Err(UnsendableHeader(name)) => return self.refuse_unsendable(host, &name),
        };
        #[cfg(feature = "test-switches")]
        config.test.edit_auth_headers(&mut headers);
        let spec = &config.auth_request;
        let pairs = headers.iter().map(|(n, v)| (*n, v.as_ref())).collect();
        match host.dispatch(&spec.cluster, pairs, spec.timeout) {
            Ok(token) => {
                host.add_calls_in_flight(1);
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
            Err(err) => self.fail(
                host,
                AuthError::DispatchRefused(err.to_string()),
                Phase::Headers,
            ),
        }
    }

    fn exempt_continue(&mut self, host: &impl Host) -> Action {
        debug!("#{} exempt from authorization", self.id);
        host.count(Counter::Disabled);
        self.state = State::Exempt;
        Action::Continue
    }

    /// The body must wait for the verdict: a `Continue` here would let Envoy resume the request.
    pub fn on_request_body(&self) -> Action {
        self.hold_while_undecided()
    }

    pub fn on_request_trailers(&self) -> Action {
        self.hold_while_undecided()
    }

    pub fn on_call_response(
        &mut self,
        host: &impl Host,
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
        host.add_calls_in_flight(-1);
        if self.config.latency_histogram {
            host.record_auth_latency(host.now_nanos().saturating_sub(started_nanos) / 1_000_000);
        }
        let (verdict, status, body) = match self.read_answer(host, num_headers, body_size) {
            Ok(answer) => answer,
            Err(err) => {
                self.fail(host, err, Phase::Callback);
                return;
            }
        };
        debug!("#{} {} (auth answered {status})", self.id, verdict.label());
        match verdict {
            Verdict::Allow => self.allow(host),
            Verdict::DenyConfigured => {
                let config = Rc::clone(&self.config);
                let deny = &config.deny;
                let headers = deny
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                self.deny(host, deny.status, headers, deny.body.as_bytes());
            }
            Verdict::DenyWithAnswer(status) => self.deny_with_answer(host, status, &body),
        }
    }

    pub fn on_response_headers(&mut self, host: &impl Host) -> Action {
        if self.state == State::Allowed {
            for (name, value) in std::mem::take(&mut self.success_headers) {
                if let Err(err) = host.add_response_header(&name, &value) {
                    warn!("#{} could not add response header {name}: {err}", self.id);
                }
            }
        }
        Action::Continue
    }

    /// The stream is gone. A pending call's answer will never arrive, so it is no longer in flight.
    pub fn on_done(&mut self, host: &impl Host) {
        match self.state {
            State::AwaitingAuth { .. } => {
                debug!("#{} stream ended while its auth call was pending", self.id);
                host.add_calls_in_flight(-1);
                self.state = State::Ended;
            }
            State::Start => self.state = State::Ended,
            _ => {}
        }
    }

    /// Anything not let through stays held: undecided, denied, failed closed, or gone.
    fn hold_while_undecided(&self) -> Action {
        match self.state {
            State::Start | State::Exempt | State::Allowed | State::FailedOpen => Action::Continue,
            State::AwaitingAuth { .. } | State::Denied | State::FailedClosed | State::Ended => {
                Action::Pause
            }
        }
    }

    fn exempt(&self, host: &impl Host) -> bool {
        let path = host.request_header(":path").ok().flatten();
        let method = host.request_header(":method").ok().flatten();
        is_exempt(&self.config.exempt, path.as_deref(), method.as_deref())
    }

    /// Removes the client's own copies of the headers the auth service is trusted to set.
    fn strip_spoofable(&self, host: &impl Host, request: &Headers) -> Result<(), AuthError> {
        let response = &self.config.response;
        if !response.strips_client_copies() {
            return Ok(());
        }
        let mut removed: Vec<&str> = Vec::new();
        for (name, _) in request {
            if response.upstream.matches(name) && !removed.contains(&name.as_str()) {
                host.remove_request_header(name)
                    .map_err(|err| AuthError::Host(err.to_string()))?;
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
    ) -> Result<(Verdict, u16, Vec<u8>), AuthError> {
        if num_headers == 0 {
            return Err(AuthError::CallFailed);
        }
        let status_header = host
            .call_response_header(":status")
            .map_err(|err| AuthError::Host(err.to_string()))?;
        let status = answer_status(status_header.as_deref())?;
        let rule = self.config.rule;
        let body = if needs_body(rule, status) {
            self.answer_body(host, body_size)?
        } else {
            Vec::new()
        };
        Ok((decide(rule, status, &body), status, body))
    }

    fn answer_body(&self, host: &impl Host, body_size: usize) -> Result<Vec<u8>, AuthError> {
        let limit = self.config.max_response_body_bytes;
        if body_size > limit {
            return Err(AuthError::BodyTooLarge {
                size: body_size,
                limit,
            });
        }
        if body_size == 0 {
            return Ok(Vec::new());
        }
        host.call_response_body(body_size)
            .map_err(|err| AuthError::Host(err.to_string()))
    }

    fn allow(&mut self, host: &impl Host) {
        host.count(Counter::Ok);
        self.state = State::Allowed;
        let response = &self.config.response;
        if response.used_on_allow() {
            match host.call_response_headers() {
                Ok(answer) => {
                    for (name, value) in answer {
                        self.apply_on_allow(host, name, value);
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

    fn apply_on_allow(&mut self, host: &impl Host, name: String, value: Vec<u8>) {
        let response = &self.config.response;
        let result = if response.upstream.matches(&name) {
            host.set_request_header(&name, &value)
        } else if response.upstream_append.matches(&name) {
            host.add_request_header(&name, &value)
        } else {
            Ok(())
        };
        if let Err(err) = result {
            warn!("#{} could not pass header {name} upstream: {err}", self.id);
        }
        if response.client_on_success.matches(&name) {
            self.success_headers.push((name, value));
        }
    }

    fn deny_with_answer(&mut self, host: &impl Host, status: u16, body: &[u8]) {
        let answer = match host.call_response_headers() {
            Ok(answer) => answer,
            Err(err) => {
                self.fail(host, AuthError::Host(err.to_string()), Phase::Callback);
                return;
            }
        };
        let response = &self.config.response;
        let headers = answer
            .iter()
            .filter(|(name, _)| response.to_client_on_deny(name))
            .filter_map(|(name, value)| Some((name.as_str(), std::str::from_utf8(value).ok()?)))
            .collect();
        self.deny(host, status, headers, body);
    }

    fn deny(&mut self, host: &impl Host, status: u16, headers: Vec<(&str, &str)>, body: &[u8]) {
        host.count(Counter::Denied);
        self.state = State::Denied;
        self.reply(host, status, headers, body);
    }

    fn refuse_unsendable(&mut self, host: &impl Host, name: &str) -> Action {
        warn!(
            "#{} request header {name} is not UTF-8 and cannot be sent for checking",
            self.id
        );
        host.count(Counter::Denied);
        self.state = State::Denied;
        self.reply(host, 400, Vec::new(), b"")
    }

    /// The failure policy: every error that is not a verdict ends here.
    fn fail(&mut self, host: &impl Host, err: AuthError, phase: Phase) -> Action {
        host.count(Counter::Error);
        let failure = &self.config.failure;
        if failure.allow {
            warn!(
                "#{} {err}; failure_mode_allow lets the request through",
                self.id
            );
            host.count(Counter::FailureModeAllowed);
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
            self.reply(host, failure.status_on_error, Vec::new(), b"")
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
        headers: Vec<(&str, &str)>,
        body: &[u8],
    ) -> Action {
        if let Err(err) = host.send_response(status, headers, body) {
            warn!("#{} could not send the {status} reply: {err}", self.id);
        }
        Action::Pause
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

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
