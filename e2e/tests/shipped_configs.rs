//! Every Envoy config the project ships passes `envoy --mode validate`.

use e2e::seed_config;
use workbench::envoy::Envoy;
use workbench::envoy_config::EnvoyConfig;
use workbench::{paths, plugin};

#[tokio::test]
async fn every_shipped_envoy_config_passes_validate() {
    let wasm = plugin::built_wasm(&paths::default_plugin_dir()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let mut checked = 0;
    for entry in std::fs::read_dir(paths::envoy_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        // Only the plugin's location changes: the shipped file points at the container's path.
        let mut config = EnvoyConfig::load(&path).unwrap();
        config.set_plugin_wasm("main", &wasm).unwrap();
        let rendered = dir.join(path.file_name().unwrap()).with_extension("json");
        config.write_json(&rendered).unwrap();
        if let Err(err) = Envoy::validate(&rendered).await {
            panic!("{} does not validate: {err:#}", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 1, "no envoy/*.yaml found");
}

#[tokio::test]
async fn the_rendered_test_config_passes_validate() {
    let config = seed_config("{}", 1, 2).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rendered = dir.path().join("test.json");
    config.write_json(&rendered).unwrap();
    Envoy::validate(&rendered).await.unwrap();
}
