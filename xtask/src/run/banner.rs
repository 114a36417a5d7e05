//! What `cargo xtask run` prints once Envoy is ready: what is actually running (plugin, rule,
//! failure mode, auth service, upstream) and what a request should get, from the configuration.

use authz_core::config::{Config, Protocol, ResourceId, Rule};
use workbench::authzen::EVALUATION_PATH;

use super::plugin_config::{self, AUTHZEN_CLUSTER};

/// Where the auth calls go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthService {
    /// A local httpbin started for this run, on this loopback port.
    LocalHttpbin(u16),
    /// httpbin.org:80; `resolved` is one of its addresses, if the name resolved here.
    PublicHttpbin { resolved: Option<String> },
    /// The example gRPC Check service started for this run, on this loopback port.
    ExampleGrpc(u16),
    /// The workbench's AuthZEN decision point (`Policy::demo`) started for this run, on this
    /// loopback port.
    DemoAuthzen(u16),
}

impl AuthService {
    /// The cluster the shipped config sends auth calls to for this service.
    fn cluster(&self) -> &'static str {
        match self {
            AuthService::ExampleGrpc(_) => "authz",
            AuthService::DemoAuthzen(_) => AUTHZEN_CLUSTER,
            _ => "httpbin",
        }
    }

    /// The protocol this service answers.
    fn protocol(&self) -> Protocol {
        match self {
            AuthService::ExampleGrpc(_) => Protocol::Grpc,
            AuthService::DemoAuthzen(_) => Protocol::AuthZen,
            _ => Protocol::Http,
        }
    }
}

/// What answers allowed requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    /// The direct-response listener, on this loopback port.
    StaticReply(u16),
    Httpbin,
    /// A server started for this run that answers with the request headers it got.
    Echo(u16),
}

pub struct Banner<'a> {
    pub concurrency: u32,
    pub wasm: String,
    pub port: u16,
    pub admin_url: String,
    /// The admin API is not on its default port because that port was taken.
    pub admin_default_taken: Option<u16>,
    /// The configuration, when the plugin is the one whose parser xtask has, and where it came from.
    pub plugin: Option<(&'a Config, &'a plugin_config::Source)>,
    /// The clusters the rendered Envoy config has (an auth call to any other fails).
    pub clusters: Vec<String>,
    pub auth: AuthService,
    pub upstream: Upstream,
    pub log_level: &'a str,
    pub log_decisions: bool,
}

