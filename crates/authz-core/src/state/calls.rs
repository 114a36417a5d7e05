//! The auth calls a worker has outstanding, including those whose streams have gone: the host
//! cannot cancel an HTTP call, so a call counts until its answer arrives or its deadline passes.
//! A call may have waiters besides the stream that made it (requests with the same cache key).

use std::rc::Rc;

use crate::cache::CacheWrite;
use crate::config::Config;
use crate::sorted::SortedMap;

#[derive(Debug, Clone)]
pub struct Call {
    /// The stream that made the call; `None` once it has gone.
    pub stream: Option<u32>,
    /// Other streams waiting for the same answer (same cache key), sorted: found by binary
    /// search, so a mass reset of waiters costs no quadratic search (only moves of 4-byte ids).
    pub waiters: Waiters,
    /// When Envoy will have answered the call itself (a 504 at the timeout), on the worker's
    /// coarse clock. Past it (plus a grace period) the call no longer counts.
    pub deadline_nanos: u64,
    /// For the latency histogram, when it is on.
    pub started_nanos: Option<u64>,
    /// The configuration the call was made under: its answer is read by it.
    pub config: Rc<Config>,
    pub cache: Option<CacheWrite>,
    /// A gRPC check, which the host can cancel (an HTTP call it cannot).
    pub grpc: bool,
}

impl Call {
    /// Whether nobody waits for the answer any more.
    pub fn orphaned(&self) -> bool {
        self.stream.is_none() && self.waiters.is_empty()
    }

    /// Every stream still waiting for this call's answer.
    pub fn streams(&self) -> impl Iterator<Item = u32> + '_ {
        self.stream.into_iter().chain(self.waiters.iter())
    }
}

/// Outstanding calls by token. Tokens are per root context, as the host numbers them.
/// A sorted set of stream ids. (A BTreeSet costs about 4 KB more wasm.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Waiters(Vec<u32>);

impl Waiters {
    pub fn insert(&mut self, stream: u32) {
        if let Err(at) = self.0.binary_search(&stream) {
            self.0.insert(at, stream);
        }
    }

    pub fn remove(&mut self, stream: u32) {
        if let Ok(at) = self.0.binary_search(&stream) {
            self.0.remove(at);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().copied()
    }
}

impl IntoIterator for Waiters {
    type Item = u32;
    type IntoIter = std::vec::IntoIter<u32>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[derive(Debug, Default)]
pub struct Calls {
    /// Boxed: taking one out moves pointers, not calls.
    pending: SortedMap<u32, Box<Call>>,
    /// How many of `pending` nobody waits for: checked on every dispatch, so kept, not counted.
    orphans: usize,
}

impl Calls {
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Calls nobody waits for any more.
    pub fn orphaned(&self) -> usize {
        self.orphans
    }

    pub fn add(&mut self, token: u32, call: Call) {
        if call.orphaned() {
            self.orphans += 1;
        }
        if let Some(replaced) = self.pending.insert(token, Box::new(call)) {
            self.forget(&replaced);
        }
    }

    /// Another stream waits for this call's answer.
    pub fn join(&mut self, token: u32, stream: u32) -> bool {
        self.change(token, |call| {
            call.waiters.insert(stream);
        })
    }

    /// Changes a call, keeping the orphan count; false if there is no such call.
    fn change(&mut self, token: u32, edit: impl FnOnce(&mut Call)) -> bool {
        let Some(call) = self.pending.get_mut(token) else {
            return false;
        };
        let was = call.orphaned();
        edit(call);
        match (was, call.orphaned()) {
            (false, true) => self.orphans += 1,
            (true, false) => self.orphans = self.orphans.saturating_sub(1),
            _ => {}
        }
        true
    }

    /// A call leaves the table.
    fn forget(&mut self, call: &Call) {
        if call.orphaned() {
            self.orphans = self.orphans.saturating_sub(1);
        }
    }

    pub fn get(&self, token: u32) -> Option<&Call> {
        self.pending.get(token).map(|call| &**call)
    }

    /// The call's answer has arrived.
    pub fn take(&mut self, token: u32) -> Option<Call> {
        let call = self.pending.remove(token)?;
        self.forget(&call);
        Some(*call)
    }

    /// A stream waiting for the call has gone; the call itself goes on.
    pub fn leave(&mut self, token: u32, stream: u32) {
        self.change(token, |call| {
            if call.stream == Some(stream) {
                call.stream = None;
            }
            call.waiters.remove(stream);
        });
    }

    /// Removes and returns the calls whose deadline is before `now`.
    pub fn expire(&mut self, now_nanos: u64) -> Vec<(u32, Call)> {
        let expired: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, call)| call.deadline_nanos < now_nanos)
            .map(|(token, _)| token)
            .collect();
        expired
            .into_iter()
            .filter_map(|token| self.take(token).map(|call| (token, call)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(stream: u32, deadline_nanos: u64) -> Call {
        Call {
            stream: Some(stream),
            waiters: Waiters::default(),
            deadline_nanos,
            started_nanos: None,
            config: Rc::new(Config::parse(b"").unwrap()),
            cache: None,
            grpc: false,
        }
    }

    #[test]
    fn a_call_counts_until_answered_even_after_its_streams_go() {
        let mut calls = Calls::default();
        calls.add(1, call(10, 100));
        calls.add(2, call(11, 100));
        assert!(calls.join(2, 12));
        calls.leave(1, 10);
        calls.leave(2, 11);
        assert_eq!(
            (calls.len(), calls.orphaned()),
            (2, 1),
            "call 2 still has a waiter"
        );
        calls.leave(2, 12);
        assert_eq!(calls.orphaned(), 2);
        assert!(calls.take(1).is_some());
        assert!(calls.take(1).is_none(), "answered once");
        assert_eq!(calls.len(), 1);
        assert!(!calls.join(1, 13), "no joining a call that has ended");
        assert_eq!(calls.orphaned(), 1);
    }

    #[test]
    fn the_orphan_count_follows_every_change() {
        let mut calls = Calls::default();
        calls.add(1, call(10, 100));
        calls.add(2, call(11, 100));
        calls.leave(1, 10);
        assert_eq!(calls.orphaned(), 1);
        calls.leave(1, 10);
        assert_eq!(calls.orphaned(), 1, "leaving twice counts once");
        assert!(calls.join(1, 12), "a waiter adopts an orphan");
        assert_eq!(calls.orphaned(), 0);
        calls.leave(1, 12);
        calls.leave(2, 11);
        assert_eq!(calls.orphaned(), 2);
        assert_eq!(calls.expire(200).len(), 2);
        assert_eq!((calls.len(), calls.orphaned()), (0, 0));
    }

    #[test]
    fn every_waiting_stream_is_named_leader_first() {
        let mut calls = Calls::default();
        calls.add(1, call(10, 100));
        calls.join(1, 11);
        calls.join(1, 12);
        let taken = calls.take(1).unwrap();
        assert_eq!(taken.streams().collect::<Vec<_>>(), vec![10, 11, 12]);
    }

    #[test]
    fn calls_past_their_deadline_are_expired() {
        let mut calls = Calls::default();
        calls.add(1, call(10, 100));
        calls.add(2, call(11, 300));
        assert!(calls.expire(100).is_empty(), "not before the deadline");
        let expired = calls.expire(200);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].0, 1);
        assert_eq!(calls.len(), 1);
    }
}
