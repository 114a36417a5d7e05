//! The served plugin's configuration, read with the plugin's own parser before Envoy starts: a
//! refused configuration stops `run` with the parser's own error, an accepted one tells the banner
//! and the decision log what the plugin will do.

use std::path::Path;

use anyhow::{bail, Context, Result};
use authz_core::config::{Config, PathRule, Protocol, Rule};
use workbench::decision_log::Outcomes;

/// Where the configuration text came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--plugin-config JSON`.
    Flag,
    /// `--plugin-config @FILE`: the file as the user named it.
    File(String),
    SeedFile,
    GrpcSeedFile,
    /// The configuration `--protocol authzen` serves (`AUTHZEN_DEMO`).
    AuthzenDemo,
}

/// The cluster `--protocol authzen` adds for its decision point.
pub const AUTHZEN_CLUSTER: &str = "authzen";

/// What `--protocol authzen` serves unless `--plugin-config` replaces it: an evaluation of the
/// subject in `x-user-id` to the decision point on cluster `authzen`, the decision point's reason
/// for a deny put on the reply as `x-authz-reason`.
pub const AUTHZEN_DEMO: &str = r#"{"protocol": "authzen", "cluster": "authzen", "timeout_ms": 500,
 "authzen": {"subject": {"id_header": "x-user-id"},
             "deny_reason": {"pointer": "/context/reason_user/en-403", "header": "x-authz-reason"}}}"#;

impl Source {
    pub fn describe(&self) -> String {
        match self {
            Source::Flag => "--plugin-config".to_owned(),
            Source::File(path) => format!("--plugin-config @{path}"),
            Source::SeedFile => "envoy/envoy.yaml".to_owned(),
            Source::GrpcSeedFile => "envoy/envoy-grpc.yaml".to_owned(),
            Source::AuthzenDemo => "--protocol authzen's demo configuration".to_owned(),
        }
    }
}

/// The text `--plugin-config` gives: the JSON itself, or with a leading `@` (curl's convention)
/// the contents of the file named after it (relative to the current folder).
pub fn from_flag(value: &str) -> Result<(String, Source)> {
    if let Some(path) = value.strip_prefix('@') {
        if path.is_empty() {
            bail!("--plugin-config @ needs a file name after the @ (e.g. @plugin.json)");
        }
        let text = std::fs::read_to_string(Path::new(path))
            .with_context(|| format!("cannot read the plugin configuration file {path}"))?;
        return Ok((text, Source::File(path.to_owned())));
    }
    let trimmed = value.trim_start();
    if !trimmed.starts_with('{') && Path::new(value).is_file() {
        bail!(
            "--plugin-config takes JSON, and {value:?} is a file: to read it, write --plugin-config @{value}"
        );
    }
    Ok((value.to_owned(), Source::Flag))
}

/// Parses the configuration as the plugin will; its error names the field and the reason.
pub fn check(text: &str, source: &Source) -> Result<Config> {
    match Config::parse(text.as_bytes()) {
        Ok(config) => Ok(config),
        Err(err) => bail!(
            "the plugin would refuse the configuration from {} ({err}), so Envoy would not start",
            source.describe()
        ),
    }
}

/// The rule's name and what it does, in words.
pub fn rule(config: &Config) -> (&'static str, String) {
    if matches!(config.protocol, Protocol::Grpc) {
        return (
            "grpc",
            "ext_authz's Check over gRPC: an OK allows (with the headers it sets), any other code denies with the service's denied_response, or 403"
                .to_owned(),
        );
    }
    if let (Protocol::AuthZen, Some(authzen)) = (config.protocol, &config.authzen) {
        let reason = match &authzen.deny_reason {
            Some(reason) => format!(" (the answer's {} as {})", reason.pointer, reason.header),
            None => String::new(),
        };
        let unasked = match &authzen.subject.anonymous_id {
            Some(id) => format!("is asked about as {id:?}"),
            None => format!("is denied unasked, with {}", config.deny.status),
        };
        return (
            "authzen",
            format!(
                "an OpenID AuthZEN evaluation POSTed to {}: \"decision\": true in a 2xx answer \
                 allows, false denies with {} {:?}{reason}; a request without {} {unasked}",
                authzen.path, config.deny.status, config.deny.body, authzen.subject.id_header
            ),
        );
    }
    let meaning = match &config.rule {
        Rule::FnvParity => format!(
            "an even FNV-1a hash of the auth answer's body allows, an odd one denies with {} {:?}",
            config.deny.status, config.deny.body
        ),
        Rule::Status => {
            "the auth service answering 200 allows; any other answer denies, passed on \
             to the client"
                .to_owned()
        }
        Rule::Json(json) => format!(
            "true at {} in the auth answer's JSON body allows, false denies with {} {:?}; anything else is an error",
            json.pointer, config.deny.status, config.deny.body
        ),
    };
    (config.rule.name(), meaning)
}

