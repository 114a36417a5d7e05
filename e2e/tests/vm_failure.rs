//! What happens when the VM itself fails. The shipped `failure_policy: FAIL_RELOAD` turns a trap
//! into a 503 for that request and a fresh VM, with the same configuration, for later ones;
//! `FAIL_CLOSED` refuses every later request instead. Neither ever lets a request through. The
//! trap switch exists only in the test build of the plugin.

use std::time::{Duration, Instant};

use e2e::{closed_port, config, seed_config, Reply, Stack};
use serde_json::json;
use workbench::envoy::{Envoy, EnvoyOptions};
use workbench::plugin;
use workbench::soak::VMS_CREATED;

/// The status rule, so that a fresh VM with the seed's default configuration (the FNV rule)
/// would answer differently: a 401 relayed proves the configuration came back with the VM.
fn trapping_stack_config() -> String {
    config(json!({"decision": "status", "test_switches": {"trap_on_path": "/trap"}}))
}

async fn trapping_stack(failure_policy: &'static str) -> Stack {
    Stack::builder(&trapping_stack_config())
        .auth(|request| {
            if request.path == "/deny" {
                Reply::status(401, "who are you").header("www-authenticate", "Basic")
            } else {
                Reply::ok("")
            }
        })
        .await
        .wasm(plugin::built_test_variant().unwrap())
        .configure(move |config| {
            config.plugin_mut("main")?["failure_policy"] = json!(failure_policy);
            Ok(())
        })
        .start()
        .await
}

#[tokio::test]
async fn with_fail_reload_a_trap_costs_one_503_and_a_fresh_vm_serves_the_same_configuration() {
    let stack = trapping_stack("FAIL_RELOAD").await;
    assert!(stack.get("/before").await.reached_upstream());
    let vms_before = stack.stat(VMS_CREATED).await;
    let trapped = stack.get("/trap").await;
    assert_eq!(trapped.status, 503, "{trapped:?}");
    assert!(
        stack.envoy.log().contains("trapping on purpose"),
        "the panic hook logged the reason"
    );
    // Envoy waits at least a second before reloading; until then, 503s, never an allow.
    let started = Instant::now();
    let served = loop {
        let seen = stack.get("/after").await;
        if seen.reached_upstream() {
            break true;
        }
        assert_eq!(seen.status, 503, "{seen:?}");
        if started.elapsed() > Duration::from_secs(15) {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(served, "no fresh VM served within 15 s");
    let denied = stack.get("/deny").await;
    assert_eq!(
        (denied.status, denied.header("www-authenticate")),
        (401, Some("Basic")),
        "the fresh VM has the status rule: the same configuration"
    );
    assert!(
        stack.stat(VMS_CREATED).await > vms_before,
        "Envoy created a new VM"
    );
    let upstream: Vec<String> = stack.upstream.seen().into_iter().map(|r| r.path).collect();
    assert_eq!(
        upstream,
        ["/before", "/after"],
        "nothing else went upstream"
    );
}

#[tokio::test]
async fn with_fail_closed_a_trap_refuses_every_later_request() {
    let stack = trapping_stack("FAIL_CLOSED").await;
    assert!(stack.get("/before").await.reached_upstream());
    assert_eq!(stack.get("/trap").await.status, 503);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    for _ in 0..3 {
        let seen = stack.get("/after").await;
        assert_eq!(seen.status, 503, "{seen:?}");
    }
    let upstream: Vec<String> = stack.upstream.seen().into_iter().map(|r| r.path).collect();
    assert_eq!(upstream, ["/before"]);
}

#[tokio::test]
async fn release_builds_have_no_test_switches() {
    let config = seed_config(
        &trapping_stack_config(),
        closed_port().await,
        closed_port().await,
    )
    .unwrap();
    match Envoy::start(&config, &EnvoyOptions::default()).await {
        Ok(_) => panic!("the release plugin accepted test_switches"),
        Err(err) => assert!(
            format!("{err:#}").contains("unknown field `test_switches`"),
            "{err:#}"
        ),
    }
}
