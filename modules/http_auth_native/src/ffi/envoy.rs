//! Safe wrappers over the Envoy callbacks the module calls: each copies what Envoy lends it
//! into owned Rust values before returning, so nothing outlives the buffer it came from.

use std::ptr;

use authz_core::host::{Failure, Headers, MetricKind};

use super::abi::*;

/// A stream's filter, as Envoy knows it: valid from `http_filter_new` to `http_filter_destroy`,
/// and used only on the stream's worker thread in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Filter(usize);

/// A filter configuration, as Envoy knows it: valid until the configuration is destroyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigHandle(usize);

/// An HTTP stream a filter started (the gRPC check's), by Envoy's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HttpStream(pub u64);

#[derive(Debug, Clone, Copy)]
pub enum HeaderKind {
    Request,
    RequestTrailers,
    Response,
}

#[derive(Debug, Clone, Copy)]
pub enum BodyKind {
    ReceivedRequest,
    BufferedRequest,
}

#[derive(Debug, Clone, Copy)]
pub enum Attribute {
    SourceAddress,
    DestinationAddress,
    RequestProtocol,
    RouteName,
    VirtualHostName,
}

fn module_buffer(bytes: &[u8]) -> envoy_dynamic_module_type_module_buffer {
    envoy_dynamic_module_type_module_buffer {
        ptr: bytes.as_ptr().cast(),
        length: bytes.len(),
    }
}

fn null_buffer() -> envoy_dynamic_module_type_module_buffer {
    envoy_dynamic_module_type_module_buffer {
        ptr: ptr::null(),
        length: 0,
    }
}

fn empty_envoy_buffer() -> envoy_dynamic_module_type_envoy_buffer {
    envoy_dynamic_module_type_envoy_buffer {
        ptr: ptr::null(),
        length: 0,
    }
}

/// The bytes of a buffer Envoy lent, copied.
///
/// # Safety
/// `buffer` must point at `length` readable bytes (or be null), alive for this call.
pub unsafe fn copy_envoy(buffer: envoy_dynamic_module_type_envoy_buffer) -> Vec<u8> {
    if buffer.ptr.is_null() || buffer.length == 0 {
        return Vec::new();
    }
    // SAFETY: the caller promises `length` readable bytes at `ptr`.
    unsafe { std::slice::from_raw_parts(buffer.ptr.cast::<u8>(), buffer.length) }.to_vec()
}

/// Headers Envoy lent as an array, copied; names lowercased text (they are, in Envoy).
///
/// # Safety
/// `headers` must point at `count` header structs whose buffers are readable (or be null),
/// alive for this call.
pub unsafe fn copy_headers(
    headers: *const envoy_dynamic_module_type_envoy_http_header,
    count: usize,
) -> Headers {
    if headers.is_null() || count == 0 {
        return Vec::new();
    }
    // SAFETY: the caller promises `count` initialized structs at `headers`.
    let all = unsafe { std::slice::from_raw_parts(headers, count) };
    all.iter()
        .map(|h| {
            // SAFETY: each struct's buffers are readable for this call, as promised.
            let (name, value) = unsafe {
                (
                    copy_envoy(envoy_dynamic_module_type_envoy_buffer {
                        ptr: h.key_ptr,
                        length: h.key_length,
                    }),
                    copy_envoy(envoy_dynamic_module_type_envoy_buffer {
                        ptr: h.value_ptr,
                        length: h.value_length,
                    }),
                )
            };
            (String::from_utf8_lossy(&name).into_owned(), value)
        })
        .collect()
}

/// Chunks Envoy lent as an array, copied into one buffer of at most `max` bytes.
///
/// # Safety
/// `chunks` must point at `count` buffers that are readable (or be null), alive for this call.
pub unsafe fn copy_chunks(
    chunks: *const envoy_dynamic_module_type_envoy_buffer,
    count: usize,
    max: usize,
) -> Vec<u8> {
    if chunks.is_null() || count == 0 {
        return Vec::new();
    }
    // SAFETY: the caller promises `count` initialized buffers at `chunks`.
    let all = unsafe { std::slice::from_raw_parts(chunks, count) };
    let mut out = Vec::new();
    for chunk in all {
        let room = max.saturating_sub(out.len());
        if room == 0 {
            break;
        }
        let take = envoy_dynamic_module_type_envoy_buffer {
            ptr: chunk.ptr,
            length: chunk.length.min(room),
        };
        // SAFETY: a prefix of a readable buffer is readable.
        out.extend(unsafe { copy_envoy(take) });
    }
    out
}

