//! The `log` crate's records, written to Envoy's log (its `dynamic_modules` logger), formatted
//! only when Envoy would print them.

use crate::ffi::abi::{
    envoy_dynamic_module_type_log_level, envoy_dynamic_module_type_log_level_Debug,
    envoy_dynamic_module_type_log_level_Error, envoy_dynamic_module_type_log_level_Info,
    envoy_dynamic_module_type_log_level_Trace, envoy_dynamic_module_type_log_level_Warn,
};
use crate::ffi::envoy;

struct EnvoyLogger;

static LOGGER: EnvoyLogger = EnvoyLogger;

fn level(level: log::Level) -> envoy_dynamic_module_type_log_level {
    match level {
        log::Level::Error => envoy_dynamic_module_type_log_level_Error,
        log::Level::Warn => envoy_dynamic_module_type_log_level_Warn,
        log::Level::Info => envoy_dynamic_module_type_log_level_Info,
        log::Level::Debug => envoy_dynamic_module_type_log_level_Debug,
        log::Level::Trace => envoy_dynamic_module_type_log_level_Trace,
    }
}

impl log::Log for EnvoyLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        envoy::log_enabled(level(metadata.level()))
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            envoy::log(
                level(record.level()),
                &format!("http_auth: {}", record.args()),
            );
        }
    }

    fn flush(&self) {}
}

/// Routes `log` to Envoy; Envoy's own level then decides what is printed.
pub fn install() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
}
