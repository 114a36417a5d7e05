//! Packages a plugin as an OCI image in Istio's "compat" variant, without Docker: one tar+gzip
//! layer holding `plugin.wasm`, the manifest annotated `module.wasm.image/variant=compat`,
//! written as an OCI image layout directory and as a tarball of it (an `oci-archive`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use flate2::write::GzEncoder;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const VARIANT_ANNOTATION: &str = "module.wasm.image/variant";
/// The file name Istio looks for in a compat image's layer.
pub const WASM_FILE: &str = "plugin.wasm";

pub struct Image {
    pub layout: PathBuf,
    pub tarball: PathBuf,
    pub manifest_digest: String,
}

/// Writes `out/<name>/` (the layout) and `out/<name>.tar`; `tag` becomes the reference name.
pub fn package(wasm: &Path, out: &Path, name: &str, tag: &str) -> Result<Image> {
    let plugin = std::fs::read(wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
    let layout = out.join(name);
    if layout.exists() {
        std::fs::remove_dir_all(&layout)?;
    }
    let blobs = layout.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs)?;

    let layer_tar = tar_of(&[(WASM_FILE, &plugin)])?;
    let layer = gzip(&layer_tar)?;
    let layer_digest = write_blob(&blobs, &layer)?;
    let config = serde_json::to_vec(&json!({
        "architecture": "wasm",
        "os": "wasip1",
        "rootfs": { "type": "layers", "diff_ids": [digest(&layer_tar)] },
        "config": {}
    }))?;
    let config_digest = write_blob(&blobs, &config)?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": { "mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config.len() },
        "layers": [{
            "mediaType": LAYER_MEDIA_TYPE,
            "digest": layer_digest,
            "size": layer.len(),
            "annotations": { "org.opencontainers.image.title": WASM_FILE }
        }],
        "annotations": {
            VARIANT_ANNOTATION: "compat",
            "org.opencontainers.image.title": name
        }
    }))?;
    let manifest_digest = write_blob(&blobs, &manifest)?;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": { "org.opencontainers.image.ref.name": tag }
        }]
    });
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec_pretty(&index)?,
    )?;
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;

    let tarball = out.join(format!("{name}.tar"));
    std::fs::write(&tarball, tar_of_dir(&layout)?)?;
    Ok(Image {
        layout,
        tarball,
        manifest_digest,
    })
}

/// `sha256:<hex>` of some bytes.
pub fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn write_blob(blobs: &Path, bytes: &[u8]) -> Result<String> {
    let digest = digest(bytes);
    let hex = digest.trim_start_matches("sha256:");
    std::fs::write(blobs.join(hex), bytes)?;
    Ok(digest)
}

/// A tar of in-memory files with fixed metadata, so the same plugin gives the same digests.
fn tar_of(files: &[(&str, &[u8])]) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        builder.append_data(&mut header, path, *bytes)?;
    }
    Ok(builder.into_inner()?)
}

fn tar_of_dir(dir: &Path) -> Result<Vec<u8>> {
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    files.sort();
    let contents: Vec<(String, Vec<u8>)> = files
        .into_iter()
        .map(|(relative, path)| Ok((relative, std::fs::read(path)?)))
        .collect::<Result<_>>()?;
    let borrowed: Vec<(&str, &[u8])> = contents
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_slice()))
        .collect();
    tar_of(&borrowed)
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(root, &path, files)?;
        } else {
            let relative = path.strip_prefix(root)?.to_string_lossy().into_owned();
            files.push((relative, path));
        }
    }
    Ok(())
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    // flate2 writes no timestamp into the gzip header, so the layer digest is reproducible.
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?)
}

/// Reads a JSON blob of a layout by digest.
pub fn read_blob(layout: &Path, digest: &str) -> Result<Vec<u8>> {
    let hex = digest.trim_start_matches("sha256:");
    std::fs::read(layout.join("blobs").join("sha256").join(hex))
        .with_context(|| format!("no blob {digest}"))
}

pub fn read_json(path: &Path) -> Result<Value> {
    Ok(serde_json::from_slice(&std::fs::read(path)?)?)
}
