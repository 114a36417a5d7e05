//! What one request costs at the boundary between the filter and its host: host calls and bytes
//! copied across, counted deterministically (timings on these machines are noisy), for the
//! requests the benchmark measures. The budget is written down; a count that grows fails.
//! Test code only: its module is declared under #[cfg(test)].

use std::cell::Cell;
use std::time::Duration;

use super::*;
use crate::host::{Headers, HostResult, MetricKind, Store};
use crate::mock_host::{headers, MockHost};

/// A host that counts every call made to it, and the bytes each call copies either way.
struct Counting<'a> {
    inner: &'a MockHost,
    calls: Cell<usize>,
    bytes: Cell<usize>,
}

impl<'a> Counting<'a> {
    fn new(inner: &'a MockHost) -> Self {
        Counting {
            inner,
            calls: Cell::new(0),
            bytes: Cell::new(0),
        }
    }

    fn reset(&self) {
        self.calls.set(0);
        self.bytes.set(0);
    }

    fn crossed<T>(&self, bytes: usize, result: T) -> T {
        self.calls.set(self.calls.get() + 1);
        self.bytes.set(self.bytes.get() + bytes);
        result
    }
}

fn size(headers: &Headers) -> usize {
    headers.iter().map(|(n, v)| n.len() + v.len()).sum()
}

fn pairs(headers: &[(&str, &str)]) -> usize {
    headers.iter().map(|(n, v)| n.len() + v.len()).sum()
}

fn value(result: &HostResult<Option<Vec<u8>>>) -> usize {
    result
        .as_ref()
        .ok()
        .and_then(Option::as_ref)
        .map_or(0, Vec::len)
}

impl Store for Counting<'_> {
    fn get_shared_data(&self, key: &str) -> HostResult<Option<(Vec<u8>, u32)>> {
        let got = self.inner.get_shared_data(key);
        let len = got
            .as_ref()
            .ok()
            .and_then(Option::as_ref)
            .map_or(0, |(v, _)| v.len());
        self.crossed(key.len() + len, got)
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> HostResult<()> {
        self.crossed(
            key.len() + value.len(),
            self.inner.set_shared_data(key, value, cas),
        )
    }
}

