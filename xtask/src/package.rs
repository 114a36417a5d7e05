//! `cargo xtask package`: the plugin as an OCI image (Istio's compat variant), without Docker.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use workbench::{oci, paths, plugin};

#[derive(Args)]
pub struct PackageArgs {
    /// Plugin folder (default: plugins/http_auth_random).
    plugin_dir: Option<PathBuf>,
    /// Reference name recorded in the layout's index.
    #[arg(long, default_value = "latest")]
    tag: String,
    /// Output folder (default: target/oci).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn package(args: PackageArgs) -> Result<()> {
    let plugin_dir = args.plugin_dir.unwrap_or_else(paths::default_plugin_dir);
    let wasm = plugin::build(&plugin_dir, &[])?;
    let out = args
        .out
        .unwrap_or_else(|| paths::repo_root().join("target").join("oci"));
    std::fs::create_dir_all(&out)?;
    let name = plugin_dir
        .file_name()
        .map_or_else(|| "plugin".to_owned(), |n| n.to_string_lossy().into_owned());
    let image = oci::package(&wasm, &out, &name, &args.tag)?;
    println!("OCI image layout: {}", image.layout.display());
    println!("OCI archive:      {}", image.tarball.display());
    println!("manifest:         {}", image.manifest_digest);
    println!(
        "push it with:     skopeo copy oci:{}:{} docker://REGISTRY/{name}:{}",
        image.layout.display(),
        args.tag,
        args.tag
    );
    Ok(())
}
