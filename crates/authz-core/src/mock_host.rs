//! A recording `Host` for native tests of the request flow and the worker.
//! Test code only: its module is declared under #[cfg(test)].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::Duration;

use crate::host::{Failure, Headers, Host, HostError, HostResult, MetricKind, Store};

/// Something the plugin asked the host to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Dispatch {
        cluster: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        timeout: Duration,
    },
    Resume,
    Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    SetRequestHeader(String, Vec<u8>),
    AddRequestHeader(String, Vec<u8>),
    RemoveRequestHeader(String),
    RemoveRequestTrailer(String),
    AddResponseHeader(String, Vec<u8>),
    SetResponseHeader(String, Vec<u8>),
    DispatchGrpc {
        service: Vec<u8>,
        message: Vec<u8>,
        timeout: Duration,
    },
    CancelGrpc(u32),
    /// Dynamic metadata written (a serialized Struct).
    Metadata(crate::host::Metadata),
    /// A decision record kept.
    Record(crate::record::Record),
    /// Which stream later calls act on.
    Context(u32),
}

#[derive(Default)]
pub struct MockHost {
    pub request: Headers,
    pub trailers: Headers,
    pub body: Vec<u8>,
    /// The upstream's response headers.
    pub response: Headers,
    /// Properties by their dotted path.
    pub properties: HashMap<String, Vec<u8>>,
    pub grpc_answer: Vec<u8>,
    pub answer_headers: Headers,
    pub answer_body: Vec<u8>,
    /// Host calls (by their `HostError::call` name) that fail, and with which status.
    pub failing: HashMap<&'static str, Failure>,
    pub effects: RefCell<Vec<Effect>>,
    pub body_reads: Cell<u32>,
    pub clock: Cell<u64>,
    /// Metrics by name, and their ids.
    pub metrics: RefCell<Vec<(String, MetricKind, i128)>>,
    pub histogram_samples: RefCell<Vec<u64>>,
    /// Shared data: key → (value, version).
    pub shared: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    next_token: Cell<u32>,
    /// Host capabilities, as a native module has them.
    pub evicting_store: bool,
    pub metadata_writer: bool,
    pub ends_calls_with_streams: bool,
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

pub fn headers(pairs: &[(&str, &str)]) -> Headers {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect()
}

impl MockHost {
    pub fn with_request(pairs: &[(&str, &str)]) -> Self {
        MockHost {
            request: headers(pairs),
            next_token: Cell::new(7),
            ..MockHost::default()
        }
    }

    /// Sets what the auth service answers.
    pub fn answering(mut self, status: &str, extra: &[(&str, &str)], body: &[u8]) -> Self {
        let mut answer = headers(&[(":status", status)]);
        answer.extend(headers(extra));
        self.answer_headers = answer;
        self.answer_body = body.to_vec();
        self
    }

    pub fn failing(self, call: &'static str) -> Self {
        self.failing_with(call, Failure::BadArgument)
    }

    pub fn failing_with(mut self, call: &'static str, status: Failure) -> Self {
        self.failing.insert(call, status);
        self
    }

    pub fn effects(&self) -> Vec<Effect> {
        self.effects.borrow().clone()
    }

    pub fn clear_effects(&self) {
        self.effects.borrow_mut().clear();
    }

    /// How many calls were dispatched so far.
    pub fn dispatches(&self) -> u32 {
        self.next_token.get() - 7
    }

    pub fn last_token(&self) -> u32 {
        self.next_token.get() - 1
    }

    /// A metric's value as Envoy would show it (counters summed, gauges as last set).
    pub fn metric(&self, name: &str) -> i128 {
        self.metrics
            .borrow()
            .iter()
            .find(|(n, _, _)| n == name)
            .map_or(0, |(_, _, v)| *v)
    }

    fn check(&self, call: &'static str) -> HostResult<()> {
        match self.failing.get(call) {
            Some(status) => Err(HostError::new(call, *status)),
            None => Ok(()),
        }
    }

    fn record(&self, effect: Effect) {
        self.effects.borrow_mut().push(effect);
    }

