//! The HTTP stream context: forwards each proxy-wasm callback to the request flow.

use std::rc::Rc;

use log::error;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action as WasmAction;

use super::wasm_host::WasmHost;
use crate::config::Config;
use crate::flow::{Action, Flow};

pub struct AuthFilter {
    flow: Flow,
    host: WasmHost,
}

impl AuthFilter {
    pub fn new(context_id: u32, config: Rc<Config>, host: WasmHost) -> Self {
        AuthFilter {
            flow: Flow::new(context_id, config),
            host,
        }
    }
}

fn to_wasm(action: Action) -> WasmAction {
    match action {
        Action::Continue => WasmAction::Continue,
        Action::Pause => WasmAction::Pause,
    }
}

impl Context for AuthFilter {
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        _: usize,
    ) {
        self.flow
            .on_call_response(&self.host, token, num_headers, body_size);
    }

    fn on_done(&mut self) -> bool {
        self.flow.on_done(&self.host);
        true
    }
}

impl HttpContext for AuthFilter {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> WasmAction {
        to_wasm(self.flow.on_request_headers(&self.host))
    }

    fn on_http_request_body(&mut self, _: usize, _: bool) -> WasmAction {
        to_wasm(self.flow.on_request_body())
    }

    fn on_http_request_trailers(&mut self, _: usize) -> WasmAction {
        to_wasm(self.flow.on_request_trailers())
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> WasmAction {
        to_wasm(self.flow.on_response_headers(&self.host))
    }
}

/// A stream on a root that never accepted a configuration: refuse it rather than let it through.
pub struct Unconfigured;

impl Context for Unconfigured {}

impl HttpContext for Unconfigured {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> WasmAction {
        error!("no valid configuration: refusing the request");
        let _ = hostcalls::send_http_response(500, Vec::new(), None);
        WasmAction::Pause
    }
}
