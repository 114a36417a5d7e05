//! Safe bindings over the imports: each maps every status the host can return to a `Result`, and
//! nothing here panics (the SDK's own bindings panic on any status they did not expect).

use std::ptr::null_mut;

use super::imports as raw;
use super::memory::take;
use crate::abi::{decode_pairs, encode_pairs, metric_kind, LogLevel, Status};
use authz_core::host::Headers;
use authz_core::host::MetricKind;

pub type Result<T> = std::result::Result<T, Status>;

/// A host that answers with a header map the plugin cannot read.
const UNREADABLE: Status = Status::SerializationFailure;

pub fn log(level: LogLevel, message: &str) -> Result<()> {
    // SAFETY: the pointer and length describe a live string.
    Status::check(unsafe { raw::proxy_log(level as u32, message.as_ptr(), message.len()) })
}

pub fn log_level() -> Result<LogLevel> {
    let mut level = 0;
    // SAFETY: the host writes one u32 to a live local.
    Status::check(unsafe { raw::proxy_get_log_level(&mut level) })?;
    Ok(LogLevel::from_code(level))
}

pub fn now_nanos() -> Result<u64> {
    let mut now = 0;
    // SAFETY: the host writes one u64 to a live local.
    Status::check(unsafe { raw::proxy_get_current_time_nanoseconds(&mut now) })?;
    Ok(now)
}

pub fn set_tick_period_ms(period: u32) -> Result<()> {
    // SAFETY: no pointers.
    Status::check(unsafe { raw::proxy_set_tick_period_milliseconds(period) })
}

pub fn set_effective_context(context_id: u32) -> Result<()> {
    // SAFETY: no pointers.
    Status::check(unsafe { raw::proxy_set_effective_context(context_id) })
}

/// Up to `max` bytes of a buffer from its start; a missing buffer is empty.
pub fn buffer(buffer_type: u32, max: usize) -> Result<Vec<u8>> {
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: the host writes a pointer it got from our allocator, and its size, to live locals.
    let status = unsafe { raw::proxy_get_buffer_bytes(buffer_type, 0, max, &mut data, &mut size) };
    match Status::check(status) {
        // SAFETY: `data` came from our allocator with `size` bytes, and is owned by nobody else.
        Ok(()) => Ok(unsafe { take(data, size) }),
        Err(Status::NotFound) => Ok(Vec::new()),
        Err(status) => Err(status),
    }
}

pub fn map(map_type: u32) -> Result<Headers> {
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: as in `buffer`.
    Status::check(unsafe { raw::proxy_get_header_map_pairs(map_type, &mut data, &mut size) })?;
    // SAFETY: as in `buffer`.
    let bytes = unsafe { take(data, size) };
    decode_pairs(&bytes).map_err(|_| UNREADABLE)
}

/// One header's value; `None` when the map has no such header.
pub fn map_value(map_type: u32, name: &str) -> Result<Option<Vec<u8>>> {
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: `name` is live; the host writes to live locals as in `buffer`.
    let status = unsafe {
        raw::proxy_get_header_map_value(map_type, name.as_ptr(), name.len(), &mut data, &mut size)
    };
    match Status::check(status) {
        // SAFETY: as in `buffer`.
        Ok(()) if !data.is_null() => Ok(Some(unsafe { take(data, size) })),
        Ok(()) | Err(Status::NotFound) => Ok(None),
        Err(status) => Err(status),
    }
}

