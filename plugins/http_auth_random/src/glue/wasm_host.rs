//! `Host` over proxy-wasm's hostcalls, which return `Result` instead of panicking.

use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, MetricType, Status};

use crate::host::{Counter, Headers, Host, HostError, HostResult};
use crate::metrics::PendingMetrics;

/// Metric ids, defined once per configuration under its `stat_prefix`, and the changes not yet
/// handed to Envoy (see `metrics.rs`).
pub struct Metrics {
    counters: [u32; Counter::ALL.len()],
    auth_latency_ms: u32,
    calls_in_flight: u32,
    pending: PendingMetrics,
}

impl Metrics {
    pub fn define(prefix: &str) -> Result<Metrics, Status> {
        let mut counters = [0; Counter::ALL.len()];
        for (slot, counter) in counters.iter_mut().zip(Counter::ALL) {
            *slot = hostcalls::define_metric(
                MetricType::Counter,
                &format!("{prefix}.{}", counter.name()),
            )?;
        }
        Ok(Metrics {
            pending: PendingMetrics::default(),
            counters,
            auth_latency_ms: hostcalls::define_metric(
                MetricType::Histogram,
                &format!("{prefix}.auth_latency_ms"),
            )?,
            calls_in_flight: hostcalls::define_metric(
                MetricType::Gauge,
                &format!("{prefix}.calls_in_flight"),
            )?,
        })
    }

    fn counter(&self, counter: Counter) -> Option<u32> {
        let index = Counter::ALL.iter().position(|c| *c == counter)?;
        self.counters.get(index).copied()
    }

    /// Hands the changes since the last flush to Envoy.
    pub fn flush(&self) {
        let flush = self.pending.take();
        for (counter, n) in flush.counters {
            if let Some(id) = self.counter(counter) {
                let _ = hostcalls::increment_metric(id, i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
        if flush.in_flight_delta != 0 {
            let _ = hostcalls::increment_metric(self.calls_in_flight, flush.in_flight_delta);
        }
    }
}

pub struct WasmHost {
    metrics: Rc<Metrics>,
}

impl WasmHost {
    pub fn new(metrics: Rc<Metrics>) -> Self {
        WasmHost { metrics }
    }
}

fn host_err(call: &'static str) -> impl Fn(Status) -> HostError {
    move |status| HostError::new(call, format!("{status:?}"))
}

impl Host for WasmHost {
    fn request_headers(&self) -> HostResult<Headers> {
        hostcalls::get_map_bytes(MapType::HttpRequestHeaders)
            .map_err(host_err("get request headers"))
    }

    fn request_header(&self, name: &str) -> HostResult<Option<Vec<u8>>> {
        hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name)
            .map_err(host_err("get request header"))
    }

    fn set_request_header(&self, name: &str, value: &[u8]) -> HostResult<()> {
        hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, name, Some(value))
            .map_err(host_err("set request header"))
    }

    fn add_request_header(&self, name: &str, value: &[u8]) -> HostResult<()> {
        hostcalls::add_map_value_bytes(MapType::HttpRequestHeaders, name, value)
            .map_err(host_err("add request header"))
    }

    fn remove_request_header(&self, name: &str) -> HostResult<()> {
        hostcalls::remove_map_value(MapType::HttpRequestHeaders, name)
            .map_err(host_err("remove request header"))
    }

    fn add_response_header(&self, name: &str, value: &[u8]) -> HostResult<()> {
        hostcalls::add_map_value_bytes(MapType::HttpResponseHeaders, name, value)
            .map_err(host_err("add response header"))
    }

    fn dispatch(
        &self,
        cluster: &str,
        headers: Vec<(&str, &str)>,
        timeout: Duration,
    ) -> HostResult<u32> {
        hostcalls::dispatch_http_call(cluster, headers, None, Vec::new(), timeout)
            .map_err(host_err("dispatch http call"))
    }

    fn call_response_header(&self, name: &str) -> HostResult<Option<Vec<u8>>> {
        hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, name)
            .map_err(host_err("get call response header"))
    }

    fn call_response_headers(&self) -> HostResult<Headers> {
        hostcalls::get_map_bytes(MapType::HttpCallResponseHeaders)
            .map_err(host_err("get call response headers"))
    }

    fn call_response_body(&self, size: usize) -> HostResult<Vec<u8>> {
        hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, size)
            .map(Option::unwrap_or_default)
            .map_err(host_err("get call response body"))
    }

    fn resume_request(&self) -> HostResult<()> {
        hostcalls::resume_http_request().map_err(host_err("resume request"))
    }

    fn send_response(
        &self,
        status: u16,
        headers: Vec<(&str, &str)>,
        body: &[u8],
    ) -> HostResult<()> {
        hostcalls::send_http_response(u32::from(status), headers, Some(body))
            .map_err(host_err("send local response"))
    }

    fn now_nanos(&self) -> u64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|now| now.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |since| {
                u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
            })
    }

    fn count(&self, counter: Counter) {
        self.metrics.pending.count(counter);
    }

    fn record_auth_latency(&self, millis: u64) {
        let _ = hostcalls::record_metric(self.metrics.auth_latency_ms, millis);
    }

    fn add_calls_in_flight(&self, delta: i64) {
        self.metrics.pending.add_in_flight(delta);
    }
}
