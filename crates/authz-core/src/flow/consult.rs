//! Consulting the decision cache for a request: a hit decides it, a call already made for its
//! key is joined, and a miss says where the answer is to be stored.

use log::debug;

use super::{Flow, Phase, Stale, State};
use crate::cache::{self, CacheWrite, Found};
use crate::config::{CacheConfig, STREAM_COST_BYTES};
use crate::host::{Action, Headers, Host};
use crate::metrics::Counter;
use crate::outcome::{Allowed, HEADER_OVERHEAD_BYTES};
use crate::record::CacheUse;
use crate::state::Root;

impl Flow {
    /// Serves the request from the cache, or joins a call already made for the same key, or
    /// says where this request's own answer should be cached.
    pub(super) fn consult_cache(
        &mut self,
        host: &impl Host,
        root: &mut Root,
        cache: &CacheConfig,
        request: &Headers,
        evaluation: Option<&[u8]>,
    ) -> Consulted {
        // A CONNECT has no path and names its target only in `:authority`; a request missing a
        // header the key names would share one key with every other such request. Neither is
        // cached or coalesced (unless the configuration asks for the second).
        let connect = request
            .iter()
            .any(|(n, v)| n == ":method" && v.as_slice() == b"CONNECT");
        if connect {
            debug!("#{} not cached: a CONNECT", self.id);
            return Consulted::Uncached;
        }
        if !cache.cache_missing_headers {
            if let Some(name) = cache::missing(&cache.key, request) {
                if root.first_incomplete_key() {
                    log::info!(
                        "#{} not cached: the request has no {name}, which the cache key names; \
                         such requests are checked every time (said once per configuration)",
                        self.id
                    );
                }
                debug!("#{} not cached: no {name}", self.id);
                return Consulted::Uncached;
            }
        }
        let mut digest = cache::digest(&cache.fingerprint, &cache.key, request);
        // An AuthZEN evaluation is what is decided on: all of it is in the key, whatever the
        // operator's key leaves out (the subject, Envoy's route name, the client's address).
        if let Some(evaluation) = evaluation {
            digest = cache::with_evaluation(&digest, evaluation);
        }
        let now_ms = host.now_nanos() / 1_000_000;
        let probe = match cache::lookup(host, cache, &digest, now_ms) {
            Ok(probe) => probe,
            Err(err) => {
                debug!("#{} cache lookup failed ({err}): asking, uncached", self.id);
                return Consulted::Uncached;
            }
        };
        match probe.found {
            Found::Fresh(verdict) => {
                debug!("#{} answered from the cache", self.id);
                root.count(Counter::CacheHit);
                self.cache_use = CacheUse::Hit;
                let outcome = verdict.into_outcome();
                return Consulted::Decided(self.apply(host, root, &outcome, Phase::Request));
            }
            Found::Stale {
                allowed,
                stale_until_ms,
            } => {
                // Kept only if the budget has room for it: it is a fallback, not a need.
                let cost = allowed_cost(&allowed);
                if root.try_hold(cost) {
                    self.held += cost;
                    self.stale = Some(Stale {
                        allowed,
                        until_ms: stale_until_ms,
                    });
                }
            }
            Found::Nothing => {}
        }
        root.count(Counter::CacheMiss);
        self.cache_use = CacheUse::Miss;
        if let Some(token) = root.join_call(&digest, self.id) {
            debug!("#{} waits for call {token}, made for the same key", self.id);
            root.count(Counter::Coalesced);
            self.cache_use = CacheUse::Coalesced;
            if self.config.record_decisions {
                self.asked_at_nanos = Some(host.now_nanos());
            }
            self.state = State::AwaitingAuth { token };
            return Consulted::Decided(Action::Pause);
        }
        Consulted::Missed(CacheWrite {
            digest,
            slot_key: probe.slot_key,
            cas: probe.cas,
            ours: probe.ours,
        })
    }
}

/// What consulting the cache came to.
pub(super) enum Consulted {
    /// The request is decided (a hit) or waits for another request's call.
    Decided(Action),
    /// This request makes the call; its answer is cached here.
    Missed(CacheWrite),
    /// This request is not for the cache: it makes its own call, which is not cached.
    Uncached,
}

/// What holding an expired allow as a fallback costs the memory budget.
fn allowed_cost(allowed: &Allowed) -> usize {
    let headers: usize = allowed
        .set
        .iter()
        .chain(&allowed.append)
        .chain(&allowed.client)
        .chain(&allowed.append_existing)
        .map(crate::outcome::header_cost)
        .sum();
    let mutations: usize = allowed
        .client_mutations
        .iter()
        .map(|(name, value, _)| name.len() + value.len() + HEADER_OVERHEAD_BYTES)
        .sum();
    let query: usize = allowed
        .query_set
        .iter()
        .map(|(key, value)| key.len() + value.len() + HEADER_OVERHEAD_BYTES)
        .chain(allowed.query_remove.iter().map(String::len))
        .sum();
    let removed: usize = allowed.remove.iter().map(String::len).sum();
    STREAM_COST_BYTES + headers + mutations + query + removed
}
