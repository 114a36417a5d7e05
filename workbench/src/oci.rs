//! Packages a plugin as an OCI image in Istio's "compat" variant, without Docker: one tar+gzip
//! layer holding `plugin.wasm`, the manifest annotated `module.wasm.image/variant=compat`,
//! written as an OCI image layout directory and as a tarball of it (an `oci-archive`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use flate2::write::GzEncoder;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const VARIANT_ANNOTATION: &str = "module.wasm.image/variant";
/// The file name Istio looks for in a compat image's layer.
pub const WASM_FILE: &str = "plugin.wasm";

#[derive(Debug)]
pub struct Image {
    pub layout: PathBuf,
    pub tarball: PathBuf,
    pub manifest_digest: String,
    /// Every tag the layout's index now holds, this image's and earlier ones'.
    pub tags: Vec<String>,
}

/// The OCI distribution spec's grammar for a tag.
const TAG_GRAMMAR: &str = "^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$";

/// Whether `tag` is a valid OCI tag, with the reason if not.
pub fn check_tag(tag: &str) -> Result<()> {
    let grammar = regex::Regex::new(TAG_GRAMMAR)?;
    if !grammar.is_match(tag) {
        bail!(
            "{tag:?} is not a valid OCI tag: up to 128 characters of letters, digits, `_`, `.` and `-`, \
             not starting with `.` or `-`"
        );
    }
    Ok(())
}

/// Writes `out/<name>/` (the layout) and `out/<name>.tar`, with `tag` as the image's reference
/// name. Other tags already in the layout are kept; a tag given again moves to this image.
pub fn package(wasm: &Path, out: &Path, name: &str, tag: &str) -> Result<Image> {
    package_tags(wasm, out, name, &[tag])
}

/// `package` with several tags for the one image.
pub fn package_tags(wasm: &Path, out: &Path, name: &str, tags: &[&str]) -> Result<Image> {
    if tags.is_empty() {
        bail!("an image needs at least one tag");
    }
    for tag in tags {
        check_tag(tag)?;
    }
    let plugin = std::fs::read(wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
    let layout = out.join(name);
    let mut entries = kept_entries(&layout, tags)?;
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
    for tag in tags {
        entries.push(json!({
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": { REF_NAME: tag }
        }));
    }
    // Sorted by tag, so the same tags give the same index whatever order they came in.
    entries.sort_by_key(ref_name);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries
    });
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec_pretty(&index)?,
    )?;
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    remove_unreferenced_blobs(&layout, &entries)?;

    let tarball = out.join(format!("{name}.tar"));
    std::fs::write(&tarball, tar_of_dir(&layout)?)?;
    Ok(Image {
        layout,
        tarball,
        manifest_digest,
        tags: entries.iter().map(ref_name).collect(),
    })
}

const REF_NAME: &str = "org.opencontainers.image.ref.name";

fn ref_name(entry: &Value) -> String {
    entry["annotations"][REF_NAME]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The index entries of an existing layout whose tags are not being given again. A folder that
/// exists but is not an OCI layout is left alone: writing into it is an error.
fn kept_entries(layout: &Path, tags: &[&str]) -> Result<Vec<Value>> {
    if !layout.exists() {
        return Ok(Vec::new());
    }
    if !layout.join("oci-layout").is_file() {
        bail!(
            "{} exists and is not an OCI image layout; choose another --out",
            layout.display()
        );
    }
    let index = read_json(&layout.join("index.json"))
        .with_context(|| format!("cannot read {}/index.json", layout.display()))?;
    Ok(index["manifests"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|entry| !tags.contains(&ref_name(entry).as_str()))
        .collect())
}

/// Deletes blobs that no manifest in the index uses any more (those of a re-tagged image).
fn remove_unreferenced_blobs(layout: &Path, entries: &[Value]) -> Result<()> {
    let mut used = Vec::new();
    for entry in entries {
        let Some(manifest_digest) = entry["digest"].as_str() else {
            continue;
        };
        used.push(manifest_digest.to_owned());
        let manifest: Value = serde_json::from_slice(&read_blob(layout, manifest_digest)?)?;
        used.extend(manifest["config"]["digest"].as_str().map(str::to_owned));
        for layer in manifest["layers"].as_array().into_iter().flatten() {
            used.extend(layer["digest"].as_str().map(str::to_owned));
        }
    }
    let blobs = layout.join("blobs").join("sha256");
    for blob in std::fs::read_dir(&blobs)? {
        let path = blob?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if let Some(name) = name {
            if !used.contains(&format!("sha256:{name}")) {
                std::fs::remove_file(&path)?;
            }
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_the_oci_grammar() {
        for good in ["latest", "0.1.0", "v1_2-rc.3", "_x", &"a".repeat(128)] {
            check_tag(good).unwrap();
        }
        for bad in [
            "",
            ".hidden",
            "-x",
            "a/b",
            "a:b",
            "with space",
            &"a".repeat(129),
        ] {
            assert!(check_tag(bad).is_err(), "{bad:?} was accepted");
        }
    }

    fn wasm(dir: &Path, bytes: &[u8]) -> PathBuf {
        let path = dir.join(format!("plugin-{}.wasm", bytes.len()));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn a_second_tag_keeps_the_first_and_a_retag_moves_it() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("oci");
        let old = wasm(dir.path(), b"\0asm old");
        let new = wasm(dir.path(), b"\0asm newer");

        let first = package(&old, &out, "p", "0.1.0").unwrap();
        let second = package(&new, &out, "p", "latest").unwrap();
        assert_eq!(second.tags, ["0.1.0", "latest"]);
        let index = read_json(&second.layout.join("index.json")).unwrap();
        let digests: Vec<&str> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["digest"].as_str().unwrap())
            .collect();
        assert_eq!(digests, [&first.manifest_digest, &second.manifest_digest]);
        read_blob(&second.layout, &first.manifest_digest).unwrap();

        // 0.1.0 now names the new image: the old image's blobs go.
        let third = package(&new, &out, "p", "0.1.0").unwrap();
        assert_eq!(third.tags, ["0.1.0", "latest"]);
        assert_eq!(third.manifest_digest, second.manifest_digest);
        assert!(read_blob(&third.layout, &first.manifest_digest).is_err());
        let blobs = std::fs::read_dir(third.layout.join("blobs/sha256"))
            .unwrap()
            .count();
        assert_eq!(blobs, 3, "one manifest, its config and its layer");
    }

    #[test]
    fn a_folder_that_is_not_a_layout_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("p")).unwrap();
        std::fs::write(dir.path().join("p/keep.txt"), "mine").unwrap();
        let err = package(&wasm(dir.path(), b"\0asm"), dir.path(), "p", "x").unwrap_err();
        assert!(
            err.to_string().contains("is not an OCI image layout"),
            "{err}"
        );
        assert!(dir.path().join("p/keep.txt").exists());
    }
}
