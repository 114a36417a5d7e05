//! The decision record in a real Envoy, in both shells: with `record_decisions`, what became of
//! a request (verdict, reason, cache, the call's duration) is where Envoy's formatters read it,
//! here a header the router adds from it and an access log: dynamic metadata in the native
//! module, filter state in the wasm plugin.

use e2e::{config, shell, Reply, Shell, Stack};
use serde_json::json;

/// The router adds `x-decision` from the record, as an access log would print it.
fn record_header() -> serde_json::Value {
    let value = match shell() {
        Shell::Native => {
            "%DYNAMIC_METADATA(http_auth_native:verdict)% \
                          %DYNAMIC_METADATA(http_auth_native:reason)% \
                          %DYNAMIC_METADATA(http_auth_native:cache)%"
        }
        Shell::Wasm => "%FILTER_STATE(wasm.http_auth_decision:PLAIN)%",
    };
    json!([{ "header": { "key": "x-decision", "value": value } }])
}

/// What the record says, as (verdict, reason, cache).
fn read(header: Option<&str>) -> (String, String, String) {
    let header = header.unwrap_or_default();
    let parts: Vec<String> = match shell() {
        Shell::Native => header.split(' ').map(str::to_owned).collect(),
        Shell::Wasm => header
            .split(' ')
            .filter_map(|pair| pair.split_once('='))
            .filter(|(name, _)| ["verdict", "reason", "cache"].contains(name))
            .map(|(_, value)| value.to_owned())
            .collect(),
    };
    match parts.as_slice() {
        [verdict, reason, cache] => (verdict.clone(), reason.clone(), cache.clone()),
        _ => panic!("no decision record in {header:?}"),
    }
}

#[tokio::test]
async fn an_allow_a_cache_hit_and_an_exempt_request_are_recorded() {
    let plugin = config(json!({
        "decision": "status",
        "record_decisions": true,
        "cache": {"key": ["authorization"], "ttl_ms": 60000},
        "exempt": {"path_prefixes": ["/health"]},
    }));
    let headers = record_header();
    let stack = Stack::builder(&plugin)
        .auth(|_| Reply::ok(""))
        .await
        .configure(move |envoy| {
            let routes = envoy
                .hcm_mut("main")?
                .pointer_mut("/route_config/virtual_hosts/0/routes")
                .and_then(serde_json::Value::as_array_mut)
                .ok_or_else(|| anyhow::anyhow!("no routes"))?;
            for route in routes {
                route["request_headers_to_add"] = headers.clone();
            }
            Ok(())
        })
        .start()
        .await;
    let token = |n| {
        stack
            .client
            .get(format!("{}/page/{n}", stack.base))
            .header("authorization", "Bearer alice")
    };
    assert!(stack.send(token(1)).await.reached_upstream());
    assert!(stack.send(token(2)).await.reached_upstream());
    assert!(stack.get("/health").await.reached_upstream());
    let seen = stack.upstream.seen();
    let records: Vec<_> = seen.iter().map(|r| read(r.header("x-decision"))).collect();
    let expected = |v: &str, r: &str, c: &str| (v.to_owned(), r.to_owned(), c.to_owned());
    assert_eq!(
        records,
        vec![
            expected("allow", "allowed", "miss"),
            expected("allow", "allowed", "hit"),
            expected("exempt", "exempt", "none"),
        ]
    );
    assert_eq!(stack.auth_seen().len(), 1);
}

/// The record of each request as Envoy's access log printed it (a file access log on the main
/// listener, in the format `cargo xtask run --log-decisions` uses), by the request's path.
fn access_log(path: &std::path::Path) -> serde_json::Value {
    json!([{
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": path.to_string_lossy(),
            "log_format": { "json_format": {
                "path": "%REQ(:PATH)%",
                "status": "%RESPONSE_CODE%",
                "record": workbench::decision_log::record_format()
            }}
        }
    }])
}

