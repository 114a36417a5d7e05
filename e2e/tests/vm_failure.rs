//! What happens when the VM itself fails: the shipped `failure_policy: FAIL_CLOSED` turns a trap
//! into 503s, for that request and every later one, never into an allow. The trap switch exists
//! only in the test build of the plugin.

use e2e::{closed_port, config, seed_config, Reply, Stack};
use serde_json::json;
use workbench::envoy::{Envoy, EnvoyOptions};
use workbench::plugin;

#[tokio::test]
async fn a_trapping_plugin_gives_503_not_an_allow() {
    let plugin = config(json!({"test_switches": {"trap_on_path": "/trap"}}));
    let stack = Stack::builder(&plugin)
        .auth(|_| Reply::ok("a"))
        .await
        .wasm(plugin::built_test_variant().unwrap())
        .start()
        .await;
    assert!(
        stack.get("/before").await.reached_upstream(),
        "the plugin works until it traps"
    );
    let trapped = stack.get("/trap").await;
    assert_eq!(trapped.status, 503, "{trapped:?}");
    // The VM is gone: later requests, which would not trap, are refused too.
    for _ in 0..3 {
        let seen = stack.get("/after").await;
        assert_eq!(seen.status, 503, "{seen:?}");
    }
    let upstream = stack.upstream.seen();
    assert_eq!(
        upstream.len(),
        1,
        "only the request before the trap went upstream"
    );
    assert_eq!(upstream[0].path, "/before");
    assert!(
        stack.envoy.log().contains("trapping on purpose"),
        "the panic hook logged the reason"
    );
}

#[tokio::test]
async fn release_builds_have_no_test_switches() {
    let plugin = config(json!({"test_switches": {"trap_on_path": "/trap"}}));
    let config = seed_config(&plugin, closed_port().await, closed_port().await).unwrap();
    match Envoy::start(&config, &EnvoyOptions::default()).await {
        Ok(_) => panic!("the release plugin accepted test_switches"),
        Err(err) => assert!(
            format!("{err:#}").contains("unknown field `test_switches`"),
            "{err:#}"
        ),
    }
}
