//! What happens when the VM itself fails: the shipped `failure_policy: FAIL_CLOSED` turns a trap
//! into 503s, never into an allow. The trap switch exists only in the test build of the plugin.

use e2e::{closed_port, config, seed_config, Reply, Stack};
use serde_json::json;
use workbench::envoy::{Envoy, EnvoyOptions};
use workbench::plugin;

#[tokio::test]
async fn a_trapping_plugin_gives_503_not_an_allow() {
    let plugin = config(json!({"test_switches": {"trap_on_request": true}}));
    let stack = Stack::builder(&plugin)
        .auth(|_| Reply::ok("a"))
        .await
        .wasm(plugin::built_test_variant().unwrap())
        .start()
        .await;
    for _ in 0..3 {
        let seen = stack.get("/uuid").await;
        assert_eq!(seen.status, 503, "{seen:?}");
    }
    assert!(
        stack.upstream.seen().is_empty(),
        "a trapped VM let a request through"
    );
    assert!(stack.auth_seen().is_empty());
    assert!(
        stack.envoy.log().contains("trapping on purpose"),
        "the panic hook logged the reason"
    );
}

#[tokio::test]
async fn release_builds_have_no_test_switches() {
    let plugin = config(json!({"test_switches": {"trap_on_request": true}}));
    let config = seed_config(&plugin, closed_port().await, closed_port().await).unwrap();
    match Envoy::start(&config, &EnvoyOptions::default()).await {
        Ok(_) => panic!("the release plugin accepted test_switches"),
        Err(err) => assert!(
            format!("{err:#}").contains("unknown field `test_switches`"),
            "{err:#}"
        ),
    }
}
