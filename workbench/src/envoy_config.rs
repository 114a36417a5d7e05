//! An Envoy bootstrap as data: load the shipped YAML, change addresses, plugin and clusters, write JSON.

use std::net::IpAddr;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};

use crate::paths;

#[derive(Debug, Clone)]
pub struct EnvoyConfig {
    root: Value,
}

pub const WASM_FILTER: &str = "envoy.filters.http.wasm";

impl EnvoyConfig {
    /// The seed topology from `envoy/envoy.yaml`.
    pub fn seed() -> Result<Self> {
        Self::load(&paths::seed_envoy_config())
    }

    /// The seed topology asking an ext_authz gRPC service, from `envoy/envoy-grpc.yaml`.
    pub fn seed_grpc() -> Result<Self> {
        Self::load(&paths::seed_grpc_envoy_config())
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let root: Value = serde_yaml_ng::from_str(&text)
            .with_context(|| format!("{} is not valid YAML", path.display()))?;
        Ok(EnvoyConfig { root })
    }

    /// A bootstrap given as data (for configs built entirely in code, like the benchmark's).
    pub fn from_value(root: Value) -> Self {
        EnvoyConfig { root }
    }

    pub fn as_value(&self) -> &Value {
        &self.root
    }

    pub fn as_value_mut(&mut self) -> &mut Value {
        &mut self.root
    }

