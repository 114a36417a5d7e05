//! Where things are in the repository, found from this crate's location rather than the cwd.

use std::path::{Path, PathBuf};

/// The repository root (the Cargo workspace).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

pub fn default_plugin_dir() -> PathBuf {
    repo_root().join("plugins").join("http_auth_random")
}

pub fn envoy_dir() -> PathBuf {
    repo_root().join("envoy")
}

/// The seed topology's Envoy config, the one source every run and test starts from.
pub fn seed_envoy_config() -> PathBuf {
    envoy_dir().join("envoy.yaml")
}

/// The same topology with the plugin asking an ext_authz gRPC service (cluster `authz`).
pub fn seed_grpc_envoy_config() -> PathBuf {
    envoy_dir().join("envoy-grpc.yaml")
}

pub fn venv_dir() -> PathBuf {
    std::env::var_os("WORKBENCH_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"))
}

pub fn requirements() -> PathBuf {
    repo_root().join("tools").join("requirements.txt")
}

/// gunicorn's settings for the local httpbin.
pub fn gunicorn_config() -> PathBuf {
    repo_root()
        .join("workbench")
        .join("python")
        .join("gunicorn_httpbin.py")
}

pub fn build_script() -> PathBuf {
    repo_root().join("scripts").join("build-plugin.sh")
}

/// Where the test build of the plugin goes (see `plugin::build_test_variant`).
pub fn test_plugin_wasm() -> PathBuf {
    repo_root()
        .join("target")
        .join("test-plugins")
        .join("http_auth_random-test-switches.wasm")
}
