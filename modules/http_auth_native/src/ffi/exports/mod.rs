//! The entry points Envoy calls. Each catches any panic (one unwinding into Envoy would abort
//! it) and answers a request it cannot finish with a 500, never an allow. Envoy resolves every
//! hook when it creates the filter configuration, so the ones the filter does not use are here
//! too, doing nothing (`unused`).

mod calls;
mod config;
mod stream;
mod unused;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use authz_core::host::{Action, BodyAction};
use authz_core::protocol::grpc::wire;
use log::error;

use super::abi::*;
use super::envoy::{self, ConfigHandle, Filter, HttpStream};
use crate::config::{ModuleConfig, RouteConfig};
use crate::module;
use crate::registry::{CalloutAnswer, Carrier, Delivery, Ending};

pub(super) type FilterEnvoy = envoy_dynamic_module_type_http_filter_envoy_ptr;
pub(super) type FilterModule = envoy_dynamic_module_type_http_filter_module_ptr;
pub(super) type ConfigEnvoy = envoy_dynamic_module_type_http_filter_config_envoy_ptr;
pub(super) type ConfigModule = envoy_dynamic_module_type_http_filter_config_module_ptr;
pub(super) type Buffer = envoy_dynamic_module_type_envoy_buffer;
pub(super) type Header = envoy_dynamic_module_type_envoy_http_header;

/// Runs an entry point's body; a panic is logged and turned into `otherwise`.
pub(super) fn guarded<R>(hook: &str, otherwise: impl FnOnce() -> R, body: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(_) => {
            error!("{hook} panicked: the request, if any, is answered 500");
            otherwise()
        }
    }
}

/// A request the filter cannot finish is refused, as a failed check is: what the core had
/// queued for it is dropped, and a gRPC client gets a failed `grpc-status` too.
pub(super) fn fail_closed(filter: FilterEnvoy) {
    let _ = catch_unwind(|| {
        let filter = Filter::new(filter);
        module::discard_effects_for(filter);
        let grpc_client = filter
            .header(envoy::HeaderKind::Request, "content-type")
            .is_some_and(|t| t.starts_with(b"application/grpc"));
        module::respond(filter, grpc_client, 500, &[], b"");
    });
}

/// The stream's id for the core: the module pointer Envoy hands back is that id.
pub(super) fn stream_id(module: FilterModule) -> u32 {
    u32::try_from(module as usize).unwrap_or(0)
}

/// The stream's filter and configuration, if this worker knows the stream.
pub(super) fn stream(module: FilterModule) -> Option<(u32, Filter, Arc<ModuleConfig>, bool)> {
    let id = stream_id(module);
    module::with_registry(|registry| {
        registry
            .streams
            .get(&id)
            .map(|entry| (id, entry.filter, Arc::clone(&entry.config), entry.created))
    })
}