    pub fn write_json(&self, path: &Path) -> Result<()> {
        std::fs::write(path, serde_json::to_vec_pretty(&self.root)?)
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Sets a top-level bootstrap field, e.g. `stats_flush_interval`.
    pub fn set_bootstrap_field(&mut self, field: &str, value: Value) -> &mut Self {
        self.root[field] = value;
        self
    }

    pub fn set_admin(&mut self, address: &str, port: u16) -> &mut Self {
        self.root["admin"] = json!({ "address": socket_address(address, port) });
        self
    }

    pub fn set_listener_address(
        &mut self,
        listener: &str,
        address: &str,
        port: u16,
    ) -> Result<&mut Self> {
        self.listener_mut(listener)?["address"] = socket_address(address, port);
        Ok(self)
    }

    pub fn remove_listener(&mut self, listener: &str) -> Result<&mut Self> {
        let listeners = self.array_mut("/static_resources/listeners")?;
        let before = listeners.len();
        listeners.retain(|l| l["name"] != listener);
        if listeners.len() == before {
            return Err(anyhow!("no listener named {listener}"));
        }
        Ok(self)
    }

    pub fn add_listener(&mut self, listener: Value) -> Result<&mut Self> {
        self.array_mut("/static_resources/listeners")?
            .push(listener);
        Ok(self)
    }

    pub fn add_cluster(&mut self, cluster: Value) -> Result<&mut Self> {
        self.array_mut("/static_resources/clusters")?.push(cluster);
        Ok(self)
    }

    /// A deep copy of a listener, to build variants of it (e.g. a second listener for comparison).
    pub fn listener(&self, listener: &str) -> Result<Value> {
        self.root
            .pointer("/static_resources/listeners")
            .and_then(Value::as_array)
            .and_then(|all| all.iter().find(|l| l["name"] == listener))
            .cloned()
            .ok_or_else(|| anyhow!("no listener named {listener}"))
    }

    /// Points a cluster at one endpoint; a hostname gets DNS resolution, an IP a static address.
    pub fn set_cluster_endpoint(
        &mut self,
        cluster: &str,
        host: &str,
        port: u16,
    ) -> Result<&mut Self> {
        let kind = if host.parse::<IpAddr>().is_ok() {
            "STATIC"
        } else {
            "STRICT_DNS"
        };
        let entry = self.cluster_mut(cluster)?;
        entry["type"] = json!(kind);
        entry["load_assignment"] = json!({
            "cluster_name": cluster,
            "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": socket_address(host, port) } }] }]
        });
        Ok(self)
    }

    /// Sets any field of a cluster, e.g. `circuit_breakers`.
    pub fn set_cluster_field(
        &mut self,
        cluster: &str,
        field: &str,
        value: Value,
    ) -> Result<&mut Self> {
        self.cluster_mut(cluster)?[field] = value;
        Ok(self)
    }

    /// Routes everything a listener receives to `cluster` (the seed's "httpbin as upstream" variant).
    pub fn set_route_cluster(&mut self, listener: &str, cluster: &str) -> Result<&mut Self> {
        let routes = self
            .hcm_mut(listener)?
            .pointer_mut("/route_config/virtual_hosts/0/routes")
            .and_then(Value::as_array_mut)
            .ok_or_else(|| anyhow!("listener {listener} has no routes"))?;
        for route in routes {
            route["route"] = json!({ "cluster": cluster });
        }
        Ok(self)
    }

    pub fn set_plugin_wasm(&mut self, listener: &str, wasm: &Path) -> Result<&mut Self> {
        let path = wasm.to_string_lossy().into_owned();
        self.plugin_mut(listener)?["vm_config"]["code"] = json!({ "local": { "filename": path } });
        Ok(self)
    }

    /// Sets the plugin's `configuration` (raw bytes to the plugin, here JSON text).
    pub fn set_plugin_configuration(
        &mut self,
        listener: &str,
        configuration: &str,
    ) -> Result<&mut Self> {
        self.plugin_mut(listener)?["configuration"] = json!({
            "@type": "type.googleapis.com/google.protobuf.StringValue",
            "value": configuration,
        });
        Ok(self)
    }

    /// The wasm `PluginConfig` of a listener's wasm filter, for any other change.
    pub fn plugin_mut(&mut self, listener: &str) -> Result<&mut Value> {
        self.http_filters_mut(listener)?
            .iter_mut()
            .find(|f| f["name"] == WASM_FILTER)
            .map(|f| &mut f["typed_config"]["config"])
            .ok_or_else(|| anyhow!("listener {listener} has no wasm filter"))
    }

    pub fn http_filters_mut(&mut self, listener: &str) -> Result<&mut Vec<Value>> {
        self.hcm_mut(listener)?
            .get_mut("http_filters")
            .and_then(Value::as_array_mut)
            .ok_or_else(|| anyhow!("listener {listener} has no http_filters"))
    }

    pub fn hcm_mut(&mut self, listener: &str) -> Result<&mut Value> {
        self.listener_mut(listener)?
            .pointer_mut("/filter_chains/0/filters/0/typed_config")
            .ok_or_else(|| anyhow!("listener {listener} has no HTTP connection manager"))
    }

    pub fn listener_mut(&mut self, listener: &str) -> Result<&mut Value> {
        self.array_mut("/static_resources/listeners")?
            .iter_mut()
            .find(|l| l["name"] == listener)
            .ok_or_else(|| anyhow!("no listener named {listener}"))
    }

    fn cluster_mut(&mut self, cluster: &str) -> Result<&mut Value> {
        self.array_mut("/static_resources/clusters")?
            .iter_mut()
            .find(|c| c["name"] == cluster)
            .ok_or_else(|| anyhow!("no cluster named {cluster}"))
    }

    fn array_mut(&mut self, pointer: &str) -> Result<&mut Vec<Value>> {
        self.root
            .pointer_mut(pointer)
            .and_then(Value::as_array_mut)
            .ok_or_else(|| anyhow!("the config has no {pointer}"))
    }
}

/// The shipped configs' limit on downstream connections (`overload_manager`), for bootstraps
/// built in code: Envoy warns at every start without one.
pub fn connection_limit() -> Result<Value> {
    let seed = EnvoyConfig::seed()?;
    seed.as_value()
        .get("overload_manager")
        .cloned()
        .ok_or_else(|| anyhow!("envoy/envoy.yaml has no overload_manager"))
}

/// An HTTP listener on 127.0.0.1 (port 0: the kernel chooses) running `filters` then the router.
pub fn http_listener(name: &str, filters: Vec<Value>, routes: Vec<Value>) -> Value {
    let mut chain = filters;
    chain.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" }
    }));
    json!({
        "name": name,
        "address": socket_address("127.0.0.1", 0),
        "filter_chains": [{ "filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": name,
                "normalize_path": true,
                "merge_slashes": true,
                "route_config": {
                    "name": name,
                    "virtual_hosts": [{ "name": name, "domains": ["*"], "routes": routes }]
                },
                "http_filters": chain
            }
        }]}]
    })
}

