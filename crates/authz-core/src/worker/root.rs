//! One plugin configuration on one worker: the configuration, its stats, and what its streams
//! have taken on (outstanding calls, held memory), which the limits bound.

use std::rc::Rc;

use std::collections::BTreeMap;

use super::calls::Calls;
use crate::cache::Digest;
use crate::config::Config;
use crate::metrics::{Gauges, Stats};

pub struct Root {
    pub config: Rc<Config>,
    pub stats: Stats,
    pub calls: Calls,
    /// The outstanding call for each cache key, which requests with that key wait for.
    pub pending_keys: BTreeMap<Digest, u32>,
    /// Whether a request uncached for lack of a key header has been logged: once per
    /// configuration, so that a key no request can complete is seen in the log.
    pub said_key_incomplete: bool,
    /// Streams waiting for the first of a body to send with the check, and until when (coarse
    /// clock): a body that never reaches the plugin is a misconfiguration, said at the deadline.
    pub awaiting_first_body: BTreeMap<u32, u64>,
    /// The serialized `GrpcService` a gRPC check names its cluster with, built once.
    pub grpc_service: Rc<[u8]>,
    /// Bytes the streams hold while they wait: what `max_held_bytes` bounds.
    pub held_bytes: usize,
    /// Wall clock as of the last tick. Deadlines are coarse (a tick is 200 ms), so a request
    /// needs no clock read of its own.
    pub clock_nanos: u64,
    /// Overload refusals logged since the last tick, and those not logged: a flood must not
    /// become a flood of log lines.
    overload_logs: u32,
    overload_unlogged: u64,
}

/// Overload refusals logged one by one per tick (200 ms); the rest are summed up at the tick.
const OVERLOAD_LOGS_PER_TICK: u32 = 10;

impl Root {
    pub fn new(config: Rc<Config>, stats: Stats) -> Root {
        Root {
            stats,
            calls: Calls::default(),
            pending_keys: BTreeMap::new(),
            said_key_incomplete: false,
            awaiting_first_body: BTreeMap::new(),
            grpc_service: crate::protocol::grpc::service(&config.auth_request.cluster).into(),
            held_bytes: 0,
            clock_nanos: 0,
            overload_logs: 0,
            overload_unlogged: 0,
            config,
        }
    }

    /// Whether this overload refusal may have a log line of its own.
    pub fn may_log_overload(&mut self) -> bool {
        if self.overload_logs < OVERLOAD_LOGS_PER_TICK {
            self.overload_logs += 1;
            true
        } else {
            self.overload_unlogged += 1;
            false
        }
    }

    /// At a tick: how many overload refusals went unlogged since the last one.
    pub fn take_unlogged_overloads(&mut self) -> u64 {
        self.overload_logs = 0;
        std::mem::take(&mut self.overload_unlogged)
    }

    /// Takes `bytes` of the memory budget, or refuses when they do not fit.
    pub fn try_hold(&mut self, bytes: usize) -> bool {
        match self.held_bytes.checked_add(bytes) {
            Some(total) if total <= self.config.limits.max_held_bytes => {
                self.held_bytes = total;
                true
            }
            _ => false,
        }
    }

    pub fn release(&mut self, bytes: usize) {
        self.held_bytes = self.held_bytes.saturating_sub(bytes);
    }

    pub fn gauges(&self, vm_memory_bytes: u64) -> Gauges {
        let wide = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        Gauges {
            calls_in_flight: wide(self.calls.len()),
            calls_orphaned: wide(self.calls.orphaned()),
            held_bytes: wide(self.held_bytes),
            vm_memory_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(max_held: u64) -> Root {
        let json = format!(r#"{{"decision": "fnv_parity", "max_held_bytes": {max_held}}}"#);
        Root::new(
            Rc::new(Config::parse(json.as_bytes()).unwrap()),
            Stats::default(),
        )
    }

    #[test]
    fn the_budget_refuses_what_does_not_fit_and_frees_what_is_released() {
        let mut root = root(65536);
        assert!(root.try_hold(65000));
        assert!(!root.try_hold(1000));
        assert!(root.try_hold(536));
        root.release(65536);
        assert_eq!(root.held_bytes, 0);
        root.release(1);
        assert_eq!(root.held_bytes, 0, "never below zero");
        assert!(!root.try_hold(usize::MAX), "no overflow");
    }

    #[test]
    fn overload_log_lines_are_limited_per_tick_and_the_rest_counted() {
        let mut root = root(65536);
        let logged = (0..25).filter(|_| root.may_log_overload()).count();
        assert_eq!(logged, 10);
        assert_eq!(root.take_unlogged_overloads(), 15);
        assert!(root.may_log_overload(), "a new tick, new lines");
    }
}
