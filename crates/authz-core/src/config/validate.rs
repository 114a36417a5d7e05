//! Checks for single configuration values; each error names the field and the reason.

use std::fmt;

/// A configuration error: which field, and why it was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}: {}", self.field, self.reason)
    }
}

pub type Checked<T> = Result<T, ConfigError>;

/// RFC 9110 `tchar`: what a header name or a method may be made of.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || u8::try_from(c).is_ok_and(|b| b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A regular (not pseudo) header name, returned lowercased as Envoy stores it.
pub fn header_name(field: &str, name: &str) -> Checked<String> {
    if name.is_empty() {
        return Err(ConfigError::new(field, "header name is empty"));
    }
    if let Some(bad) = name.chars().find(|&c| !is_token_char(c)) {
        return Err(ConfigError::new(
            field,
            format!(
                "header name \"{name}\" contains {}, which is not allowed in a header name",
                show(bad)
            ),
        ));
    }
    Ok(name.to_ascii_lowercase())
}

/// A header value: CR, LF and NUL would split or truncate the header on the wire.
pub fn header_value(field: &str, value: &str) -> Checked<String> {
    if let Some(bad) = value.chars().find(|c| matches!(c, '\r' | '\n' | '\0')) {
        return Err(ConfigError::new(
            field,
            format!(
                "header value contains {}, which is not allowed in a header value",
                show(bad)
            ),
        ));
    }
    Ok(value.to_owned())
}

/// The status of a refusal the plugin sends: a redirect or an error. A 2xx would tell the client
/// its request succeeded when it never reached the upstream.
pub fn status(field: &str, code: u32) -> Checked<u16> {
    match u16::try_from(code) {
        Ok(code @ 300..=599) => Ok(code),
        _ => Err(ConfigError::new(
            field,
            format!("{code} is not a refusal's status (300 to 599)"),
        )),
    }
}

/// A header the plugin adds to a request or a reply of its own. Names that frame or route the
/// message, or that Envoy obeys, are Envoy's to set: `content-length: 10` on the body-less auth
/// call makes every call wait out its timeout, and `content-type: application/grpc` makes Envoy
/// answer a failed call with a 200.
pub fn added_header(field: &str, name: &str, value: &str) -> Checked<()> {
    if crate::headers::is_envoy_owned(name, value.as_bytes()) {
        return Err(ConfigError::new(
            field,
            format!("\"{name}\" is Envoy's to set: it frames, routes or controls the message"),
        ));
    }
    Ok(())
}

/// An origin-form path: starts with `/`, no spaces or control characters.
pub fn path(field: &str, value: &str) -> Checked<String> {
    if !value.starts_with('/') {
        return Err(ConfigError::new(
            field,
            format!("path \"{value}\" must start with '/'"),
        ));
    }
    no_space_or_control(field, "path", value)?;
    Ok(value.to_owned())
}

/// A path prefix to prepend: empty, or a path.
pub fn path_prefix(field: &str, value: &str) -> Checked<String> {
    if value.is_empty() {
        return Ok(String::new());
    }
    let value = path(field, value)?;
    Ok(value.trim_end_matches('/').to_owned())
}

pub fn method(field: &str, value: &str) -> Checked<String> {
    if value.is_empty() || !value.chars().all(is_token_char) {
        return Err(ConfigError::new(
            field,
            format!("\"{value}\" is not an HTTP method"),
        ));
    }
    Ok(value.to_owned())
}

/// A method to exempt. Methods are case-sensitive tokens, so `get` would never match a GET: only
/// upper case is accepted, and the error says so rather than silently matching nothing.
pub fn exempt_method(field: &str, value: &str) -> Checked<String> {
    let method = self::method(field, value)?;
    if method.chars().any(|c| c.is_ascii_lowercase()) {
        return Err(ConfigError::new(
            field,
            format!(
                "\"{value}\" has lower-case letters: methods are case-sensitive, write \"{}\"",
                value.to_ascii_uppercase()
            ),
        ));
    }
    Ok(method)
}

