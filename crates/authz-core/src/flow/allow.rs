//! Applying an answer to a request: an allow's headers, removals and query edits on the
//! request, its headers for the client's response; a deny, a failure or an overload as the
//! ending says.

use log::{debug, warn};

use super::{Flow, Phase, State};
use crate::host::Metadata;
use crate::host::{Action, Host};
use crate::metrics::Counter;
use crate::outcome::{Allowed, Outcome, ResponseAction};
use crate::state::Root;

impl Flow {
    /// The answer's dynamic metadata, if it has any, for the filters after this one.
    pub(super) fn write_metadata(&self, host: &impl Host, metadata: &Metadata) {
        if metadata.is_empty() {
            return;
        }
        if let Err(err) = host.set_dynamic_metadata(metadata) {
            debug!("#{} dynamic metadata not written: {err}", self.id);
        }
    }

    /// Ends the request as the outcome says.
    pub(super) fn apply(
        &mut self,
        host: &impl Host,
        root: &mut Root,
        outcome: &Outcome,
        phase: Phase,
    ) -> Action {
        if let (Some(at), true) = (self.asked_at_nanos, self.config.record_decisions) {
            // The call's duration ends with its answer, not with what is done with it.
            self.asked_at_nanos = None;
            self.auth_ms = Some(host.now_nanos().saturating_sub(at) / 1_000_000);
        }
        match outcome {
            Outcome::Allow(allowed) => {
                debug!("#{} allowed", self.id);
                self.allow(host, root, allowed, phase)
            }
            Outcome::Deny(denied) => {
                debug!("#{} denied with {}", self.id, denied.status);
                self.deny(host, root, denied)
            }
            // The auth service is up and failed on this request: a client may have caused it.
            Outcome::Failed(err) if !err.is_outage() => self.fail_closed(host, root, err),
            Outcome::Failed(err) => match self.stale.take() {
                Some(stale) if host.now_nanos() / 1_000_000 < stale.until_ms => {
                    warn!(
                        "#{} {err}; serving an expired allow from the cache (stale_if_error_ms)",
                        self.id
                    );
                    root.count(Counter::Error);
                    root.count(Counter::CacheStaleServed);
                    self.cache_use = crate::record::CacheUse::Stale;
                    self.allow(host, root, &stale.allowed, phase)
                }
                _ => self.fail(host, root, err, phase),
            },
            Outcome::Overloaded(why) => self.overloaded(host, root, why),
        }
    }

    pub(super) fn allow(
        &mut self,
        host: &impl Host,
        root: &mut Root,
        allowed: &Allowed,
        phase: Phase,
    ) -> Action {
        self.write_metadata(host, &allowed.metadata);
        root.count(Counter::Ok);
        self.state = State::Allowed;
        self.record(host, crate::record::Verdict::Allow, "allowed", None);
        for (name, value) in &allowed.set {
            if let Err(err) = host.set_request_header(name, value) {
                warn!("#{} could not pass header {name} upstream: {err}", self.id);
            }
        }
        for (name, value) in &allowed.append {
            if let Err(err) = host.add_request_header(name, value) {
                warn!("#{} could not pass header {name} upstream: {err}", self.id);
            }
        }
        for (name, value) in &allowed.append_existing {
            // ext_authz (1.40) appends to a header the request has, comma-joined, and adds
            // nothing otherwise.
            if let Ok(Some(existing)) = host.request_header(name) {
                let mut joined = existing;
                joined.push(b',');
                joined.extend_from_slice(value);
                if let Err(err) = host.set_request_header(name, &joined) {
                    warn!("#{} could not pass header {name} upstream: {err}", self.id);
                }
            }
        }
        for name in &allowed.remove {
            if let Err(err) = host.remove_request_header(name) {
                warn!("#{} could not remove header {name}: {err}", self.id);
            }
        }
        if !(allowed.query_set.is_empty() && allowed.query_remove.is_empty()) {
            self.edit_query(host, allowed);
        }
        self.success_headers = allowed.client.clone();
        self.response_mutations = allowed.client_mutations.clone();
        if allowed.dropped > 0 {
            // One line per request, not per header: the log is a target too.
            warn!(
                "#{} dropped {} auth header(s) for the client: over max_success_header_bytes ({})",
                self.id, allowed.dropped, self.config.limits.max_success_header_bytes
            );
            root.count(Counter::SuccessHeadersDropped);
        }
        self.proceed(host, phase)
    }

    /// A gRPC allow's `response_headers_to_add`, each as its `append_action` says.
    pub(super) fn apply_response_mutations(&mut self, host: &impl Host) {
        for (name, value, action) in std::mem::take(&mut self.response_mutations) {
            let present = || matches!(host.response_header(&name), Ok(Some(_)));
            let result = match action {
                ResponseAction::Append => host.add_response_header(&name, &value),
                ResponseAction::Set => host.set_response_header(&name, &value),
                ResponseAction::AddIfAbsent if !present() => {
                    host.add_response_header(&name, &value)
                }
                ResponseAction::OverwriteIfExists if present() => {
                    host.set_response_header(&name, &value)
                }
                ResponseAction::AddIfAbsent | ResponseAction::OverwriteIfExists => Ok(()),
            };
            if let Err(err) = result {
                warn!("#{} could not set response header {name}: {err}", self.id);
            }
        }
    }

    /// Rewrites the request's query string as the auth service asked.
    pub(super) fn edit_query(&self, host: &impl Host, allowed: &Allowed) {
        let path = match host.request_header(":path") {
            Ok(Some(path)) => path,
            _ => return,
        };
        let edited = crate::query::edit(&path, &allowed.query_set, &allowed.query_remove);
        if let Err(err) = host.set_request_header(":path", &edited) {
            warn!("#{} could not rewrite the query string: {err}", self.id);
        }
    }

    pub(super) fn proceed(&self, host: &impl Host, phase: Phase) -> Action {
        match phase {
            Phase::Request => Action::Continue,
            Phase::Answer => {
                if let Err(err) = host.resume_request() {
                    warn!("#{} could not resume the request: {err}", self.id);
                }
                Action::Pause
            }
        }
    }
}
