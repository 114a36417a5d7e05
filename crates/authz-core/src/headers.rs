//! The header-name policy the whole filter shares: which names frame a message or describe its
//! connection, which are Envoy's to set, which are never taken from an auth answer, and when a
//! client's `_` spelling names the same header.

/// Names that frame a message or describe its connection, not the request.
const CONNECTION: [&str; 10] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "upgrade",
    "te",
    "trailer",
    "http2-settings",
    "expect",
];

/// Whether a name frames a message or describes its connection.
pub fn is_connection(name: &str) -> bool {
    CONNECTION.contains(&name)
}

/// Hop-by-hop names that describe only the client's connection: they cannot decide a verdict,
/// and Envoy does not pass them to filters, so a cache key never names one.
pub fn is_connection_only(name: &str) -> bool {
    matches!(
        name,
        "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding"
    )
}

/// Whether a header (lowercase name) is Envoy's to set: it frames, routes or controls the
/// message, so neither the configuration nor an auth answer may set or remove it, and a client's
/// copy never goes to an auth service. `content-type: application/grpc` on a call makes Envoy
/// answer a failed call with a 200, and `x-envoy-*` headers are obeyed on the call.
pub fn is_envoy_owned(name: &str, value: &[u8]) -> bool {
    name == "host"
        || is_connection(name)
        || name.starts_with("x-envoy-")
        || name.starts_with("grpc-")
        || (name == "content-type" && value.starts_with(b"application/grpc"))
}

/// Names never taken from an auth answer onto the request or the response, whatever a prefix or
/// suffix matcher says: they would reroute or reframe the message.
pub fn is_reserved(name: &str) -> bool {
    name.starts_with(':') || name == "host"
}

/// Names never relayed from an auth answer to the client: the plugin's reply (or the upstream's
/// response) has its own framing and connection.
pub fn is_hop_by_hop(name: &str) -> bool {
    name == "host" || is_connection(name)
}

/// Whether a header a client sent names `name` (lowercase, with dashes): the same name, or the
/// same once each `_` reads as `-`, as CGI, WSGI and Rack read `x_api_key` as `x-api-key`.
pub fn names(header: &str, name: &str) -> bool {
    header == name
        || (header.as_bytes().contains(&b'_')
            && header.len() == name.len()
            && header
                .bytes()
                .zip(name.bytes())
                .all(|(h, n)| h == n || (h == b'_' && n == b'-')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn underscore_spellings_name_the_dashed_header_and_nothing_else() {
        assert!(names("x-user-id", "x-user-id"));
        assert!(names("x_user_id", "x-user-id"));
        assert!(names("x_user-id", "x-user-id"));
        assert!(!names("x-user-id", "x_user_id"), "only `_` stands for `-`");
        assert!(!names("x-user-i", "x-user-id"));
        assert!(!names("xuser-id", "x-user-id"));
    }

    #[test]
    fn envoy_owned_names_include_framing_routing_and_grpc() {
        for name in [
            "host",
            "content-length",
            "te",
            "expect",
            "x-envoy-retry-on",
            "grpc-timeout",
        ] {
            assert!(is_envoy_owned(name, b""), "{name}");
        }
        assert!(is_envoy_owned("content-type", b"application/grpc+proto"));
        assert!(!is_envoy_owned("content-type", b"application/json"));
        assert!(!is_envoy_owned("authorization", b""));
        assert!(is_hop_by_hop("transfer-encoding") && !is_hop_by_hop("x-auth"));
        assert!(is_reserved(":path") && is_reserved("host") && !is_reserved("x-host"));
        assert!(is_connection_only("keep-alive") && !is_connection_only("content-length"));
    }
}
