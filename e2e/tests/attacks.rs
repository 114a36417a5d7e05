//! Ways past or around the filter that adversarial testing found, each run as the attacker ran it
//! against a real Envoy, so that each stays fixed: a reset flood while failing open, `;` path
//! segments, big deny bodies, underscore and trailer spoofing, and client-chosen failures.

use std::time::{Duration, Instant};

use e2e::{closed_port, config, raw, seed_config, Reply, Stack};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use workbench::envoy::{Envoy, EnvoyOptions};
use workbench::grpc_auth::pb::OkHttpResponse;
use workbench::grpc_auth::{header_option, GrpcReply};
use workbench::h2_client;

const FLOOD_TIMEOUT_MS: u64 = 10_000;

/// The repro: an auth service that denies everyone but alice after 3 s, 50 h2c
/// connections with 45 streams each, every stream reset while its auth call is pending.
async fn reset_flood(fail_open: bool) {
    let plugin = config(json!({
        "decision": "status",
        "timeout_ms": FLOOD_TIMEOUT_MS,
        "failure_mode_allow": fail_open,
    }));
    let stack = Stack::start(&plugin, |request| {
        if request.header("x-user") == Some("alice") {
            Reply::ok("")
        } else {
            Reply::status(403, "no").after(Duration::from_secs(3))
        }
    })
    .await;
    let streams = h2_client::reset_flood(stack.port(), 50, 45, "/flood", &[])
        .await
        .unwrap();
    assert_eq!(streams, 2_250);
    let flood_over = Instant::now();

    // Right after the flood, the attacker's own requests: never let through.
    let mut attacks = tokio::task::JoinSet::new();
    for n in 0..20 {
        let client = stack.client.clone();
        let url = format!("{}/attack/{n}", stack.base);
        attacks.spawn(async move {
            let response = client.get(&url).send().await.unwrap();
            response.status().as_u16()
        });
    }
    while let Some(status) = attacks.join_next().await {
        let status = status.unwrap();
        assert!(
            status == 503 || status == 403,
            "an attack request got {status}"
        );
    }

    // The streams' checks went out while their clients were still there (the orphan cap
    // counts only calls already orphaned), up to the auth cluster's circuit breaker, whose
    // overflow is a 503; then every client went. The gauge shows them orphaned.
    let in_flight = stack.plugin_stat("calls_in_flight").await;
    let orphaned = stack.plugin_stat("calls_orphaned").await;
    if e2e::shell() == e2e::Shell::Native {
        // A native module's check ends with its stream, as native ext_authz's does: a reset
        // flood leaves no orphan and nothing in flight, so nothing is refused as overloaded.
        assert_eq!((orphaned, in_flight), (0, 0), "orphans after the flood");
        assert_eq!(stack.stat("cluster.httpbin.upstream_rq_active").await, 0);
    } else {
        assert!(orphaned > 0, "no orphaned calls shown");
        assert!(
            orphaned <= in_flight && in_flight <= 2 * 1024,
            "{orphaned} orphaned of {in_flight} in flight: more than the circuit breaker admits"
        );
        assert!(
            stack.plugin_stat("overloaded").await >= 2_250 - in_flight,
            "every stream not checked was refused with 503"
        );
    }
    assert_eq!(stack.plugin_stat("failure_mode_allowed").await, 0);

    // Allowed users are served again once the orphaned calls end, within timeout_ms + 1 s.
    let deadline = flood_over + Duration::from_millis(FLOOD_TIMEOUT_MS + 1_000);
    let mut served = false;
    while Instant::now() < deadline {
        let seen = stack
            .send(
                stack
                    .client
                    .get(format!("{}/alice", stack.base))
                    .header("x-user", "alice"),
            )
            .await;
        if seen.reached_upstream() {
            served = true;
            break;
        }
        assert_eq!(
            seen.status, 503,
            "alice waits for room, never anything else"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        served,
        "alice was not served within timeout_ms + 1 s of the flood"
    );
    // Nothing reached the upstream without an allowing answer.
    let upstream = stack.upstream.seen();
    assert!(!upstream.is_empty());
    for request in &upstream {
        assert_eq!(request.header("x-user"), Some("alice"), "{request:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_flood_while_failing_open_never_lets_anyone_in() {
    reset_flood(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_flood_while_failing_closed_locks_out_only_until_the_orphans_end() {
    reset_flood(false).await;
}

const PATH_TRICKS: [&str; 4] = [
    "/public/..;/admin",
    "/public/.;/admin",
    "/public/x/..;/..;/admin",
    "/public/..;a/admin",
];

/// Sends each trick on a raw socket (clients would tidy the path up) to a stack whose auth
/// service denies everything.
async fn path_tricks(normalize_path: bool) -> Stack {
    let plugin = config(json!({"decision": "status", "exempt": {"path_prefixes": ["/public/"]}}));
    let stack = Stack::builder(&plugin)
        .auth(|_| Reply::status(403, ""))
        .await
        .configure(move |config| {
            config.hcm_mut("main")?["normalize_path"] = json!(normalize_path);
            Ok(())
        })
        .start()
        .await;
    for path in PATH_TRICKS {
        let request = format!("GET {path} HTTP/1.1\r\nhost: t\r\n\r\n");
        let (status, answer) = raw(stack.port(), request.as_bytes()).await;
        assert!(status == 403 || status == 200, "{path}: {answer}");
    }
    stack
}

#[tokio::test]
async fn path_parameters_never_ride_on_an_exemption() {
    // Envoy's default path handling passes the path on as the client sent it: every trick
    // must be checked (Tomcat, Jetty and Spring read `..;` as `..`).
    let stack = path_tricks(false).await;
    let checked: Vec<String> = stack.auth_seen().into_iter().map(|r| r.path).collect();
    assert_eq!(checked, PATH_TRICKS, "each was checked");
    assert_eq!(stack.plugin_stat("disabled").await, 0);
    assert!(stack.upstream.seen().is_empty());
    assert!(
        stack.get("/public/logo.png").await.reached_upstream(),
        "the exemption still works"
    );

    // With the shipped config's normalize_path, whatever goes unchecked reaches the upstream
    // as a plain path under the exempt prefix.
    let stack = path_tricks(true).await;
    for request in stack.upstream.seen() {
        assert!(
            request.path.starts_with("/public/")
                && !request.path.contains(';')
                && !request.path.split('/').any(|s| s == ".."),
            "{} reached the upstream unchecked",
            request.path
        );
    }
}

#[tokio::test]
async fn a_deny_with_a_big_body_is_still_a_deny_when_failing_open() {
    let plugin = config(json!({"decision": "status", "failure_mode_allow": true}));
    let stack = Stack::start(&plugin, |_| {
        Reply::status(403, vec![b'x'; 70_000]).header("x-reason", "blocked")
    })
    .await;
    let seen = stack.get("/big").await;
    assert_eq!(seen.status, 403, "{:?}", seen.headers);
    assert_eq!(seen.header("x-reason"), Some("blocked"));
    assert!(seen.body.is_empty(), "the body over the limit is dropped");

    let plugin = config(json!({
        "decision": "status",
        "failure_mode_allow": true,
        "max_response_body_bytes": 1024,
    }));
    let small = Stack::start(&plugin, |_| Reply::status(401, vec![b'y'; 1_100])).await;
    assert_eq!(small.get("/small").await.status, 401);
    assert!(stack.upstream.seen().is_empty() && small.upstream.seen().is_empty());
    assert_eq!(stack.plugin_stat("failure_mode_allowed").await, 0);
}

/// Trailers pass through Envoy to the HTTP/1 upstream only when both sides enable them.
fn enable_trailers(config: &mut workbench::envoy_config::EnvoyConfig) -> anyhow::Result<()> {
    config.hcm_mut("main")?["http_protocol_options"] = json!({"enable_trailers": true});
    config.set_cluster_field(
        "staticreply",
        "typed_extension_protocol_options",
        json!({"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http_protocol_options": {"enable_trailers": true}}
        }}),
    )?;
    Ok(())
}

#[tokio::test]
async fn forged_identities_in_underscore_spellings_and_trailers_never_arrive() {
    let plugin = config(json!({
        "decision": "status",
        "allowed_upstream_headers": [{"exact": "x-user-id"}],
    }));
    let stack = Stack::builder(&plugin)
        .auth(|_| Reply::ok("").header("x-user-id", "alice"))
        .await
        .configure(enable_trailers)
        .start()
        .await;

    // Underscores: CGI, WSGI and Rack read x_user_id as x-user-id.
    let request = b"GET /u HTTP/1.1\r\nhost: t\r\nx_user_id: mallory\r\nX_User-Id: mallory\r\nx_other: kept\r\n\r\n";
    let (status, _) = raw(stack.port(), request).await;
    assert_eq!(status, 200);

    let seen = stack.upstream.seen();
    let u = seen.iter().find(|r| r.path == "/u").unwrap();
    assert_eq!(u.header_all("x-user-id"), vec!["alice"]);
    assert!(u.header("x_user_id").is_none() && u.header("x_user-id").is_none());
    assert_eq!(
        u.header("x_other"),
        Some("kept"),
        "other underscore headers pass"
    );
    forged_trailers_never_arrive(&stack).await;
}

/// Trailers over HTTP/2 and over chunked HTTP/1 carrying a forged identity: the upstream gets
/// the auth service's identity in the headers, the other trailers, and no forged one.
async fn forged_trailers_never_arrive(stack: &Stack) {
    // Trailers over HTTP/2, and over chunked HTTP/1.
    let h2 = h2_client::send_with_trailers(
        stack.port(),
        "/h2",
        &[("x-user", "h2")],
        b"body",
        &[("x-user-id", "mallory"), ("x-checksum", "c2")],
    )
    .await
    .unwrap();
    assert_eq!(h2.status, 200);
    let chunked = b"POST /h1 HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\ntrailer: x-user-id\r\n\r\n4\r\nbody\r\n0\r\nx-user-id: mallory\r\nx_user_id: mallory\r\nx-checksum: c1\r\n\r\n";
    let (status, answer) = raw(stack.port(), chunked).await;
    assert_eq!(status, 200, "{answer}");

    let seen = stack.upstream.seen();
    let by_path = |path: &str| seen.iter().find(|r| r.path == path).unwrap().clone();
    for (path, checksum) in [("/h2", "c2"), ("/h1", "c1")] {
        let request = by_path(path);
        assert_eq!(request.header_all("x-user-id"), vec!["alice"], "{path}");
        let trailer = |name: &str| -> Vec<&str> {
            request
                .trailers
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(
            trailer("x-checksum"),
            vec![checksum],
            "{path}: trailers reach the upstream: {request:?}"
        );
        assert!(
            trailer("x-user-id").is_empty() && trailer("x_user_id").is_empty(),
            "{path}: {request:?}"
        );
    }
}

/// With `with_request_body` the check goes out when the trailers end the body; they must lose
/// forged copies then too, over HTTP and over gRPC.
#[tokio::test]
async fn forged_trailers_never_arrive_when_the_body_goes_with_the_check() {
    let body_and_trailers = |config: &mut workbench::envoy_config::EnvoyConfig| {
        enable_trailers(config)?;
        config.plugin_mut("main")?["allow_on_headers_stop_iteration"] = json!(true);
        Ok(())
    };
    let plugin = config(json!({
        "decision": "status",
        "allowed_upstream_headers": [{"exact": "x-user-id"}],
        "with_request_body": {"max_request_bytes": 1000},
    }));
    let stack = Stack::builder(&plugin)
        .auth(|_| Reply::ok("").header("x-user-id", "alice"))
        .await
        .configure(body_and_trailers)
        .start()
        .await;
    forged_trailers_never_arrive(&stack).await;

    let plugin = config(json!({
        "protocol": "grpc",
        "allowed_upstream_headers": [{"exact": "x-user-id"}],
        "with_request_body": {"max_request_bytes": 1000},
    }));
    let stack = Stack::builder(&plugin)
        .grpc_auth(|_| {
            GrpcReply::allow(OkHttpResponse {
                headers: vec![header_option("x-user-id", "alice", Some(false))],
                ..OkHttpResponse::default()
            })
        })
        .await
        .configure(body_and_trailers)
        .start()
        .await;
    forged_trailers_never_arrive(&stack).await;
}

/// A TCP server that reads what a tunnel carries and echoes it.
async fn echo_server() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 || socket.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (port, task)
}

#[tokio::test]
async fn a_connect_tunnel_is_checked_and_a_failing_dispatch_cannot_be_chosen_by_the_client() {
    let (tunnel_port, _echo) = echo_server().await;
    let plugin = config(json!({"decision": "status", "failure_mode_allow": true}));
    let stack = Stack::builder(&plugin)
        .auth(|request| {
            if request.header("proxy-authorization") == Some("Basic YWxpY2U6") {
                Reply::ok("")
            } else {
                Reply::status(407, "").header("proxy-authenticate", "Basic")
            }
        })
        .await
        .configure(move |config| {
            config.add_cluster(workbench::envoy_config::cluster(
                "tunnel",
                "127.0.0.1",
                tunnel_port,
            ))?;
            let hcm = config.hcm_mut("main")?;
            hcm["upgrade_configs"] = json!([{"upgrade_type": "CONNECT"}]);
            let routes = hcm
                .pointer_mut("/route_config/virtual_hosts/0/routes")
                .and_then(|r| r.as_array_mut())
                .ok_or_else(|| anyhow::anyhow!("no routes"))?;
            routes.insert(
                0,
                json!({"match": {"connect_matcher": {}}, "route": {"cluster": "tunnel",
                    "upgrade_configs": [{"upgrade_type": "CONNECT", "connect_config": {}}]}}),
            );
            Ok(())
        })
        .start()
        .await;

    let (status, answer) = raw(
        stack.port(),
        b"CONNECT db.internal:5432 HTTP/1.1\r\nhost: db.internal:5432\r\n\r\n",
    )
    .await;
    assert_eq!(
        status, 407,
        "denied by the auth service, not let through: {answer}"
    );
    // A real check: a GET for `/` naming the tunnel's target, as forward-auth checks carry the
    // original method (a CONNECT check would itself be refused on its way, a failure the client
    // could then choose).
    let asked = stack.auth_seen();
    assert_eq!(asked.len(), 1, "a real check was sent");
    assert_eq!(
        (asked[0].method.as_str(), asked[0].path.as_str()),
        ("GET", "/")
    );
    assert_eq!(asked[0].header("x-forwarded-method"), Some("CONNECT"));
    assert_eq!(asked[0].header("host"), Some("db.internal:5432"));
    assert_eq!(stack.plugin_stat("failure_mode_allowed").await, 0);

    // Allowed, the tunnel opens and carries bytes.
    let mut socket = TcpStream::connect(("127.0.0.1", stack.port()))
        .await
        .unwrap();
    socket
        .write_all(b"CONNECT db.internal:5432 HTTP/1.1\r\nhost: db.internal:5432\r\nproxy-authorization: Basic YWxpY2U6\r\n\r\n")
        .await
        .unwrap();
    let mut answer = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&answer[..n]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    socket.write_all(b"ping").await.unwrap();
    let mut echoed = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(10), socket.read_exact(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echoed, b"ping");
}

#[tokio::test]
async fn configurations_that_would_misroute_every_request_are_refused_by_name() {
    for (plugin, field) in [
        (
            json!({"decision": "fnv_parity", "allowed_upstream_headers": [{"exact": ":path"}]}),
            "allowed_upstream_headers[0].exact",
        ),
        (
            json!({"decision": "fnv_parity", "allowed_client_headers_on_success": [{"exact": "host"}]}),
            "allowed_client_headers_on_success[0].exact",
        ),
        (
            json!({"decision": "fnv_parity", "exempt": {"methods": ["get"]}}),
            "exempt.methods[0]",
        ),
    ] {
        let config =
            seed_config(&config(plugin), closed_port().await, closed_port().await).unwrap();
        match Envoy::start(&config, &EnvoyOptions::default()).await {
            Ok(_) => panic!("Envoy accepted a configuration naming {field}"),
            Err(err) => assert!(format!("{err:#}").contains(field), "{err:#}"),
        }
    }
}

/// The auth cluster over HTTP/2, and websocket upgrades accepted on the listener.
fn h2_auth_cluster_and_websockets(
    config: &mut workbench::envoy_config::EnvoyConfig,
) -> anyhow::Result<()> {
    config.set_cluster_field(
        "httpbin",
        "typed_extension_protocol_options",
        json!({"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http2_protocol_options": {}}
        }}),
    )?;
    config.hcm_mut("main")?["upgrade_configs"] = json!([{"upgrade_type": "websocket"}]);
    Ok(())
}

#[tokio::test]
async fn a_grpc_content_type_cannot_turn_a_failed_call_into_an_allow() {
    // Forwarded, `content-type: application/grpc` made Envoy answer a failed call with a 200 and
    // a grpc-status, which the status rule read as an allow, even failing closed.
    let plugin = config(json!({"decision": "status", "timeout_ms": 500}));
    for stack in [
        Stack::start_with_auth_down(&plugin).await,
        Stack::start(&plugin, |_| Reply::Hang).await,
        Stack::start(&plugin, |_| Reply::Drop).await,
    ] {
        let request = b"POST /x HTTP/1.1\r\nhost: t\r\ncontent-type: application/grpc\r\ngrpc-timeout: 1S\r\ncontent-length: 0\r\n\r\n";
        let (status, answer) = raw(stack.port(), request).await;
        // Envoy turns a local reply to a gRPC request into a gRPC one: 200 with grpc-status 7
        // (permission denied) for the 403.
        assert!(
            status == 403 || (status == 200 && answer.contains("grpc-status: 7")),
            "{answer}"
        );
        assert!(stack.upstream.seen().is_empty());
        assert_eq!(stack.plugin_stat("ok").await, 0);
    }
}

#[tokio::test]
async fn client_headers_cannot_make_the_call_fail_or_steer_it() {
    // Upgrade headers made calls to an HTTP/2 auth cluster fail; x-envoy-* headers from clients
    // Envoy trusts as internal set the call's timeout and retries.
    let plugin =
        config(json!({"decision": "status", "failure_mode_allow": true, "timeout_ms": 5000}));
    let stack = Stack::builder(&plugin)
        .auth(|_| Reply::status(403, "no").after(Duration::from_millis(200)))
        .await
        .configure(|config| {
            h2_auth_cluster_and_websockets(config)?;
            let hcm = config.hcm_mut("main")?;
            hcm["use_remote_address"] = json!(true);
            hcm["internal_address_config"] =
                json!({"cidr_ranges": [{"address_prefix": "127.0.0.0", "prefix_len": 8}]});
            Ok(())
        })
        .start()
        .await;
    let requests: [&[u8]; 3] = [
        b"GET /ws HTTP/1.1\r\nhost: t\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        b"GET /t HTTP/1.1\r\nhost: t\r\nx-envoy-upstream-rq-timeout-ms: 1\r\nte: trailers\r\n\r\n",
        b"GET /r HTTP/1.1\r\nhost: t\r\nx-envoy-retry-on: retriable-status-codes\r\nx-envoy-retriable-status-codes: 403\r\nx-envoy-max-retries: 7\r\n\r\n",
    ];
    for request in requests {
        let (status, answer) = raw(stack.port(), request).await;
        assert_eq!(status, 403, "{answer}");
    }
    assert_eq!(stack.auth_seen().len(), 3, "one call each, no retries");
    let steering = [
        "upgrade",
        "te",
        "x-envoy-upstream-rq-timeout-ms",
        "x-envoy-retry-on",
        "x-envoy-retriable-status-codes",
        "x-envoy-max-retries",
    ];
    for seen in stack.auth_seen() {
        assert!(
            !seen
                .headers
                .iter()
                .any(|(n, _)| steering.contains(&n.as_str())),
            "{seen:?}"
        );
    }
    assert_eq!(stack.plugin_stat("failure_mode_allowed").await, 0);
    assert!(stack.upstream.seen().is_empty());
}

#[tokio::test]
async fn a_forward_auth_service_learns_the_real_request_not_what_the_client_claims() {
    // With a fixed path the auth service reads the request from x-forwarded-*; a client's own
    // copies said `GET /public/x` for a `DELETE /admin/users/1`.
    let plugin = config(json!({"decision": "status", "path": "/verify"}));
    let stack = Stack::start(&plugin, |request| {
        let public = request
            .header("x-forwarded-uri")
            .unwrap_or("")
            .starts_with("/public/")
            && request.header("x-forwarded-method") == Some("GET");
        if public {
            Reply::ok("")
        } else {
            Reply::status(403, "")
        }
    })
    .await;
    let seen = stack
        .send(
            stack
                .client
                .delete(format!("{}/admin/users/1", stack.base))
                .header("x-forwarded-uri", "/public/x")
                .header("x-forwarded-method", "GET")
                .header("x-forwarded-host", "elsewhere"),
        )
        .await;
    assert_eq!(seen.status, 403);
    let asked = &stack.auth_seen()[0];
    assert_eq!(asked.path, "/verify");
    assert_eq!(asked.header_all("x-forwarded-uri"), ["/admin/users/1"]);
    assert_eq!(asked.header_all("x-forwarded-method"), ["DELETE"]);
    assert_eq!(asked.header_all("x-forwarded-host").len(), 1);
    assert_ne!(asked.header("x-forwarded-host"), Some("elsewhere"));
    assert!(stack.get("/public/logo.png").await.reached_upstream());
}