/// What happens when the auth call fails, in words.
pub fn failure_mode(config: &Config) -> String {
    let failure = &config.failure;
    if failure.allow {
        let marked = if failure.add_header {
            ", marked x-envoy-auth-failure-mode-allowed: true"
        } else {
            ""
        };
        format!("fail open (failure_mode_allow): the request goes through{marked}")
    } else {
        format!(
            "fail closed: the request gets {} (status_on_error)",
            failure.status_on_error
        )
    }
}

/// What a request gets when every auth call fails.
pub fn when_auth_fails(config: &Config) -> String {
    if config.failure.allow {
        "every request gets through unchecked".to_owned()
    } else {
        format!("every request gets {}", config.failure.status_on_error)
    }
}

/// What a request gets when the auth cluster has no host (its name does not resolve): Envoy
/// answers the plugin's call itself with 503 "no healthy upstream", marked `x-envoy-overloaded`,
/// which the plugin takes for an overloaded auth path and refuses with 503 whatever the failure
/// mode (overload never fails open).
pub fn when_cluster_has_no_host() -> String {
    format!(
        "every request gets 503 {:?}: Envoy answers each auth call itself, marked overloaded, \
         and the plugin never lets an overload through, failing open or not",
        String::from_utf8_lossy(authz_core::flow::OVERLOADED_BODY)
    )
}

/// Whether the auth call asks for the client's own path (so httpbin's paths steer the answer).
pub fn asks_client_path(config: &Config) -> bool {
    config.auth_request.path == PathRule::Client
}

