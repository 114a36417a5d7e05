//! What only the native dynamic module does, in a real Envoy: Envoy's per-route settings
//! (`DynamicModuleFilterPerRoute`), dynamic metadata that later filters and the router read,
//! one decision cache shared by every worker, and a panic answered 500 with Envoy serving on.
//! `cargo xtask test` runs this file against the native shell only (`AUTHZ_SHELL=native`).

use std::time::Duration;

use e2e::{config, shell, Reply, Shell, Stack};
use serde_json::json;
use workbench::envoy::EnvoyOptions;
use workbench::envoy_config::EnvoyConfig;
use workbench::grpc_auth::pb::OkHttpResponse;
use workbench::grpc_auth::GrpcReply;
use workbench::shell::{built_module, route_settings};

fn native_only() {
    assert_eq!(
        shell(),
        Shell::Native,
        "these tests are about the native module: run them with AUTHZ_SHELL=native \
         (`cargo xtask test --shell native native` does)"
    );
}

/// Puts a route for `prefix` to the upstream first on the main listener, with these module
/// settings (JSON) if any, and these request headers added by the router.
fn route(
    prefix: &'static str,
    settings: Option<serde_json::Value>,
    headers_to_add: serde_json::Value,
) -> impl FnOnce(&mut EnvoyConfig) -> anyhow::Result<()> + Send + 'static {
    move |envoy| {
        let mut route = json!({
            "match": { "prefix": prefix },
            "route": { "cluster": "staticreply" },
            "request_headers_to_add": headers_to_add,
        });
        if let Some(settings) = settings {
            route["typed_per_filter_config"] =
                route_settings(&built_module(false)?, &settings.to_string());
        }
        envoy
            .hcm_mut("main")?
            .pointer_mut("/route_config/virtual_hosts/0/routes")
            .and_then(serde_json::Value::as_array_mut)
            .ok_or_else(|| anyhow::anyhow!("the main listener has no routes"))?
            .insert(0, route);
        Ok(())
    }
}

#[tokio::test]
async fn a_route_with_disabled_settings_is_not_checked_and_the_others_are() {
    native_only();
    let stack = Stack::builder(&config(json!({"decision": "status"})))
        .auth(|_| Reply::status(403, "no"))
        .await
        .configure(route("/open", Some(json!({"disabled": true})), json!([])))
        .start()
        .await;
    assert!(stack.get("/open/page").await.reached_upstream());
    assert!(
        stack.auth_seen().is_empty(),
        "a disabled route is not checked"
    );
    assert_eq!(stack.get("/closed").await.status, 403);
    assert_eq!(stack.auth_seen().len(), 1);
}

#[tokio::test]
async fn envoys_per_route_settings_win_over_the_filters_routes_rules() {
    native_only();
    // The `routes` rule would send `/own` checks to a cluster that does not exist (503); the
    // route's own settings, which win, send them under a path prefix instead.
    let plugin = config(json!({
        "decision": "status",
        "routes": [{"name": "nowhere", "match": {"path_prefix": "/"}, "cluster": "no_such_cluster"}],
    }));
    let stack = Stack::builder(&plugin)
        .auth(|_| Reply::ok(""))
        .await
        .configure(route(
            "/own",
            Some(json!({"path_prefix": "/route-settings"})),
            json!([]),
        ))
        .start()
        .await;
    assert!(stack.get("/own/page").await.reached_upstream());
    let seen = stack.auth_seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/route-settings/own/page");
    // Elsewhere the rule applies: its cluster is unknown to Envoy, so the request gets 503.
    assert_eq!(stack.get("/elsewhere").await.status, 503);
    assert_eq!(stack.auth_seen().len(), 1);
}

