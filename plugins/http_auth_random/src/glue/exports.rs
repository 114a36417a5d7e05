//! The callbacks the host calls, each forwarded to the worker. Only the callbacks the plugin
//! uses are exported: Envoy skips a callback the module does not export, which saves a VM entry.
//! `proxy_on_done` is left out too: for an HTTP stream Envoy calls it right before
//! `proxy_on_delete`, which does its work.

use std::cell::RefCell;

use super::hostcalls;
use super::logger;
use super::wasm_host::WasmHost;
use crate::abi::{action_code, body_action_code, buffer_type};
use authz_core::host::{Action, BodyAction};
use authz_core::worker::Worker;

thread_local! {
    static WORKER: RefCell<Worker> = RefCell::new(Worker::default());
}

/// Runs `f` on the worker. The host never re-enters the VM from inside a host call (local
/// replies and resumes run after the callback returns), so the borrow cannot be taken twice;
/// if it ever were, the callback gets `otherwise` instead of a panic.
fn with_worker<T>(otherwise: T, f: impl FnOnce(&mut Worker) -> T) -> T {
    WORKER.with(|worker| match worker.try_borrow_mut() {
        Ok(mut worker) => f(&mut worker),
        Err(_) => {
            log::error!("plugin re-entered: callback refused");
            otherwise
        }
    })
}

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(context_id: u32, parent_id: u32) {
    with_worker((), |w| w.on_context_create(context_id, parent_id));
}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_root_id: u32, _vm_configuration_size: usize) -> u32 {
    logger::follow_host_level();
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(root_id: u32, configuration_size: usize) -> u32 {
    logger::follow_host_level();
    let bytes = match hostcalls::buffer(buffer_type::PLUGIN_CONFIGURATION, configuration_size) {
        Ok(bytes) => bytes,
        Err(status) => {
            log::error!("cannot read the plugin configuration: {status}");
            return 0;
        }
    };
    u32::from(with_worker(false, |w| {
        w.on_configure(&WasmHost, root_id, &bytes)
    }))
}

#[no_mangle]
pub extern "C" fn proxy_on_tick(root_id: u32) {
    logger::follow_host_level();
    with_worker((), |w| w.on_tick(&WasmHost, root_id));
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(context_id: u32, _headers: usize, end: u32) -> u32 {
    action_code(with_worker(Action::Pause, |w| {
        w.on_request_headers(&WasmHost, context_id, end != 0)
    }))
}

#[no_mangle]
pub extern "C" fn proxy_on_request_body(context_id: u32, size: usize, end: u32) -> u32 {
    body_action_code(with_worker(BodyAction::Watermark, |w| {
        w.on_request_body(&WasmHost, context_id, size, end != 0)
    }))
}

#[no_mangle]
pub extern "C" fn proxy_on_request_trailers(context_id: u32, _trailers: usize) -> u32 {
    action_code(with_worker(Action::Pause, |w| {
        w.on_request_trailers(&WasmHost, context_id)
    }))
}

#[no_mangle]
pub extern "C" fn proxy_on_response_headers(context_id: u32, _headers: usize, _end: u32) -> u32 {
    action_code(with_worker(Action::Continue, |w| {
        w.on_response_headers(&WasmHost, context_id)
    }))
}

#[no_mangle]
pub extern "C" fn proxy_on_http_call_response(
    root_id: u32,
    token: u32,
    num_headers: usize,
    body_size: usize,
    _num_trailers: usize,
) {
    with_worker((), |w| {
        w.on_call_response(&WasmHost, root_id, token, num_headers, body_size);
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_delete(context_id: u32) {
    with_worker((), |w| w.on_delete(&WasmHost, context_id));
}

#[no_mangle]
pub extern "C" fn proxy_on_grpc_receive(root_id: u32, token: u32, size: usize) {
    with_worker((), |w| w.on_grpc_receive(&WasmHost, root_id, token, size));
}

#[no_mangle]
pub extern "C" fn proxy_on_grpc_close(root_id: u32, token: u32, status: u32) {
    with_worker((), |w| w.on_grpc_close(&WasmHost, root_id, token, status));
}
