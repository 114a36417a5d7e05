//! The root context: parses the configuration once and hands each stream what it needs.

use std::rc::Rc;
use std::time::Duration;

use log::{error, info};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType};

use super::http::{AuthFilter, Unconfigured};
use super::wasm_host::{Metrics, WasmHost};
use crate::config::Config;

/// How often counters and the gauge reach Envoy's stats.
const METRICS_FLUSH: Duration = Duration::from_millis(200);

#[derive(Default)]
pub struct AuthRoot {
    active: Option<(Rc<Config>, Rc<Metrics>)>,
}

impl Context for AuthRoot {}

impl RootContext for AuthRoot {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        super::follow_host_log_level();
        true
    }

    /// Refusing a bad configuration here makes Envoy refuse it too, with our reason in its log.
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        super::follow_host_log_level();
        let bytes = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(status) => {
                error!("cannot read the plugin configuration: {status:?}");
                return false;
            }
        };
        let config = match Config::parse(&bytes) {
            Ok(config) => config,
            Err(err) => {
                error!("{err}");
                return false;
            }
        };
        let metrics = match Metrics::define(&config.stat_prefix) {
            Ok(metrics) => metrics,
            Err(status) => {
                error!(
                    "cannot define metrics under {}: {status:?}",
                    config.stat_prefix
                );
                return false;
            }
        };
        info!(
            "configured: rule {}, cluster {}, timeout {} ms, failure_mode_allow {}",
            config.rule.name(),
            config.auth_request.cluster,
            u64::try_from(config.auth_request.timeout.as_millis()).unwrap_or(u64::MAX),
            config.failure.allow
        );
        if let Some((_, old)) = &self.active {
            old.flush();
        }
        self.active = Some((Rc::new(config), Rc::new(metrics)));
        if let Err(status) = hostcalls::set_tick_period(METRICS_FLUSH) {
            error!("cannot set the metrics flush period: {status:?}");
            return false;
        }
        true
    }

    fn on_tick(&mut self) {
        if let Some((_, metrics)) = &self.active {
            metrics.flush();
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(match &self.active {
            Some((config, metrics)) => Box::new(AuthFilter::new(
                context_id,
                Rc::clone(config),
                WasmHost::new(Rc::clone(metrics)),
            )),
            None => Box::new(Unconfigured),
        })
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
