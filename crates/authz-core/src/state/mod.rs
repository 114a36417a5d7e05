//! One configuration on one worker: the configuration, its stats, and what its streams have
//! taken on (outstanding calls, held memory, waits), which the limits bound. Streams change it
//! only through the methods here.

mod calls;

use std::collections::BTreeMap;

use crate::sorted::SortedMap;
use std::rc::Rc;
use std::time::Duration;

pub use calls::{Call, Calls, Waiters};

use crate::cache::Digest;
use crate::config::{Config, RouteOverrides};
use crate::host::Host;
use crate::metrics::{Counter, Gauges, Stats};

/// Overload refusals logged one by one per tick (200 ms); the rest are summed up at the tick.
const OVERLOAD_LOGS_PER_TICK: u32 = 10;

/// The most distinct cache keys whose calls others may join at once.
pub const MAX_COALESCED_KEYS: usize = 4096;

pub struct Root {
    config: Rc<Config>,
    stats: Stats,
    calls: Calls,
    /// The outstanding call for each cache key, which requests with that key wait for.
    pending_keys: SortedMap<Digest, u32>,
    /// Whether a request uncached for lack of a key header has been logged: once per
    /// configuration, so that a key no request can complete is seen in the log.
    said_key_incomplete: bool,
    /// Streams waiting for the first of a body to send with the check, and until when (coarse
    /// clock): a body that never reaches the plugin is a misconfiguration, said at the deadline.
    awaiting_first_body: SortedMap<u32, u64>,
    /// The serialized `GrpcService` a gRPC check names its cluster with, built once a cluster.
    /// (A list: a configuration names a handful of clusters.)
    grpc_services: Vec<(String, Rc<[u8]>)>,
    /// The configuration each route's requests get, built on the route's first request.
    /// `None`: settings the filter's configuration cannot take; their requests are refused.
    routes: BTreeMap<u64, Option<Rc<Config>>>,
    /// Bytes the streams hold while they wait: what `max_held_bytes` bounds.
    held_bytes: usize,
    /// Wall clock as of the last tick. Deadlines are coarse (a tick is 200 ms), so a request
    /// needs no clock read of its own.
    clock_nanos: u64,
    /// Overload refusals logged since the last tick, and those not logged: a flood must not
    /// become a flood of log lines.
    overload_logs: u32,
    overload_unlogged: u64,
}

impl Root {
    pub fn new(config: Rc<Config>, stats: Stats, now_nanos: u64) -> Root {
        Root {
            grpc_services: Vec::new(),
            stats,
            calls: Calls::default(),
            pending_keys: SortedMap::default(),
            said_key_incomplete: false,
            awaiting_first_body: SortedMap::default(),
            routes: BTreeMap::new(),
            held_bytes: 0,
            clock_nanos: now_nanos,
            overload_logs: 0,
            overload_unlogged: 0,
            config,
        }
    }

    /// A new configuration on a live root: the old stats are flushed (the new ones start from
    /// nothing); the calls and memory its streams still hold are kept.
    pub fn reconfigure(
        &mut self,
        host: &impl Host,
        config: Rc<Config>,
        stats: Stats,
        now_nanos: u64,
    ) {
        self.stats.flush(host, Gauges::default());
        self.grpc_services.clear();
        self.config = config;
        self.stats = stats;
        self.routes.clear();
        self.said_key_incomplete = false;
        self.clock_nanos = now_nanos;
    }

    pub fn config(&self) -> &Rc<Config> {
        &self.config
    }

    /// The configuration a route's requests get: the route's settings over this one's.
    pub fn config_for_route(
        &mut self,
        route: u64,
        overrides: &RouteOverrides,
    ) -> Option<Rc<Config>> {
        let config = &self.config;
        self.routes
            .entry(route)
            .or_insert_with(|| match overrides.conflict(config) {
                Some((field, why)) => {
                    log::error!(
                        "a route's settings do not fit the filter's configuration ({field} {why}): refusing its requests"
                    );
                    None
                }
                None => Some(Rc::new(overrides.apply(config))),
            })
            .clone()
    }

    pub fn grpc_service(&mut self, cluster: &str) -> Rc<[u8]> {
        if let Some((_, service)) = self.grpc_services.iter().find(|(c, _)| c == cluster) {
            return Rc::clone(service);
        }
        let service: Rc<[u8]> = crate::protocol::grpc::service(cluster).into();
        self.grpc_services
            .push((cluster.to_owned(), Rc::clone(&service)));
        service
    }

    // Clock.

    /// The wall clock as of the last tick.
    pub fn clock_nanos(&self) -> u64 {
        self.clock_nanos
    }

    /// A deadline `after` from the last tick.
    pub fn deadline(&self, after: Duration) -> u64 {
        let after = u64::try_from(after.as_nanos()).unwrap_or(u64::MAX);
        self.clock_nanos.saturating_add(after)
    }

    pub fn set_clock(&mut self, now_nanos: u64) {
        self.clock_nanos = now_nanos;
    }

    // Stats and logs.