#[tokio::test]
async fn a_routes_context_extensions_are_merged_over_the_filters() {
    native_only();
    let plugin = config(json!({
        "protocol": "grpc",
        "context_extensions": {"app": "shop", "tier": "base"},
    }));
    let settings =
        json!({"check_settings": {"context_extensions": {"tenant": "t1", "tier": "gold"}}});
    let stack = Stack::builder(&plugin)
        .grpc_auth(|_| GrpcReply::allow(OkHttpResponse::default()))
        .await
        .configure(route("/tenant", Some(settings), json!([])))
        .start()
        .await;
    assert!(stack.get("/tenant/a").await.reached_upstream());
    assert!(stack.get("/other").await.reached_upstream());
    let seen = stack.grpc_auth.as_ref().unwrap().seen();
    let extensions: Vec<std::collections::BTreeMap<String, String>> = seen
        .iter()
        .map(|check| {
            let attributes = check.request.attributes.as_ref().unwrap();
            attributes.context_extensions.clone().into_iter().collect()
        })
        .collect();
    let expected = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(
        extensions,
        vec![
            expected(&[("app", "shop"), ("tenant", "t1"), ("tier", "gold")]),
            expected(&[("app", "shop"), ("tier", "base")]),
        ]
    );
}

#[tokio::test]
async fn answer_headers_named_for_dynamic_metadata_reach_the_router() {
    native_only();
    let plugin = config(json!({
        "decision": "status",
        "dynamic_metadata_from_headers": [{"exact": "x-tier"}],
    }));
    let seen_tier = json!([{ "header": {
        "key": "x-seen-tier",
        "value": "%DYNAMIC_METADATA(http_auth_native:x-tier)%"
    }}]);
    let stack = Stack::builder(&plugin)
        .auth(|_| Reply::ok("").header("x-tier", "gold"))
        .await
        .configure(route("/", None, seen_tier))
        .start()
        .await;
    assert!(stack.get("/page").await.reached_upstream());
    let upstream = stack.upstream.seen();
    assert_eq!(upstream[0].header("x-seen-tier"), Some("gold"));
    assert_eq!(upstream[0].header("x-tier"), None, "metadata, not a header");
}

#[tokio::test]
async fn a_grpc_answers_dynamic_metadata_reaches_the_router() {
    native_only();
    let seen_tier = json!([{ "header": {
        "key": "x-seen-tier",
        "value": "%DYNAMIC_METADATA(http_auth_native:tier)%"
    }}]);
    let stack = Stack::builder(&config(json!({"protocol": "grpc"})))
        .grpc_auth(|_| GrpcReply::allow_with_metadata(&[("tier", "gold")]))
        .await
        .configure(route("/", None, seen_tier))
        .start()
        .await;
    assert!(stack.get("/page").await.reached_upstream());
    assert_eq!(stack.upstream.seen()[0].header("x-seen-tier"), Some("gold"));
}

#[tokio::test]
async fn every_worker_shares_one_cache() {
    native_only();
    let plugin = config(json!({
        "decision": "status",
        "cache": {"key": ["authorization"], "ttl_ms": 60000},
    }));
    let stack = Stack::builder(&plugin)
        .auth(|_| Reply::ok(""))
        .await
        .configure(|envoy| {
            envoy.listener_mut("main")?["stat_prefix"] = json!("main");
            Ok(())
        })
        .envoy_options(EnvoyOptions {
            concurrency: 2,
            ..EnvoyOptions::default()
        })
        .start()
        .await;
    for _ in 0..30 {
        // A new connection each time, so the kernel spreads them over both workers.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let seen = stack
            .send(
                client
                    .get(format!("{}/page", stack.base))
                    .header("authorization", "Bearer shared"),
            )
            .await;
        assert!(seen.reached_upstream());
    }
    for worker in 0..2 {
        let name = format!("listener.main.worker_{worker}.downstream_cx_total");
        assert!(
            stack.stat(&name).await > 0,
            "worker {worker} took no connection"
        );
    }
    assert_eq!(stack.auth_seen().len(), 1, "one call for both workers");
}

