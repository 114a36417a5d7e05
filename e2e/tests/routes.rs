//! `routes` in a real Envoy, in both shells: which rule a request falls under (by Envoy's route
//! name, its virtual host, the host, the path and the method, first match wins), what a rule
//! changes, and that no trick of the client's moves a request to another rule.
//!
//! Each rule sends its check under a path prefix of its own, so the auth service's log says
//! which rule a request fell under; a disabled rule sends none.

use e2e::{config, raw, Reply, Stack};
use serde_json::{json, Value};

/// Envoy's routes: the admin host has a virtual host of its own; on any other host, `/orders`
/// is the route named `orders` and the rest is `catch-all`.
fn route_config() -> Value {
    let to_upstream = json!({ "cluster": "staticreply" });
    json!({
        "name": "local_route",
        "virtual_hosts": [
            { "name": "admin-vh", "domains": ["admin.example.com", "admin.example.com:*"],
              "routes": [{ "name": "admin-all", "match": { "prefix": "/" }, "route": to_upstream }] },
            { "name": "shop-vh", "domains": ["*"],
              "routes": [
                  { "name": "orders", "match": { "prefix": "/orders" }, "route": to_upstream },
                  { "name": "catch-all", "match": { "prefix": "/" }, "route": to_upstream }
              ] }
        ]
    })
}

fn plugin() -> String {
    config(json!({
        "decision": "status",
        "routes": [
            { "name": "health", "match": { "path": "/healthz" }, "disabled": true },
            { "name": "admin_host", "match": { "virtual_host": "admin-vh" }, "path_prefix": "/rule-admin-host" },
            { "name": "orders_write", "match": { "route_name": "orders", "methods": ["POST"] }, "path_prefix": "/rule-orders-write" },
            { "name": "orders", "match": { "route_name": "orders" }, "path_prefix": "/rule-orders" },
            { "name": "api_admin", "match": { "path_prefix": "/api/admin/" }, "path_prefix": "/rule-api-admin" },
            { "name": "public", "match": { "path_prefix": "/public/", "authority": "shop.example.com" },
              "path_prefix": "/rule-public", "failure_mode_allow": true }
        ]
    }))
}

/// The check for the admin prefix is denied, every other one allowed.
fn auth_service(request: &e2e::SeenRequest) -> Reply {
    if request.path.starts_with("/rule-api-admin") {
        Reply::status(403, "admins only")
    } else {
        Reply::ok("")
    }
}

async fn stack() -> Stack {
    Stack::builder(&plugin())
        .auth(auth_service)
        .await
        .configure(|envoy| {
            envoy.hcm_mut("main")?["route_config"] = route_config();
            Ok(())
        })
        .start()
        .await
}

/// The rule the last check was sent under (the first segment of its path), or "" for the
/// filter's own settings; `None` if no check was sent.
fn last_rule(stack: &Stack, before: usize) -> Option<String> {
    let seen = stack.auth_seen();
    if seen.len() == before {
        return None;
    }
    let path = seen.last()?.path.clone();
    Some(
        path.strip_prefix("/rule-")
            .map(|rest| rest.split('/').next().unwrap_or_default().to_owned())
            .unwrap_or_default(),
    )
}

async fn rule_for(stack: &Stack, method: &str, host: &str, path: &str) -> (u16, Option<String>) {
    let before = stack.auth_seen().len();
    let request = stack
        .client
        .request(method.parse().unwrap(), format!("{}{path}", stack.base))
        .header("host", host);
    let seen = stack.send(request).await;
    (seen.status, last_rule(stack, before))
}

#[tokio::test]
async fn rules_match_by_route_name_virtual_host_host_path_and_method_first_match_wins() {
    let stack = stack().await;
    let rule = |s: &str| Some(s.to_owned());
    for (method, host, path, status, expected) in [
        // A disabled rule: no call at all.
        ("GET", "shop.example.com", "/healthz", 200, None),
        // By virtual host (before any path rule below it).
        (
            "GET",
            "admin.example.com",
            "/api/admin/users",
            200,
            rule("admin-host"),
        ),
        // By route name, and by route name and method: the first that matches wins.
        (
            "POST",
            "shop.example.com",
            "/orders/1",
            200,
            rule("orders-write"),
        ),
        ("GET", "shop.example.com", "/orders/1", 200, rule("orders")),
        // By path prefix; this rule's service denies.
        (
            "GET",
            "shop.example.com",
            "/api/admin/users",
            403,
            rule("api-admin"),
        ),
        // By path and host, the host read without regard to case; with a port or a trailing
        // dot it is another host, as it is to Envoy's virtual hosts.
        (
            "GET",
            "Shop.Example.COM",
            "/public/logo.png",
            200,
            rule("public"),
        ),
        (
            "GET",
            "shop.example.com:8443",
            "/public/logo.png",
            200,
            rule(""),
        ),
        (
            "GET",
            "shop.example.com.",
            "/public/logo.png",
            200,
            rule(""),
        ),
        // No rule: the filter's own settings (no path prefix).
        (
            "GET",
            "other.example.com",
            "/public/logo.png",
            200,
            rule(""),
        ),
        ("GET", "shop.example.com", "/api/users", 200, rule("")),
    ] {
        assert_eq!(
            rule_for(&stack, method, host, path).await,
            (status, expected.clone()),
            "{method} {host} {path}"
        );
    }
}