impl Banner<'_> {
    pub fn lines(&self) -> Vec<String> {
        let workers = if self.concurrency == 1 {
            "worker"
        } else {
            "workers"
        };
        let mut lines = vec![format!(
            "Envoy is ready ({} {workers}), serving {}",
            self.concurrency, self.wasm
        )];
        let mut row = |label: &str, text: String| lines.push(format!("  {label:<13} {text}"));
        let auth_cluster = self.plugin.map(|(c, _)| c.auth_request.cluster.clone());
        row("auth service:", self.auth_service(auth_cluster.as_deref()));
        match self.plugin {
            Some((config, source)) => {
                let (name, meaning) = plugin_config::rule(config);
                row(
                    "rule:",
                    format!("{name} (from {}): {meaning}", source.describe()),
                );
                row("auth errors:", plugin_config::failure_mode(config));
            }
            None => row(
                "rule:",
                "not known to xtask: it reads only plugins/http_auth_random's configuration"
                    .to_owned(),
            ),
        }
        row(
            "upstream:",
            match self.upstream {
                Upstream::StaticReply(port) => {
                    format!("staticreply (127.0.0.1:{port}), a direct 200 \"example body\"")
                }
                Upstream::Httpbin => {
                    "httpbin itself: allowed requests get httpbin's answer".to_owned()
                }
                Upstream::Echo(port) => format!(
                    "an echo server on 127.0.0.1:{port}, started for this run: 200 with the \
                     request line and headers it got"
                ),
            },
        );
        for attempt in self.try_lines() {
            row("try:", attempt);
        }
        row(
            "admin:",
            match self.admin_default_taken {
                None => format!(
                    "{0}   (stats: {0}/stats?filter=http_auth_random)",
                    self.admin_url
                ),
                Some(default) => format!(
                    "{0}   (stats: {0}/stats?filter=http_auth_random; port {default} was taken, \
                     by kubectl proxy perhaps, so Envoy took a free one; --admin-port sets it)",
                    self.admin_url
                ),
            },
        );
        row(
            "logs:",
            format!("Envoy at {} (--log-level changes it)", self.log_level),
        );
        row(
            "decisions:",
            if self.log_decisions {
                "one [decision] line per request".to_owned()
            } else {
                "not shown (--log-decisions prints one line per request)".to_owned()
            },
        );
        let stops = match self.auth {
            AuthService::LocalHttpbin(_) => "Envoy and httpbin",
            AuthService::PublicHttpbin { .. } => "Envoy",
            AuthService::ExampleGrpc(_) if matches!(self.upstream, Upstream::Echo(_)) => {
                "Envoy, the example Check service and the echo server"
            }
            AuthService::ExampleGrpc(_) => "Envoy and the example Check service",
            AuthService::DemoAuthzen(_) if matches!(self.upstream, Upstream::Echo(_)) => {
                "Envoy, the AuthZEN decision point and the echo server"
            }
            AuthService::DemoAuthzen(_) => "Envoy and the AuthZEN decision point",
        };
        lines.push(format!("Ctrl-C (or SIGTERM, SIGHUP) stops {stops}."));
        lines
    }

    fn auth_service(&self, cluster: Option<&str>) -> String {
        if let Some(cluster) = cluster.filter(|c| !self.has_cluster(c)) {
            return format!(
                "cluster {cluster:?} from the configuration, which this Envoy does not have: \
                 every auth call fails"
            );
        }
        let service = match &self.auth {
            AuthService::LocalHttpbin(port) => {
                format!("a local httpbin on 127.0.0.1:{port}, started for this run")
            }
            AuthService::PublicHttpbin {
                resolved: Some(address),
            } => format!("the public httpbin.org:80 (resolves to {address})"),
            AuthService::PublicHttpbin { resolved: None } => {
                "the public httpbin.org:80, which DOES NOT RESOLVE here: Envoy has no host \
                 to send the auth calls to"
                    .to_owned()
            }
            AuthService::ExampleGrpc(port) => format!(
                "the example gRPC Check service on 127.0.0.1:{port}, started for this run \
                 (a bearer token allows, and names the user upstream)"
            ),
            AuthService::DemoAuthzen(port) => format!(
                "the demo AuthZEN decision point on 127.0.0.1:{port}, started for this run \
                 (alice may do anything under /todos, bob may only GET there, anyone may GET \
                 /public)"
            ),
        };
        if let Some(mismatch) = self.plugin.and_then(|(config, _)| self.mismatch(config)) {
            return format!("{service}, {mismatch}");
        }
        match cluster {
            Some(cluster) if cluster != self.auth.cluster() => {
                format!("cluster {cluster:?} (not {})", self.auth.cluster())
            }
            _ => service,
        }
    }

    /// Why the configuration's protocol cannot talk to the service this run started, if so: a
    /// gRPC Check sent to httpbin, an HTTP auth call sent to the example Check service, an
    /// AuthZEN evaluation sent to a service that is no decision point, and so on.
    fn mismatch(&self, config: &Config) -> Option<&'static str> {
        if config.auth_request.cluster != self.auth.cluster() {
            return None;
        }
        match (config.protocol, self.auth.protocol()) {
            (Protocol::Grpc, Protocol::Http | Protocol::AuthZen) => Some(
                "which DOES NOT SPEAK gRPC, and the configuration says \"protocol\": \"grpc\": \
                 every auth call fails (--protocol grpc serves an example Check service)",
            ),
            (Protocol::Http, Protocol::Grpc) => Some(
                "which answers only gRPC Checks, and the configuration makes HTTP auth calls: \
                 every auth call fails (add \"protocol\": \"grpc\")",
            ),
            (Protocol::AuthZen, Protocol::Grpc) => Some(
                "which answers only gRPC Checks, and the configuration sends AuthZEN \
                 evaluations: every auth call fails (--protocol authzen serves a decision point)",
            ),
            (Protocol::AuthZen, Protocol::Http) => Some(
                "which IS NO AuthZEN DECISION POINT, and the configuration says \"protocol\": \
                 \"authzen\": every auth call fails (--protocol authzen serves one)",
            ),
            (Protocol::Http, Protocol::AuthZen) => Some(
                "which answers only AuthZEN evaluations (404 to anything else), and the \
                 configuration makes ext_authz HTTP auth calls (add \"protocol\": \"authzen\")",
            ),
            _ => None,
        }
    }

    fn has_cluster(&self, name: &str) -> bool {
        self.clusters.iter().any(|c| c == name)
    }

    fn auth_fails(&self, config: &Config) -> bool {
        // The decision point answers an ext_authz HTTP call with a 404, which a rule reads as
        // it reads any answer: no promise, but no failure either.
        let answered =
            config.protocol == Protocol::Http && self.auth.protocol() == Protocol::AuthZen;
        !self.has_cluster(&config.auth_request.cluster)
            || (self.mismatch(config).is_some() && !answered)
            || self.auth_host_unresolved(config)
    }

    /// The configuration asks the public httpbin, whose name does not resolve here.
    fn auth_host_unresolved(&self, config: &Config) -> bool {
        matches!(self.auth, AuthService::PublicHttpbin { resolved: None })
            && config.auth_request.cluster == "httpbin"
    }

    /// Requests to try, each with what it should get when that can be known.
    fn try_lines(&self) -> Vec<String> {
        let curl = |path: &str| format!("curl -v localhost:{}{path}", self.port);
        let Some((config, _)) = self.plugin else {
            return vec![curl("/uuid")];
        };
        if !self.has_cluster(&config.auth_request.cluster) {
            // Envoy refuses the call; the plugin answers 503, whatever the failure policy.
            return vec![format!("{}   (every request gets 503)", curl("/uuid"))];
        }
        if self.auth_host_unresolved(config) {
            return vec![format!(
                "{}   ({})",
                curl("/uuid"),
                plugin_config::when_cluster_has_no_host()
            )];
        }
        if self.auth_fails(config) {
            return vec![format!(
                "{}   ({})",
                curl("/uuid"),
                plugin_config::when_auth_fails(config)
            )];
        }
        if matches!(config.protocol, Protocol::Grpc) {
            if !matches!(self.auth, AuthService::ExampleGrpc(_))
                || config.auth_request.cluster != "authz"
            {
                return vec![curl("/")];
            }
            let shown = if matches!(self.upstream, Upstream::Echo(_)) {
                "the echo server shows the x-user-id: alice it got"
            } else {
                "the upstream gets x-user-id: alice"
            };
            return vec![
                format!("{}   (denied: 401, no token)", curl("/")),
                format!(
                    "curl -v -H 'authorization: Bearer alice' localhost:{}/   (allowed: 200; {shown})",
                    self.port
                ),
            ];
        }
        if matches!(config.protocol, Protocol::AuthZen) {
            return self.authzen_lines(config);
        }
        let asks_httpbin =
            config.auth_request.cluster == "httpbin" && plugin_config::asks_client_path(config);
        if !asks_httpbin {
            return vec![curl("/uuid")];
        }
        match &config.rule {
            Rule::FnvParity => vec![format!(
                "{}   (about half 200, half {})",
                curl("/uuid"),
                config.deny.status
            )],
            Rule::Status => vec![
                format!("{}   (allowed: httpbin answers 200)", curl("/status/200")),
                format!("{}   (denied: httpbin answers 403)", curl("/status/403")),
            ],
            Rule::Json(_) => vec![curl("/uuid")],
        }
    }

    /// The requests to try against the demo decision point: what its table allows, what it
    /// denies, and a request without a subject.
    fn authzen_lines(&self, config: &Config) -> Vec<String> {
        let port = self.port;
        let Some(authzen) = &config.authzen else {
            return vec![format!("curl -v localhost:{port}/todos/1")];
        };
        let header = &authzen.subject.id_header;
        let curl = |user: Option<&str>, method: &str| {
            let user = user.map_or(String::new(), |user| format!("-H '{header}: {user}' "));
            let method = match method {
                "GET" => String::new(),
                other => format!("-X {other} "),
            };
            format!("curl -v {user}{method}localhost:{port}/todos/1")
        };
        if !matches!(self.auth, AuthService::DemoAuthzen(_))
            || config.auth_request.cluster != AUTHZEN_CLUSTER
        {
            return vec![curl(Some("alice"), "GET")];
        }
        if authzen.path != EVALUATION_PATH {
            return vec![format!(
                "{}   (every request with {header} gets {}: the decision point answers 404 \
                 off {EVALUATION_PATH})",
                curl(Some("alice"), "GET"),
                config.failure.status_on_error
            )];
        }
        // The demo's table reads the method as the action and the path as the resource.
        if authzen.action.is_some() || authzen.resource.id != ResourceId::Path {
            return vec![curl(Some("alice"), "DELETE"), curl(Some("bob"), "GET")];
        }
        let status = config.deny.status;
        let reason = |subject: &str, method: &str| match &authzen.deny_reason {
            Some(reason) if reason.pointer == "/context/reason_user/en-403" => {
                format!(", {}: {subject} may not {method} /todos/1", reason.header)
            }
            _ => String::new(),
        };
        let unasked = match &authzen.subject.anonymous_id {
            Some(id) => format!("denied: {status}, asked as {id:?}{}", reason(id, "GET")),
            None => format!("denied: {status} without asking, no {header}"),
        };
        vec![
            format!("{}   (allowed: 200)", curl(Some("alice"), "DELETE")),
            format!("{}   (allowed: 200)", curl(Some("bob"), "GET")),
            format!(
                "{}   (denied: {status}{})",
                curl(Some("bob"), "DELETE"),
                reason("bob", "DELETE")
            ),
            format!("{}   ({unasked})", curl(None, "GET")),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::plugin_config::{check, Source};

    fn banner<'a>(config: Option<&'a Config>, auth: AuthService) -> Banner<'a> {
        Banner {
            concurrency: 1,
            wasm: "plugins/http_auth_random/main.wasm".to_owned(),
            port: 18000,
            admin_url: "http://127.0.0.1:8001".to_owned(),
            admin_default_taken: None,
            plugin: config.map(|c| (c, &Source::SeedFile)),
            clusters: vec!["httpbin".to_owned(), "staticreply".to_owned()],
            auth,
            upstream: Upstream::StaticReply(8099),
            log_level: "warning",
            log_decisions: false,
        }
    }

    fn text(banner: &Banner) -> String {
        banner.lines().join("\n")
    }

    #[test]
    fn the_seed_demo_promises_about_half_and_half() {
        let config = check(
            r#"{"decision": "fnv_parity", "failure_mode_allow": true}"#,
            &Source::SeedFile,
        )
        .unwrap();
        let text = text(&banner(Some(&config), AuthService::LocalHttpbin(4321)));
        assert!(
            text.contains("curl -v localhost:18000/uuid   (about half 200, half 403)"),
            "{text}"
        );
        assert!(text.contains("a local httpbin on 127.0.0.1:4321"), "{text}");
        assert!(text.contains("fail open"), "{text}");
        assert!(text.ends_with("stops Envoy and httpbin."), "{text}");
    }

    #[test]
    fn the_status_rule_suggests_an_allowed_and_a_denied_path() {
        let config = check(r#"{"decision": "status"}"#, &Source::Flag).unwrap();
        let text = text(&banner(Some(&config), AuthService::LocalHttpbin(1)));
        assert!(text.contains("/status/200   (allowed"), "{text}");
        assert!(text.contains("/status/403   (denied"), "{text}");
        assert!(!text.contains("about half"), "{text}");
        assert!(text.contains("fail closed: the request gets 403"), "{text}");
    }

    #[test]
    fn an_unresolved_public_httpbin_says_every_call_fails() {
        let config = check(
            r#"{"decision": "fnv_parity", "failure_mode_allow": true}"#,
            &Source::SeedFile,
        )
        .unwrap();
        let text = text(&banner(
            Some(&config),
            AuthService::PublicHttpbin { resolved: None },
        ));
        assert!(text.contains("DOES NOT RESOLVE"), "{text}");
        // Envoy answers the plugin's call to a cluster without hosts itself, with a 503 that the
        // plugin reads as an auth answer, not as a failed call: failing open does not apply.
        assert!(
            text.contains(
                "(every request gets 503 \"authorization overloaded\": Envoy answers each auth call itself"
            ),
            "{text}"
        );
        assert!(!text.contains("unchecked"), "{text}");
        assert!(!text.contains("about half"), "{text}");
        assert!(text.ends_with("stops Envoy."), "{text}");
    }

    #[test]
    fn an_unknown_auth_cluster_is_named() {
        let config = check(
            r#"{"decision": "fnv_parity", "cluster": "nowhere"}"#,
            &Source::Flag,
        )
        .unwrap();
        let text = text(&banner(Some(&config), AuthService::LocalHttpbin(1)));
        assert!(text.contains("cluster \"nowhere\""), "{text}");
        assert!(text.contains("(every request gets 503)"), "{text}");
    }

    #[test]
    fn a_grpc_configuration_against_httpbin_is_called_out() {
        let config = check(r#"{"protocol": "grpc"}"#, &Source::Flag).unwrap();
        let text = text(&banner(Some(&config), AuthService::LocalHttpbin(1)));
        assert!(text.contains("DOES NOT SPEAK gRPC"), "{text}");
        assert!(text.contains("--protocol grpc serves"), "{text}");
        assert!(text.contains("(every request gets 403)"), "{text}");
    }

    #[test]
    fn an_http_configuration_against_the_check_service_is_called_out() {
        let config = check(
            r#"{"decision": "status", "cluster": "authz"}"#,
            &Source::Flag,
        )
        .unwrap();
        let mut banner = banner(Some(&config), AuthService::ExampleGrpc(1));
        banner.clusters = vec!["authz".to_owned()];
        let text = text(&banner);
        assert!(text.contains("answers only gRPC Checks"), "{text}");
        assert!(text.contains("(every request gets 403)"), "{text}");
    }

    #[test]
    fn the_grpc_demo_shows_what_the_upstream_got() {
        let config = check(
            r#"{"protocol": "grpc", "cluster": "authz"}"#,
            &Source::GrpcSeedFile,
        )
        .unwrap();
        let mut banner = banner(Some(&config), AuthService::ExampleGrpc(1));
        banner.clusters = vec!["authz".to_owned(), "staticreply".to_owned()];
        banner.upstream = Upstream::Echo(2);
        let text = text(&banner);
        assert!(!text.contains("DOES NOT"), "{text}");
        assert!(text.contains("an echo server on 127.0.0.1:2"), "{text}");
        assert!(
            text.contains("(allowed: 200; the echo server shows the x-user-id: alice it got)"),
            "{text}"
        );
        assert!(text.ends_with("the example Check service and the echo server."));
    }

    fn authzen_banner(config: &Config) -> String {
        let mut banner = banner(Some(config), AuthService::DemoAuthzen(3));
        banner.plugin = Some((config, &Source::AuthzenDemo));
        banner.clusters = vec!["authzen".to_owned(), "staticreply".to_owned()];
        banner.upstream = Upstream::Echo(2);
        text(&banner)
    }

    #[test]
    fn the_authzen_demo_suggests_alice_bob_and_no_subject() {
        let config = check(plugin_config::AUTHZEN_DEMO, &Source::AuthzenDemo).unwrap();
        let text = authzen_banner(&config);
        assert!(
            !text.contains("DOES NOT") && !text.contains("IS NO"),
            "{text}"
        );
        assert!(
            text.contains("auth service: the demo AuthZEN decision point on 127.0.0.1:3"),
            "{text}"
        );
        assert!(
            text.contains("rule:         authzen (from --protocol authzen's demo configuration)"),
            "{text}"
        );
        for line in [
            "try:          curl -v -H 'x-user-id: alice' -X DELETE localhost:18000/todos/1   (allowed: 200)\n",
            "try:          curl -v -H 'x-user-id: bob' localhost:18000/todos/1   (allowed: 200)\n",
            "try:          curl -v -H 'x-user-id: bob' -X DELETE localhost:18000/todos/1   (denied: 403, x-authz-reason: bob may not DELETE /todos/1)\n",
            "try:          curl -v localhost:18000/todos/1   (denied: 403 without asking, no x-user-id)\n",
        ] {
            assert!(text.contains(line), "{line} is not in:\n{text}");
        }
        assert!(
            text.ends_with("stops Envoy, the AuthZEN decision point and the echo server."),
            "{text}"
        );
    }

    #[test]
    fn the_authzen_lines_follow_the_configuration() {
        let anonymous = check(
            r#"{"protocol": "authzen", "cluster": "authzen", "deny": {"status": 401},
                "authzen": {"subject": {"id_header": "x-sub", "anonymous_id": "guest"}}}"#,
            &Source::Flag,
        )
        .unwrap();
        let text = authzen_banner(&anonymous);
        assert!(
            text.contains(
                "curl -v -H 'x-sub: bob' -X DELETE localhost:18000/todos/1   (denied: 401)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("curl -v localhost:18000/todos/1   (denied: 401, asked as \"guest\")"),
            "{text}"
        );
        let elsewhere = check(
            r#"{"protocol": "authzen", "cluster": "authzen",
                "authzen": {"path": "/v1/evaluate", "subject": {"id_header": "x-user-id"}}}"#,
            &Source::Flag,
        )
        .unwrap();
        let text = authzen_banner(&elsewhere);
        assert!(
            text.contains("(every request with x-user-id gets 403: the decision point answers 404 off /access/v1/evaluation)"),
            "{text}"
        );
    }

    #[test]
    fn an_authzen_configuration_against_httpbin_is_called_out() {
        let config = check(
            r#"{"protocol": "authzen", "authzen": {"subject": {"id_header": "x-user-id"}}}"#,
            &Source::Flag,
        )
        .unwrap();
        let text = text(&banner(Some(&config), AuthService::LocalHttpbin(1)));
        assert!(text.contains("IS NO AuthZEN DECISION POINT"), "{text}");
        assert!(text.contains("--protocol authzen serves one"), "{text}");
        assert!(text.contains("(every request gets 403)"), "{text}");
    }

    #[test]
    fn an_http_configuration_against_the_decision_point_is_called_out() {
        let config = check(
            r#"{"decision": "status", "cluster": "authzen"}"#,
            &Source::Flag,
        )
        .unwrap();
        let mut banner = banner(Some(&config), AuthService::DemoAuthzen(1));
        banner.clusters = vec!["authzen".to_owned()];
        let text = text(&banner);
        assert!(text.contains("answers only AuthZEN evaluations"), "{text}");
        assert!(!text.contains("every request gets"), "{text}");
        let grpc = check(
            r#"{"protocol": "grpc", "cluster": "authzen"}"#,
            &Source::Flag,
        )
        .unwrap();
        banner.plugin = Some((&grpc, &Source::Flag));
        let text = self::text(&banner);
        assert!(text.contains("DOES NOT SPEAK gRPC"), "{text}");
    }

    #[test]
    fn a_taken_default_admin_port_is_explained() {
        let mut banner = banner(None, AuthService::LocalHttpbin(1));
        banner.admin_url = "http://127.0.0.1:40001".to_owned();
        banner.admin_default_taken = Some(8001);
        let text = text(&banner);
        assert!(
            text.contains("admin:        http://127.0.0.1:40001   (stats: "),
            "{text}"
        );
        assert!(text.contains("port 8001 was taken"), "{text}");
    }

    #[test]
    fn another_plugin_gets_no_promise() {
        let text = text(&banner(None, AuthService::LocalHttpbin(1)));
        assert!(text.contains("not known to xtask"), "{text}");
        assert!(
            text.contains("try:          curl -v localhost:18000/uuid\n"),
            "{text}"
        );
    }
}
