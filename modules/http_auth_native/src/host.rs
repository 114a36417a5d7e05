//! The core's `Host` over Envoy's dynamic-module callbacks, for one callback of one worker:
//! which stream is current, and the answer being delivered, if any.

use std::cell::{Cell, RefCell};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use authz_core::host::{
    Failure, Headers, Host, HostError, HostResult, Metadata, MetricKind, Store,
};
use authz_core::protocol::grpc::wire;

use crate::config::ModuleConfig;
use crate::ffi::envoy::{self, Attribute, BodyKind, Filter, HeaderKind};
use crate::registry::{CallEntry, CalloutAnswer, Carrier, Effect, Registry};

pub struct NativeHost<'a> {
    pub config: &'a ModuleConfig,
    pub registry: &'a RefCell<Registry>,
    /// The stream later calls act on, and its core id.
    current: Cell<Option<(u32, Filter)>>,
    pub callout_answer: RefCell<Option<CalloutAnswer>>,
    pub grpc_message: RefCell<Option<Vec<u8>>>,
}

fn failed(call: &'static str) -> HostError {
    HostError::new(call, Failure::BadArgument)
}

impl<'a> NativeHost<'a> {
    pub fn new(
        config: &'a ModuleConfig,
        registry: &'a RefCell<Registry>,
        current: Option<(u32, Filter)>,
    ) -> Self {
        NativeHost {
            config,
            registry,
            current: Cell::new(current),
            callout_answer: RefCell::new(None),
            grpc_message: RefCell::new(None),
        }
    }

    /// Makes later calls act on this stream.
    pub fn set_current(&self, current: Option<(u32, Filter)>) {
        self.current.set(current);
    }

    fn filter(&self, call: &'static str) -> HostResult<Filter> {
        self.current
            .get()
            .map(|(_, filter)| filter)
            .ok_or_else(|| HostError::new(call, Failure::NotFound))
    }

    fn stream_id(&self, call: &'static str) -> HostResult<u32> {
        self.current
            .get()
            .map(|(id, _)| id)
            .ok_or_else(|| HostError::new(call, Failure::NotFound))
    }

    fn defer(&self, effect: Effect) {
        self.registry.borrow_mut().pending.push(effect);
    }

    fn answer<T>(
        &self,
        call: &'static str,
        read: impl FnOnce(&CalloutAnswer) -> T,
    ) -> HostResult<T> {
        self.callout_answer
            .borrow()
            .as_ref()
            .map(read)
            .ok_or_else(|| HostError::new(call, Failure::NotFound))
    }

    fn timeout_ms(timeout: Duration) -> u64 {
        u64::try_from(timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }
}

impl Store for NativeHost<'_> {
    fn evicts(&self) -> bool {
        true
    }

    fn get_shared_data(&self, key: &str) -> HostResult<Option<(Vec<u8>, u32)>> {
        Ok(self.config.store.get(key))
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> HostResult<()> {
        self.config.store.set(key, value, cas)
    }
}

impl Host for NativeHost<'_> {
    fn request_headers(&self) -> HostResult<Headers> {
        Ok(self
            .filter("get request headers")?
            .headers(HeaderKind::Request))
    }

    fn request_header(&self, name: &str) -> HostResult<Option<Vec<u8>>> {
        // Envoy keeps the authority as `host` once the request is decoded; callouts name it so too.
        let name = if name == ":authority" { "host" } else { name };
        let filter = self.filter("get request header")?;
        Ok(filter.header(HeaderKind::Request, name).or_else(|| {
            (name == "host")
                .then(|| filter.header(HeaderKind::Request, ":authority"))
                .flatten()
        }))
    }

    fn set_request_header(&self, name: &str, value: &[u8]) -> HostResult<()> {
        let filter = self.filter("set request header")?;
        filter
            .set_header(HeaderKind::Request, name, Some(value))
            .then_some(())
            .ok_or_else(|| failed("set request header"))
    }

    fn add_request_header(&self, name: &str, value: &[u8]) -> HostResult<()> {
        let filter = self.filter("add request header")?;
        filter
            .add_header(HeaderKind::Request, name, value)
            .then_some(())
            .ok_or_else(|| failed("add request header"))
    }

    fn remove_request_header(&self, name: &str) -> HostResult<()> {
        let filter = self.filter("remove request header")?;
        filter.set_header(HeaderKind::Request, name, None);
        Ok(())
    }

