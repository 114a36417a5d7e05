//! What the request flow needs from the proxy, as a trait: proxy-wasm implements it, tests mock it.

use std::time::Duration;

/// Header names as Envoy gives them (lowercase), values as raw bytes (they need not be UTF-8).
pub type Headers = Vec<(String, Vec<u8>)>;

/// A host call that failed, named for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostError {
    pub call: &'static str,
    pub detail: String,
}

impl HostError {
    pub fn new(call: &'static str, detail: impl Into<String>) -> Self {
        HostError {
            call,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.call, self.detail)
    }
}

pub type HostResult<T> = Result<T, HostError>;

/// The counters the plugin keeps, named as ext_authz names its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counter {
    Ok,
    Denied,
    Error,
    FailureModeAllowed,
    Disabled,
}

impl Counter {
    pub const ALL: [Counter; 5] = [
        Counter::Ok,
        Counter::Denied,
        Counter::Error,
        Counter::FailureModeAllowed,
        Counter::Disabled,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Counter::Ok => "ok",
            Counter::Denied => "denied",
            Counter::Error => "error",
            Counter::FailureModeAllowed => "failure_mode_allowed",
            Counter::Disabled => "disabled",
        }
    }
}

/// One HTTP stream's view of the proxy.
pub trait Host {
    fn request_headers(&self) -> HostResult<Headers>;
    fn request_header(&self, name: &str) -> HostResult<Option<Vec<u8>>>;
    fn set_request_header(&self, name: &str, value: &[u8]) -> HostResult<()>;
    fn add_request_header(&self, name: &str, value: &[u8]) -> HostResult<()>;
    fn remove_request_header(&self, name: &str) -> HostResult<()>;
    fn add_response_header(&self, name: &str, value: &[u8]) -> HostResult<()>;

    /// Starts the auth call; the answer arrives later with the returned token.
    fn dispatch(
        &self,
        cluster: &str,
        headers: Vec<(&str, &str)>,
        timeout: Duration,
    ) -> HostResult<u32>;
    fn call_response_header(&self, name: &str) -> HostResult<Option<Vec<u8>>>;
    fn call_response_headers(&self) -> HostResult<Headers>;
    fn call_response_body(&self, size: usize) -> HostResult<Vec<u8>>;

    fn resume_request(&self) -> HostResult<()>;
    fn send_response(&self, status: u16, headers: Vec<(&str, &str)>, body: &[u8])
        -> HostResult<()>;

    /// Monotonic-enough time for latency figures, in nanoseconds.
    fn now_nanos(&self) -> u64;
    fn count(&self, counter: Counter);
    fn record_auth_latency(&self, millis: u64);
    fn add_calls_in_flight(&self, delta: i64);
}
