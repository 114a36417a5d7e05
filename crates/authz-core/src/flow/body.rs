//! The request's body: held while the check is pending (under flow control, so an upload larger
//! than Envoy's buffer waits rather than getting a 413), or buffered to send with the check
//! (`with_request_body`), and the wait for a body that never reaches the plugin.

use log::debug;

use super::{Flow, State, BODY_FLAG_HINT, FIRST_BODY_WAIT};
use crate::host::{Action, BodyAction, Host};
use crate::metrics::Counter;
use crate::state::Root;

impl Flow {
    /// The body must wait for the verdict: a `Continue` here would let Envoy resume the request.
    /// With `with_request_body`, it is buffered until it is whole or reaches the limit, then sent.
    pub fn on_request_body(
        &mut self,
        host: &impl Host,
        root: &mut Root,
        buffered: usize,
        end_of_stream: bool,
    ) -> BodyAction {
        self.phase = super::Phase::Request;
        let Some(rule) = self.config.request_body.clone() else {
            return self.hold_body();
        };
        if self.state != State::AwaitingBody {
            return self.hold_body();
        }
        if !std::mem::replace(&mut self.body_seen, true) {
            root.stop_awaiting_first_body(self.id);
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
    pub(super) fn hold_body(&self) -> BodyAction {
        match self.state {
            State::Start | State::Exempt | State::Allowed | State::FailedOpen | State::Shadowed => {
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

    /// Nothing of the body reached the plugin in FIRST_BODY_WAIT. Envoy hands a filter the body
    /// after its headers callback stopped only with `allow_on_headers_stop_iteration: true` in
    /// the wasm filter's config; without it every request with a body would wait for Envoy's
    /// stream timeouts, so it fails closed, saying why.
    pub fn on_first_body_deadline(&mut self, host: &impl Host, root: &mut Root) {
        self.phase = super::Phase::Answer;
        if self.state != State::AwaitingBody || self.body_seen {
            return;
        }
        log::error!(
            "#{} no body in {} s: {BODY_FLAG_HINT}",
            self.id,
            FIRST_BODY_WAIT.as_secs()
        );
        root.count(Counter::Error);
        self.state = State::FailedClosed;
        let status = self.config.failure.status_on_error;
        self.end(host, root, status, &[], b"");
    }
}