    fn request_trailers(&self) -> HostResult<Headers> {
        Ok(self
            .filter("get request trailers")?
            .headers(HeaderKind::RequestTrailers))
    }

    fn request_body(&self, max: usize) -> HostResult<Vec<u8>> {
        let filter = self.filter("get request body")?;
        let mut body = filter.body(BodyKind::BufferedRequest, max);
        let room = max.saturating_sub(body.len());
        if room > 0 {
            body.extend(filter.body(BodyKind::ReceivedRequest, room));
        }
        Ok(body)
    }

    fn remove_request_trailer(&self, name: &str) -> HostResult<()> {
        self.filter("remove request trailer")?
            .set_header(HeaderKind::RequestTrailers, name, None);
        Ok(())
    }

    fn add_response_header(&self, name: &str, value: &[u8]) -> HostResult<()> {
        let filter = self.filter("add response header")?;
        filter
            .add_header(HeaderKind::Response, name, value)
            .then_some(())
            .ok_or_else(|| failed("add response header"))
    }

    fn response_header(&self, name: &str) -> HostResult<Option<Vec<u8>>> {
        Ok(self
            .filter("get response header")?
            .header(HeaderKind::Response, name))
    }

    fn set_response_header(&self, name: &str, value: &[u8]) -> HostResult<()> {
        let filter = self.filter("set response header")?;
        filter
            .set_header(HeaderKind::Response, name, Some(value))
            .then_some(())
            .ok_or_else(|| failed("set response header"))
    }

    fn property(&self, path: &[&str]) -> HostResult<Option<Vec<u8>>> {
        let filter = self.filter("get property")?;
        let attribute = match path {
            ["source", "address"] => Attribute::SourceAddress,
            ["destination", "address"] => Attribute::DestinationAddress,
            ["request", "protocol"] => Attribute::RequestProtocol,
            ["xds", "route_name"] => Attribute::RouteName,
            ["xds", "virtual_host_name"] => Attribute::VirtualHostName,
            _ => return Ok(None),
        };
        Ok(filter.attribute_string(attribute))
    }