/// What each outcome looks like in the access log, for `--log-decisions`.
pub fn outcomes(config: &Config) -> Outcomes {
    let status_on_error = config.failure.status_on_error;
    if matches!(config.protocol, Protocol::Grpc) {
        return Outcomes {
            allow_reason: "the Check service answered OK".to_owned(),
            deny_reply: None,
            deny_reason: "the Check service's denial".to_owned(),
            status_on_error,
        };
    }
    if let (Protocol::AuthZen, Some(authzen)) = (config.protocol, &config.authzen) {
        let unasked = if authzen.subject.anonymous_id.is_none() {
            format!(", or no {}", authzen.subject.id_header)
        } else {
            String::new()
        };
        return Outcomes {
            allow_reason: "the decision point said true".to_owned(),
            deny_reply: Some((config.deny.status, config.deny.body.len() as u64)),
            deny_reason: format!("the decision point said false{unasked}"),
            status_on_error,
        };
    }
    match &config.rule {
        Rule::FnvParity => Outcomes {
            allow_reason: "even hash of the auth answer".to_owned(),
            deny_reply: Some((config.deny.status, config.deny.body.len() as u64)),
            deny_reason: "odd hash of the auth answer".to_owned(),
            status_on_error,
        },
        Rule::Status => Outcomes {
            allow_reason: "the auth service answered 200".to_owned(),
            deny_reply: None,
            deny_reason: "the auth service's answer".to_owned(),
            status_on_error,
        },
        Rule::Json(json) => Outcomes {
            allow_reason: format!("true at {} in the auth answer", json.pointer),
            deny_reply: Some((config.deny.status, config.deny.body.len() as u64)),
            deny_reason: format!("false at {} in the auth answer", json.pointer),
            status_on_error,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_configuration_gives_the_parsers_error() {
        let err = check(r#"{"timeout_ms": 0}"#, &Source::Flag).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("--plugin-config")
                && text.contains("timeout_ms: 0 is out of range: must be 1 to 3600000 ms"),
            "{text}"
        );
    }

    #[test]
    fn the_shipped_demo_fails_open_under_the_seeds_rule() {
        let config = check(
            r#"{"decision": "fnv_parity", "failure_mode_allow": true}"#,
            &Source::SeedFile,
        )
        .unwrap();
        assert_eq!(rule(&config).0, "fnv_parity");
        assert!(failure_mode(&config).starts_with("fail open"));
        assert_eq!(
            when_auth_fails(&config),
            "every request gets through unchecked"
        );
        assert_eq!(outcomes(&config).deny_reply, Some((403, 16)));
    }

    #[test]
    fn the_status_rule_has_no_fixed_deny_reply() {
        let config = check(
            r#"{"decision": "status", "status_on_error": 503}"#,
            &Source::Flag,
        )
        .unwrap();
        assert_eq!(rule(&config).0, "status");
        assert_eq!(
            failure_mode(&config),
            "fail closed: the request gets 503 (status_on_error)"
        );
        assert_eq!(outcomes(&config).deny_reply, None);
    }

    #[test]
    fn the_authzen_demo_is_an_authzen_configuration_on_its_own_cluster() {
        let config = check(AUTHZEN_DEMO, &Source::AuthzenDemo).unwrap();
        assert_eq!(config.protocol, Protocol::AuthZen);
        assert_eq!(config.auth_request.cluster, AUTHZEN_CLUSTER);
        let authzen = config.authzen.as_ref().unwrap();
        assert_eq!(authzen.subject.id_header, "x-user-id");
        assert_eq!(
            authzen.deny_reason.as_ref().map(|r| r.header.as_str()),
            Some("x-authz-reason")
        );
        assert_eq!(authzen.path, workbench::authzen::EVALUATION_PATH);
        let (name, meaning) = rule(&config);
        assert_eq!(name, "authzen");
        assert!(
            meaning.contains("POSTed to /access/v1/evaluation")
                && meaning.contains("as x-authz-reason")
                && meaning.ends_with("a request without x-user-id is denied unasked, with 403"),
            "{meaning}"
        );
        assert_eq!(
            failure_mode(&config),
            "fail closed: the request gets 403 (status_on_error)"
        );
        let outcomes = outcomes(&config);
        assert_eq!(outcomes.deny_reply, Some((403, 16)));
        assert_eq!(
            outcomes.deny_reason,
            "the decision point said false, or no x-user-id"
        );
        assert_eq!(
            Source::AuthzenDemo.describe(),
            "--protocol authzen's demo configuration"
        );
    }

    #[test]
    fn an_at_sign_reads_the_configuration_from_a_file() {
        let dir = std::env::temp_dir().join(format!("plugin-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("plugin.json");
        std::fs::write(&file, r#"{"decision": "status"}"#).unwrap();
        let path = file.to_string_lossy().into_owned();

        let (text, source) = from_flag(&format!("@{path}")).unwrap();
        assert_eq!(text, r#"{"decision": "status"}"#);
        assert_eq!(source, Source::File(path.clone()));
        assert_eq!(source.describe(), format!("--plugin-config @{path}"));

        // A file name without the @ is not taken for JSON.
        let err = from_flag(&path).unwrap_err().to_string();
        assert!(
            err.contains(&format!("write --plugin-config @{path}")),
            "{err}"
        );

        let missing = format!("@{path}.missing");
        let err = format!("{:#}", from_flag(&missing).unwrap_err());
        assert!(
            err.contains("cannot read the plugin configuration file"),
            "{err}"
        );
        assert!(from_flag("@").is_err());

        // Inline JSON stays as it is.
        let (text, source) = from_flag(r#"{"timeout_ms": 5}"#).unwrap();
        assert_eq!(
            (text.as_str(), source),
            (r#"{"timeout_ms": 5}"#, Source::Flag)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_refused_file_is_named_in_the_error() {
        let source = Source::File("conf/plugin.json".to_owned());
        let err = check(r#"{"timeout_ms": 0}"#, &source)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("from --plugin-config @conf/plugin.json ("),
            "{err}"
        );
    }
}