impl Host for Counting<'_> {
    fn request_headers(&self) -> HostResult<Headers> {
        let got = self.inner.request_headers();
        let len = got.as_ref().map_or(0, size);
        self.crossed(len, got)
    }
    fn request_header(&self, name: &str) -> HostResult<Option<Vec<u8>>> {
        let got = self.inner.request_header(name);
        self.crossed(name.len() + value(&got), got)
    }
    fn set_request_header(&self, name: &str, value: &[u8]) -> HostResult<()> {
        self.crossed(
            name.len() + value.len(),
            self.inner.set_request_header(name, value),
        )
    }
    fn add_request_header(&self, name: &str, value: &[u8]) -> HostResult<()> {
        self.crossed(
            name.len() + value.len(),
            self.inner.add_request_header(name, value),
        )
    }
    fn remove_request_header(&self, name: &str) -> HostResult<()> {
        self.crossed(name.len(), self.inner.remove_request_header(name))
    }
    fn request_trailers(&self) -> HostResult<Headers> {
        let got = self.inner.request_trailers();
        let len = got.as_ref().map_or(0, size);
        self.crossed(len, got)
    }
    fn request_body(&self, max: usize) -> HostResult<Vec<u8>> {
        let got = self.inner.request_body(max);
        let len = got.as_ref().map_or(0, Vec::len);
        self.crossed(len, got)
    }
    fn remove_request_trailer(&self, name: &str) -> HostResult<()> {
        self.crossed(name.len(), self.inner.remove_request_trailer(name))
    }
    fn add_response_header(&self, name: &str, value: &[u8]) -> HostResult<()> {
        self.crossed(
            name.len() + value.len(),
            self.inner.add_response_header(name, value),
        )
    }
    fn response_header(&self, name: &str) -> HostResult<Option<Vec<u8>>> {
        let got = self.inner.response_header(name);
        self.crossed(name.len() + value(&got), got)
    }
    fn set_response_header(&self, name: &str, value: &[u8]) -> HostResult<()> {
        self.crossed(
            name.len() + value.len(),
            self.inner.set_response_header(name, value),
        )
    }
    fn property(&self, path: &[&str]) -> HostResult<Option<Vec<u8>>> {
        let got = self.inner.property(path);
        let asked: usize = path.iter().map(|p| p.len()).sum();
        self.crossed(asked + value(&got), got)
    }
    fn dispatch(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout: Duration,
    ) -> HostResult<u32> {
        let len = cluster.len() + pairs(headers) + body.len();
        self.crossed(len, self.inner.dispatch(cluster, headers, body, timeout))
    }
    fn dispatch_grpc(
        &self,
        cluster: &str,
        service: &[u8],
        service_name: &str,
        method: &str,
        message: &[u8],
        timeout: Duration,
    ) -> HostResult<u32> {
        // The wasm shell passes the serialized service, not the cluster's name.
        let len = service.len() + service_name.len() + method.len() + message.len();
        self.crossed(
            len,
            self.inner
                .dispatch_grpc(cluster, service, service_name, method, message, timeout),
        )
    }
    fn grpc_response(&self, max: usize) -> HostResult<Vec<u8>> {
        let got = self.inner.grpc_response(max);
        let len = got.as_ref().map_or(0, Vec::len);
        self.crossed(len, got)
    }
    fn cancel_grpc(&self, token: u32) -> HostResult<()> {
        self.crossed(0, self.inner.cancel_grpc(token))
    }
    fn call_response_header(&self, name: &str) -> HostResult<Option<Vec<u8>>> {
        let got = self.inner.call_response_header(name);
        self.crossed(name.len() + value(&got), got)
    }
    fn call_response_headers(&self) -> HostResult<Headers> {
        let got = self.inner.call_response_headers();
        let len = got.as_ref().map_or(0, size);
        self.crossed(len, got)
    }
    fn call_response_body(&self, max: usize) -> HostResult<Vec<u8>> {
        let got = self.inner.call_response_body(max);
        let len = got.as_ref().map_or(0, Vec::len);
        self.crossed(len, got)
    }
    fn resume_request(&self) -> HostResult<()> {
        self.crossed(0, self.inner.resume_request())
    }
    fn send_response(&self, status: u16, headers: &[(&str, &str)], body: &[u8]) -> HostResult<()> {
        let len = pairs(headers) + body.len();
        self.crossed(len, self.inner.send_response(status, headers, body))
    }
    fn set_effective_context(&self, context_id: u32) -> HostResult<()> {
        self.crossed(0, self.inner.set_effective_context(context_id))
    }
    fn now_nanos(&self) -> u64 {
        self.crossed(0, self.inner.now_nanos())
    }
    fn set_tick_period(&self, period: Duration) -> HostResult<()> {
        self.crossed(0, self.inner.set_tick_period(period))
    }
    fn define_metric(&self, kind: MetricKind, name: &str) -> HostResult<u32> {
        self.crossed(name.len(), self.inner.define_metric(kind, name))
    }
    fn increment_metric(&self, id: u32, delta: i64) -> HostResult<()> {
        self.crossed(0, self.inner.increment_metric(id, delta))
    }
    fn record_metric(&self, id: u32, value: u64) -> HostResult<()> {
        self.crossed(0, self.inner.record_metric(id, value))
    }
    fn vm_memory_bytes(&self) -> u64 {
        self.crossed(0, self.inner.vm_memory_bytes())
    }
}

const ROOT: u32 = 1;

/// A request as a client sends one through Envoy (the benchmark's shape).
fn request(token: &str) -> Headers {
    headers(&[
        (":authority", "127.0.0.1:18000"),
        (":path", "/uuid"),
        (":method", "GET"),
        (":scheme", "http"),
        ("user-agent", "wrk"),
        ("authorization", token),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "0f9a2c1e-8a7b-4c3d-9e1f-2b3c4d5e6f70"),
    ])
}