/// Hands each chunk Envoy lent to `each`, without copying.
///
/// # Safety
/// As `copy_chunks`.
pub unsafe fn for_each_chunk(
    chunks: *const envoy_dynamic_module_type_envoy_buffer,
    count: usize,
    mut each: impl FnMut(&[u8]),
) {
    if chunks.is_null() || count == 0 {
        return;
    }
    // SAFETY: the caller promises `count` initialized buffers at `chunks`.
    let all = unsafe { std::slice::from_raw_parts(chunks, count) };
    for chunk in all {
        if chunk.ptr.is_null() || chunk.length == 0 {
            continue;
        }
        // SAFETY: each buffer is readable for this call, as promised.
        each(unsafe { std::slice::from_raw_parts(chunk.ptr.cast::<u8>(), chunk.length) });
    }
}

/// The sum of chunks' lengths.
///
/// # Safety
/// As `copy_chunks`.
pub unsafe fn chunks_size(
    chunks: *const envoy_dynamic_module_type_envoy_buffer,
    count: usize,
) -> usize {
    if chunks.is_null() || count == 0 {
        return 0;
    }
    // SAFETY: the caller promises `count` initialized buffers at `chunks`.
    let all = unsafe { std::slice::from_raw_parts(chunks, count) };
    all.iter().map(|c| c.length).fold(0, usize::saturating_add)
}

fn module_headers(headers: &[(&str, &[u8])]) -> Vec<envoy_dynamic_module_type_module_http_header> {
    headers
        .iter()
        .map(
            |(name, value)| envoy_dynamic_module_type_module_http_header {
                key_ptr: name.as_ptr().cast(),
                key_length: name.len(),
                value_ptr: value.as_ptr().cast(),
                value_length: value.len(),
            },
        )
        .collect()
}

fn init_failure(result: envoy_dynamic_module_type_http_callout_init_result) -> Failure {
    match result {
        envoy_dynamic_module_type_http_callout_init_result_MissingRequiredHeaders
        | envoy_dynamic_module_type_http_callout_init_result_ClusterNotFound
        | envoy_dynamic_module_type_http_callout_init_result_DuplicateCalloutId => {
            Failure::BadArgument
        }
        // No healthy host, or a circuit breaker open: the cluster cannot take it now.
        envoy_dynamic_module_type_http_callout_init_result_CannotCreateRequest => {
            Failure::Unavailable
        }
        other => Failure::Other(other),
    }
}

impl HeaderKind {
    fn abi(self) -> envoy_dynamic_module_type_http_header_type {
        match self {
            HeaderKind::Request => envoy_dynamic_module_type_http_header_type_RequestHeader,
            HeaderKind::RequestTrailers => {
                envoy_dynamic_module_type_http_header_type_RequestTrailer
            }
            HeaderKind::Response => envoy_dynamic_module_type_http_header_type_ResponseHeader,
        }
    }
}

impl Filter {
    pub fn new(envoy: envoy_dynamic_module_type_http_filter_envoy_ptr) -> Filter {
        Filter(envoy as usize)
    }

    fn ptr(self) -> envoy_dynamic_module_type_http_filter_envoy_ptr {
        self.0 as *mut core::ffi::c_void
    }

    pub fn headers(self, kind: HeaderKind) -> Headers {
        // SAFETY: the filter is alive on this thread (see `Filter`); the size call reads only.
        let count =
            unsafe { envoy_dynamic_module_callback_http_get_headers_size(self.ptr(), kind.abi()) };
        if count == 0 {
            return Vec::new();
        }
        let mut raw = vec![
            envoy_dynamic_module_type_envoy_http_header {
                key_ptr: ptr::null(),
                key_length: 0,
                value_ptr: ptr::null(),
                value_length: 0,
            };
            count
        ];
        // SAFETY: `raw` has room for `count` entries, as the call requires; Envoy fills them
        // with views of its header map, which lives through this call.
        let ok = unsafe {
            envoy_dynamic_module_callback_http_get_headers(self.ptr(), kind.abi(), raw.as_mut_ptr())
        };
        if !ok {
            return Vec::new();
        }
        // SAFETY: Envoy filled `count` entries whose buffers live through this call.
        unsafe { copy_headers(raw.as_ptr(), count) }
    }

