//! A configuration's way in: parsed and checked against what the host can do, its metrics
//! defined, and what is in force said once in the log.

use std::rc::Rc;

use log::{error, info, warn};

use crate::config::{Config, Protocol, Rule};
use crate::host::Host;
use crate::metrics::Stats;

/// The configuration and its metrics, or `None` with the reason logged.
pub fn parse_for(host: &impl Host, bytes: &[u8]) -> Option<(Rc<Config>, Stats)> {
    let config = match Config::parse(bytes) {
        Ok(config) => Rc::new(config),
        Err(err) => {
            error!("{err}");
            return None;
        }
    };
    if !config.response.metadata_from.is_empty() && !host.writes_dynamic_metadata() {
        error!(
            "invalid configuration: dynamic_metadata_from_headers: this shell cannot write \
             dynamic metadata (wasm filters cannot: envoy #15148)"
        );
        return None;
    }
    let mut stats = Stats::default();
    if let Err(err) = stats.define(host, &config.stat_prefix) {
        error!("cannot define metrics under {}: {err}", config.stat_prefix);
        return None;
    }
    Some((config, stats))
}

/// Says what is in force, and warns of what an operator should know about it.
pub fn announce(config: &Config, body_delivered_while_paused: bool) {
    info!(
        "configured: rule {}, cluster {}, timeout {} ms, failure_mode_allow {}, max_orphaned_calls {}",
        config.rule.name(),
        config.auth_request.cluster,
        u64::try_from(config.auth_request.timeout.as_millis()).unwrap_or(u64::MAX),
        config.failure.allow,
        config.limits.max_orphaned_calls,
    );
    if config.rule == Rule::FnvParity && config.protocol == Protocol::Http {
        warn!(
            "decision fnv_parity, the seed's demo rule, is in force: an even FNV-1a hash \
             of the answer's body allows"
        );
    }
    if config.request_body.is_some() && !body_delivered_while_paused {
        warn!("{}", crate::flow::BODY_FLAG_HINT);
    }
}