/// One request through the worker, from its stream's creation to its deletion: the callbacks
/// Envoy makes, the answer delivered if a call was made. Returns (host calls, bytes).
fn one_request(worker: &mut Worker, host: &MockHost, id: u32, grpc: bool) -> (usize, usize) {
    let counting = Counting::new(host);
    counting.reset();
    let before = host.dispatches();
    worker.on_context_create(id, ROOT);
    worker.on_request_headers(&counting, id, true);
    if host.dispatches() != before {
        let token = host.last_token();
        if grpc {
            let size = host.grpc_answer.len();
            worker.on_grpc_receive(&counting, ROOT, token, size);
        } else {
            let headers = host.answer_headers.len();
            worker.on_call_response(&counting, ROOT, token, headers, host.answer_body.len());
        }
    }
    worker.on_response_headers(&counting, id);
    worker.on_delete(&counting, id);
    (counting.calls.get(), counting.bytes.get())
}

/// A CheckResponse that allows, with nothing to apply.
fn allow_message() -> Vec<u8> {
    use crate::protocol::grpc::messages::{CheckResponse, HttpResponse, OkHttpResponse, RpcStatus};
    use prost::Message;
    CheckResponse {
        dynamic_metadata: Default::default(),
        status: Some(RpcStatus::default()),
        http_response: Some(HttpResponse::OkResponse(OkHttpResponse::default())),
    }
    .encode_to_vec()
}

fn configured(json: &str, host: &MockHost) -> Worker {
    let mut worker = Worker::default();
    worker.on_context_create(ROOT, 0);
    assert!(worker.on_configure(host, ROOT, json.as_bytes()));
    worker
}

/// The counts per kind of request, and the most each may come to.
#[test]
fn host_calls_and_bytes_per_request_stay_within_their_budget() {
    const STATUS: &str = r#"{"decision": "status", "allowed_headers": []}"#;
    const CACHED: &str = r#"{"decision": "status", "allowed_headers": [],
        "cache": {"key": ["authorization"]}}"#;
    /// A kind of request, what it cost (host calls, bytes), and its budget.
    type Row = (&'static str, (usize, usize), (usize, usize));
    let mut rows: Vec<Row> = Vec::new();

    let mut host = MockHost::with_request(&[]).answering("200", &[("content-length", "0")], b"");
    host.request = request("Bearer a");
    let mut worker = configured(STATUS, &host);
    rows.push((
        "allow (status)",
        one_request(&mut worker, &host, 2, false),
        (5, 380),
    ));

    let host = {
        let mut h =
            MockHost::with_request(&[]).answering("403", &[("content-length", "6")], b"denied");
        h.request = request("Bearer a");
        h
    };
    let mut worker = configured(STATUS, &host);
    rows.push((
        "deny (status)",
        one_request(&mut worker, &host, 2, false),
        (6, 400),
    ));

    let host = {
        let mut h = MockHost::with_request(&[]).answering("200", &[], b"a");
        h.request = request("Bearer a");
        h
    };
    let mut worker = configured(r#"{"decision": "fnv_parity"}"#, &host);
    rows.push((
        "allow (fnv_parity, seed)",
        one_request(&mut worker, &host, 2, false),
        (6, 470),
    ));

    let host = {
        let mut h = MockHost::with_request(&[]).answering("200", &[], b"");
        h.request = request("Bearer a");
        h
    };
    let mut worker = configured(CACHED, &host);
    rows.push((
        "cache miss",
        one_request(&mut worker, &host, 2, false),
        (11, 640),
    ));
    rows.push((
        "cache hit",
        one_request(&mut worker, &host, 3, false),
        (3, 270),
    ));

    let host = {
        let mut h = MockHost::with_request(&[]);
        h.request = request("Bearer a");
        h.grpc_answer = allow_message();
        h
    };
    let mut worker = configured(r#"{"protocol": "grpc"}"#, &host);
    rows.push((
        "gRPC allow",
        one_request(&mut worker, &host, 2, true),
        (9, 620),
    ));

    println!("| request | host calls | bytes across | budget (calls, bytes) |");
    println!("|---|---|---|---|");
    for (name, (calls, bytes), (max_calls, max_bytes)) in &rows {
        println!("| {name} | {calls} | {bytes} | {max_calls}, {max_bytes} |");
    }
    for (name, (calls, bytes), (max_calls, max_bytes)) in rows {
        assert!(
            calls <= max_calls,
            "{name}: {calls} host calls, over {max_calls}"
        );
        assert!(
            bytes <= max_bytes,
            "{name}: {bytes} bytes, over {max_bytes}"
        );
    }
}
