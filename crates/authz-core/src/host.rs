//! What the filter needs from the proxy, as traits: each shell implements them over its
//! runtime's ABI, tests mock them. Nothing here names a runtime.

use std::time::Duration;

/// Header names as Envoy gives them (lowercase), values as raw bytes (they need not be UTF-8).
pub type Headers = Vec<(String, Vec<u8>)>;

/// Why a host call failed, as far as the filter tells failures apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Nothing is there (a header, a property, an entry).
    NotFound,
    /// The host refused the arguments: an unknown cluster, a call it cannot send.
    BadArgument,
    /// The filter could not take the data the host had for it: the worker is short of memory.
    OutOfMemory,
    /// A store write lost a race with another worker's.
    CasMismatch,
    /// The host cannot do it now: a circuit breaker overflowed, no healthy host.
    Unavailable,
    /// Anything else, with the host's own code.
    Other(u32),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Other(code) => write!(f, "host status {code}"),
            known => write!(f, "{known:?}"),
        }
    }
}

/// A host call that failed: which call, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostError {
    pub call: &'static str,
    pub failure: Failure,
}

impl HostError {
    pub fn new(call: &'static str, failure: Failure) -> Self {
        HostError { call, failure }
    }

    /// The filter could not allocate the memory the host needed to copy data in: the worker is
    /// short of memory, which is an overload, not a fault of the auth service.
    pub fn is_out_of_memory(&self) -> bool {
        self.failure == Failure::OutOfMemory
    }
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.call, self.failure)
    }
}

/// Dynamic metadata an answer carries, under the filter's namespace: a gRPC answer's
/// `dynamic_metadata` as it came (a serialized `google.protobuf.Struct`), or the answer headers
/// `dynamic_metadata_from_headers` names, as strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Metadata {
    pub fields: Vec<u8>,
    pub strings: Vec<(String, String)>,
}

impl Metadata {
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.strings.is_empty()
    }
}

/// What a request callback tells the host: go on, or hold the request here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    Pause,
}

/// What a body callback tells the host. A buffered body is held to Envoy's buffer limit (413
/// past it); under flow control Envoy holds what arrives and pauses the client at its
/// watermarks, as native ext_authz does while its check is pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyAction {
    Continue,
    /// Stop and buffer: the body is needed whole (to send with the check).
    Buffer,
    /// Stop with flow control: the body is only held until the verdict.
    Watermark,
}

/// The kinds of metric a host keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

pub type HostResult<T> = Result<T, HostError>;

/// A store every worker shares, for the decision cache: entries with versions, written only if
/// the version is still the one read (compare-and-swap).
pub trait Store {
    /// Whether the store evicts entries itself (a cache with a capacity): keys are then the
    /// digests themselves. A store that never forgets a key is used through a fixed set of
    /// slots, so that its key space stays bounded.
    fn evicts(&self) -> bool {
        false
    }
    /// An entry and its version; `None` if absent.
    fn get_shared_data(&self, key: &str) -> HostResult<Option<(Vec<u8>, u32)>>;
    /// Writes an entry if its version is still `cas` (0: whatever it is).
    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> HostResult<()>;
}

/// The proxy as one worker sees it. Stream calls act on the current (effective) stream.
pub trait Host: Store {
    fn request_headers(&self) -> HostResult<Headers>;
    fn request_header(&self, name: &str) -> HostResult<Option<Vec<u8>>>;
    fn set_request_header(&self, name: &str, value: &[u8]) -> HostResult<()>;
    fn add_request_header(&self, name: &str, value: &[u8]) -> HostResult<()>;
    fn remove_request_header(&self, name: &str) -> HostResult<()>;
    fn request_trailers(&self) -> HostResult<Headers>;
    /// At most `max` bytes of the request's body buffered so far.
    fn request_body(&self, max: usize) -> HostResult<Vec<u8>>;
    fn remove_request_trailer(&self, name: &str) -> HostResult<()>;
    fn add_response_header(&self, name: &str, value: &[u8]) -> HostResult<()>;
    fn response_header(&self, name: &str) -> HostResult<Option<Vec<u8>>>;
    fn set_response_header(&self, name: &str, value: &[u8]) -> HostResult<()>;
    /// A property of the request or its connection (`["source", "address"]`, …).
    fn property(&self, path: &[&str]) -> HostResult<Option<Vec<u8>>>;

    /// Starts the auth call; the answer arrives later, on the root context, with this token.
    fn dispatch(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout: Duration,
    ) -> HostResult<u32>;
    /// Starts a gRPC unary call (`service` a serialized `GrpcService`); its answer arrives on the
    /// root context, as `on_grpc_receive` or `on_grpc_close`, with this token.
    fn dispatch_grpc(
        &self,
        cluster: &str,
        service: &[u8],
        service_name: &str,
        method: &str,
        message: &[u8],
        timeout: Duration,
    ) -> HostResult<u32>;
    /// At most `max` bytes of a gRPC call's answer message.
    fn grpc_response(&self, max: usize) -> HostResult<Vec<u8>>;
    /// Cancels a gRPC call; no callback follows.
    fn cancel_grpc(&self, token: u32) -> HostResult<()>;
    fn call_response_header(&self, name: &str) -> HostResult<Option<Vec<u8>>>;
    fn call_response_headers(&self) -> HostResult<Headers>;
    /// At most `max` bytes of the answer's body.
    fn call_response_body(&self, max: usize) -> HostResult<Vec<u8>>;

    fn resume_request(&self) -> HostResult<()>;
    fn send_response(&self, status: u16, headers: &[(&str, &str)], body: &[u8]) -> HostResult<()>;

    /// Makes later stream calls act on this stream (needed in callbacks the host delivers to the
    /// root context, such as a call's answer).
    fn set_effective_context(&self, context_id: u32) -> HostResult<()>;
    /// Wall-clock time in nanoseconds.
    fn now_nanos(&self) -> u64;
    fn set_tick_period(&self, period: Duration) -> HostResult<()>;
    fn define_metric(&self, kind: MetricKind, name: &str) -> HostResult<u32>;
    fn increment_metric(&self, id: u32, delta: i64) -> HostResult<()>;
    /// Sets a gauge, or records a histogram sample.
    fn record_metric(&self, id: u32, value: u64) -> HostResult<()>;
    /// The VM's linear memory size, for the memory gauge.
    fn vm_memory_bytes(&self) -> u64;

    /// Writes dynamic metadata under the filter's namespace, for the filters after this one and
    /// the access log.
    fn set_dynamic_metadata(&self, _metadata: &Metadata) -> HostResult<()> {
        Err(HostError::new("set dynamic metadata", Failure::Other(0)))
    }

    /// Keeps the request's decision where Envoy users read such things (dynamic metadata,
    /// filter state) for the access log and the filters after this one.
    fn record_decision(&self, _record: &crate::record::Record) -> HostResult<()> {
        Ok(())
    }

    /// Whether this host can write dynamic metadata at all (proxy-wasm cannot: envoy #15148).
    fn writes_dynamic_metadata(&self) -> bool {
        false
    }

    /// Whether the host hands the filter a request's body while the filter holds its headers
    /// (a native module's filter gets it as any Envoy filter does; a proxy-wasm filter only with
    /// Envoy's `allow_on_headers_stop_iteration`).
    fn delivers_body_while_paused(&self) -> bool {
        false
    }

    /// Whether the host ends a stream's calls with the stream (a native module's calls belong
    /// to its filter; a proxy-wasm call outlives its stream).
    fn calls_end_with_their_stream(&self) -> bool {
        false
    }
}
