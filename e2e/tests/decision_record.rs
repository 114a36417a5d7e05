//! The decision record in a real Envoy, in both shells: with `record_decisions`, what became of
//! a request (verdict, reason, cache, the call's duration) is where Envoy's formatters read it,
//! here a header the router adds from it: dynamic metadata in the native module, filter state in
//! the wasm plugin.

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
