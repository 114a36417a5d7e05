//! One line per request saying what the auth filter decided, read from Envoy's own access log on
//! the plugin's listener (so the plugin needs no extra logging): allowed, denied, or an auth
//! error failed open or closed, with the reason the outcome shows.

use serde_json::{json, Value};

/// What the plugin's configuration says its outcomes look like, to tell them apart in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcomes {
    /// Why a request that reached the upstream unmarked was let through.
    pub allow_reason: String,
    /// The reply the plugin denies with, when the rule has a fixed one: status and body bytes.
    pub deny_reply: Option<(u16, u64)>,
    /// Why a request was denied.
    pub deny_reason: String,
    /// The status of an auth error failing closed (sent with no body).
    pub status_on_error: u16,
}

/// The stdout access log to add to the plugin listener's HTTP connection manager.
pub fn access_log() -> Value {
    json!([{
        "name": "envoy.access_loggers.stdout",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
            "log_format": { "json_format": {
                "method": "%REQ(:METHOD)%",
                "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
                "status": "%RESPONSE_CODE%",
                "details": "%RESPONSE_CODE_DETAILS%",
                "flags": "%RESPONSE_FLAGS%",
                "body_bytes": "%BYTES_SENT%",
                // The plugin marks requests it lets through on an auth error.
                "failure_mode_allowed": "%REQ(X-ENVOY-AUTH-FAILURE-MODE-ALLOWED)%",
                // The filter's own decision record (`record_decisions`), where its shell keeps it.
                "record": record_format()
            }}
        }
    }])
}

/// How the access log reads the decision record in the shell `AUTHZ_SHELL` picks.
pub fn record_format() -> &'static str {
    match crate::shell::Shell::current() {
        crate::shell::Shell::Wasm => "%FILTER_STATE(wasm.http_auth_decision:PLAIN)%",
        crate::shell::Shell::Native => {
            "verdict=%DYNAMIC_METADATA(http_auth_native:verdict)% \
             reason=%DYNAMIC_METADATA(http_auth_native:reason)% \
             cache=%DYNAMIC_METADATA(http_auth_native:cache)% \
             auth_ms=%DYNAMIC_METADATA(http_auth_native:auth_ms)% \
             rule=%DYNAMIC_METADATA(http_auth_native:rule)%"
        }
    }
}

/// The record as the log printed it, if the filter kept one.
fn record(entry: &Value) -> Option<String> {
    let text = entry["record"].as_str()?.trim();
    // Envoy prints "-" for what is not there: a record is there when its verdict is.
    let kept = !text.is_empty() && text != "-" && !text.starts_with("verdict=- ");
    kept.then(|| text.trim_matches('"').to_owned())
}

/// The response code details the plugin gives its own replies.
pub const PLUGIN_REPLY_DETAILS: &str = "http_auth_random";

/// One access-log line as a decision line; a line that is not one is returned as it is.
/// `outcomes` is `None` for a plugin whose configuration the workbench cannot read.
pub fn describe(line: &str, outcomes: Option<&Outcomes>) -> String {
    let Ok(entry) = serde_json::from_str::<Value>(line) else {
        return line.to_owned();
    };
    let text = |key: &str| entry[key].as_str().unwrap_or("-").to_owned();
    let number = |key: &str| entry[key].as_u64();
    let request = format!("{} {}", text("method"), text("path"));
    let Some(status) = number("status").and_then(|s| u16::try_from(s).ok()) else {
        return format!("{request} -> no response (flags {})", text("flags"));
    };
    let bytes = number("body_bytes").unwrap_or(0);
    let details = text("details");
    let verdict = if details == "via_upstream" {
        if entry["failure_mode_allowed"] == "true" {
            format!("error, failed open: let through (marked x-envoy-auth-failure-mode-allowed), the upstream answered {status}; the plugin's warning above says why")
        } else {
            match outcomes {
                Some(o) => format!("allow ({}): the upstream answered {status}", o.allow_reason),
                None => format!("let through: the upstream answered {status}"),
            }
        }
    } else if !details.is_empty() && details != "-" && details != PLUGIN_REPLY_DETAILS {
        // Envoy's own local replies name themselves; the plugin's name the plugin.
        format!(
            "Envoy answered {status} itself ({details}, flags {})",
            text("flags")
        )
    } else {
        let reply = format!("{status}, {}", body(bytes));
        match outcomes {
            Some(o) if o.deny_reply == Some((status, bytes)) => {
                format!("deny ({}): {reply}", o.deny_reason)
            }
            Some(o) if status == o.status_on_error && bytes == 0 && o.deny_reply.is_some() => {
                format!("error, failed closed: {reply}; the plugin's warning above says why")
            }
            Some(o) if status == o.status_on_error && bytes == 0 => {
                format!("deny ({}) or error failed closed: {reply}", o.deny_reason)
            }
            Some(o) if o.deny_reply.is_none() => format!("deny ({}): {reply}", o.deny_reason),
            _ => format!("answered by the plugin: {reply}"),
        }
    };
    match record(&entry) {
        Some(record) => format!("{request} -> {verdict} [{record}]"),
        None => format!("{request} -> {verdict}"),
    }
}