    pub fn header(self, kind: HeaderKind, name: &str) -> Option<Vec<u8>> {
        let mut value = empty_envoy_buffer();
        // SAFETY: the filter is alive; `value` is a valid out-pointer; the size pointer may be null.
        let found = unsafe {
            envoy_dynamic_module_callback_http_get_header(
                self.ptr(),
                kind.abi(),
                module_buffer(name.as_bytes()),
                &mut value,
                0,
                ptr::null_mut(),
            )
        };
        // SAFETY: Envoy's buffer views its header map, alive through this call.
        (found && !value.ptr.is_null()).then(|| unsafe { copy_envoy(value) })
    }

    /// Replaces every value of `name`; `None` removes the header.
    pub fn set_header(self, kind: HeaderKind, name: &str, value: Option<&[u8]>) -> bool {
        let value = value.map_or_else(null_buffer, module_buffer);
        // SAFETY: the filter is alive; both buffers are ours and live through the call, which
        // copies them.
        unsafe {
            envoy_dynamic_module_callback_http_set_header(
                self.ptr(),
                kind.abi(),
                module_buffer(name.as_bytes()),
                value,
            )
        }
    }

    pub fn add_header(self, kind: HeaderKind, name: &str, value: &[u8]) -> bool {
        // SAFETY: as `set_header`.
        unsafe {
            envoy_dynamic_module_callback_http_add_header(
                self.ptr(),
                kind.abi(),
                module_buffer(name.as_bytes()),
                module_buffer(value),
            )
        }
    }

    /// At most `max` bytes of a request body.
    pub fn body(self, kind: BodyKind, max: usize) -> Vec<u8> {
        let kind = match kind {
            BodyKind::ReceivedRequest => {
                envoy_dynamic_module_type_http_body_type_ReceivedRequestBody
            }
            BodyKind::BufferedRequest => {
                envoy_dynamic_module_type_http_body_type_BufferedRequestBody
            }
        };
        // SAFETY: the filter is alive; the call only reads.
        let count =
            unsafe { envoy_dynamic_module_callback_http_get_body_chunks_size(self.ptr(), kind) };
        if count == 0 {
            return Vec::new();
        }
        let mut chunks = vec![empty_envoy_buffer(); count];
        // SAFETY: `chunks` has room for `count` entries; Envoy fills them with views of its
        // buffer, alive through this call.
        let ok = unsafe {
            envoy_dynamic_module_callback_http_get_body_chunks(
                self.ptr(),
                kind,
                chunks.as_mut_ptr(),
            )
        };
        if !ok {
            return Vec::new();
        }
        // SAFETY: Envoy filled `count` buffers, alive through this call.
        unsafe { copy_chunks(chunks.as_ptr(), count, max) }
    }

    /// Bytes of the request body held so far and just received.
    pub fn body_size(self) -> usize {
        let sizes = [
            envoy_dynamic_module_type_http_body_type_BufferedRequestBody,
            envoy_dynamic_module_type_http_body_type_ReceivedRequestBody,
        ];
        sizes
            .iter()
            // SAFETY: the filter is alive; the call only reads.
            .map(|kind| unsafe {
                envoy_dynamic_module_callback_http_get_body_size(self.ptr(), *kind)
            })
            .fold(0, usize::saturating_add)
    }

    pub fn send_response(self, status: u16, headers: &[(&str, &[u8])], body: &[u8], details: &str) {
        let mut raw = module_headers(headers);
        // SAFETY: the filter is alive; every buffer (the header array and what it points at,
        // the body, the details) is ours and lives through the call, which copies them.
        unsafe {
            envoy_dynamic_module_callback_http_send_response(
                self.ptr(),
                u32::from(status),
                raw.as_mut_ptr(),
                raw.len(),
                module_buffer(body),
                module_buffer(details.as_bytes()),
            );
        }
    }

    pub fn continue_decoding(self) {
        // SAFETY: the filter is alive, and called outside any of its hooks' core borrow.
        unsafe { envoy_dynamic_module_callback_http_filter_continue_decoding(self.ptr()) }
    }

