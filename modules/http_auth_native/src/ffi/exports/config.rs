//! Loading: the module's start, and the filter and per-route configurations Envoy makes and
//! destroys on its main thread.

use super::*;
use crate::ffi::abi::*;
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
            Ok(route) => {
                let route = Box::into_raw(Box::new(route));
                crate::config::remember_route(route as usize);
                route.cast_const().cast()
            }
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
            if !config.is_null() && crate::config::is_our_route(config as usize) {
                crate::config::forget_route(config as usize);
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
