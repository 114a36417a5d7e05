//! The plugin's stats: counters kept in the VM and handed to Envoy in batches (a host call per
//! metric per request measurably slowed the auth path), gauges read off the worker at each flush.
//! Every VM (each worker's, and the main thread's) reports into the same Envoy stats, so gauges
//! are reported as changes and Envoy shows their sum over the workers.

use crate::host::{Host, HostResult, MetricKind};

/// The counters, named as ext_authz names its own where it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counter {
    Ok,
    Denied,
    Error,
    FailureModeAllowed,
    Disabled,
    /// Refused with 503 because the auth path or the worker's memory was saturated.
    Overloaded,
    /// Auth-answer headers for the client not kept, over `max_success_header_bytes`.
    SuccessHeadersDropped,
    /// Answered from the cache, without an auth call.
    CacheHit,
    /// Looked up and not found fresh.
    CacheMiss,
    /// The auth call failed and an expired allow was served (`stale_if_error_ms`).
    CacheStaleServed,
    /// Waited for another request's auth call with the same key.
    Coalesced,
    /// An answer that should have been cached was not (the slot changed, or the host refused).
    CacheStoreFailed,
    /// Shadow mode: a deny (or a refusal) that was not enforced.
    ShadowDenied,
    /// Shadow mode: an error or an overload that was not enforced.
    ShadowError,
}

impl Counter {
    pub const ALL: [Counter; 14] = [
        Counter::Ok,
        Counter::Denied,
        Counter::Error,
        Counter::FailureModeAllowed,
        Counter::Disabled,
        Counter::Overloaded,
        Counter::SuccessHeadersDropped,
        Counter::CacheHit,
        Counter::CacheMiss,
        Counter::CacheStaleServed,
        Counter::Coalesced,
        Counter::CacheStoreFailed,
        Counter::ShadowDenied,
        Counter::ShadowError,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Counter::Ok => "ok",
            Counter::Denied => "denied",
            Counter::Error => "error",
            Counter::FailureModeAllowed => "failure_mode_allowed",
            Counter::Disabled => "disabled",
            Counter::Overloaded => "overloaded",
            Counter::SuccessHeadersDropped => "success_headers_dropped",
            Counter::CacheHit => "cache_hit",
            Counter::CacheMiss => "cache_miss",
            Counter::CacheStaleServed => "cache_stale_served",
            Counter::Coalesced => "coalesced",
            Counter::CacheStoreFailed => "cache_store_failed",
            Counter::ShadowDenied => "shadow_denied",
            Counter::ShadowError => "shadow_error",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Gauges: this worker's current values, summed over workers in Envoy's stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Auth calls dispatched and not yet answered or past their deadline, orphans included.
    pub calls_in_flight: u64,
    /// Of those, the calls whose stream has gone (the host cannot cancel an HTTP call).
    pub calls_orphaned: u64,
    /// Bytes the worker's streams hold while they wait (what the memory budget counts).
    pub held_bytes: u64,
    /// The VM's linear memory, which never shrinks.
    pub vm_memory_bytes: u64,
}

const GAUGE_NAMES: [&str; 4] = [
    "calls_in_flight",
    "calls_orphaned",
    "held_bytes",
    "vm_memory_bytes",
];

impl Gauges {
    fn values(self) -> [u64; 4] {
        [
            self.calls_in_flight,
            self.calls_orphaned,
            self.held_bytes,
            self.vm_memory_bytes,
        ]
    }
}

/// Metric ids the host gave for one configuration's `stat_prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MetricIds {
    counters: [u32; Counter::ALL.len()],
    gauges: [u32; GAUGE_NAMES.len()],
    auth_latency_ms: u32,
}

/// One configuration's stats on one worker.
#[derive(Debug, Default)]
pub struct Stats {
    pending: [u64; Counter::ALL.len()],
    ids: Option<MetricIds>,
    /// Every count since start, for tests and logs (Envoy keeps the reported totals).
    totals: [u64; Counter::ALL.len()],
    /// The gauge values this VM has reported so far, so that the next flush adds the change.
    reported: [u64; GAUGE_NAMES.len()],
}

