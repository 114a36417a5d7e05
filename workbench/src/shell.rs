//! Which shell the filter runs in (the proxy-wasm plugin or the native dynamic module), and
//! turning a config written for the plugin into the same one for the module: the end-to-end
//! tests, `run` and `soak` serve either from one set of configs.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::envoy_config::{EnvoyConfig, WASM_FILTER};
use crate::{paths, process};

/// Envoy's dynamic-module HTTP filter.
pub const NATIVE_FILTER: &str = "envoy.filters.http.dynamic_modules";
/// The module's name, and its dynamic metadata namespace.
pub const MODULE_NAME: &str = "http_auth_native";
/// The environment variable that picks the shell (`wasm`, the default, or `native`).
pub const SHELL_VAR: &str = "AUTHZ_SHELL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    Wasm,
    Native,
}

impl Shell {
    /// The shell `AUTHZ_SHELL` names.
    pub fn current() -> Shell {
        match std::env::var(SHELL_VAR).as_deref() {
            Ok("native") => Shell::Native,
            _ => Shell::Wasm,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Shell::Wasm => "wasm",
            Shell::Native => "native",
        }
    }

    pub fn parse(name: &str) -> Result<Shell> {
        match name {
            "wasm" => Ok(Shell::Wasm),
            "native" => Ok(Shell::Native),
            other => bail!("unknown shell {other:?}: wasm or native"),
        }
    }

    /// Where Envoy puts the filter's own stats: `<namespace><stat_prefix>.<name>`.
    pub fn stats_namespace(self) -> &'static str {
        match self {
            Shell::Wasm => "wasmcustom.",
            Shell::Native => "dynamicmodulescustom.",
        }
    }
}

/// Where a build of the module goes: `release` is what is served, `test` has the test switches.
pub fn module_path(test_switches: bool) -> PathBuf {
    paths::repo_root()
        .join("target")
        .join("native-module")
        .join(if test_switches { "test" } else { "release" })
        .join(format!("lib{MODULE_NAME}.so"))
}

/// Builds the module (profile `native`) and copies it to `module_path`.
pub fn build_module(test_switches: bool) -> Result<PathBuf> {
    let target_dir = paths::repo_root().join("target").join(if test_switches {
        "native-test-build"
    } else {
        "native-build"
    });
    let mut command = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()));
    process::die_with_parent_std(&mut command);
    command
        .current_dir(paths::repo_root())
        .args(["build", "--quiet", "--profile", "native", "-p", MODULE_NAME])
        .arg("--target-dir")
        .arg(&target_dir);
    if test_switches {
        command.args(["--features", "test-switches"]);
    }
    let status = command.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("building the native module failed ({status})");
    }
    let built = target_dir
        .join("native")
        .join(format!("lib{MODULE_NAME}.so"));
    let out = module_path(test_switches);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::copy(&built, &out)
        .with_context(|| format!("cannot copy {} to {}", built.display(), out.display()))?;
    Ok(out)
}

/// A built module, or a clear error saying how to build it.
pub fn built_module(test_switches: bool) -> Result<PathBuf> {
    let path = module_path(test_switches);
    if !path.is_file() {
        bail!(
            "{} is missing: `cargo xtask build --shell native` builds it (cargo xtask test does this first)",
            path.display()
        );
    }
    Ok(path)
}

fn module_config(module: &Path) -> Value {
    json!({
        "name": MODULE_NAME,
        "module": { "local": { "filename": module.to_string_lossy() } }
    })
}

/// The module as an HTTP filter, with the filter's JSON configuration.
pub fn native_filter(module: &Path, configuration: &str) -> Value {
    json!({
        "name": NATIVE_FILTER,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
            "dynamic_module_config": module_config(module),
            "filter_name": MODULE_NAME,
            "filter_config": {
                "@type": "type.googleapis.com/google.protobuf.StringValue",
                "value": configuration
            }
        }
    })
}

/// A route's `typed_per_filter_config` giving the module these settings (JSON text, in
/// `ExtAuthzPerRoute`'s shape).
pub fn route_settings(module: &Path, settings: &str) -> Value {
    json!({ NATIVE_FILTER: {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilterPerRoute",
        "dynamic_module_config": module_config(module),
        "filter_name": MODULE_NAME,
        "filter_config": {
            "@type": "type.googleapis.com/google.protobuf.StringValue",
            "value": settings
        }
    }})
}

impl EnvoyConfig {
    /// Every wasm filter of the plugin becomes the module with the same configuration; the
    /// test build of the plugin becomes the test build of the module.
    pub fn use_native_module(&mut self) -> Result<&mut Self> {
        let test_wasm = paths::test_plugin_wasm();
        let Some(listeners) = self
            .as_value_mut()
            .pointer_mut("/static_resources/listeners")
            .and_then(Value::as_array_mut)
        else {
            return Ok(self);
        };
        for listener in listeners {
            let Some(chains) = listener
                .get_mut("filter_chains")
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for chain in chains {
                let Some(filters) = chain
                    .pointer_mut("/filters/0/typed_config/http_filters")
                    .and_then(Value::as_array_mut)
                else {
                    continue;
                };
                for filter in filters.iter_mut().filter(|f| f["name"] == WASM_FILTER) {
                    let plugin = &filter["typed_config"]["config"];
                    let wasm = plugin
                        .pointer("/vm_config/code/local/filename")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let test = Path::new(wasm) == test_wasm;
                    let configuration = plugin
                        .pointer("/configuration/value")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    *filter = native_filter(&built_module(test)?, &configuration);
                }
            }
        }
        Ok(self)
    }
}
