//! The ways a request ends without an allow: a deny, a refusal of a request that cannot be
//! checked (400, 431), a refused dispatch (503), an overload (503), a failure on the client's own
//! request, the auth service failing on this request (closed), and an outage (the failure
//! policy). Only an outage reaches the failure policy.

use log::warn;

use super::{Flow, Phase, State, FAILURE_MODE_ALLOWED_HEADER, OVERLOADED_BODY, UNAVAILABLE_BODY};
use crate::decision::AuthError;
use crate::host::{Action, Host, HostError};
use crate::metrics::Counter;
use crate::outcome::Denied;
use crate::protocol::BadRequest;
use crate::record::Verdict;
use crate::state::Root;

impl Flow {
    pub(super) fn deny(&mut self, host: &impl Host, root: &mut Root, denied: &Denied) -> Action {
        root.count(Counter::Denied);
        self.state = State::Denied;
        self.write_metadata(host, &denied.metadata);
        let headers: Vec<(&str, &str)> = denied
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        self.end(host, root, denied.status, &headers, &denied.body)
    }

    pub(super) fn refuse_bad_request(
        &mut self,
        host: &impl Host,
        root: &mut Root,
        bad: &BadRequest,
    ) -> Action {
        let status = bad.status();
        warn!("#{} {bad}: refusing it with {status}", self.id);
        root.count(Counter::Denied);
        self.state = State::Denied;
        // A path that falls under different rules as read by different servers is refused
        // before anything else is done for the request (its forged headers are still on it):
        // in shadow mode too, or it would go upstream unchecked under whichever rule.
        let enforce = match bad {
            BadRequest::AmbiguousPath => Enforce::Always,
            _ => Enforce::UnlessShadow,
        };
        self.end_as(host, root, status, &[], b"", enforce)
    }

    /// Envoy refused to send the check (an unknown cluster, a call it cannot send): 503,
    /// whatever the failure policy says, since a client may have caused it.
    pub(super) fn dispatch_refused(
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
        root.count(Counter::Error);
        self.state = State::FailedClosed;
        self.end(host, root, 503, &[], UNAVAILABLE_BODY)
    }

    /// The auth path or the worker is saturated: 503, whatever the failure policy says, because a
    /// client can cause this on purpose.
    pub(super) fn overloaded(&mut self, host: &impl Host, root: &mut Root, why: &str) -> Action {
        if root.may_log_overload() {
            warn!("#{} overloaded: {why}; refusing with 503", self.id);
        }
        root.count(Counter::Overloaded);
        self.state = State::Overloaded;
        self.end(host, root, 503, &[], OVERLOADED_BODY)
    }

    /// A host call on the client's own request failed: fail closed, never open.
    /// Enforced in shadow mode too: a request the filter could not read, or whose forged
    /// identity headers or failure marker it could not remove, never goes upstream.
    pub(super) fn fail_request(
        &mut self,
        host: &impl Host,
        root: &mut Root,
        err: HostError,
    ) -> Action {
        if err.is_out_of_memory() {
            if root.may_log_overload() {
                warn!(
                    "#{} overloaded: out of VM memory ({err}); refusing with 503",
                    self.id
                );
            }
            root.count(Counter::Overloaded);
            self.state = State::Overloaded;
            return self.end_as(host, root, 503, &[], OVERLOADED_BODY, Enforce::Always);
        }
        root.count(Counter::Error);
        let status = self.config.failure.status_on_error;
        warn!(
            "#{} cannot handle the request ({err}); failing closed with {status}",
            self.id
        );
        self.state = State::FailedClosed;
        self.end_as(host, root, status, &[], b"", Enforce::Always)
    }

    /// A failure of the auth service on this request, while it is up: closed with
    /// `status_on_error`, whatever `failure_mode_allow` says.
    pub(super) fn fail_closed(
        &mut self,
        host: &impl Host,
        root: &mut Root,
        err: &AuthError,
    ) -> Action {
        root.count(Counter::Error);
        let status = self.config.failure.status_on_error;
        warn!(
            "#{} {err}: the auth service failed on this request, which a client may cause; \
             failing closed with {status} whatever failure_mode_allow says",
            self.id
        );
        self.state = State::FailedClosed;
        self.end(host, root, status, &[], b"")
    }

    /// The failure policy: an outage of the auth service ends here, and nothing else does.
    pub(super) fn fail(
        &mut self,
        host: &impl Host,
        root: &mut Root,
        err: &AuthError,
        phase: Phase,
    ) -> Action {
        root.count(Counter::Error);
        let failure = &self.config.failure;
        // In shadow mode an outage is not enforced either way: no failure marker.
        if failure.allow && !self.config.shadow {
            warn!(
                "#{} {err}; failure_mode_allow lets the request through",
                self.id
            );
            root.count(Counter::FailureModeAllowed);
            self.state = State::FailedOpen;
            self.record(host, Verdict::Error, "failure_mode_allowed", None);
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
            let status = failure.status_on_error;
            self.end(host, root, status, &[], b"")
        }
    }

    /// Ends the request with this reply; in shadow mode, counts what would have happened and
    /// lets the request through unchanged instead.
    pub(super) fn end(
        &mut self,
        host: &impl Host,
        root: &mut Root,
        status: u16,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Action {
        self.end_as(host, root, status, headers, body, Enforce::UnlessShadow)
    }

    fn end_as(
        &mut self,
        host: &impl Host,
        root: &mut Root,
        status: u16,
        headers: &[(&str, &str)],
        body: &[u8],
        enforce: Enforce,
    ) -> Action {
        let (verdict, kind, would_be) = match self.state {
            State::Denied => (Verdict::Deny, "denied", "would_be_denied"),
            State::Overloaded => (Verdict::Overload, "overloaded", "would_be_overloaded"),
            _ => (Verdict::Error, "failed", "would_be_failed"),
        };
        if self.config.shadow && enforce == Enforce::UnlessShadow {
            let counter = match self.state {
                State::Denied => Counter::ShadowDenied,
                _ => Counter::ShadowError,
            };
            self.record(host, Verdict::Shadow, would_be, Some(status));
            log::info!(
                "#{} shadow: would have answered {status} ({}); letting it through",
                self.id,
                counter.name()
            );
            root.count(counter);
            self.state = State::Shadowed;
            return self.proceed(host, self.phase);
        }
        self.record(host, verdict, kind, Some(status));
        if let Err(err) = host.send_response(status, headers, body) {
            warn!("#{} could not send the {status} reply: {err}", self.id);
        }
        Action::Pause
    }
}

/// Whether shadow mode may let an ending through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Enforce {
    /// A verdict, an error or an overload: shadow mode lets it through, counted.
    UnlessShadow,
    /// The request itself could not be handled safely: refused whatever the mode.
    Always,
}