    pub fn callout(
        self,
        cluster: &str,
        headers: &[(&str, &[u8])],
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<u64, Failure> {
        let mut raw = module_headers(headers);
        let mut id = 0u64;
        // SAFETY: the filter is alive; `id` is a valid out-pointer; every buffer is ours and
        // lives through the call, which copies them.
        let result = unsafe {
            envoy_dynamic_module_callback_http_filter_http_callout(
                self.ptr(),
                &mut id,
                module_buffer(cluster.as_bytes()),
                raw.as_mut_ptr(),
                raw.len(),
                module_buffer(body),
                timeout_ms,
            )
        };
        if result == envoy_dynamic_module_type_http_callout_init_result_Success {
            Ok(id)
        } else {
            Err(init_failure(result))
        }
    }

    pub fn start_stream(
        self,
        cluster: &str,
        headers: &[(&str, &[u8])],
        timeout_ms: u64,
    ) -> Result<HttpStream, Failure> {
        let mut raw = module_headers(headers);
        let mut id = 0u64;
        // SAFETY: as `callout`; no body yet (a null buffer), the stream stays open for it.
        let result = unsafe {
            envoy_dynamic_module_callback_http_filter_start_http_stream(
                self.ptr(),
                &mut id,
                module_buffer(cluster.as_bytes()),
                raw.as_mut_ptr(),
                raw.len(),
                null_buffer(),
                false,
                timeout_ms,
            )
        };
        if result == envoy_dynamic_module_type_http_callout_init_result_Success {
            Ok(HttpStream(id))
        } else {
            Err(init_failure(result))
        }
    }

    pub fn stream_send_data(self, stream: HttpStream, data: &[u8], end_stream: bool) -> bool {
        // SAFETY: the filter is alive; the data is ours and copied by the call.
        unsafe {
            envoy_dynamic_module_callback_http_stream_send_data(
                self.ptr(),
                stream.0,
                module_buffer(data),
                end_stream,
            )
        }
    }

    pub fn reset_stream(self, stream: HttpStream) {
        // SAFETY: the filter is alive; an id Envoy no longer knows is ignored.
        unsafe { envoy_dynamic_module_callback_http_filter_reset_http_stream(self.ptr(), stream.0) }
    }

    pub fn attribute_string(self, attribute: Attribute) -> Option<Vec<u8>> {
        let id = match attribute {
            Attribute::SourceAddress => envoy_dynamic_module_type_attribute_id_SourceAddress,
            Attribute::DestinationAddress => {
                envoy_dynamic_module_type_attribute_id_DestinationAddress
            }
            Attribute::RequestProtocol => envoy_dynamic_module_type_attribute_id_RequestProtocol,
            Attribute::RouteName => envoy_dynamic_module_type_attribute_id_XdsRouteName,
            Attribute::VirtualHostName => envoy_dynamic_module_type_attribute_id_XdsVirtualHostName,
        };
        let mut value = empty_envoy_buffer();
        // SAFETY: the filter is alive; `value` is a valid out-pointer.
        let found = unsafe {
            envoy_dynamic_module_callback_http_filter_get_attribute_string(
                self.ptr(),
                id,
                &mut value,
            )
        };
        // SAFETY: Envoy's buffer lives through this call.
        found.then(|| unsafe { copy_envoy(value) })
    }

    pub fn set_metadata_string(self, namespace: &str, key: &str, value: &str) {
        // SAFETY: the filter is alive; the buffers are ours and copied by the call.
        unsafe {
            envoy_dynamic_module_callback_http_set_dynamic_metadata_string(
                self.ptr(),
                module_buffer(namespace.as_bytes()),
                module_buffer(key.as_bytes()),
                module_buffer(value.as_bytes()),
            );
        }
    }

    /// Sets the namespace's fields from a serialized `google.protobuf.Struct` (Envoy parses it,
    /// and logs and ignores bytes that are not one).
    pub fn set_metadata_struct(self, namespace: &str, serialized: &[u8]) {
        // SAFETY: as `set_metadata_string`.
        unsafe {
            envoy_dynamic_module_callback_http_set_dynamic_metadata_struct(
                self.ptr(),
                module_buffer(namespace.as_bytes()),
                module_buffer(serialized),
            );
        }
    }

    /// The module's pointer for the most specific per-route configuration, or null.
    pub fn route_config(self) -> *const core::ffi::c_void {
        // SAFETY: the filter is alive; the call only reads the route Envoy picked.
        unsafe { envoy_dynamic_module_callback_get_most_specific_route_config(self.ptr()) }
    }
}

impl ConfigHandle {
    pub fn new(envoy: envoy_dynamic_module_type_http_filter_config_envoy_ptr) -> ConfigHandle {
        ConfigHandle(envoy as usize)
    }

