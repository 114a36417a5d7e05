//! `cargo xtask package`: the plugin as an OCI image (Istio's compat variant), without Docker.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use workbench::tools::{self, Tool};
use workbench::{oci, paths, plugin};

#[derive(Args)]
pub struct PackageArgs {
    /// Plugin folder (default: plugins/http_auth_random).
    plugin_dir: Option<PathBuf>,
    /// Reference name (OCI tag) recorded in the layout's index; repeat it for several. Tags
    /// already in the layout stay; a tag given again moves to the new image.
    #[arg(long = "tag", default_value = "latest", value_parser = parse_tag)]
    tags: Vec<String>,
    /// Output folder (default: target/oci).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn parse_tag(tag: &str) -> Result<String> {
    oci::check_tag(tag)?;
    Ok(tag.to_owned())
}

pub fn package(args: PackageArgs) -> Result<()> {
    let plugin_dir = args.plugin_dir.unwrap_or_else(paths::default_plugin_dir);
    tools::ensure("package", &[Tool::WasmTarget, Tool::WasmOpt])?;
    let wasm = plugin::build(&plugin_dir, &[])?;
    let out = args
        .out
        .unwrap_or_else(|| paths::repo_root().join("target").join("oci"));
    std::fs::create_dir_all(&out)?;
    let name = plugin_dir
        .file_name()
        .map_or_else(|| "plugin".to_owned(), |n| n.to_string_lossy().into_owned());
    let tags: Vec<&str> = args.tags.iter().map(String::as_str).collect();
    let image = oci::package_tags(&wasm, &out, &name, &tags)?;
    println!("OCI image layout: {}", image.layout.display());
    println!("OCI archive:      {}", image.tarball.display());
    println!("manifest:         {}", image.manifest_digest);
    println!(
        "tags:             {} (this image: {})",
        image.tags.join(", "),
        tags.join(", ")
    );
    for tag in &tags {
        println!(
            "push it with:     skopeo copy oci:{}:{tag} docker://REGISTRY/{name}:{tag}",
            image.layout.display(),
        );
    }
    Ok(())
}