fn body(bytes: u64) -> String {
    match bytes {
        0 => "no body".to_owned(),
        1 => "1-byte body".to_owned(),
        n => format!("{n}-byte body"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fnv() -> Outcomes {
        Outcomes {
            allow_reason: "even hash of the auth answer".to_owned(),
            deny_reply: Some((403, 16)),
            deny_reason: "odd hash of the auth answer".to_owned(),
            status_on_error: 403,
        }
    }

    fn status_rule() -> Outcomes {
        Outcomes {
            allow_reason: "the auth service answered 200".to_owned(),
            deny_reply: None,
            deny_reason: "the auth service's answer".to_owned(),
            status_on_error: 403,
        }
    }

    fn line(status: u16, details: &str, bytes: u64, marked: Option<&str>) -> String {
        json!({
            "method": "GET", "path": "/uuid", "status": status, "details": details,
            "flags": "-", "body_bytes": bytes, "failure_mode_allowed": marked
        })
        .to_string()
    }

    #[test]
    fn the_upstream_answering_is_an_allow() {
        assert_eq!(
            describe(&line(200, "via_upstream", 13, None), Some(&fnv())),
            "GET /uuid -> allow (even hash of the auth answer): the upstream answered 200"
        );
        assert_eq!(
            describe(&line(200, "via_upstream", 13, None), None),
            "GET /uuid -> let through: the upstream answered 200"
        );
    }

    #[test]
    fn the_filters_own_record_is_shown_when_it_kept_one() {
        let mut entry: Value = serde_json::from_str(&line(200, "via_upstream", 13, None)).unwrap();
        entry["record"] = json!("verdict=allow reason=allowed cache=hit");
        let text = describe(&entry.to_string(), Some(&fnv()));
        assert!(
            text.ends_with("[verdict=allow reason=allowed cache=hit]"),
            "{text}"
        );
        for absent in ["-", "", "verdict=- reason=- cache=- auth_ms=-"] {
            entry["record"] = json!(absent);
            assert!(
                !describe(&entry.to_string(), Some(&fnv())).contains('['),
                "{absent:?}"
            );
        }
    }

    #[test]
    fn a_marked_request_failed_open() {
        let text = describe(&line(200, "via_upstream", 13, Some("true")), Some(&fnv()));
        assert!(
            text.starts_with("GET /uuid -> error, failed open: let through"),
            "{text}"
        );
    }

    #[test]
    fn the_plugins_deny_reply_and_its_error_reply_are_told_apart() {
        assert_eq!(
            describe(&line(403, PLUGIN_REPLY_DETAILS, 16, None), Some(&fnv())),
            "GET /uuid -> deny (odd hash of the auth answer): 403, 16-byte body"
        );
        assert!(
            describe(&line(403, PLUGIN_REPLY_DETAILS, 0, None), Some(&fnv()))
                .starts_with("GET /uuid -> error, failed closed: 403, no body")
        );
    }

    #[test]
    fn under_the_status_rule_an_empty_403_may_be_either() {
        assert_eq!(
            describe(
                &line(401, PLUGIN_REPLY_DETAILS, 12, None),
                Some(&status_rule())
            ),
            "GET /uuid -> deny (the auth service's answer): 401, 12-byte body"
        );
        assert_eq!(
            describe(
                &line(403, PLUGIN_REPLY_DETAILS, 0, None),
                Some(&status_rule())
            ),
            "GET /uuid -> deny (the auth service's answer) or error failed closed: 403, no body"
        );
    }

    #[test]
    fn envoys_own_replies_name_their_reason() {
        let text = describe(&line(503, "wasm_fail_stream", 0, None), Some(&fnv()));
        assert_eq!(
            text,
            "GET /uuid -> Envoy answered 503 itself (wasm_fail_stream, flags -)"
        );
    }

    #[test]
    fn other_lines_pass_through() {
        assert_eq!(describe("not json", Some(&fnv())), "not json");
    }

    #[test]
    fn the_access_log_asks_for_every_field_read() {
        let format = &access_log()[0]["typed_config"]["log_format"]["json_format"];
        for field in [
            "method",
            "path",
            "status",
            "details",
            "flags",
            "body_bytes",
            "failure_mode_allowed",
        ] {
            assert!(format[field].is_string(), "{field}");
        }
    }
}
