//! The wasm side (built for wasm32 only): the ABI's exports and imports, and `Host` over them.
//! No proxy-wasm SDK: owning the exports lets a call's answer be counted after its stream has
//! gone, and owning the bindings means no host status can make the plugin panic.

mod exports;
mod hostcalls;
mod imports;
mod logger;
mod memory;
mod wasm_host;

extern "C" {
    fn __wasm_call_ctors();
}

/// The reactor entry point the host calls once, before any other export.
#[no_mangle]
pub extern "C" fn _initialize() {
    // SAFETY: runs the module's static constructors once, as the wasi reactor ABI expects.
    unsafe { __wasm_call_ctors() };
    // A panic must say where before the VM traps.
    std::panic::set_hook(Box::new(|info| {
        let _ = hostcalls::log(crate::abi::LogLevel::Critical, &info.to_string());
    }));
    logger::install();
}
