//! The core's modules form layers: every `crate::` import points down, never in a circle, and
//! nothing in the core names a runtime. Read from the sources, so a new upward import fails here.

// A test: a failed read or a missing module is the failure it reports.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Test-only files, which may reach anywhere.
fn is_test_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name == "tests.rs"
        || name.ends_with("_tests.rs")
        || name == "properties.rs"
        || name == "mock_host.rs"
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") && !is_test_file(&path) {
            out.push(path);
        }
    }
}

/// The file's code without its inline test module.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]\nmod tests {") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// The top-level module a file belongs to (`flow` for `flow/call.rs`).
fn module_of(src: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_owned()
}

/// The top-level modules a file's code names as `crate::NAME`.
fn imports(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            found.insert(name);
        }
    }
    found
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let module = module_of(&src, &file);
        let edges = graph.entry(module.clone()).or_default();
        for target in imports(&code(&file)) {
            if target != module {
                edges.insert(target);
            }
        }
    }
    graph.remove("lib");
    graph
}

/// The modules in an order where each imports only earlier ones, or the circle that prevents it.
fn layers(graph: &BTreeMap<String, BTreeSet<String>>) -> Result<Vec<String>, Vec<String>> {
    let mut placed: Vec<String> = Vec::new();
    let mut left: BTreeSet<String> = graph.keys().cloned().collect();
    while !left.is_empty() {
        let ready: Vec<String> = left
            .iter()
            .filter(|m| {
                graph[*m]
                    .iter()
                    .all(|d| placed.contains(d) || !graph.contains_key(d))
            })
            .cloned()
            .collect();
        if ready.is_empty() {
            return Err(left.into_iter().collect());
        }
        for module in ready {
            left.remove(&module);
            placed.push(module);
        }
    }
    Ok(placed)
}

#[test]
fn every_import_points_down() {
    let graph = graph();
    match layers(&graph) {
        Ok(order) => println!("layers, bottom up: {}", order.join(" < ")),
        Err(circle) => {
            let edges: Vec<String> = circle
                .iter()
                .map(|m| format!("{m} -> {:?}", graph[m]))
                .collect();
            panic!(
                "modules import each other in a circle: {}",
                edges.join("; ")
            );
        }
    }
}

#[test]
fn the_layering_check_finds_a_circle() {
    let mut graph = BTreeMap::new();
    graph.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    graph.insert("b".to_owned(), BTreeSet::from(["a".to_owned()]));
    graph.insert("c".to_owned(), BTreeSet::from(["a".to_owned()]));
    assert!(layers(&graph).is_err());
    graph.insert("b".to_owned(), BTreeSet::new());
    assert_eq!(
        layers(&graph).unwrap(),
        vec!["b".to_owned(), "a".to_owned(), "c".to_owned()]
    );
}

#[test]
fn the_core_names_no_runtime_and_forbids_unsafe() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    assert!(lib.contains("#![forbid(unsafe_code)]"));
    let mut files = Vec::new();
    sources(&src, &mut files);
    for file in files {
        let code = code(&file);
        for runtime in [
            "proxy_wasm",
            "extern \"C\"",
            "envoy_dynamic_module",
            "wasm32",
        ] {
            assert!(
                !code.contains(runtime),
                "{} names a runtime ({runtime})",
                file.display()
            );
        }
    }
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    assert!(!manifest.contains("proxy-wasm"));
}
