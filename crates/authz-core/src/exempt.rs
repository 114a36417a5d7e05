//! Which requests skip the auth call: exact paths, path prefixes and methods.

use crate::config::Exemptions;
use crate::paths::is_plain;

/// Whether the request may skip authorization. A path that could be read two ways (dot segments,
/// percent-encoding, backslashes, doubled slashes, path parameters) is never exempt:
/// `/public/../admin` must not ride on a `/public/` exemption to an upstream that resolves it
/// differently, and Tomcat, Jetty and Spring read `/public/..;/admin` as `/admin`.
pub fn is_exempt(rules: &Exemptions, path: Option<&[u8]>, method: Option<&[u8]>) -> bool {
    if let Some(method) = method.and_then(|m| std::str::from_utf8(m).ok()) {
        if rules.has_method(method) {
            return true;
        }
    }
    let Some(path) = path.and_then(|p| std::str::from_utf8(p).ok()) else {
        return false;
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    if !is_plain(path) {
        return false;
    }
    rules.has_path(path)
        || rules
            .path_prefixes
            .iter()
            .any(|prefix| path.starts_with(prefix.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn rules() -> Exemptions {
        Config::parse(
            br#"{"decision": "fnv_parity", "exempt": {"paths": ["/healthz"], "path_prefixes": ["/public/"], "methods": ["OPTIONS"]}}"#,
        )
        .unwrap()
        .exempt
    }

    fn exempt(path: &str, method: &str) -> bool {
        is_exempt(&rules(), Some(path.as_bytes()), Some(method.as_bytes()))
    }

    #[test]
    fn exact_paths_prefixes_and_methods_are_exempt() {
        assert!(exempt("/healthz", "GET"));
        assert!(exempt("/healthz?probe=1", "GET"));
        assert!(exempt("/public/logo.png", "GET"));
        assert!(exempt("/anything", "OPTIONS"));
    }

    #[test]
    fn everything_else_is_checked() {
        assert!(!exempt("/healthz/", "GET"));
        assert!(!exempt("/healthzz", "GET"));
        assert!(!exempt("/public", "GET"));
        assert!(!exempt("/admin", "GET"));
        assert!(!exempt("/admin", "options"));
    }

    #[test]
    fn ambiguous_paths_are_never_exempt() {
        for path in [
            "/public/../admin",
            "/public/./x",
            "/public/%2e%2e/admin",
            "/public//x",
            "/public\\..\\admin",
            "/public/..",
            "/public/..;/admin",
            "/public/.;/admin",
            "/public/x/..;/..;/admin",
            "/public/..;a/admin",
            "/public/x;jsessionid=1",
            "/healthz;",
        ] {
            assert!(!exempt(path, "GET"), "{path}");
        }
    }

    #[test]
    fn missing_or_non_utf8_pseudo_headers_are_not_exempt() {
        assert!(!is_exempt(&rules(), None, None));
        assert!(!is_exempt(&rules(), Some(b"/healthz\xff"), Some(b"GET")));
    }
}