#[tokio::test]
async fn a_rules_settings_apply_to_its_requests_only() {
    // The auth service is down: the `public` rule fails open, everything else closed.
    let stack = Stack::builder(&plugin())
        .configure(|envoy| {
            envoy.hcm_mut("main")?["route_config"] = route_config();
            Ok(())
        })
        .start()
        .await;
    let public = stack
        .send(
            stack
                .client
                .get(format!("{}/public/a.css", stack.base))
                .header("host", "shop.example.com"),
        )
        .await;
    assert!(public.reached_upstream(), "{public:?}");
    let other = stack.get("/api/users").await;
    assert_eq!(other.status, 403, "{other:?}");
    assert_eq!(stack.plugin_stat("failure_mode_allowed").await, 1);
}

/// Paths that read as the strict `/api/admin/` once decoded or resolved, and as something else
/// as sent (or the other way round).
const TRICKS: [&str; 11] = [
    "/public/..;/api/admin/users",
    "/public/%2e%2e/api/admin/users",
    "/public/x/../../api/admin/users",
    "/api/admin/..;/..;/public/x",
    "/public/x;/../../api/admin/users",
    "//api/admin/users",
    "/%61pi/admin/users",
    "/healthz;/../api/admin/users",
    "/API/admin/users",
    "/public/..%5Capi%5Cadmin/users",
    "/public/x%2Fy/../../api/admin/users",
];

/// Sends a trick path as it is written (no client normalizes it); the status, the rule its
/// check went under (`None`: no check), and the path the upstream saw, if it saw the request.
async fn trick(stack: &Stack, path: &str) -> (u16, Option<String>, Option<String>) {
    let before = (stack.auth_seen().len(), stack.upstream.seen().len());
    let request =
        format!("GET {path} HTTP/1.1\r\nhost: shop.example.com\r\nconnection: close\r\n\r\n");
    let (status, _) = raw(stack.port(), request.as_bytes()).await;
    let upstream = stack.upstream.seen();
    let reached = (upstream.len() > before.1).then(|| upstream.last().map(|r| r.path.clone()));
    (status, last_rule(stack, before.0), reached.flatten())
}

#[tokio::test]
async fn behind_envoys_path_normalization_a_rule_is_the_one_of_the_path_the_upstream_gets() {
    // The seed's Envoy normalizes paths (normalize_path, merge_slashes) before any filter.
    let stack = stack().await;
    for path in TRICKS {
        let (status, rule, reached) = trick(&stack, path).await;
        match reached {
            Some(upstream_path) => {
                let expected = if upstream_path.starts_with("/public/") {
                    "public"
                } else {
                    ""
                };
                assert!(
                    !upstream_path.starts_with("/api/admin/"),
                    "{path}: reached {upstream_path}"
                );
                assert_eq!(
                    rule.as_deref(),
                    Some(expected),
                    "{path}: the upstream got {upstream_path}"
                );
            }
            None => assert!(
                status == 400 || (status == 403 && rule.as_deref() == Some("api-admin")),
                "{path}: {status} under {rule:?}"
            ),
        }
    }
}

#[tokio::test]
async fn without_envoys_path_normalization_no_path_trick_reaches_another_rule() {
    // A careless operator's Envoy: no normalization, so the plugin sees each path as sent.
    let stack = Stack::builder(&plugin())
        .auth(auth_service)
        .await
        .configure(|envoy| {
            let hcm = envoy.hcm_mut("main")?;
            hcm["route_config"] = route_config();
            hcm["normalize_path"] = json!(false);
            hcm["merge_slashes"] = json!(false);
            Ok(())
        })
        .start()
        .await;
    for path in TRICKS {
        let (status, rule, reached) = trick(&stack, path).await;
        assert_eq!(
            reached, None,
            "{path} reached the upstream ({status}, {rule:?})"
        );
        match status {
            400 => assert_eq!(rule, None, "{path}: a refused path sends no check"),
            _ => assert_eq!(
                (status, rule.as_deref()),
                (403, Some("api-admin")),
                "{path}"
            ),
        }
    }
    // A plain path still selects as usual.
    assert_eq!(
        trick(&stack, "/public/a%20b.png").await.1.as_deref(),
        Some("public")
    );
}