/// Every metric a configuration with `stat_prefix` reports, with its kind: what a host that
/// defines metrics up front (a native module, at configuration time) defines.
pub fn definitions(prefix: &str) -> Vec<(MetricKind, String)> {
    Counter::ALL
        .iter()
        .map(|c| (MetricKind::Counter, format!("{prefix}.{}", c.name())))
        .chain(
            GAUGE_NAMES
                .iter()
                .map(|g| (MetricKind::Gauge, format!("{prefix}.{g}"))),
        )
        .chain([(MetricKind::Histogram, format!("{prefix}.auth_latency_ms"))])
        .collect()
}

impl Stats {
    /// Defines the metrics under `prefix`; until then counts are kept but never reported.
    pub fn define(&mut self, host: &impl Host, prefix: &str) -> HostResult<()> {
        let mut counters = [0; Counter::ALL.len()];
        for (slot, counter) in counters.iter_mut().zip(Counter::ALL) {
            *slot =
                host.define_metric(MetricKind::Counter, &format!("{prefix}.{}", counter.name()))?;
        }
        let mut gauges = [0; GAUGE_NAMES.len()];
        for (slot, name) in gauges.iter_mut().zip(GAUGE_NAMES) {
            *slot = host.define_metric(MetricKind::Gauge, &format!("{prefix}.{name}"))?;
        }
        let auth_latency_ms =
            host.define_metric(MetricKind::Histogram, &format!("{prefix}.auth_latency_ms"))?;
        self.ids = Some(MetricIds {
            counters,
            gauges,
            auth_latency_ms,
        });
        Ok(())
    }

    pub fn count(&mut self, counter: Counter) {
        let i = counter.index();
        if let (Some(pending), Some(total)) = (self.pending.get_mut(i), self.totals.get_mut(i)) {
            *pending += 1;
            *total += 1;
        }
    }

    pub fn total(&self, counter: Counter) -> u64 {
        self.totals.get(counter.index()).copied().unwrap_or(0)
    }

    /// Histograms go straight to the host: they are opt-in and cannot be batched.
    pub fn record_latency(&self, host: &impl Host, millis: u64) {
        if let Some(ids) = &self.ids {
            let _ = host.record_metric(ids.auth_latency_ms, millis);
        }
    }

    /// Hands the counts since the last flush, and the gauges' values, to the host.
    pub fn flush(&mut self, host: &impl Host, gauges: Gauges) {
        let Some(ids) = &self.ids else {
            return;
        };
        for (pending, id) in self.pending.iter_mut().zip(ids.counters) {
            if *pending > 0 {
                let delta = i64::try_from(std::mem::take(pending)).unwrap_or(i64::MAX);
                let _ = host.increment_metric(id, delta);
            }
        }
        for ((value, reported), id) in gauges
            .values()
            .into_iter()
            .zip(self.reported.iter_mut())
            .zip(ids.gauges)
        {
            let delta = i128::from(value) - i128::from(*reported);
            if delta != 0
                && host
                    .increment_metric(id, i64::try_from(delta).unwrap_or(0))
                    .is_ok()
            {
                *reported = value;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock_host::MockHost;

    #[test]
    fn counters_are_named_in_order() {
        for (i, counter) in Counter::ALL.iter().enumerate() {
            assert_eq!(counter.index(), i, "{}", counter.name());
        }
    }

    #[test]
    fn a_flush_reports_what_happened_since_the_last_one_and_sets_gauges() {
        let host = MockHost::default();
        let mut stats = Stats::default();
        stats.count(Counter::Ok);
        stats.define(&host, "p").unwrap();
        stats.count(Counter::Ok);
        stats.count(Counter::Denied);
        let gauges = Gauges {
            calls_in_flight: 3,
            calls_orphaned: 1,
            held_bytes: 10,
            vm_memory_bytes: 65536,
        };
        stats.flush(&host, gauges);
        assert_eq!(host.metric("p.ok"), 2);
        assert_eq!(host.metric("p.denied"), 1);
        assert_eq!(host.metric("p.calls_in_flight"), 3);
        assert_eq!(host.metric("p.calls_orphaned"), 1);
        stats.flush(&host, Gauges::default());
        assert_eq!(host.metric("p.ok"), 2, "nothing new");
        assert_eq!(
            host.metric("p.calls_in_flight"),
            0,
            "a gauge is set, not added to"
        );
        assert_eq!(stats.total(Counter::Ok), 2);
    }
}
