//! The auth calls a worker has outstanding, including those whose stream has gone: the host
//! cannot cancel an HTTP call, so a call counts until its answer arrives or its deadline passes.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// The stream waiting for the answer; `None` once it has gone.
    pub stream: Option<u32>,
    /// When Envoy will have answered the call itself (a 504 at the timeout), on the worker's
    /// coarse clock. Past it (plus a grace period) the call no longer counts.
    pub deadline_nanos: u64,
}

/// Outstanding calls by token. Tokens are per root context, as the host numbers them.
#[derive(Debug, Default)]
pub struct Calls {
    pending: BTreeMap<u32, Call>,
}

impl Calls {
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Calls whose stream has gone.
    pub fn orphaned(&self) -> usize {
        self.pending.values().filter(|c| c.stream.is_none()).count()
    }

    pub fn add(&mut self, token: u32, stream: u32, deadline_nanos: u64) {
        self.pending.insert(
            token,
            Call {
                stream: Some(stream),
                deadline_nanos,
            },
        );
    }

    /// The call's answer has arrived.
    pub fn take(&mut self, token: u32) -> Option<Call> {
        self.pending.remove(&token)
    }

    /// The call's stream has gone; the call itself goes on.
    pub fn orphan(&mut self, token: u32) {
        if let Some(call) = self.pending.get_mut(&token) {
            call.stream = None;
        }
    }

    /// Removes and returns the calls whose deadline is before `now`.
    pub fn expire(&mut self, now_nanos: u64) -> Vec<(u32, Call)> {
        let expired: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, call)| call.deadline_nanos < now_nanos)
            .map(|(token, _)| *token)
            .collect();
        expired
            .into_iter()
            .filter_map(|token| self.pending.remove(&token).map(|call| (token, call)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_counts_until_answered_even_after_its_stream_goes() {
        let mut calls = Calls::default();
        calls.add(1, 10, 100);
        calls.add(2, 11, 100);
        calls.orphan(1);
        assert_eq!((calls.len(), calls.orphaned()), (2, 1));
        assert_eq!(
            calls.take(1),
            Some(Call {
                stream: None,
                deadline_nanos: 100
            })
        );
        assert_eq!(calls.take(1), None, "answered once");
        assert_eq!((calls.len(), calls.orphaned()), (1, 0));
    }

    #[test]
    fn calls_past_their_deadline_are_expired() {
        let mut calls = Calls::default();
        calls.add(1, 10, 100);
        calls.add(2, 11, 300);
        assert!(calls.expire(100).is_empty(), "not before the deadline");
        assert_eq!(
            calls.expire(200),
            vec![(
                1,
                Call {
                    stream: Some(10),
                    deadline_nanos: 100
                }
            )]
        );
        assert_eq!(calls.len(), 1);
    }
}