/// A route sending every path under `prefix` to `cluster`.
pub fn route(prefix: &str, cluster: &str) -> Value {
    json!({ "match": { "prefix": prefix }, "route": { "cluster": cluster } })
}

/// The plugin as an HTTP filter: `root_id` tells plugin instances sharing one VM apart.
pub fn plugin_filter(root_id: &str, wasm: &Path, configuration: &str) -> Value {
    json!({
        "name": WASM_FILTER,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": root_id,
                "root_id": root_id,
                "failure_policy": "FAIL_RELOAD",
                "vm_config": {
                    "vm_id": "http_auth_random",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": { "local": { "filename": wasm.to_string_lossy() } }
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": configuration
                }
            }
        }
    })
}

pub fn socket_address(address: &str, port: u16) -> Value {
    json!({ "socket_address": { "address": address, "port_value": port } })
}

/// A cluster with one plain-HTTP endpoint.
pub fn cluster(name: &str, host: &str, port: u16) -> Value {
    let kind = if host.parse::<IpAddr>().is_ok() {
        "STATIC"
    } else {
        "STRICT_DNS"
    };
    json!({
        "name": name,
        "connect_timeout": "1s",
        "type": kind,
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": socket_address(host, port) } }] }]
        }
    })
}

/// A cluster with one HTTP/2 (prior knowledge) endpoint, as gRPC services need.
pub fn h2_cluster(name: &str, host: &str, port: u16) -> Value {
    let mut cluster = cluster(name, host, port);
    cluster["typed_extension_protocol_options"] = h2_protocol_options();
    cluster
}

/// The protocol options that make a cluster speak HTTP/2 to its endpoints.
pub fn h2_protocol_options() -> Value {
    json!({"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "explicit_http_config": {"http2_protocol_options": {}}
    }})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_config_has_the_seed_topology() {
        let config = EnvoyConfig::seed().unwrap();
        let main = config.listener("main").unwrap();
        assert_eq!(main["address"]["socket_address"]["port_value"], 18000);
        assert!(config.listener("staticreply").is_ok());
        let mut config = config;
        let plugin = config.plugin_mut("main").unwrap();
        assert_eq!(plugin["vm_config"]["runtime"], "envoy.wasm.runtime.v8");
        assert_eq!(plugin["failure_policy"], "FAIL_RELOAD");
    }

    #[test]
    fn every_shipped_config_limits_downstream_connections() {
        for config in [
            EnvoyConfig::seed().unwrap(),
            EnvoyConfig::seed_grpc().unwrap(),
        ] {
            let monitors = &config.as_value()["overload_manager"]["resource_monitors"];
            let monitor = &monitors[0];
            assert_eq!(
                monitor["name"],
                "envoy.resource_monitors.global_downstream_max_connections"
            );
            assert!(
                monitor["typed_config"]["max_active_downstream_connections"]
                    .as_u64()
                    .unwrap()
                    >= 10_000
            );
        }
        assert_eq!(
            connection_limit().unwrap(),
            EnvoyConfig::seed_grpc().unwrap().as_value()["overload_manager"]
        );
    }

    #[test]
    fn edits_land_where_envoy_reads_them() {
        let mut config = EnvoyConfig::seed().unwrap();
        config
            .set_cluster_endpoint("httpbin", "127.0.0.1", 9)
            .unwrap();
        config.set_plugin_configuration("main", "{}").unwrap();
        config.set_route_cluster("main", "httpbin").unwrap();
        let root = config.as_value();
        let clusters = root["static_resources"]["clusters"].as_array().unwrap();
        let httpbin = clusters.iter().find(|c| c["name"] == "httpbin").unwrap();
        assert_eq!(httpbin["type"], "STATIC");
        let main = config.listener("main").unwrap();
        let hcm = &main["filter_chains"][0]["filters"][0]["typed_config"];
        assert_eq!(
            hcm["route_config"]["virtual_hosts"][0]["routes"][0]["route"]["cluster"],
            "httpbin"
        );
        assert_eq!(
            hcm["http_filters"][0]["typed_config"]["config"]["configuration"]["value"],
            "{}"
        );
    }
}
