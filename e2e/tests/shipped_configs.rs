//! Every Envoy config the project ships passes `envoy --mode validate`: the wasm plugin's with
//! the built main.wasm, the native module's with the built module (which Envoy loads, checking
//! the filter's and each route's settings with the module's own parser).

use std::path::{Path, PathBuf};

use e2e::seed_config;
use serde_json::Value;
use workbench::envoy::Envoy;
use workbench::envoy_config::EnvoyConfig;
use workbench::shell::{built_module, MODULE_NAME, NATIVE_FILTER};
use workbench::{paths, plugin};

/// Where the shipped native configs say the module goes (docs/native.md says the same).
const SHIPPED_MODULE_PATH: &str = "/etc/envoy/modules/libhttp_auth_native.so";

/// The shipped configs, each with whether it is for the native module (it names Envoy's
/// dynamic-module filter) rather than the wasm plugin.
fn shipped_configs() -> Vec<(PathBuf, bool)> {
    let mut configs = Vec::new();
    for entry in std::fs::read_dir(paths::envoy_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        configs.push((path, text.contains(NATIVE_FILTER)));
    }
    configs.sort();
    configs
}

async fn validate(path: &Path, config: &EnvoyConfig, dir: &Path) {
    let rendered = dir.join(path.file_name().unwrap()).with_extension("json");
    config.write_json(&rendered).unwrap();
    if let Err(err) = Envoy::validate(&rendered).await {
        panic!("{} does not validate: {err:#}", path.display());
    }
}

#[tokio::test]
async fn every_shipped_envoy_config_passes_validate() {
    let wasm = plugin::built_wasm(&paths::default_plugin_dir()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for (path, native) in shipped_configs() {
        if native {
            continue; // the next test, with the module
        }
        // Only the plugin's location changes: the shipped file points at the container's path.
        let mut config = EnvoyConfig::load(&path).unwrap();
        config.set_plugin_wasm("main", &wasm).unwrap();
        validate(&path, &config, dir.path()).await;
        checked += 1;
    }
    assert!(checked >= 1, "no envoy/*.yaml for the wasm plugin found");
}

/// Points every `dynamic_module_config` (the filter's, and each route's settings) at `module`,
/// after checking it names the module and the shipped path; returns how many there were.
fn point_at_module(value: &mut Value, module: &Path, file: &Path) -> usize {
    let mut found = 0;
    match value {
        Value::Object(map) => {
            if let Some(module_config) = map.get_mut("dynamic_module_config") {
                assert_eq!(
                    module_config["name"],
                    MODULE_NAME,
                    "{}: dynamic_module_config.name",
                    file.display()
                );
                let filename = module_config.pointer_mut("/module/local/filename");
                let filename = filename.unwrap_or_else(|| {
                    panic!(
                        "{}: a dynamic_module_config without module.local.filename",
                        file.display()
                    )
                });
                assert_eq!(
                    *filename,
                    SHIPPED_MODULE_PATH,
                    "{}: the module's documented place",
                    file.display()
                );
                *filename = Value::from(module.to_string_lossy().into_owned());
                found += 1;
            }
            for child in map.values_mut() {
                found += point_at_module(child, module, file);
            }
        }
        Value::Array(items) => {
            for item in items {
                found += point_at_module(item, module, file);
            }
        }
        _ => {}
    }
    found
}

#[tokio::test]
async fn every_shipped_native_module_config_passes_validate_with_the_built_module() {
    let module = built_module(false).unwrap_or_else(|err| {
        panic!(
            "envoy/envoy-native.yaml is validated with the built native module, and there is \
             none: {err:#}"
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let mut checked = Vec::new();
    for (path, native) in shipped_configs() {
        if !native {
            continue;
        }
        let mut config = EnvoyConfig::load(&path).unwrap();
        let found = point_at_module(config.as_value_mut(), &module, &path);
        // The filter, and the settings of at least one route (`/healthz`, in envoy-native.yaml).
        assert!(
            found >= 2,
            "{}: {found} dynamic_module_config found, expected the filter's and a route's",
            path.display()
        );
        let filter = config
            .http_filters_mut("main")
            .unwrap()
            .iter()
            .find(|f| f["name"] == NATIVE_FILTER)
            .cloned()
            .unwrap_or_else(|| panic!("{}: no {NATIVE_FILTER} on main", path.display()));
        assert_eq!(
            filter["typed_config"]["filter_name"],
            MODULE_NAME,
            "{}: filter_name, the dynamic metadata namespace the docs name",
            path.display()
        );
        validate(&path, &config, dir.path()).await;
        checked.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    assert!(
        checked.iter().any(|name| name == "envoy-native.yaml"),
        "envoy/envoy-native.yaml not found among {checked:?}"
    );
}

#[tokio::test]
async fn the_rendered_test_config_passes_validate() {
    let config = seed_config("{}", 1, 2).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rendered = dir.path().join("test.json");
    config.write_json(&rendered).unwrap();
    Envoy::validate(&rendered).await.unwrap();
}