/// The test build of the module, panicking on purpose on `/trap`.
async fn trapping_stack() -> Stack {
    let plugin = config(json!({
        "decision": "status",
        "test_switches": {"trap_on_path": "/trap"},
    }));
    Stack::builder(&plugin)
        .auth(|_| Reply::ok(""))
        .await
        .wasm(workbench::paths::test_plugin_wasm())
        .start()
        .await
}

#[tokio::test]
async fn a_panic_in_the_module_is_answered_500_and_envoy_serves_on() {
    native_only();
    let stack = trapping_stack().await;
    assert_eq!(stack.get("/trap").await.status, 500);
    assert!(stack.get("/after").await.reached_upstream());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(stack.envoy.log().contains("panicked"));
}

#[tokio::test]
async fn bad_route_settings_are_refused_by_envoy_naming_the_field() {
    native_only();
    let plugin = config(json!({"decision": "status"}));
    let config =
        e2e::seed_config(&plugin, e2e::closed_port().await, e2e::closed_port().await).unwrap();
    let mut config = config;
    route("/r", Some(json!({"disabled": "yes"})), json!([]))(&mut config).unwrap();
    let err = match workbench::envoy::Envoy::start(&config, &EnvoyOptions::default()).await {
        Ok(_) => panic!("Envoy accepted bad route settings"),
        Err(err) => format!("{err:#}"),
    };
    assert!(err.contains("disabled"), "the field is not named:\n{err}");
}

#[tokio::test]
async fn a_route_in_shadow_lets_denies_through_and_the_others_enforce_them() {
    native_only();
    let stack = Stack::builder(&config(json!({"decision": "status"})))
        .auth(|_| Reply::status(403, "no"))
        .await
        .configure(route("/try", Some(json!({"shadow": true})), json!([])))
        .start()
        .await;
    assert!(stack.get("/try/new-policy").await.reached_upstream());
    assert_eq!(stack.get("/enforced").await.status, 403);
    assert_eq!(stack.auth_seen().len(), 2, "both were checked");
    assert_eq!(stack.plugin_stat("shadow_denied").await, 1);
    assert_eq!(stack.plugin_stat("denied").await, 2);
}

/// A gRPC answer frame (uncompressed, length-prefixed) around `message`.
fn grpc_frame(message: &[u8]) -> Vec<u8> {
    let mut framed = vec![0];
    framed.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    framed.extend_from_slice(message);
    framed
}

#[tokio::test]
async fn a_grpc_check_answered_with_http_500_fails_closed_even_with_grpc_status_0() {
    // Envoy's own gRPC client (ext_authz, the wasm shell) fails a call whose :status is not 200,
    // whatever grpc-status the trailers carry. The module read the message and allowed.
    native_only();
    let plugin = config(json!({"protocol": "grpc", "timeout_ms": 500}));
    let stack = Stack::builder(&plugin)
        .auth(|_: &e2e::SeenRequest| {
            // An empty CheckResponse is an OK: an allow, if the 500 were ignored.
            Reply::status(500, grpc_frame(&[]))
                .header("content-type", "application/grpc")
                .trailer("grpc-status", "0")
        })
        .await
        .h2_auth()
        .start()
        .await;
    let seen = stack.get("/page").await;
    assert!(
        !seen.reached_upstream(),
        "a 500 from the check service let the request through"
    );
    assert_eq!(seen.status, 403);
}

#[tokio::test]
async fn a_panic_answers_a_grpc_client_with_a_failed_grpc_status() {
    // fail_closed() called Envoy's send_response directly: Envoy 1.40 turns a module's local
    // reply to a gRPC client into `200` + `grpc-status: 0`, i.e. success.
    native_only();
    let stack = trapping_stack().await;
    let client = reqwest::Client::new();
    let seen = stack
        .send(
            client
                .post(format!("{}/trap", stack.base))
                .header("content-type", "application/grpc")
                .body(Vec::<u8>::new()),
        )
        .await;
    assert!(!seen.reached_upstream());
    let status = seen.header("grpc-status");
    assert!(
        status.is_some() && status != Some("0"),
        "a gRPC client was told the trapped request succeeded: grpc-status {status:?}"
    );
}
