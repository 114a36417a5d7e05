//! What Envoy's filter and per-route configurations become in this module: checked once when
//! Envoy loads them (a bad one is refused, with the field named in Envoy's log), then shared by
//! every worker.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use authz_core::config::{Config, RouteOverrides};
use authz_core::host::MetricKind;
use authz_core::metrics;

use crate::ffi::envoy::ConfigHandle;
use crate::store::SharedStore;

/// Root ids have bit 31 set, so that they never meet a stream id (counted up from 1).
const ROOT_BIT: u32 = 1 << 31;

static NEXT_ROOT: AtomicU32 = AtomicU32::new(0);

/// A metric Envoy defined for this configuration: its kind and Envoy's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    pub kind: MetricKind,
    pub id: usize,
}

/// One filter configuration, as every worker shares it.
pub struct ModuleConfig {
    /// The id of this configuration's root in each worker.
    pub root_id: u32,
    /// The JSON, which each worker parses into its own root (the core's state is per thread).
    pub bytes: Vec<u8>,
    /// The dynamic metadata namespace: the filter's name, as ext_authz writes under its own.
    pub namespace: String,
    /// The metrics by the names the core asks for, and in the order it defines them.
    pub metric_ids: HashMap<String, u32>,
    pub metrics: Vec<Metric>,
    pub store: Arc<SharedStore>,
    /// Envoy's side of the configuration, for its metrics.
    pub envoy: ConfigHandle,
    /// The most of an answer's body (or gRPC message) the core may read.
    pub max_answer_bytes: usize,
}

impl ModuleConfig {
    /// Checks the configuration and defines its metrics with `define`; the error names the
    /// field and the reason.
    pub fn new(
        envoy: ConfigHandle,
        namespace: &str,
        bytes: &[u8],
        mut define: impl FnMut(MetricKind, &str) -> Option<usize>,
    ) -> Result<ModuleConfig, String> {
        let config = Config::parse(bytes).map_err(|err| err.to_string())?;
        let mut metric_ids = HashMap::new();
        let mut metrics = Vec::new();
        for (kind, name) in metrics::definitions(&config.stat_prefix) {
            let id = define(kind, &name).ok_or_else(|| format!("cannot define metric {name}"))?;
            let index = u32::try_from(metrics.len()).map_err(|_| "too many metrics")?;
            metric_ids.insert(name, index);
            metrics.push(Metric { kind, id });
        }
        // Said once here, not by each worker as it configures its own root.
        authz_core::worker::announce(&config, true);
        // One store for the filter, its `routes` rules and the per-route settings of Envoy's
        // routes, each one's entries under keys of its own: room for all the filter's, and for
        // at least the default number.
        let capacity = std::iter::once(&config)
            .chain(config.routes.iter().map(|rule| &*rule.config))
            .filter_map(|config| config.cache.as_ref())
            .map(|cache| u64::from(cache.max_entries))
            .sum::<u64>()
            // Envoy's per-route settings may bring caches of their own later, into this store.
            .max(authz_core::config::DEFAULT_CACHE_MAX_ENTRIES);
        Ok(ModuleConfig {
            root_id: ROOT_BIT | (NEXT_ROOT.fetch_add(1, Ordering::Relaxed) & !ROOT_BIT),
            bytes: bytes.to_vec(),
            namespace: namespace.to_owned(),
            metric_ids,
            metrics,
            store: Arc::new(SharedStore::new(capacity)),
            envoy,
            max_answer_bytes: config.max_response_body_bytes,
        })
    }

    pub fn metric(&self, index: u32) -> Option<Metric> {
        self.metrics.get(usize::try_from(index).ok()?).copied()
    }
}

/// The route settings this module made and Envoy still holds, by address. Envoy hands a filter
/// the most specific per-route configuration under the filter's name whichever module made it
/// (two dynamic-module filters may share a name): only one of these is ever read as ours.
static ROUTES: Mutex<BTreeSet<usize>> = Mutex::new(BTreeSet::new());

fn routes() -> std::sync::MutexGuard<'static, BTreeSet<usize>> {
    ROUTES.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Records route settings this module handed to Envoy.
pub fn remember_route(address: usize) {
    routes().insert(address);
}

/// Forgets route settings Envoy is destroying.
pub fn forget_route(address: usize) {
    routes().remove(&address);
}

/// Whether Envoy's per-route pointer is route settings this module made and still holds.
pub fn is_our_route(address: usize) -> bool {
    routes().contains(&address)
}

/// A route's settings (`DynamicModuleFilterPerRoute`'s config), checked once.
pub struct RouteConfig {
    /// An id for the route's settings, the same for the same JSON.
    pub id: u64,
    pub overrides: RouteOverrides,
}

impl RouteConfig {
    pub fn new(bytes: &[u8]) -> Result<RouteConfig, String> {
        let overrides = RouteOverrides::parse(bytes).map_err(|err| err.to_string())?;
        let mut id = [0u8; 8];
        for (slot, byte) in id.iter_mut().zip(overrides.fingerprint.iter()) {
            *slot = *byte;
        }
        Ok(RouteConfig {
            id: u64::from_le_bytes(id),
            overrides,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defined(json: &str) -> Result<ModuleConfig, String> {
        let mut next = 0;
        ModuleConfig::new(
            ConfigHandle::new(std::ptr::null_mut()),
            "authz",
            json.as_bytes(),
            |_, _| {
                next += 1;
                Some(next)
            },
        )
    }

    #[test]
    fn a_bad_configuration_is_refused_naming_the_field() {
        let err = defined(r#"{"decison": "status"}"#).err().unwrap();
        assert!(err.contains("decison"), "{err}");
    }

    #[test]
    fn every_metric_the_core_asks_for_is_defined_and_roots_never_meet_streams() {
        let config = defined(r#"{"decision": "status"}"#).unwrap();
        let expected = metrics::definitions(authz_core::config::DEFAULT_STAT_PREFIX);
        assert_eq!(config.metrics.len(), expected.len());
        for (_, name) in expected {
            assert!(config.metric_ids.contains_key(&name), "{name}");
        }
        assert_ne!(config.root_id & ROOT_BIT, 0);
        assert_ne!(defined("{}").unwrap().root_id, config.root_id);
    }

    #[test]
    fn route_settings_are_checked_and_the_same_json_is_the_same_route() {
        assert!(RouteConfig::new(br#"{"disabeld": true}"#).is_err());
        let a = RouteConfig::new(br#"{"disabled": true}"#).unwrap();
        let b = RouteConfig::new(br#"{"disabled": true}"#).unwrap();
        assert_eq!(a.id, b.id);
    }
}
