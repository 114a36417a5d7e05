//! `routes` in the request flow: which rule a request falls under, and what that changes.
//! Test code only: its module is declared under #[cfg(test)].

use std::rc::Rc;
use std::time::Duration;

use super::*;
use crate::metrics::Stats;
use crate::mock_host::{Effect, MockHost};

const CONFIG: &str = r#"{
    "decision": "status", "record_decisions": true,
    "routes": [
        {"name": "health", "match": {"path": "/healthz"}, "disabled": true},
        {"name": "admin", "match": {"path_prefix": "/admin/", "methods": ["POST", "DELETE"]},
         "cluster": "strict-auth", "timeout_ms": 250, "path_prefix": "/check"},
        {"name": "orders", "match": {"route_name": "orders-route"}, "failure_mode_allow": true},
        {"name": "shop", "match": {"authority": "shop.example", "virtual_host": "shop-vh"}, "shadow": true}
    ]
}"#;

fn run(path: &str, method: &str, properties: &[(&str, &str)]) -> (MockHost, Flow, Root) {
    let config = Rc::new(Config::parse(CONFIG.as_bytes()).unwrap());
    let mut host = MockHost::with_request(&[
        (":authority", "Shop.Example"),
        (":path", path),
        (":method", method),
    ]);
    for (name, value) in properties {
        host.properties
            .insert((*name).into(), value.as_bytes().to_vec());
    }
    let mut flow = Flow::new(1, Rc::clone(&config));
    let mut root = Root::new(config, Stats::default(), 0);
    flow.on_request_headers(&host, &mut root, true);
    (host, flow, root)
}

fn dispatch(host: &MockHost) -> Option<(String, String, Duration)> {
    host.effects().into_iter().find_map(|effect| match effect {
        Effect::Dispatch {
            cluster,
            headers,
            timeout,
            ..
        } => {
            let path = headers.iter().find(|(n, _)| n == ":path")?.1.clone();
            Some((cluster, path, timeout))
        }
        _ => None,
    })
}

fn rule_recorded(host: &MockHost) -> Option<String> {
    host.effects().into_iter().find_map(|effect| match effect {
        Effect::Record(record) => Some(record.rule),
        _ => None,
    })?
}

#[test]
fn a_disabled_rule_makes_no_call() {
    let (host, flow, _) = run("/healthz", "GET", &[]);
    assert_eq!(host.dispatches(), 0);
    assert_eq!(flow.state(), &State::Exempt);
    assert_eq!(rule_recorded(&host).as_deref(), Some("health"));
}

#[test]
fn a_rule_sends_the_check_to_its_own_service() {
    let (host, _, _) = run("/admin/users?x=1", "delete", &[]);
    let (cluster, path, timeout) = dispatch(&host).unwrap();
    assert_eq!(cluster, "strict-auth");
    assert_eq!(path, "/check/admin/users?x=1");
    assert_eq!(timeout, Duration::from_millis(250));
    // The same path with a method the rule does not name gets the filter's own settings.
    let (host, _, _) = run("/admin/users", "GET", &[]);
    assert_eq!(dispatch(&host).unwrap().0, "httpbin");
}

#[test]
fn rules_by_envoy_names_read_them_only_when_asked_and_fall_through_without_them() {
    let (host, flow, _) = run("/orders", "GET", &[("xds.route_name", "orders-route")]);
    assert!(flow.config.failure.allow);
    assert_eq!(dispatch(&host).unwrap().0, "httpbin");
    let (_, flow, _) = run("/x", "GET", &[("xds.virtual_host_name", "shop-vh")]);
    assert!(flow.config.shadow, "host and virtual host both match");
    let (_, flow, _) = run("/x", "GET", &[]);
    assert_eq!(flow.config.route_rule, None);
}

#[test]
fn a_path_that_reads_two_ways_is_refused_without_a_call() {
    for path in ["/admin/..;/healthz", "/healthz/%2e%2e/admin/x", "//healthz"] {
        let (host, flow, _) = run(path, "POST", &[]);
        assert_eq!(host.dispatches(), 0, "{path}");
        assert_eq!(flow.state(), &State::Denied, "{path}");
        assert!(
            host.effects()
                .iter()
                .any(|e| matches!(e, Effect::Reply { status: 400, .. })),
            "{path}"
        );
    }
}

#[test]
fn envoy_names_that_cannot_be_read_refuse_the_request() {
    let config = Rc::new(Config::parse(CONFIG.as_bytes()).unwrap());
    let host = MockHost::with_request(&[(":path", "/x"), (":method", "GET")]).failing("property");
    let mut flow = Flow::new(1, Rc::clone(&config));
    let mut root = Root::new(config, Stats::default(), 0);
    flow.on_request_headers(&host, &mut root, true);
    assert_eq!(host.dispatches(), 0);
    assert!(!host.effects().contains(&Effect::Resume));
}

#[test]
fn each_rule_keeps_its_verdicts_apart_in_the_cache() {
    let config = Config::parse(
        br#"{"decision": "status", "cache": {"key": ["authorization"]},
            "routes": [{"name": "a", "match": {"path_prefix": "/a/"}, "shadow": true},
                       {"name": "b", "match": {"path_prefix": "/b/"}}]}"#,
    )
    .unwrap();
    let fingerprint = |c: &Config| c.cache.as_ref().unwrap().fingerprint;
    let (a, b) = (&config.routes[0].config, &config.routes[1].config);
    assert_ne!(fingerprint(a), fingerprint(&config));
    assert_ne!(fingerprint(a), fingerprint(b));
    assert_eq!(
        a.cache.as_ref().unwrap().slot_prefix,
        config.cache.as_ref().unwrap().slot_prefix
    );
}

#[test]
fn an_ambiguous_path_is_refused_in_shadow_mode_too() {
    let config = Rc::new(
        Config::parse(
            br#"{"decision": "status", "shadow": true,
                 "allowed_upstream_headers": [{"exact": "x-user-id"}],
                 "routes": [{"name": "admin", "match": {"path_prefix": "/admin/"}, "shadow": false}]}"#,
        )
        .unwrap(),
    );
    for path in ["/public/..;/admin/users", "/admin;x/users", "/ADMIN/users"] {
        let host =
            MockHost::with_request(&[(":path", path), (":method", "GET"), ("x-user-id", "admin")]);
        let mut flow = Flow::new(1, Rc::clone(&config));
        let mut root = Root::new(Rc::clone(&config), Stats::default(), 0);
        assert_eq!(
            flow.on_request_headers(&host, &mut root, true),
            Action::Pause,
            "{path}"
        );
        assert_eq!(host.dispatches(), 0, "{path}");
        assert!(!host.effects().contains(&Effect::Resume), "{path}");
        assert!(
            host.effects()
                .iter()
                .any(|e| matches!(e, Effect::Reply { status: 400, .. })),
            "{path}"
        );
    }
}