    fn metric_slot(&self, id: u32) -> HostResult<usize> {
        let index = usize::try_from(id).unwrap_or(usize::MAX);
        if index < self.metrics.borrow().len() {
            Ok(index)
        } else {
            Err(HostError::new("metric", Failure::NotFound))
        }
    }
}

fn find(map: &Headers, name: &str) -> Option<Vec<u8>> {
    map.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
}

impl Host for MockHost {
    fn request_headers(&self) -> HostResult<Headers> {
        self.check("request_headers")?;
        Ok(self.request.clone())
    }

    fn request_header(&self, name: &str) -> HostResult<Option<Vec<u8>>> {
        self.check("request_header")?;
        Ok(find(&self.request, name))
    }

    fn set_request_header(&self, name: &str, value: &[u8]) -> HostResult<()> {
        self.check("set_request_header")?;
        self.record(Effect::SetRequestHeader(name.to_owned(), value.to_vec()));
        Ok(())
    }

    fn add_request_header(&self, name: &str, value: &[u8]) -> HostResult<()> {
        self.check("add_request_header")?;
        self.record(Effect::AddRequestHeader(name.to_owned(), value.to_vec()));
        Ok(())
    }

    fn remove_request_header(&self, name: &str) -> HostResult<()> {
        self.check("remove_request_header")?;
        self.record(Effect::RemoveRequestHeader(name.to_owned()));
        Ok(())
    }

    fn request_trailers(&self) -> HostResult<Headers> {
        self.check("request_trailers")?;
        Ok(self.trailers.clone())
    }

    fn request_body(&self, max: usize) -> HostResult<Vec<u8>> {
        self.check("request_body")?;
        Ok(self.body.iter().copied().take(max).collect())
    }

    fn remove_request_trailer(&self, name: &str) -> HostResult<()> {
        self.check("remove_request_trailer")?;
        self.record(Effect::RemoveRequestTrailer(name.to_owned()));
        Ok(())
    }

    fn add_response_header(&self, name: &str, value: &[u8]) -> HostResult<()> {
        self.check("add_response_header")?;
        self.record(Effect::AddResponseHeader(name.to_owned(), value.to_vec()));
        Ok(())
    }

    fn response_header(&self, name: &str) -> HostResult<Option<Vec<u8>>> {
        self.check("response_header")?;
        Ok(find(&self.response, name))
    }

    fn set_response_header(&self, name: &str, value: &[u8]) -> HostResult<()> {
        self.check("set_response_header")?;
        self.record(Effect::SetResponseHeader(name.to_owned(), value.to_vec()));
        Ok(())
    }

    fn property(&self, path: &[&str]) -> HostResult<Option<Vec<u8>>> {
        self.check("property")?;
        Ok(self.properties.get(&path.join(".")).cloned())
    }

    fn dispatch_grpc(
        &self,
        _cluster: &str,
        service: &[u8],
        _service_name: &str,
        _method: &str,
        message: &[u8],
        timeout: Duration,
    ) -> HostResult<u32> {
        self.check("dispatch_grpc")?;
        self.record(Effect::DispatchGrpc {
            service: service.to_vec(),
            message: message.to_vec(),
            timeout,
        });
        let token = self.next_token.get();
        self.next_token.set(token + 1);
        Ok(token)
    }

    fn grpc_response(&self, max: usize) -> HostResult<Vec<u8>> {
        self.check("grpc_response")?;
        Ok(self.grpc_answer.iter().copied().take(max).collect())
    }

    fn cancel_grpc(&self, token: u32) -> HostResult<()> {
        self.check("cancel_grpc")?;
        self.record(Effect::CancelGrpc(token));
        Ok(())
    }

    fn dispatch(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout: Duration,
    ) -> HostResult<u32> {
        self.check("dispatch")?;
        self.record(Effect::Dispatch {
            cluster: cluster.to_owned(),
            headers: owned(headers),
            body: body.to_vec(),
            timeout,
        });
        let token = self.next_token.get();
        self.next_token.set(token + 1);
        Ok(token)
    }

