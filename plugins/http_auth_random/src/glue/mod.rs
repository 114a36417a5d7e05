//! proxy-wasm glue: registers the root context and keeps the log level in step with Envoy's.

mod http;
mod root;
mod wasm_host;

use proxy_wasm::hostcalls;
use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    // Installs the SDK's logger; the level is lowered to Envoy's as soon as the VM starts.
    proxy_wasm::set_log_level(LogLevel::Info);
    // Replaces the SDK's hook, which unwraps its own log call: a panic must log, then trap.
    std::panic::set_hook(Box::new(|info| {
        let _ = hostcalls::log(LogLevel::Critical, &info.to_string());
    }));
    proxy_wasm::set_root_context(|_| Box::new(root::AuthRoot::default()));
}}

/// Log lines are formatted in the guest whatever Envoy prints, so the `log` macros must be cut off
/// at Envoy's level before they build a string.
fn follow_host_log_level() {
    if let Ok(level) = hostcalls::get_log_level() {
        log::set_max_level(match level {
            LogLevel::Trace => log::LevelFilter::Trace,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Critical => log::LevelFilter::Off,
        });
    }
}
