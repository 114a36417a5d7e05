//! The entry points Envoy calls. Each catches any panic (one unwinding into Envoy would abort
//! it) and answers a request it cannot finish with a 500, never an allow. Envoy resolves every
//! hook when it creates the filter configuration, so the ones the filter does not use are here
//! too, doing nothing.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use authz_core::host::{Action, BodyAction};
use authz_core::protocol::grpc::wire;
use log::error;

use super::abi::*;
use super::envoy::{self, ConfigHandle, Filter, HttpStream};
use crate::config::{ModuleConfig, RouteConfig};
use crate::host::CalloutAnswer;
use crate::module;
use crate::registry::Carrier;

type FilterEnvoy = envoy_dynamic_module_type_http_filter_envoy_ptr;
type FilterModule = envoy_dynamic_module_type_http_filter_module_ptr;
type ConfigEnvoy = envoy_dynamic_module_type_http_filter_config_envoy_ptr;
type ConfigModule = envoy_dynamic_module_type_http_filter_config_module_ptr;
type Buffer = envoy_dynamic_module_type_envoy_buffer;
type Header = envoy_dynamic_module_type_envoy_http_header;

/// Runs an entry point's body; a panic is logged and turned into `otherwise`.
fn guarded<R>(hook: &str, otherwise: impl FnOnce() -> R, body: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(_) => {
            error!("{hook} panicked: the request, if any, is answered 500");
            otherwise()
        }
    }
}

/// A request the filter cannot finish is refused, as a failed check is.
fn fail_closed(filter: FilterEnvoy) {
    let _ = catch_unwind(|| {
        Filter::new(filter).send_response(500, &[], b"", "http_auth_internal_error");
    });
}

/// The stream's id for the core: the module pointer Envoy hands back is that id.
fn stream_id(module: FilterModule) -> u32 {
    u32::try_from(module as usize).unwrap_or(0)
}