    fn ptr(self) -> envoy_dynamic_module_type_http_filter_config_envoy_ptr {
        self.0 as *mut core::ffi::c_void
    }

    /// Defines a metric; only while Envoy creates the configuration.
    pub fn define(self, kind: MetricKind, name: &str) -> Option<usize> {
        let mut id = 0usize;
        let name = module_buffer(name.as_bytes());
        // SAFETY: called from `http_filter_config_new` with Envoy's live configuration; no
        // labels (a null array of length 0); `id` is a valid out-pointer.
        let result = unsafe {
            match kind {
                MetricKind::Counter => {
                    envoy_dynamic_module_callback_http_filter_config_define_counter(
                        self.ptr(),
                        name,
                        ptr::null_mut(),
                        0,
                        &mut id,
                    )
                }
                MetricKind::Histogram => {
                    envoy_dynamic_module_callback_http_filter_config_define_histogram(
                        self.ptr(),
                        name,
                        ptr::null_mut(),
                        0,
                        &mut id,
                    )
                }
                MetricKind::Gauge => envoy_dynamic_module_callback_http_filter_config_define_gauge(
                    self.ptr(),
                    name,
                    ptr::null_mut(),
                    0,
                    &mut id,
                ),
            }
        };
        (result == envoy_dynamic_module_type_metrics_result_Success).then_some(id)
    }
}

/// Adds `delta` to a counter or gauge.
pub fn increment_metric(config: ConfigHandle, kind: MetricKind, id: usize, delta: i64) -> bool {
    let amount = delta.unsigned_abs();
    // SAFETY: the configuration outlives its filters, whose callbacks are the only callers;
    // Envoy's stats are thread-safe; no labels.
    let result = unsafe {
        match (kind, delta < 0) {
            (MetricKind::Counter, false) => {
                envoy_dynamic_module_callback_http_filter_config_increment_counter(
                    config.ptr(),
                    id,
                    ptr::null_mut(),
                    0,
                    amount,
                )
            }
            (MetricKind::Counter, true) => return false,
            (_, false) => envoy_dynamic_module_callback_http_filter_config_increment_gauge(
                config.ptr(),
                id,
                ptr::null_mut(),
                0,
                amount,
            ),
            (_, true) => envoy_dynamic_module_callback_http_filter_config_decrement_gauge(
                config.ptr(),
                id,
                ptr::null_mut(),
                0,
                amount,
            ),
        }
    };
    result == envoy_dynamic_module_type_metrics_result_Success
}

/// Sets a gauge, or records a histogram's sample.
pub fn record_metric(config: ConfigHandle, kind: MetricKind, id: usize, value: u64) -> bool {
    // SAFETY: as `increment_metric`.
    let result = unsafe {
        match kind {
            MetricKind::Histogram => {
                envoy_dynamic_module_callback_http_filter_config_record_histogram_value(
                    config.ptr(),
                    id,
                    ptr::null_mut(),
                    0,
                    value,
                )
            }
            _ => envoy_dynamic_module_callback_http_filter_config_set_gauge(
                config.ptr(),
                id,
                ptr::null_mut(),
                0,
                value,
            ),
        }
    };
    result == envoy_dynamic_module_type_metrics_result_Success
}

/// The level Envoy's `dynamic_modules` logger prints from (`0` trace … `6` off).
pub fn log_level() -> envoy_dynamic_module_type_log_level {
    // SAFETY: a pure query of Envoy's logger.
    unsafe { envoy_dynamic_module_callback_get_log_level() }
}

/// Whether Envoy logs at this level (`0` trace … `4` error).
pub fn log_enabled(level: envoy_dynamic_module_type_log_level) -> bool {
    // SAFETY: a pure query of Envoy's logger.
    unsafe { envoy_dynamic_module_callback_log_enabled(level) }
}

pub fn log(level: envoy_dynamic_module_type_log_level, message: &str) {
    // SAFETY: the message is ours and copied by the call.
    unsafe { envoy_dynamic_module_callback_log(level, module_buffer(message.as_bytes())) }
}