/// The log's records by path, as name → value (Envoy's "-" for an absent value left out), once
/// `count` lines are there (Envoy writes the file every second).
async fn logged(
    file: &std::path::Path,
    count: usize,
) -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        if lines.len() >= count || std::time::Instant::now() > deadline {
            return lines
                .iter()
                .map(|line| {
                    let record = line["record"].as_str().unwrap_or_default();
                    let fields = record
                        .split(' ')
                        .filter_map(|pair| pair.split_once('='))
                        .filter(|(_, value)| !value.is_empty() && *value != "-")
                        .map(|(name, value)| (name.to_owned(), value.to_owned()))
                        .collect();
                    (line["path"].as_str().unwrap_or_default().to_owned(), fields)
                })
                .collect();
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_access_log_prints_the_record_of_every_kind_of_decision() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let plugin = config(json!({
        "decision": "status",
        "record_decisions": true,
        "max_calls_in_flight": 1,
        "cache": {"key": ["authorization"], "ttl_ms": 300, "stale_if_error_ms": 60000},
        "exempt": {"path_prefixes": ["/health"]},
        "routes": [{"name": "reports", "match": {"path_prefix": "/reports/"}, "timeout_ms": 5000}],
    }));
    let log = std::env::temp_dir().join(format!(
        "authz-record-{}-{:?}.log",
        std::process::id(),
        std::time::SystemTime::now()
    ));
    let log_path = log.clone();
    let down = Arc::new(AtomicBool::new(false));
    let auth_down = Arc::clone(&down);
    let stack = Stack::builder(&plugin)
        .auth(move |request| {
            let token = request.header("authorization").unwrap_or_default();
            if auth_down.load(Ordering::SeqCst) {
                Reply::status(503, "down")
            } else if token == "Bearer mallory" {
                Reply::status(403, "no")
            } else if token == "Bearer slow" {
                Reply::ok("").after(std::time::Duration::from_millis(800))
            } else {
                Reply::ok("")
            }
        })
        .await
        .configure(move |envoy| {
            envoy.hcm_mut("main")?["access_log"] = access_log(&log_path);
            Ok(())
        })
        .start()
        .await;
    let get = |path: &str, token: &str| {
        stack
            .client
            .get(format!("{}{path}", stack.base))
            .header("authorization", format!("Bearer {token}"))
    };
    assert!(stack.send(get("/miss", "alice")).await.reached_upstream());
    assert!(stack.send(get("/hit", "alice")).await.reached_upstream());
    assert_eq!(stack.send(get("/deny", "mallory")).await.status, 403);
    assert!(stack.get("/health").await.reached_upstream());
    assert!(stack
        .send(get("/reports/q3", "bob"))
        .await
        .reached_upstream());
    // One call in flight at most: a second request while it waits is refused as overloaded.
    let slow = stack.send(get("/slow", "slow"));
    let over = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        stack.send(get("/over", "carol")).await
    };
    let (slow, over) = tokio::join!(slow, over);
    assert!(slow.reached_upstream());
    assert_eq!(over.status, 503, "{over:?}");
    // Alice's allow has expired; with the service failing it is served stale.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    down.store(true, Ordering::SeqCst);
    assert!(stack.send(get("/stale", "alice")).await.reached_upstream());

    let records = logged(&log, 8).await;
    let _ = std::fs::remove_file(&log);
    let field = |path: &str, name: &str| {
        records
            .get(path)
            .and_then(|fields| fields.get(name))
            .cloned()
            .unwrap_or_else(|| panic!("no {name} for {path} in {records:?}"))
    };
    for (path, verdict, reason, cache) in [
        ("/miss", "allow", "allowed", "miss"),
        ("/hit", "allow", "allowed", "hit"),
        ("/deny", "deny", "denied_403", "miss"),
        ("/health", "exempt", "exempt", "none"),
        ("/reports/q3", "allow", "allowed", "miss"),
        ("/over", "overload", "overloaded_503", "miss"),
        ("/stale", "allow", "allowed", "stale"),
    ] {
        assert_eq!(
            (
                field(path, "verdict"),
                field(path, "reason"),
                field(path, "cache")
            ),
            (verdict.to_owned(), reason.to_owned(), cache.to_owned()),
            "{path}: {records:?}"
        );
    }
    assert_eq!(field("/reports/q3", "rule"), "reports");
    assert!(!records["/miss"].contains_key("rule"), "{records:?}");
    assert!(records["/miss"].contains_key("auth_ms"), "{records:?}");
}
