//! Anti-spoofing: a client's copies of headers only the auth service or the plugin may set are
//! removed from the request (and its trailers) before it goes anywhere, the check included.

use log::debug;

use super::{Flow, FAILURE_MODE_ALLOWED_HEADER};
use crate::host::{Headers, Host, HostError};

impl Flow {
    /// Removes the client's own copies of the headers the auth service is trusted to set, in any
    /// case, number or `_` spelling. The marker `failure_mode_allow` sets is only ever the
    /// plugin's to set, so a client's copy goes whatever the configuration says.
    pub(super) fn strip_spoofed(
        &self,
        host: &impl Host,
        map: &Headers,
        kind: Map,
    ) -> Result<(), HostError> {
        let mut removed: Vec<&str> = Vec::new();
        for (name, _) in map {
            if self.forged(name) && !removed.contains(&name.as_str()) {
                match kind {
                    Map::Headers => host.remove_request_header(name)?,
                    Map::Trailers => host.remove_request_trailer(name)?,
                }
                debug!("#{} removed the client's {name}", self.id);
                removed.push(name);
            }
        }
        Ok(())
    }

    /// Whether a client's header is a forged copy of one only the auth service or the plugin may
    /// set, in any case or `_` spelling.
    pub(super) fn forged(&self, name: &str) -> bool {
        let response = &self.config.response;
        (response.strips_client_copies() && response.is_spoofed(name)) || is_failure_marker(name)
    }
}

/// Which of the request's maps a header came from.
#[derive(Debug, Clone, Copy)]
pub(super) enum Map {
    Headers,
    Trailers,
}

/// Whether a header is the failure-mode marker, in either spelling (CGI-style frameworks read
/// `x_envoy_auth_failure_mode_allowed` as the marker).
fn is_failure_marker(name: &str) -> bool {
    name.len() == FAILURE_MODE_ALLOWED_HEADER.len()
        && name
            .bytes()
            .zip(FAILURE_MODE_ALLOWED_HEADER.bytes())
            .all(|(n, m)| n == m || (n == b'_' && m == b'-'))
}