    fn dispatch(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout: Duration,
    ) -> HostResult<u32> {
        let stream = self.stream_id("dispatch http call")?;
        let filter = self.filter("dispatch http call")?;
        // A callout names the authority `host`, as HTTP/1 does.
        let headers: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(n, v)| (if *n == ":authority" { "host" } else { *n }, v.as_bytes()))
            .collect();
        let callout = filter
            .callout(cluster, &headers, body, Self::timeout_ms(timeout))
            .map_err(|failure| HostError::new("dispatch http call", failure))?;
        let root = self.config.root_id;
        Ok(self.registry.borrow_mut().new_token(CallEntry {
            stream,
            root,
            carrier: Carrier::Callout(callout),
        }))
    }

    fn dispatch_grpc(
        &self,
        cluster: &str,
        _service: &[u8],
        _service_name: &str,
        _method: &str,
        message: &[u8],
        timeout: Duration,
    ) -> HostResult<u32> {
        let stream = self.stream_id("dispatch grpc call")?;
        let filter = self.filter("dispatch grpc call")?;
        let framed = wire::frame(message).ok_or_else(|| failed("dispatch grpc call"))?;
        let headers = wire::request_headers(cluster);
        let headers: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        let http_stream = filter
            .start_stream(cluster, &headers, Self::timeout_ms(timeout))
            .map_err(|failure| HostError::new("dispatch grpc call", failure))?;
        // On the book before the message goes: Envoy may end the stream while sending it.
        let root = self.config.root_id;
        let token = self.registry.borrow_mut().new_token(CallEntry {
            stream,
            root,
            carrier: Carrier::Grpc {
                stream: http_stream,
                answer: wire::Answer::new(self.config.max_answer_bytes),
            },
        });
        if !filter.stream_send_data(http_stream, &framed, true) {
            self.registry.borrow_mut().take_call(token);
            filter.reset_stream(http_stream);
            return Err(failed("dispatch grpc call"));
        }
        Ok(token)
    }

    fn grpc_response(&self, max: usize) -> HostResult<Vec<u8>> {
        let message = self.grpc_message.borrow();
        let message = message
            .as_ref()
            .ok_or_else(|| HostError::new("get grpc answer", Failure::NotFound))?;
        Ok(message
            .get(..max.min(message.len()))
            .unwrap_or_default()
            .to_vec())
    }

    fn cancel_grpc(&self, token: u32) -> HostResult<()> {
        let Some(call) = self.registry.borrow_mut().take_call(token) else {
            return Err(HostError::new("cancel grpc call", Failure::NotFound));
        };
        let filter = self
            .registry
            .borrow()
            .streams
            .get(&call.stream)
            .map(|s| s.filter);
        if let (Carrier::Grpc { stream, .. }, Some(filter)) = (call.carrier, filter) {
            filter.reset_stream(stream);
        }
        Ok(())
    }

    fn call_response_header(&self, name: &str) -> HostResult<Option<Vec<u8>>> {
        self.answer("get http call response header", |answer| {
            answer
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        })
    }

    fn call_response_headers(&self) -> HostResult<Headers> {
        self.answer("get http call response headers", |answer| {
            answer.headers.clone()
        })
    }

    fn call_response_body(&self, max: usize) -> HostResult<Vec<u8>> {
        self.answer("get http call response body", |answer| {
            answer
                .body
                .get(..max.min(answer.body.len()))
                .unwrap_or_default()
                .to_vec()
        })
    }

    fn resume_request(&self) -> HostResult<()> {
        let stream = self.stream_id("resume request")?;
        let filter = self.filter("resume request")?;
        self.defer(Effect::Resume { stream, filter });
        Ok(())
    }

    fn send_response(&self, status: u16, headers: &[(&str, &str)], body: &[u8]) -> HostResult<()> {
        let stream = self.stream_id("send response")?;
        let filter = self.filter("send response")?;
        self.defer(Effect::Respond {
            stream,
            filter,
            status,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
                .collect(),
            body: body.to_vec(),
        });
        Ok(())
    }

    fn set_effective_context(&self, context_id: u32) -> HostResult<()> {
        let filter = self
            .registry
            .borrow()
            .streams
            .get(&context_id)
            .map(|s| s.filter)
            .ok_or_else(|| HostError::new("set effective context", Failure::NotFound))?;
        self.current.set(Some((context_id, filter)));
        Ok(())
    }

    fn now_nanos(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    fn set_tick_period(&self, _period: Duration) -> HostResult<()> {
        // The module ticks a root from its callbacks (`module::prepare_root`).
        Ok(())
    }

    fn define_metric(&self, kind: MetricKind, name: &str) -> HostResult<u32> {
        self.config
            .metric_ids
            .get(name)
            .copied()
            .filter(|index| self.config.metric(*index).is_some_and(|m| m.kind == kind))
            .ok_or_else(|| HostError::new("define metric", Failure::NotFound))
    }

    fn increment_metric(&self, id: u32, delta: i64) -> HostResult<()> {
        let metric = self
            .config
            .metric(id)
            .ok_or_else(|| HostError::new("increment metric", Failure::NotFound))?;
        envoy::increment_metric(self.config.envoy, metric.kind, metric.id, delta)
            .then_some(())
            .ok_or_else(|| failed("increment metric"))
    }

    fn record_metric(&self, id: u32, value: u64) -> HostResult<()> {
        let metric = self
            .config
            .metric(id)
            .ok_or_else(|| HostError::new("record metric", Failure::NotFound))?;
        envoy::record_metric(self.config.envoy, metric.kind, metric.id, value)
            .then_some(())
            .ok_or_else(|| failed("record metric"))
    }

    fn vm_memory_bytes(&self) -> u64 {
        0
    }

    fn set_dynamic_metadata(&self, metadata: &Metadata) -> HostResult<()> {
        let filter = self.filter("set dynamic metadata")?;
        let namespace = &self.config.namespace;
        if !metadata.fields.is_empty() {
            filter.set_metadata_struct(namespace, &metadata.fields);
        }
        for (key, value) in &metadata.strings {
            filter.set_metadata_string(namespace, key, value);
        }
        Ok(())
    }

    fn record_decision(&self, record: &authz_core::record::Record) -> HostResult<()> {
        let filter = self.filter("record decision")?;
        for (key, value) in record.fields() {
            filter.set_metadata_string(&self.config.namespace, key, &value);
        }
        Ok(())
    }

    fn writes_dynamic_metadata(&self) -> bool {
        true
    }

    fn calls_end_with_their_stream(&self) -> bool {
        true
    }

    fn delivers_body_while_paused(&self) -> bool {
        true
    }
}
