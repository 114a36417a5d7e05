//! The `log` crate's records, written to Envoy's log (its `dynamic_modules` logger), formatted
//! only when Envoy would print them.

use crate::ffi::abi::{
    envoy_dynamic_module_type_log_level, envoy_dynamic_module_type_log_level_Critical,
    envoy_dynamic_module_type_log_level_Debug, envoy_dynamic_module_type_log_level_Error,
    envoy_dynamic_module_type_log_level_Info, envoy_dynamic_module_type_log_level_Trace,
    envoy_dynamic_module_type_log_level_Warn,
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

/// Routes `log` to Envoy, at Envoy's level.
pub fn install() {
    if log::set_logger(&LOGGER).is_ok() {
        follow_envoys_level();
    }
}

/// Takes Envoy's current level (an operator may change it through the admin API), so that a
/// disabled `debug!` costs a comparison, not a call into Envoy. Called at each tick.
#[allow(non_upper_case_globals)] // the C enumerators keep their C names
pub fn follow_envoys_level() {
    let level = match envoy::log_level() {
        envoy_dynamic_module_type_log_level_Trace => log::LevelFilter::Trace,
        envoy_dynamic_module_type_log_level_Debug => log::LevelFilter::Debug,
        envoy_dynamic_module_type_log_level_Info => log::LevelFilter::Info,
        envoy_dynamic_module_type_log_level_Warn => log::LevelFilter::Warn,
        envoy_dynamic_module_type_log_level_Error
        | envoy_dynamic_module_type_log_level_Critical => log::LevelFilter::Error,
        _ => log::LevelFilter::Off,
    };
    log::set_max_level(level);
}