pub fn replace_map_value(map_type: u32, name: &str, value: &[u8]) -> Result<()> {
    // SAFETY: both slices are live for the call.
    Status::check(unsafe {
        raw::proxy_replace_header_map_value(
            map_type,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

pub fn add_map_value(map_type: u32, name: &str, value: &[u8]) -> Result<()> {
    // SAFETY: both slices are live for the call.
    Status::check(unsafe {
        raw::proxy_add_header_map_value(
            map_type,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

pub fn remove_map_value(map_type: u32, name: &str) -> Result<()> {
    // SAFETY: the slice is live for the call.
    Status::check(unsafe {
        raw::proxy_remove_header_map_value(map_type, name.as_ptr(), name.len())
    })
}

pub fn continue_stream(stream_type: u32) -> Result<()> {
    // SAFETY: no pointers.
    Status::check(unsafe { raw::proxy_continue_stream(stream_type) })
}

pub fn send_local_response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Result<()> {
    let headers = encode_pairs(headers).map_err(|_| Status::BadArgument)?;
    // Envoy shows this in its access log's response code details.
    let details = b"http_auth_random";
    // SAFETY: every slice is live for the call; -1 means "not a gRPC reply".
    Status::check(unsafe {
        raw::proxy_send_local_response(
            u32::from(status),
            details.as_ptr(),
            details.len(),
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    })
}

pub fn http_call(
    cluster: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout_ms: u32,
) -> Result<u32> {
    let headers = encode_pairs(headers).map_err(|_| Status::BadArgument)?;
    let no_trailers = 0u32.to_le_bytes();
    let mut token = 0;
    // An empty body goes as a null pointer with size 0, as the SDK passes it.
    let body_data = if body.is_empty() {
        std::ptr::null()
    } else {
        body.as_ptr()
    };
    // SAFETY: every slice (and the null body, with size 0) is live for the call, and the host
    // writes the token to a live local.
    Status::check(unsafe {
        raw::proxy_http_call(
            cluster.as_ptr(),
            cluster.len(),
            headers.as_ptr(),
            headers.len(),
            body_data,
            body.len(),
            no_trailers.as_ptr(),
            no_trailers.len(),
            timeout_ms,
            &mut token,
        )
    })?;
    Ok(token)
}

pub fn grpc_call(
    service: &[u8],
    service_name: &str,
    method: &str,
    message: &[u8],
    timeout_ms: u32,
) -> Result<u32> {
    let no_metadata = 0u32.to_le_bytes();
    let mut token = 0;
    // SAFETY: every slice is live for the call; the host writes the token to a live local.
    Status::check(unsafe {
        raw::proxy_grpc_call(
            service.as_ptr(),
            service.len(),
            service_name.as_ptr(),
            service_name.len(),
            method.as_ptr(),
            method.len(),
            no_metadata.as_ptr(),
            no_metadata.len(),
            message.as_ptr(),
            message.len(),
            timeout_ms,
            &mut token,
        )
    })?;
    Ok(token)
}

pub fn grpc_cancel(token: u32) -> Result<()> {
    // SAFETY: no pointers.
    Status::check(unsafe { raw::proxy_grpc_cancel(token) })
}

/// A property by its path (the segments joined by NUL, as the host reads them).
pub fn property(path: &[&str]) -> Result<Option<Vec<u8>>> {
    let joined = path.join("\0");
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: the path is live; the host writes to live locals as in `buffer`.
    let status =
        unsafe { raw::proxy_get_property(joined.as_ptr(), joined.len(), &mut data, &mut size) };
    match Status::check(status) {
        // SAFETY: as in `buffer`.
        Ok(()) => Ok(Some(unsafe { take(data, size) })),
        Err(Status::NotFound) => Ok(None),
        Err(status) => Err(status),
    }
}

/// Sets a property (Envoy keeps it as filter state `wasm.<path>`, read as
/// `%FILTER_STATE(wasm.<path>:PLAIN)%`).
pub fn set_property(path: &str, value: &[u8]) -> Result<()> {
    // SAFETY: both buffers are live for the call, which copies them.
    Status::check(unsafe {
        raw::proxy_set_property(path.as_ptr(), path.len(), value.as_ptr(), value.len())
    })
}

/// A shared-data entry and its version; `None` when there is no such key.
pub fn shared_data(key: &str) -> Result<Option<(Vec<u8>, u32)>> {
    let (mut data, mut size, mut cas) = (null_mut(), 0, 0);
    // SAFETY: `key` is live; the host writes to live locals as in `buffer`.
    let status = unsafe {
        raw::proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas)
    };
    match Status::check(status) {
        // SAFETY: as in `buffer`.
        Ok(()) => Ok(Some((unsafe { take(data, size) }, cas))),
        Err(Status::NotFound) => Ok(None),
        Err(status) => Err(status),
    }
}

pub fn set_shared_data(key: &str, value: &[u8], cas: u32) -> Result<()> {
    // SAFETY: both slices are live for the call.
    Status::check(unsafe {
        raw::proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
    })
}

pub fn define_metric(kind: MetricKind, name: &str) -> Result<u32> {
    let mut id = 0;
    // SAFETY: the name is live; the host writes the id to a live local.
    Status::check(unsafe {
        raw::proxy_define_metric(metric_kind(kind), name.as_ptr(), name.len(), &mut id)
    })?;
    Ok(id)
}

pub fn increment_metric(id: u32, delta: i64) -> Result<()> {
    // SAFETY: no pointers.
    Status::check(unsafe { raw::proxy_increment_metric(id, delta) })
}

pub fn record_metric(id: u32, value: u64) -> Result<()> {
    // SAFETY: no pointers.
    Status::check(unsafe { raw::proxy_record_metric(id, value) })
}
