//! Putting a request under the first `routes` rule it matches, before anything else is done
//! for it: from then on the rule's configuration is the request's.

use std::rc::Rc;

use super::Flow;
use crate::host::{Action, Headers, Host, HostError};
use crate::protocol::BadRequest;
use crate::route_match::{needs, select, Facts, Selection};
use crate::state::Root;

impl Flow {
    /// `Some` when the request ends here: its path is ambiguous, or Envoy's names of its route
    /// cannot be read (never guessed: a wrong guess could pick a more permissive rule).
    pub(super) fn follow_routes(
        &mut self,
        host: &impl Host,
        root: &mut Root,
        request: &Headers,
    ) -> Option<Action> {
        let rules = Rc::clone(&self.config);
        let header = |name: &str| {
            request
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, value)| String::from_utf8_lossy(value))
        };
        let (route_name, virtual_host) = needs(rules.routes.iter().map(|r| &r.when));
        let names = envoy_name(host, route_name, "route_name")
            .and_then(|route| Ok((route, envoy_name(host, virtual_host, "virtual_host_name")?)));
        let (route_name, virtual_host) = match names {
            Ok(names) => names,
            Err(err) => return Some(self.fail_request(host, root, err)),
        };
        let (authority, path, method) = (header(":authority"), header(":path"), header(":method"));
        let facts = Facts {
            route_name: route_name.as_deref(),
            virtual_host: virtual_host.as_deref(),
            authority: authority.as_deref(),
            path: path.as_deref(),
            method: method.as_deref(),
        };
        match select(rules.routes.iter().map(|r| &r.when), &facts) {
            Selection::Rule(index) => {
                if let Some(rule) = rules.routes.get(index) {
                    log::debug!("#{} falls under routes rule {}", self.id, rule.name);
                    self.config = Rc::clone(&rule.config);
                }
                None
            }
            Selection::Default => None,
            Selection::Ambiguous => {
                Some(self.refuse_bad_request(host, root, &BadRequest::AmbiguousPath))
            }
        }
    }
}

/// Envoy's name for the request's route or virtual host, when a rule asks for it.
fn envoy_name(host: &impl Host, wanted: bool, property: &str) -> Result<Option<String>, HostError> {
    if !wanted {
        return Ok(None);
    }
    Ok(host
        .property(&["xds", property])?
        .map(|value| String::from_utf8_lossy(&value).into_owned()))
}
