//! A stream's own hooks: its request and response as they pass, and its end.

use super::*;
use crate::ffi::abi::*;
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
            if !route.is_null() && !crate::config::is_our_route(route as usize) {
                // Another module's settings under this filter's name: never read as ours.
                error!(
                    "the route's per-route settings were not made by this module (another \
                     dynamic-module filter with the same name?): refusing the request"
                );
                fail_closed(envoy);
                return STOP;
            }
            // SAFETY: a non-null pointer is one this module made in `per_route_config_new` and
            // Envoy still holds (checked just above), alive while the route lives (this call).
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
    module::with_registry(|registry| registry.forget_stream(id));
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
