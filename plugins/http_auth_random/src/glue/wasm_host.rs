//! `Host` over the plugin's own ABI bindings.

use std::time::Duration;

use super::hostcalls;
use crate::abi::{buffer_type, map_type, stream_type, Status};
use authz_core::host::{Headers, Host, HostError, HostResult, MetricKind, Store};

pub struct WasmHost;

fn named<T>(call: &'static str, result: Result<T, Status>) -> HostResult<T> {
    result.map_err(|status| HostError::new(call, status.failure()))
}

/// Where the decision record goes: Envoy's filter state `wasm.http_auth_decision`.
pub const DECISION_PROPERTY: &str = "http_auth_decision";

impl Host for WasmHost {
    fn request_headers(&self) -> HostResult<Headers> {
        named(
            "get request headers",
            hostcalls::map(map_type::REQUEST_HEADERS),
        )
    }

    fn request_header(&self, name: &str) -> HostResult<Option<Vec<u8>>> {
        named(
            "get request header",
            hostcalls::map_value(map_type::REQUEST_HEADERS, name),
        )
    }

    fn set_request_header(&self, name: &str, value: &[u8]) -> HostResult<()> {
        named(
            "set request header",
            hostcalls::replace_map_value(map_type::REQUEST_HEADERS, name, value),
        )
    }

    fn add_request_header(&self, name: &str, value: &[u8]) -> HostResult<()> {
        named(
            "add request header",
            hostcalls::add_map_value(map_type::REQUEST_HEADERS, name, value),
        )
    }

    fn remove_request_header(&self, name: &str) -> HostResult<()> {
        named(
            "remove request header",
            hostcalls::remove_map_value(map_type::REQUEST_HEADERS, name),
        )
    }

    fn request_trailers(&self) -> HostResult<Headers> {
        named(
            "get request trailers",
            hostcalls::map(map_type::REQUEST_TRAILERS),
        )
    }

    fn request_body(&self, max: usize) -> HostResult<Vec<u8>> {
        named(
            "get request body",
            hostcalls::buffer(buffer_type::HTTP_REQUEST_BODY, max),
        )
    }

    fn remove_request_trailer(&self, name: &str) -> HostResult<()> {
        named(
            "remove request trailer",
            hostcalls::remove_map_value(map_type::REQUEST_TRAILERS, name),
        )
    }

    fn add_response_header(&self, name: &str, value: &[u8]) -> HostResult<()> {
        named(
            "add response header",
            hostcalls::add_map_value(map_type::RESPONSE_HEADERS, name, value),
        )
    }

    fn response_header(&self, name: &str) -> HostResult<Option<Vec<u8>>> {
        named(
            "get response header",
            hostcalls::map_value(map_type::RESPONSE_HEADERS, name),
        )
    }

    fn set_response_header(&self, name: &str, value: &[u8]) -> HostResult<()> {
        named(
            "set response header",
            hostcalls::replace_map_value(map_type::RESPONSE_HEADERS, name, value),
        )
    }

    fn property(&self, path: &[&str]) -> HostResult<Option<Vec<u8>>> {
        named("get property", hostcalls::property(path))
    }

    fn record_decision(&self, record: &authz_core::record::Record) -> HostResult<()> {
        named(
            "set property",
            hostcalls::set_property(DECISION_PROPERTY, record.line().as_bytes()),
        )
    }

    fn dispatch_grpc(
        &self,
        _cluster: &str,
        service: &[u8],
        service_name: &str,
        method: &str,
        message: &[u8],
        timeout: Duration,
    ) -> HostResult<u32> {
        // 0 would be a deadline already passed, not "no timeout".
        let timeout_ms = u32::try_from(timeout.as_millis())
            .unwrap_or(u32::MAX)
            .max(1);
        named(
            "dispatch grpc call",
            hostcalls::grpc_call(service, service_name, method, message, timeout_ms),
        )
    }

    fn grpc_response(&self, max: usize) -> HostResult<Vec<u8>> {
        named(
            "get grpc response",
            hostcalls::buffer(buffer_type::GRPC_RECEIVE_BUFFER, max),
        )
    }

    fn cancel_grpc(&self, token: u32) -> HostResult<()> {
        named("cancel grpc call", hostcalls::grpc_cancel(token))
    }

    fn dispatch(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout: Duration,
    ) -> HostResult<u32> {
        let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        named(
            "dispatch http call",
            hostcalls::http_call(cluster, headers, body, timeout_ms),
        )
    }

    fn call_response_header(&self, name: &str) -> HostResult<Option<Vec<u8>>> {
        named(
            "get call response header",
            hostcalls::map_value(map_type::HTTP_CALL_RESPONSE_HEADERS, name),
        )
    }

    fn call_response_headers(&self) -> HostResult<Headers> {
        named(
            "get call response headers",
            hostcalls::map(map_type::HTTP_CALL_RESPONSE_HEADERS),
        )
    }

    fn call_response_body(&self, max: usize) -> HostResult<Vec<u8>> {
        named(
            "get call response body",
            hostcalls::buffer(buffer_type::HTTP_CALL_RESPONSE_BODY, max),
        )
    }

    fn resume_request(&self) -> HostResult<()> {
        named(
            "resume request",
            hostcalls::continue_stream(stream_type::HTTP_REQUEST),
        )
    }

    fn send_response(&self, status: u16, headers: &[(&str, &str)], body: &[u8]) -> HostResult<()> {
        named(
            "send local response",
            hostcalls::send_local_response(status, headers, body),
        )
    }

    fn set_effective_context(&self, context_id: u32) -> HostResult<()> {
        named(
            "set effective context",
            hostcalls::set_effective_context(context_id),
        )
    }

    fn now_nanos(&self) -> u64 {
        hostcalls::now_nanos().unwrap_or(0)
    }

    fn set_tick_period(&self, period: Duration) -> HostResult<()> {
        let ms = u32::try_from(period.as_millis()).unwrap_or(u32::MAX);
        named("set tick period", hostcalls::set_tick_period_ms(ms))
    }

    fn define_metric(&self, kind: MetricKind, name: &str) -> HostResult<u32> {
        named("define metric", hostcalls::define_metric(kind, name))
    }

    fn increment_metric(&self, id: u32, delta: i64) -> HostResult<()> {
        named("increment metric", hostcalls::increment_metric(id, delta))
    }

    fn record_metric(&self, id: u32, value: u64) -> HostResult<()> {
        named("record metric", hostcalls::record_metric(id, value))
    }

    fn vm_memory_bytes(&self) -> u64 {
        const PAGE: u64 = 65_536;
        u64::try_from(core::arch::wasm32::memory_size(0)).unwrap_or(0) * PAGE
    }
}

impl Store for WasmHost {
    fn get_shared_data(&self, key: &str) -> HostResult<Option<(Vec<u8>, u32)>> {
        named("get shared data", hostcalls::shared_data(key))
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> HostResult<()> {
        named(
            "set shared data",
            hostcalls::set_shared_data(key, value, cas),
        )
    }
}