pub fn authority(field: &str, value: &str) -> Checked<String> {
    if value.is_empty() {
        return Err(ConfigError::new(field, "authority is empty"));
    }
    no_space_or_control(field, "authority", value)?;
    if value.as_bytes().contains(&b'/') {
        return Err(ConfigError::new(
            field,
            format!("authority \"{value}\" must be host[:port], without '/'"),
        ));
    }
    Ok(value.to_owned())
}

/// An Envoy cluster name; mesh names such as `outbound|80||auth.ns.svc.cluster.local` are fine.
pub fn cluster(field: &str, value: &str) -> Checked<String> {
    if value.is_empty() {
        return Err(ConfigError::new(field, "cluster name is empty"));
    }
    no_space_or_control(field, "cluster name", value)?;
    Ok(value.to_owned())
}

/// A stats name segment list such as `http_auth_random` or `authz.edge`.
pub fn stat_prefix(field: &str, value: &str) -> Checked<String> {
    let well_formed = !value.is_empty()
        && value.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    if !well_formed {
        return Err(ConfigError::new(
            field,
            format!("\"{value}\" must be dot-separated words of letters, digits, '_' or '-'"),
        ));
    }
    Ok(value.to_owned())
}

pub fn in_range(field: &str, value: u64, min: u64, max: u64, unit: &str) -> Checked<u64> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::new(
            field,
            format!(
                "{value} is out of range: must be {min} to {max}{}{unit}",
                if unit.is_empty() { "" } else { " " }
            ),
        ))
    }
}

/// Paths, authorities and cluster names are printable ASCII: no spaces, controls or non-ASCII.
fn no_space_or_control(field: &str, what: &str, value: &str) -> Checked<()> {
    match value.chars().find(|c| !c.is_ascii_graphic()) {
        Some(bad) => Err(ConfigError::new(
            field,
            format!("{what} contains {}, which is not allowed there", show(bad)),
        )),
        None => Ok(()),
    }
}

/// A character by its code point, so that control characters stay out of the log line.
fn show(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_lowercased_and_checked() {
        assert_eq!(header_name("f", "X-User-Id").as_deref(), Ok("x-user-id"));
        assert!(header_name("f", "").is_err());
        assert!(header_name("f", "x user").is_err());
        assert!(header_name("f", ":path").is_err());
        assert!(header_name("f", "x\u{e9}").is_err());
    }

    #[test]
    fn header_values_refuse_line_breaks_and_nul() {
        assert!(header_value("f", "fine value").is_ok());
        for bad in ["a\rb", "a\nb", "a\0b"] {
            let err = header_value("deny.body", bad).unwrap_err();
            assert_eq!(err.field, "deny.body");
        }
    }

    #[test]
    fn statuses_must_be_refusals() {
        assert_eq!(status("f", 403), Ok(403));
        assert_eq!(status("f", 302), Ok(302));
        for bad in [0, 100, 101, 199, 200, 204, 299, 600, 70_000] {
            assert!(status("f", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_and_prefixes() {
        assert!(path("f", "/check").is_ok());
        assert!(path("f", "check").is_err());
        assert!(path("f", "/a b").is_err());
        assert_eq!(path_prefix("f", "/auth/").as_deref(), Ok("/auth"));
        assert_eq!(path_prefix("f", "").as_deref(), Ok(""));
    }

    #[test]
    fn stat_prefixes() {
        assert!(stat_prefix("f", "authz.edge_1").is_ok());
        for bad in ["", ".a", "a.", "a..b", "a b", "a:b"] {
            assert!(stat_prefix("f", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_display_names_field_and_reason() {
        let err = ConfigError::new("timeout_ms", "0 is out of range");
        assert_eq!(
            err.to_string(),
            "invalid configuration: timeout_ms: 0 is out of range"
        );
    }
}