    fn call_response_header(&self, name: &str) -> HostResult<Option<Vec<u8>>> {
        self.check("call_response_header")?;
        Ok(find(&self.answer_headers, name))
    }

    fn call_response_headers(&self) -> HostResult<Headers> {
        self.check("call_response_headers")?;
        Ok(self.answer_headers.clone())
    }

    fn call_response_body(&self, max: usize) -> HostResult<Vec<u8>> {
        self.check("call_response_body")?;
        self.body_reads.set(self.body_reads.get() + 1);
        Ok(self.answer_body.iter().copied().take(max).collect())
    }

    fn resume_request(&self) -> HostResult<()> {
        self.check("resume_request")?;
        self.record(Effect::Resume);
        Ok(())
    }

    fn send_response(&self, status: u16, headers: &[(&str, &str)], body: &[u8]) -> HostResult<()> {
        self.check("send_response")?;
        self.record(Effect::Reply {
            status,
            headers: owned(headers),
            body: body.to_vec(),
        });
        Ok(())
    }

    fn set_effective_context(&self, context_id: u32) -> HostResult<()> {
        self.check("set_effective_context")?;
        self.record(Effect::Context(context_id));
        Ok(())
    }

    /// The mock clock moves 3 ms per read.
    fn now_nanos(&self) -> u64 {
        let now = self.clock.get();
        self.clock.set(now + 3_000_000);
        now
    }

    fn set_tick_period(&self, _: Duration) -> HostResult<()> {
        self.check("set_tick_period")
    }

    fn define_metric(&self, kind: MetricKind, name: &str) -> HostResult<u32> {
        self.check("define_metric")?;
        let mut metrics = self.metrics.borrow_mut();
        metrics.push((name.to_owned(), kind, 0));
        u32::try_from(metrics.len() - 1)
            .map_err(|_| HostError::new("define_metric", Failure::Unavailable))
    }

    fn increment_metric(&self, id: u32, delta: i64) -> HostResult<()> {
        let slot = self.metric_slot(id)?;
        if let Some(metric) = self.metrics.borrow_mut().get_mut(slot) {
            metric.2 += i128::from(delta);
        }
        Ok(())
    }

    fn record_metric(&self, id: u32, value: u64) -> HostResult<()> {
        let slot = self.metric_slot(id)?;
        if let Some(metric) = self.metrics.borrow_mut().get_mut(slot) {
            if metric.1 == MetricKind::Histogram {
                self.histogram_samples.borrow_mut().push(value);
            } else {
                metric.2 = i128::from(value);
            }
        }
        Ok(())
    }

    /// One 64 KiB page.
    fn set_dynamic_metadata(&self, metadata: &crate::host::Metadata) -> HostResult<()> {
        self.check("set_dynamic_metadata")?;
        self.record(Effect::Metadata(metadata.clone()));
        Ok(())
    }

    fn record_decision(&self, record: &crate::record::Record) -> HostResult<()> {
        self.check("record_decision")?;
        self.record(Effect::Record(record.clone()));
        Ok(())
    }

    fn writes_dynamic_metadata(&self) -> bool {
        self.metadata_writer
    }

    fn calls_end_with_their_stream(&self) -> bool {
        self.ends_calls_with_streams
    }

    fn vm_memory_bytes(&self) -> u64 {
        65_536
    }
}

impl Store for MockHost {
    fn evicts(&self) -> bool {
        self.evicting_store
    }

    fn get_shared_data(&self, key: &str) -> HostResult<Option<(Vec<u8>, u32)>> {
        self.check("get_shared_data")?;
        Ok(self.shared.borrow().get(key).cloned())
    }

    /// As the host does: a CAS of 0 writes whatever the version, any other must match.
    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> HostResult<()> {
        self.check("set_shared_data")?;
        let mut shared = self.shared.borrow_mut();
        let version = shared.get(key).map_or(0, |(_, v)| *v);
        if cas != 0 && cas != version {
            return Err(HostError::new("set_shared_data", Failure::CasMismatch));
        }
        shared.insert(key.to_owned(), (value.to_vec(), version + 1));
        Ok(())
    }
}
