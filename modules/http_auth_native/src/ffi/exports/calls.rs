//! The answers to a stream's auth calls: an HTTP callout's, and a gRPC check's HTTP/2 stream.

use super::*;
use crate::ffi::abi::*;
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_callout_done(
    envoy: FilterEnvoy,
    module: FilterModule,
    callout_id: u64,
    result: envoy_dynamic_module_type_http_callout_result,
    headers: *mut Header,
    headers_size: usize,
    body_chunks: *mut Buffer,
    body_chunks_size: usize,
) {
    guarded(
        "http_callout_done",
        || fail_closed(envoy),
        || {
            let Some((id, filter, config, _)) = stream(module) else {
                return;
            };
            let Some((token, root)) = module::with_registry(|registry| {
                let token = registry.callout_token(id, callout_id)?;
                registry.take_call(token).map(|call| (token, call.root))
            }) else {
                return;
            };
            let answered = result == envoy_dynamic_module_type_http_callout_result_Success;
            // SAFETY: Envoy lends the headers and the body's chunks for this call (null when none).
            let (headers, body_size, body) = unsafe {
                let size = envoy::chunks_size(body_chunks, body_chunks_size);
                (
                    envoy::copy_headers(headers, headers_size),
                    size,
                    envoy::copy_chunks(
                        body_chunks,
                        body_chunks_size,
                        config.max_answer_bytes.max(512),
                    ),
                )
            };
            let num_headers = if answered { headers.len() } else { 0 };
            module::deliver(Delivery {
                config,
                stream: id,
                filter,
                root,
                token,
                ending: Ending::Callout {
                    answer: CalloutAnswer { headers, body },
                    num_headers,
                    body_size,
                },
            });
        },
    );
}

/// The gRPC check a filter runs on this HTTP stream, with what has come back so far.
fn with_grpc_answer(module: FilterModule, stream: u64, edit: impl FnOnce(&mut wire::Answer)) {
    let id = stream_id(module);
    module::with_registry(|registry| {
        let Some(token) = registry.grpc_token(id, HttpStream(stream)) else {
            return;
        };
        if let Some(Carrier::Grpc { answer, .. }) =
            registry.call_mut(token).map(|call| &mut call.carrier)
        {
            edit(answer);
        }
    });
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_headers(
    _envoy: FilterEnvoy,
    module: FilterModule,
    stream: u64,
    headers: *mut Header,
    headers_size: usize,
    end_stream: bool,
) {
    guarded(
        "http_stream_headers",
        || (),
        || {
            // SAFETY: Envoy lends the headers for this call.
            let headers = unsafe { envoy::copy_headers(headers, headers_size) };
            with_grpc_answer(module, stream, |answer| {
                answer.headers(
                    headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())),
                    end_stream,
                );
            });
        },
    );
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_data(
    _envoy: FilterEnvoy,
    module: FilterModule,
    stream: u64,
    data: *const Buffer,
    data_count: usize,
    _end_stream: bool,
) {
    guarded(
        "http_stream_data",
        || (),
        || {
            with_grpc_answer(module, stream, |answer| {
                // SAFETY: Envoy lends the chunks for this call.
                unsafe { envoy::for_each_chunk(data, data_count, |chunk| answer.data(chunk)) };
            });
        },
    );
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_trailers(
    _envoy: FilterEnvoy,
    module: FilterModule,
    stream: u64,
    trailers: *mut Header,
    trailers_size: usize,
) {
    guarded(
        "http_stream_trailers",
        || (),
        || {
            // SAFETY: Envoy lends the trailers for this call.
            let trailers = unsafe { envoy::copy_headers(trailers, trailers_size) };
            with_grpc_answer(module, stream, |answer| {
                answer.trailers(trailers.iter().map(|(n, v)| (n.as_str(), v.as_slice())));
            });
        },
    );
}

/// The gRPC check on this HTTP stream has ended; `reset` if Envoy cut it off.
fn grpc_ended(module: FilterModule, stream_handle: u64, reset: bool) {
    let Some((id, filter, config, _)) = stream(module) else {
        return;
    };
    let Some((token, root, answer)) = module::with_registry(|registry| {
        let token = registry.grpc_token(id, HttpStream(stream_handle))?;
        let call = registry.take_call(token)?;
        match call.carrier {
            Carrier::Grpc { answer, .. } => Some((token, call.root, answer)),
            Carrier::Callout(_) => None,
        }
    }) else {
        return;
    };
    let ended = if reset {
        wire::Ended::Status(wire::UNAVAILABLE)
    } else {
        answer.end()
    };
    module::deliver(Delivery {
        config,
        stream: id,
        filter,
        root,
        token,
        ending: Ending::Grpc(ended),
    });
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_complete(
    envoy: FilterEnvoy,
    module: FilterModule,
    stream: u64,
) {
    guarded(
        "http_stream_complete",
        || fail_closed(envoy),
        || {
            grpc_ended(module, stream, false);
        },
    );
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_reset(
    envoy: FilterEnvoy,
    module: FilterModule,
    stream: u64,
    _reason: envoy_dynamic_module_type_http_stream_reset_reason,
) {
    guarded(
        "http_stream_reset",
        || fail_closed(envoy),
        || {
            grpc_ended(module, stream, true);
        },
    );
}