/// The stream's filter and configuration, if this worker knows the stream.
fn stream(module: FilterModule) -> Option<(u32, Filter, Arc<ModuleConfig>, bool)> {
    let id = stream_id(module);
    module::with_registry(|registry| {
        registry
            .streams
            .get(&id)
            .map(|entry| (id, entry.filter, Arc::clone(&entry.config), entry.created))
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const core::ffi::c_char {
    let _ = catch_unwind(|| {
        crate::logger::install();
        std::panic::set_hook(Box::new(|info| error!("panic: {info}")));
    });
    ENVOY_DYNAMIC_MODULES_ABI_VERSION.as_ptr().cast()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    envoy: ConfigEnvoy,
    name: Buffer,
    config: Buffer,
) -> ConfigModule {
    guarded("config_new", std::ptr::null, || {
        // SAFETY: Envoy lends both buffers for this call.
        let (name, bytes) = unsafe { (envoy::copy_envoy(name), envoy::copy_envoy(config)) };
        let handle = ConfigHandle::new(envoy);
        let name = String::from_utf8_lossy(&name);
        match ModuleConfig::new(handle, &name, &bytes, |kind, metric| {
            handle.define(kind, metric)
        }) {
            Ok(config) => Arc::into_raw(Arc::new(config)).cast(),
            Err(err) => {
                error!("{err}");
                std::ptr::null()
            }
        }
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(config: ConfigModule) {
    guarded(
        "config_destroy",
        || (),
        || {
            if !config.is_null() {
                // SAFETY: `config` came from `Arc::into_raw` in `config_new`, and Envoy destroys it
                // once; every stream holds its own clone.
                drop(unsafe { Arc::from_raw(config.cast::<ModuleConfig>()) });
            }
        },
    );
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_new(
    _name: Buffer,
    config: Buffer,
) -> envoy_dynamic_module_type_http_filter_per_route_config_module_ptr {
    guarded("per_route_config_new", std::ptr::null, || {
        // SAFETY: Envoy lends the buffer for this call.
        let bytes = unsafe { envoy::copy_envoy(config) };
        match RouteConfig::new(&bytes) {
            Ok(route) => Box::into_raw(Box::new(route)).cast_const().cast(),
            Err(err) => {
                error!("invalid per-route configuration: {err}");
                std::ptr::null()
            }
        }
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_destroy(
    config: envoy_dynamic_module_type_http_filter_per_route_config_module_ptr,
) {
    guarded(
        "per_route_config_destroy",
        || (),
        || {
            if !config.is_null() {
                // SAFETY: `config` came from `Box::into_raw` in `per_route_config_new`; Envoy
                // destroys it once, after the routes that used it.
                drop(unsafe { Box::from_raw(config.cast::<RouteConfig>().cast_mut()) });
            }
        },
    );
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_new(
    config: ConfigModule,
    envoy: FilterEnvoy,
) -> FilterModule {
    guarded("filter_new", std::ptr::null, || {
        if config.is_null() {
            return std::ptr::null();
        }
        let config = config.cast::<ModuleConfig>();
        // SAFETY: `config` is the live `Arc` from `config_new` (Envoy keeps the configuration
        // while it makes filters of it); the count goes up before the clone is taken.
        let config = unsafe {
            Arc::increment_strong_count(config);
            Arc::from_raw(config)
        };
        let id = module::add_stream(Filter::new(envoy), config);
        std::ptr::without_provenance(id as usize)
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    envoy: FilterEnvoy,
    module: FilterModule,
    end_of_stream: bool,
) -> envoy_dynamic_module_type_on_http_filter_request_headers_status {
    const STOP: u32 = envoy_dynamic_module_type_on_http_filter_request_headers_status_StopIteration;
    const CONTINUE: u32 = envoy_dynamic_module_type_on_http_filter_request_headers_status_Continue;
    guarded(
        "request_headers",
        || {
            fail_closed(envoy);
            STOP
        },
        || {
            let Some((id, filter, config, created)) = stream(module) else {
                fail_closed(envoy);
                return STOP;
            };
            let grpc_client = filter
                .header(envoy::HeaderKind::Request, "content-type")
                .is_some_and(|t| t.starts_with(b"application/grpc"));
            let route = filter.route_config().cast::<RouteConfig>();
            // SAFETY: a non-null pointer is a `RouteConfig` this module made in
            // `per_route_config_new`, which Envoy keeps while the route lives (through this call).
            let route = unsafe { route.as_ref() };
            module::with_registry(|registry| {
                if let Some(entry) = registry.streams.get_mut(&id) {
                    entry.created = true;
                    entry.grpc_client = grpc_client;
                }
            });
            let root = config.root_id;
            let action = module::run(&config, Some((id, filter)), |worker, host| {
                if !created {
                    match route {
                        Some(route) => {
                            worker.on_stream_create_on_route(id, root, route.id, &route.overrides)
                        }
                        None => worker.on_context_create(id, root),
                    }
                }
                worker.on_request_headers(host, id, end_of_stream)
            });
            match action {
                Some(Action::Continue) => CONTINUE,
                Some(Action::Pause) => STOP,
                None => {
                    fail_closed(envoy);
                    STOP
                }
            }
        },
    )
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    envoy: FilterEnvoy,
    module: FilterModule,
    end_of_stream: bool,
) -> envoy_dynamic_module_type_on_http_filter_request_body_status {
    const BUFFER: u32 =
        envoy_dynamic_module_type_on_http_filter_request_body_status_StopIterationAndBuffer;
    const WATERMARK: u32 =
        envoy_dynamic_module_type_on_http_filter_request_body_status_StopIterationAndWatermark;
    const CONTINUE: u32 = envoy_dynamic_module_type_on_http_filter_request_body_status_Continue;
    guarded(
        "request_body",
        || {
            fail_closed(envoy);
            WATERMARK
        },
        || {
            let Some((id, filter, config, _)) = stream(module) else {
                return WATERMARK;
            };
            let buffered = filter.body_size();
            let action = module::run(&config, Some((id, filter)), |worker, host| {
                worker.on_request_body(host, id, buffered, end_of_stream)
            });
            match action {
                Some(BodyAction::Continue) => CONTINUE,
                Some(BodyAction::Buffer) => BUFFER,
                Some(BodyAction::Watermark) | None => WATERMARK,
            }
        },
    )
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(
    envoy: FilterEnvoy,
    module: FilterModule,
) -> envoy_dynamic_module_type_on_http_filter_request_trailers_status {
    const STOP: u32 =
        envoy_dynamic_module_type_on_http_filter_request_trailers_status_StopIteration;
    const CONTINUE: u32 = envoy_dynamic_module_type_on_http_filter_request_trailers_status_Continue;
    guarded(
        "request_trailers",
        || {
            fail_closed(envoy);
            STOP
        },
        || {
            let Some((id, filter, config, _)) = stream(module) else {
                return STOP;
            };
            let action = module::run(&config, Some((id, filter)), |worker, host| {
                worker.on_request_trailers(host, id)
            });
            match action {
                Some(Action::Continue) => CONTINUE,
                _ => STOP,
            }
        },
    )
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    _envoy: FilterEnvoy,
    module: FilterModule,
    _end_of_stream: bool,
) -> envoy_dynamic_module_type_on_http_filter_response_headers_status {
    const CONTINUE: u32 = envoy_dynamic_module_type_on_http_filter_response_headers_status_Continue;
    const STOP: u32 =
        envoy_dynamic_module_type_on_http_filter_response_headers_status_StopIteration;
    // A response already on its way is not the filter's to refuse: on a panic it goes on.
    guarded(
        "response_headers",
        || CONTINUE,
        || {
            let Some((id, filter, config, _)) = stream(module) else {
                return CONTINUE;
            };
            let action = module::run(&config, Some((id, filter)), |worker, host| {
                worker.on_response_headers(host, id)
            });
            match action {
                Some(Action::Pause) => STOP,
                _ => CONTINUE,
            }
        },
    )
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_body(
    _envoy: FilterEnvoy,
    _module: FilterModule,
    _end_of_stream: bool,
) -> envoy_dynamic_module_type_on_http_filter_response_body_status {
    envoy_dynamic_module_type_on_http_filter_response_body_status_Continue
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(
    _envoy: FilterEnvoy,
    _module: FilterModule,
) -> envoy_dynamic_module_type_on_http_filter_response_trailers_status {
    envoy_dynamic_module_type_on_http_filter_response_trailers_status_Continue
}

/// The stream has ended: the core lets go of it (whoever waited on its call asks for
/// themselves: Envoy ends a filter's calls with it), and so does the registry.
fn end_stream(module: FilterModule, current: bool) {
    let Some((id, filter, config, created)) = stream(module) else {
        return;
    };
    if created {
        module::run(&config, current.then_some((id, filter)), |worker, host| {
            worker.on_delete(host, id)
        });
    }
    module::with_registry(|registry| {
        registry.streams.remove(&id);
        registry.forget_calls_of(id);
    });
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
    _envoy: FilterEnvoy,
    module: FilterModule,
) {
    guarded("stream_complete", || (), || end_stream(module, true));
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_destroy(module: FilterModule) {
    // Envoy's filter is going: nothing is called on it any more.
    guarded("filter_destroy", || (), || end_stream(module, false));
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_local_reply(
    _envoy: FilterEnvoy,
    _module: FilterModule,
    _response_code: u32,
    _details: Buffer,
    _reset_imminent: bool,
) -> envoy_dynamic_module_type_on_http_filter_local_reply_status {
    envoy_dynamic_module_type_on_http_filter_local_reply_status_Continue
}

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
                registry.calls.remove(&token).map(|call| (token, call.root))
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
            module::run(&config, Some((id, filter)), |worker, host| {
                *host.callout_answer.borrow_mut() = Some(CalloutAnswer { headers, body });
                worker.on_call_response(host, root, token, num_headers, body_size);
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
            registry.calls.get_mut(&token).map(|call| &mut call.carrier)
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
    _end_stream: bool,
) {
    guarded(
        "http_stream_headers",
        || (),
        || {
            // SAFETY: Envoy lends the headers for this call.
            let headers = unsafe { envoy::copy_headers(headers, headers_size) };
            with_grpc_answer(module, stream, |answer| {
                answer.headers(headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())));
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
                answer.headers(trailers.iter().map(|(n, v)| (n.as_str(), v.as_slice())));
            });
        },
    );
}

/// The gRPC check on this HTTP stream has ended; `reset` if Envoy cut it off.
fn grpc_ended(envoy: FilterEnvoy, module: FilterModule, stream_handle: u64, reset: bool) {
    let Some((id, filter, config, _)) = stream(module) else {
        return;
    };
    let Some((token, root, answer)) = module::with_registry(|registry| {
        let token = registry.grpc_token(id, HttpStream(stream_handle))?;
        let call = registry.calls.remove(&token)?;
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
    let _ = envoy;
    module::run(&config, Some((id, filter)), |worker, host| match ended {
        wire::Ended::Message(message) => {
            let size = message.len();
            *host.grpc_message.borrow_mut() = Some(message);
            worker.on_grpc_receive(host, root, token, size);
        }
        wire::Ended::Oversized(size) => worker.on_grpc_receive(host, root, token, size),
        wire::Ended::Status(status) => worker.on_grpc_close(host, root, token, status),
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
            grpc_ended(envoy, module, stream, false);
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
            grpc_ended(envoy, module, stream, true);
        },
    );
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
    _envoy: FilterEnvoy,
    _module: FilterModule,
    _event_id: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
    _envoy: FilterEnvoy,
    _module: FilterModule,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
    _envoy: FilterEnvoy,
    _module: FilterModule,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_scheduled(
    _envoy: ConfigEnvoy,
    _config: ConfigModule,
    _event_id: u64,
) {
}

#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_callout_done(
    _envoy: ConfigEnvoy,
    _config: ConfigModule,
    _callout_id: u64,
    _result: envoy_dynamic_module_type_http_callout_result,
    _headers: *mut Header,
    _headers_size: usize,
    _body_chunks: *mut Buffer,
    _body_chunks_size: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_headers(
    _envoy: ConfigEnvoy,
    _config: ConfigModule,
    _stream: u64,
    _headers: *mut Header,
    _headers_size: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_data(
    _envoy: ConfigEnvoy,
    _config: ConfigModule,
    _stream: u64,
    _data: *const Buffer,
    _data_count: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_trailers(
    _envoy: ConfigEnvoy,
    _config: ConfigModule,
    _stream: u64,
    _trailers: *mut Header,
    _trailers_size: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_complete(
    _envoy: ConfigEnvoy,
    _config: ConfigModule,
    _stream: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_reset(
    _envoy: ConfigEnvoy,
    _config: ConfigModule,
    _stream: u64,
    _reason: envoy_dynamic_module_type_http_stream_reset_reason,
) {
}