    pub fn count(&mut self, counter: Counter) {
        self.stats.count(counter);
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn record_latency(&mut self, host: &impl Host, millis: u64) {
        self.stats.record_latency(host, millis);
    }

    /// Hands the counters and gauges to the host.
    pub fn flush_stats(&mut self, host: &impl Host, vm_memory_bytes: u64) {
        let gauges = self.gauges(vm_memory_bytes);
        self.stats.flush(host, gauges);
    }

    /// The root goes: what it added to the gauges, which every worker shares, is taken back.
    pub fn withdraw_stats(&mut self, host: &impl Host) {
        self.stats.flush(host, Gauges::default());
    }

    fn gauges(&self, vm_memory_bytes: u64) -> Gauges {
        let wide = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        Gauges {
            calls_in_flight: wide(self.calls.len()),
            calls_orphaned: wide(self.calls.orphaned()),
            held_bytes: wide(self.held_bytes),
            vm_memory_bytes,
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

    /// True the first time a request goes uncached for lack of a key header.
    pub fn first_incomplete_key(&mut self) -> bool {
        !std::mem::replace(&mut self.said_key_incomplete, true)
    }

    // The memory budget.

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

    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    // Calls.

    /// Why a new call may not be made now (the worker's caps), if it may not.
    pub fn refuses_call(&self) -> Option<String> {
        let limits = &self.config.limits;
        if self.calls.len() >= limits.max_calls_in_flight {
            return Some(format!(
                "{} auth calls outstanding (max_calls_in_flight)",
                self.calls.len()
            ));
        }
        if self.calls.orphaned() >= limits.max_orphaned_calls {
            return Some(format!(
                "{} auth calls whose clients have gone are still outstanding (max_orphaned_calls)",
                self.calls.orphaned()
            ));
        }
        None
    }

    /// A call was made; requests with its cache key wait for it from now on.
    pub fn start_call(&mut self, token: u32, call: Call) {
        if let Some(write) = &call.cache {
            // Digests come in any order, so each insert moves part of the list: past this many
            // keys in flight a call is still made, just not joined by others.
            if self.pending_keys.len() < MAX_COALESCED_KEYS {
                self.pending_keys.insert(write.digest, token);
            }
        }
        self.calls.add(token, call);
    }

    /// Joins the call made for this cache key, if one is outstanding: its token.
    pub fn join_call(&mut self, digest: &Digest, stream: u32) -> Option<u32> {
        let token = *self.pending_keys.get(*digest)?;
        self.calls.join(token, stream).then_some(token)
    }

    /// A stream waiting for the call has gone; the call itself goes on.
    pub fn leave_call(&mut self, token: u32, stream: u32) {
        self.calls.leave(token, stream);
    }

    pub fn call(&self, token: u32) -> Option<&Call> {
        self.calls.get(token)
    }

    /// The call has ended (answered, cancelled): it no longer counts, nor takes new waiters.
    pub fn finish_call(&mut self, token: u32) -> Option<Call> {
        let call = self.calls.take(token)?;
        self.forget_pending_key(token, &call);
        Some(call)
    }

    /// Ends the calls whose deadline passed more than `grace` before the last tick.
    pub fn expire_calls(&mut self, grace: Duration) -> Vec<(u32, Call)> {
        let grace = u64::try_from(grace.as_nanos()).unwrap_or(u64::MAX);
        let expired = self.calls.expire(self.clock_nanos.saturating_sub(grace));
        for (token, call) in &expired {
            self.forget_pending_key(*token, call);
        }
        expired
    }

    pub fn calls_in_flight(&self) -> usize {
        self.calls.len()
    }

    pub fn orphaned_calls(&self) -> usize {
        self.calls.orphaned()
    }

    fn forget_pending_key(&mut self, token: u32, call: &Call) {
        if let Some(write) = &call.cache {
            if self.pending_keys.get(write.digest) == Some(&token) {
                self.pending_keys.remove(write.digest);
            }
        }
    }

    // Waiting for a body.

    /// The stream waits for the first of its body until `deadline`.
    pub fn await_first_body(&mut self, stream: u32, deadline: u64) {
        self.awaiting_first_body.insert(stream, deadline);
    }

    /// The stream's body has begun, or the stream has gone.
    pub fn stop_awaiting_first_body(&mut self, stream: u32) {
        self.awaiting_first_body.remove(stream);
    }

    /// The streams whose first body did not arrive by the last tick, no longer waited for.
    pub fn take_late_first_bodies(&mut self) -> Vec<u32> {
        let now = self.clock_nanos;
        let late: Vec<u32> = self
            .awaiting_first_body
            .iter()
            .filter(|(_, deadline)| **deadline < now)
            .map(|(stream, _)| stream)
            .collect();
        for stream in &late {
            self.awaiting_first_body.remove(*stream);
        }
        late
    }

    pub fn is_awaiting_first_body(&self, stream: u32) -> bool {
        self.awaiting_first_body.contains_key(stream)
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
            0,
        )
    }

    #[test]
    fn the_budget_refuses_what_does_not_fit_and_frees_what_is_released() {
        let mut root = root(65536);
        assert!(root.try_hold(65000));
        assert!(!root.try_hold(1000));
        assert!(root.try_hold(536));
        root.release(65536);
        assert_eq!(root.held_bytes(), 0);
        root.release(1);
        assert_eq!(root.held_bytes(), 0, "never below zero");
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

    #[test]
    fn late_first_bodies_are_taken_once_at_the_tick_after_their_deadline() {
        let mut root = root(65536);
        root.await_first_body(1, 100);
        root.await_first_body(2, 300);
        root.set_clock(200);
        assert_eq!(root.take_late_first_bodies(), vec![1]);
        assert!(root.take_late_first_bodies().is_empty());
        root.stop_awaiting_first_body(2);
        root.set_clock(400);
        assert!(root.take_late_first_bodies().is_empty());
    }
}
