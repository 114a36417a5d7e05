//! `cargo xtask bench --quick` runs and writes well-formed results. No timing is asserted here:
//! the benchmark measures, tests only check that it works.

use std::process::Command;

use serde_json::Value;
use workbench::paths;

#[test]
fn a_quick_bench_writes_json_and_svg_for_every_configuration() {
    let out = tempfile::tempdir().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .current_dir(paths::repo_root())
        .args([
            "run",
            "--quiet",
            "--package",
            "xtask",
            "--",
            "bench",
            "--quick",
            "--rounds",
            "1",
            "--seconds",
            "1",
            "--out",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "cargo xtask bench --quick failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&status.stderr)
    );
    // What a terminal shows stays narrow; the full table goes to the file.
    for line in stdout.lines() {
        assert!(
            line.chars().count() <= 100,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    assert!(
        stdout.contains("a --quick run is too short to judge them"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("NOT met"),
        "a quick run judges nothing:\n{stdout}"
    );
    assert!(
        stdout.contains("  noop-wasm      a wasm filter that does nothing"),
        "the legend explains the rows:\n{stdout}"
    );
    let chart = out.path().join("bench-allow.svg");
    assert!(
        stdout.contains(&format!("  chart: {}", chart.display())),
        "the chart's path is printed:\n{stdout}"
    );
    let markdown = std::fs::read_to_string(out.path().join("bench-allow.md")).unwrap();
    assert!(
        markdown.contains("| configuration | Envoy CPU µs/req |"),
        "{markdown}"
    );
    assert!(markdown.contains("- `plugin-cached`: "), "{markdown}");

    let report: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("bench-allow.json")).unwrap())
            .unwrap();
    assert_eq!(report["path"], "allow");
    assert!(report["main_wasm_bytes"].as_u64().unwrap() > 0);
    let summary = report["summary"].as_array().unwrap();
    let names: Vec<&str> = summary
        .iter()
        .map(|s| s["setup"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "none",
            "noop-wasm",
            "ext_authz",
            "plugin-fnv",
            "plugin-status",
            "plugin-json",
            "plugin-authzen",
            "plugin-cached",
            "ext_authz-grpc",
            "plugin-grpc",
            "native-fnv",
            "native-cached",
            "native-grpc"
        ]
    );
    for setup in summary {
        assert!(setup["requests"].as_u64().unwrap() > 0, "{setup}");
        assert_eq!(setup["non_2xx"], 0, "the allow path allows: {setup}");
        for figure in [
            "envoy_cpu_us_per_request",
            "requests_per_second",
            "p99_ms",
            "envoy_rss_mib",
        ] {
            assert!(
                setup[figure]["median"].as_f64().unwrap() > 0.0,
                "{figure} in {setup}"
            );
        }
    }
    let plugin = summary.iter().find(|s| s["setup"] == "plugin-fnv").unwrap();
    assert!(plugin["cpu_vs_ext_authz"]["median"].as_f64().unwrap() > 0.0);
    assert_eq!(report["runs"].as_array().unwrap().len(), 13);
    // Every request is checked, except by the cache, where one request repeated is a hit.
    let calls = |name: &str| {
        summary.iter().find(|s| s["setup"] == name).unwrap()["auth_calls_per_request"]["median"]
            .as_f64()
            .unwrap()
    };
    for checked in [
        "ext_authz",
        "plugin-fnv",
        "plugin-json",
        "plugin-authzen",
        "ext_authz-grpc",
        "plugin-grpc",
        "native-fnv",
        "native-grpc",
    ] {
        assert!(calls(checked) > 0.99, "{checked}: {}", calls(checked));
    }
    for cached in ["plugin-cached", "native-cached"] {
        assert!(calls(cached) < 0.01, "{cached}: {}", calls(cached));
    }
    assert_eq!(calls("none"), 0.0);

    let svg = std::fs::read_to_string(out.path().join("bench-allow.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("plugin-fnv") && svg.contains("ext_authz"));
}

#[test]
fn a_quick_mixed_workload_bench_counts_the_auth_calls_the_cache_saves() {
    let out = tempfile::tempdir().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .current_dir(paths::repo_root())
        .args([
            "run",
            "--quiet",
            "--package",
            "xtask",
            "--",
            "bench",
            "--quick",
            "--rounds",
            "1",
            "--seconds",
            "2",
            "--workload",
            "mixed",
            "--only",
            "ext_authz,plugin-cached",
            "--out",
        ])
        .arg(out.path())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "cargo xtask bench --workload mixed failed"
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("bench-allow-mixed.json")).unwrap())
            .unwrap();
    assert_eq!(report["workload"], "1000 credentials, Zipf");
    let summary = report["summary"].as_array().unwrap();
    let calls = |name: &str| {
        summary.iter().find(|s| s["setup"] == name).unwrap()["auth_calls_per_request"]["median"]
            .as_f64()
            .unwrap()
    };
    assert!(calls("ext_authz") > 0.99);
    // At most one call per credential (1,000) for thousands of requests.
    let cached = calls("plugin-cached");
    assert!(cached > 0.0 && cached < 0.5, "{cached}");
}