#[tokio::test]
async fn a_client_cannot_choose_its_rule_by_headers() {
    let stack = stack().await;
    let before = stack.auth_seen().len();
    // Headers that name other rules, routes or hosts change nothing: only `:authority`,
    // `:path`, `:method` and Envoy's own route names are read.
    let request = stack
        .client
        .get(format!("{}/api/admin/users", stack.base))
        .header("host", "shop.example.com")
        .header("x-envoy-original-path", "/healthz")
        .header("x-forwarded-host", "admin.example.com")
        .header("x-route-name", "orders")
        .header("x-http-method-override", "POST");
    let seen = stack.send(request).await;
    assert_eq!(seen.status, 403, "{seen:?}");
    assert_eq!(last_rule(&stack, before).as_deref(), Some("api-admin"));
}

#[tokio::test]
async fn a_shadow_rules_cache_never_serves_an_enforcing_route() {
    let plugin = config(json!({
        "decision": "status",
        "cache": { "key": ["authorization"], "ttl_ms": 60000, "deny_ttl_ms": 60000 },
        "routes": [{ "name": "trial", "match": { "path_prefix": "/trial/" }, "shadow": true }]
    }));
    let stack = Stack::start(&plugin, |request| {
        if request.header("authorization") == Some("Bearer mallory") {
            Reply::status(403, "no")
        } else {
            Reply::ok("")
        }
    })
    .await;
    let as_mallory = |path: &str| {
        stack
            .client
            .get(format!("{}{path}", stack.base))
            .header("authorization", "Bearer mallory")
    };
    // In shadow, the deny is not enforced, and is cached for the shadow rule only.
    assert!(stack.send(as_mallory("/trial/a")).await.reached_upstream());
    assert!(stack.send(as_mallory("/trial/b")).await.reached_upstream());
    assert_eq!(
        stack.auth_seen().len(),
        1,
        "the shadow rule's cache serves itself"
    );
    // The enforcing route asks for itself, and enforces.
    assert_eq!(stack.send(as_mallory("/shop")).await.status, 403);
    assert_eq!(stack.auth_seen().len(), 2);
    assert_eq!(stack.send(as_mallory("/shop")).await.status, 403);
    assert_eq!(stack.auth_seen().len(), 2, "and caches for itself");
    assert_eq!(stack.plugin_stat("shadow_denied").await, 2);
}

#[tokio::test]
async fn an_ambiguous_path_is_refused_even_in_shadow_mode() {
    let plugin = config(json!({
        "decision": "status",
        "shadow": true,
        "allowed_upstream_headers": [{ "exact": "x-user-id" }],
        "routes": [{ "name": "admin", "match": { "path_prefix": "/admin/" }, "shadow": false }]
    }));
    let stack = Stack::builder(&plugin)
        .auth(|_| Reply::status(403, "no"))
        .await
        .configure(|envoy| {
            let hcm = envoy.hcm_mut("main")?;
            hcm["normalize_path"] = json!(false);
            hcm["merge_slashes"] = json!(false);
            Ok(())
        })
        .start()
        .await;
    for path in [
        "/public/..;/admin/users",
        "//admin/users",
        "/admin;x/users",
        "/ADMIN/users",
    ] {
        let request = format!(
            "GET {path} HTTP/1.1\r\nhost: h\r\nx-user-id: admin\r\nx-envoy-auth-failure-mode-allowed: true\r\nconnection: close\r\n\r\n"
        );
        let (status, head) = raw(stack.port(), request.as_bytes()).await;
        assert_eq!(status, 400, "{path}: {head}");
    }
    assert!(stack.upstream.seen().is_empty(), "nothing went upstream");
    assert!(stack.auth_seen().is_empty());
    // The enforcing rule enforces; elsewhere shadow lets a deny through, forged headers removed.
    assert_eq!(stack.get("/admin/users").await.status, 403);
    let shadowed = stack
        .send(
            stack
                .client
                .get(format!("{}/other", stack.base))
                .header("x-user-id", "admin"),
        )
        .await;
    assert!(shadowed.reached_upstream());
    assert_eq!(stack.upstream.seen()[0].header("x-user-id"), None);
}
