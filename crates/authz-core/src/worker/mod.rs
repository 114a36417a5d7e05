//! One worker's VM: its root contexts (one per plugin configuration) and HTTP streams, and the
//! routing of every host callback to them. This is the dispatcher the SDK would otherwise own;
//! owning it lets a call's answer be counted after its stream has gone, and nothing here panics.

use crate::sorted::SortedMap;
use std::rc::Rc;
use std::time::Duration;

use log::{debug, error, warn};

use crate::cache::{self, NotStored, Remembered};
use crate::config::{Config, RouteOverrides};
use crate::flow::Flow;
use crate::host::Host;
use crate::host::{Action, BodyAction};
use crate::metrics::Counter;
use crate::state::Root;

/// How often counters and gauges reach Envoy's stats, and how fine the deadline clock is.
pub const TICK: Duration = Duration::from_millis(200);

/// How long after its deadline an unanswered call stops counting. Envoy answers a timed-out call
/// itself at the deadline; this only covers an answer that never comes.
pub const DEADLINE_GRACE: Duration = Duration::from_secs(1);

struct Stream {
    root: u32,
    /// `None` when the stream's root had no valid configuration: every request is refused.
    flow: Option<Flow>,
}

#[derive(Default)]
pub struct Worker {
    /// Root contexts; `None` until the root accepts a configuration.
    roots: SortedMap<u32, Option<Root>>,
    /// Boxed: a stream that ends moves pointers only.
    streams: SortedMap<u32, Box<Stream>>,
}

impl Worker {
    pub fn on_context_create(&mut self, context_id: u32, parent_id: u32) {
        if parent_id == 0 {
            self.roots.insert(context_id, None);
            return;
        }
        let config = self
            .roots
            .get(parent_id)
            .and_then(Option::as_ref)
            .map(|root| Rc::clone(root.config()));
        self.add_stream(context_id, parent_id, config);
    }

    /// A stream of a root on a route with settings of its own: `route` is an id the shell
    /// keeps for the route's settings.
    pub fn on_stream_create_on_route(
        &mut self,
        context_id: u32,
        parent_id: u32,
        route: u64,
        overrides: &RouteOverrides,
    ) {
        let config = self
            .roots
            .get_mut(parent_id)
            .and_then(Option::as_mut)
            .and_then(|root| root.config_for_route(route, overrides));
        self.add_stream(context_id, parent_id, config);
    }

    fn add_stream(&mut self, context_id: u32, parent_id: u32, config: Option<Rc<Config>>) {
        self.streams.insert(
            context_id,
            Box::new(Stream {
                root: parent_id,
                flow: config.map(|config| Flow::new(context_id, config)),
            }),
        );
    }

    /// Parses and installs a configuration. Refusing it here makes Envoy refuse it too, with
    /// the reason in its log.
    pub fn on_configure(&mut self, host: &impl Host, root_id: u32, bytes: &[u8]) -> bool {
        self.configure(host, root_id, bytes, true)
    }

    /// As `on_configure`, without announcing the configuration: for a shell that installs one
    /// configuration in each worker and has announced it once already.
    pub fn on_configure_quietly(&mut self, host: &impl Host, root_id: u32, bytes: &[u8]) -> bool {
        self.configure(host, root_id, bytes, false)
    }

    fn configure(&mut self, host: &impl Host, root_id: u32, bytes: &[u8], announce: bool) -> bool {
        let Some((config, stats)) = configure::parse_for(host, bytes) else {
            return false;
        };
        if let Err(err) = host.set_tick_period(TICK) {
            error!("cannot set the metrics flush period: {err}");
            return false;
        }
        if announce {
            configure::announce(&config, host.delivers_body_while_paused());
        }
        let now = host.now_nanos();
        if !self.roots.contains_key(root_id) {
            self.roots.insert(root_id, None);
        }
        let Some(slot) = self.roots.get_mut(root_id) else {
            return false;
        };
        match slot {
            Some(root) => root.reconfigure(host, config, stats, now),
            None => *slot = Some(Root::new(config, stats, now)),
        }
        true
    }

    /// Moves the deadline clock, ends calls past their deadline, and flushes the stats.
    pub fn on_tick(&mut self, host: &impl Host, root_id: u32) {
        // One VM's memory, reported by one of its roots only.
        let reports_memory = self
            .roots
            .iter()
            .find(|(_, r)| r.is_some())
            .map(|(id, _)| id);
        let vm_memory = if reports_memory == Some(root_id) {
            host.vm_memory_bytes()
        } else {
            0
        };
        let Some(Some(root)) = self.roots.get_mut(root_id) else {
            return;
        };
        root.set_clock(host.now_nanos());
        for (token, call) in root.expire_calls(DEADLINE_GRACE) {
            warn!("auth call {token} got no answer by its deadline: no longer counted");
            for stream_id in call.streams() {
                if let Some(Stream {
                    flow: Some(flow), ..
                }) = self.streams.get_mut(stream_id).map(|s| &mut **s)
                {
                    if host.set_effective_context(stream_id).is_ok() {
                        flow.on_call_expired(host, root);
                    }
                }
            }
        }
        for stream_id in root.take_late_first_bodies() {
            if let Some(Stream {
                flow: Some(flow), ..
            }) = self.streams.get_mut(stream_id).map(|s| &mut **s)
            {
                if host.set_effective_context(stream_id).is_ok() {
                    flow.on_first_body_deadline(host, root);
                }
            }
        }
        let unlogged = root.take_unlogged_overloads();
        if unlogged > 0 {
            warn!("{unlogged} more requests refused as overloaded since the last tick");
        }
        root.flush_stats(host, vm_memory);
    }

    /// Reports what a root counted since the last report, now: for a host with no timer of its
    /// own per worker (a native module reports after each callback).
    pub fn flush_stats(&mut self, host: &impl Host, root_id: u32) {
        if let Some(Some(root)) = self.roots.get_mut(root_id) {
            root.flush_stats(host, 0);
        }
    }

    pub fn on_request_headers(
        &mut self,
        host: &impl Host,
        context_id: u32,
        end_of_stream: bool,
    ) -> Action {
        match self.stream(context_id) {
            Some((Some(flow), Some(root))) => flow.on_request_headers(host, root, end_of_stream),
            Some(_) => {
                error!("#{context_id} no valid configuration: refusing the request");
                let _ = host.send_response(500, &[], b"");
                Action::Pause
            }
            None => Action::Pause,
        }
    }

    pub fn on_request_body(
        &mut self,
        host: &impl Host,
        context_id: u32,
        buffered: usize,
        end_of_stream: bool,
    ) -> BodyAction {
        match self.stream(context_id) {
            Some((Some(flow), Some(root))) => {
                flow.on_request_body(host, root, buffered, end_of_stream)
            }
            _ => BodyAction::Watermark,
        }
    }

    pub fn on_request_trailers(&mut self, host: &impl Host, context_id: u32) -> Action {
        match self.stream(context_id) {
            Some((Some(flow), Some(root))) => {
                // A request refused here leaves its check (perhaps one sent just now, with the
                // body), which may then have nobody waiting.
                let action = flow.on_request_trailers(host, root);
                if let Some(token) = flow.take_left_call() {
                    cancel_if_orphaned(host, root, token);
                }
                action
            }
            _ => Action::Pause,
        }
    }

    pub fn on_response_headers(&mut self, host: &impl Host, context_id: u32) -> Action {
        match self.stream(context_id) {
            Some((Some(flow), Some(root))) => flow.on_response_headers(host, root),
            _ => Action::Continue,
        }
    }

    /// An HTTP call's answer, delivered to the root context that made the call.
    pub fn on_call_response(
        &mut self,
        host: &impl Host,
        root_id: u32,
        token: u32,
        num_headers: usize,
        body_size: usize,
    ) {
        self.finish(
            host,
            root_id,
            token,
            Ending::Http {
                num_headers,
                body_size,
            },
        );
    }

    /// A gRPC check's answer message.
    pub fn on_grpc_receive(&mut self, host: &impl Host, root_id: u32, token: u32, size: usize) {
        self.finish(host, root_id, token, Ending::GrpcMessage { size });
    }

    /// A gRPC check that ended without an answer (unavailable, deadline, reset, …). The host
    /// also reports calls it refused inline this way, with a token the plugin never got: those
    /// are not outstanding, and are ignored.
    pub fn on_grpc_close(&mut self, host: &impl Host, root_id: u32, token: u32, status: u32) {
        self.finish(host, root_id, token, Ending::GrpcClosed { status });
    }

    /// A call has ended: its answer is read once, cached if it may be, and applied to every
    /// stream still waiting for it; it is counted off whether or not any is.
    fn finish(&mut self, host: &impl Host, root_id: u32, token: u32, ending: Ending) {
        let Some(Some(root)) = self.roots.get_mut(root_id) else {
            debug!("answer to call {token} for unknown root {root_id}: ignored");
            return;
        };
        let Some(call) = root.finish_call(token) else {
            debug!("answer to call {token}, which is not outstanding: ignored");
            return;
        };
        if let Some(started) = call.started_nanos {
            let millis = host.now_nanos().saturating_sub(started) / 1_000_000;
            root.record_latency(host, millis);
        }
        let waiting: Vec<u32> = call
            .streams()
            .filter(|id| {
                matches!(
                    self.streams.get(*id).map(|s| &**s),
                    Some(Stream { flow: Some(_), .. })
                )
            })
            .collect();
        if waiting.is_empty() && call.cache.is_none() {
            debug!("answer to call {token}, whose streams have gone: counted off");
            return;
        }
        // The answer is read in the root context the host delivered it to, before acting on
        // any stream.
        let answer = ending.read(host, &call.config);
        let remembered = match (&call.cache, &call.config.cache) {
            (Some(write), Some(cache)) => Some(cache::remember(host, cache, write, &answer)),
            _ => None,
        };
        match &remembered {
            Some(Remembered::NotStored(NotStored::TooLarge(size))) => {
                debug!("answer to call {token} not cached: {size} bytes is over max_entry_bytes");
            }
            Some(Remembered::NotStored(NotStored::Failed(why))) => {
                debug!("answer to call {token} not cached: {why}");
                root.count(Counter::CacheStoreFailed);
            }
            _ => {}
        }
        // Requests that joined the call share its answer only if it could be cached (or it is an
        // error, which each would meet): a `no-store` or a cookie is for the request that asked.
        let shared = !matches!(remembered, Some(Remembered::NotCacheable));
        for stream_id in waiting {
            let Some(Stream {
                flow: Some(flow), ..
            }) = self.streams.get_mut(stream_id).map(|s| &mut **s)
            else {
                continue;
            };
            if let Err(err) = host.set_effective_context(stream_id) {
                warn!("#{stream_id} cannot act on the stream for call {token}: {err}");
                continue;
            }
            if shared || call.stream == Some(stream_id) {
                flow.on_outcome(host, root, token, &answer.outcome);
            } else {
                flow.ask_again(host, root, token, false);
            }
        }
    }

    /// The stream is done (the wasm glue folds this into `on_delete`, which Envoy calls right
    /// after); the plugin never needs to delay it.
    pub fn on_done(&mut self, context_id: u32) -> bool {
        if let Some((Some(flow), Some(root))) = self.stream(context_id) {
            flow.on_done(root);
        }
        true
    }

    pub fn on_delete(&mut self, host: &impl Host, context_id: u32) {
        if let Some(mut stream) = self.streams.remove(context_id) {
            if let (Some(flow), Some(Some(root))) =
                (stream.flow.as_mut(), self.roots.get_mut(stream.root))
            {
                let led = flow
                    .awaited()
                    .filter(|t| root.call(*t).is_some_and(|c| c.stream == Some(context_id)));
                if let Some(token) = flow.on_delete(root) {
                    if !host.calls_end_with_their_stream() {
                        cancel_if_orphaned(host, root, token);
                    } else if led == Some(token) {
                        // The host ended the call with its stream: whoever waited for it asks
                        // for itself.
                        if let Some(call) = root.finish_call(token) {
                            for waiter in call.waiters {
                                if let Some(Stream {
                                    flow: Some(flow), ..
                                }) = self.streams.get_mut(waiter).map(|s| &mut **s)
                                {
                                    if host.set_effective_context(waiter).is_ok() {
                                        flow.ask_again(host, root, token, true);
                                    }
                                }
                            }
                        }
                    }
                }
            }
            return;
        }
        // A root going away takes back what it added to the gauges, which every VM shares.
        if let Some(Some(mut root)) = self.roots.remove(context_id) {
            root.withdraw_stats(host);
        }
    }

    /// Forgets a root whose configuration the host has destroyed, and any stream left of it,
    /// without a host call: what it reported went with the configuration.
    pub fn forget_root(&mut self, root_id: u32) {
        self.roots.remove(root_id);
        self.streams.retain(|_, stream| stream.root != root_id);
    }

    /// A stream's flow and its root's state, borrowed together.
    fn stream(&mut self, context_id: u32) -> Option<(Option<&mut Flow>, Option<&mut Root>)> {
        let stream = self.streams.get_mut(context_id)?;
        let root = self.roots.get_mut(stream.root).and_then(Option::as_mut);
        Some((stream.flow.as_mut(), root))
    }

    /// The state of a configured root, for tests and the glue's logs.
    pub fn root(&self, root_id: u32) -> Option<&Root> {
        self.roots.get(root_id).and_then(Option::as_ref)
    }

    pub fn flow(&self, context_id: u32) -> Option<&Flow> {
        self.streams.get(context_id).and_then(|s| s.flow.as_ref())
    }
}

/// A gRPC check nobody waits for any more is cancelled, as native ext_authz cancels its check
/// when the client goes (an HTTP call cannot be: it is counted until it ends).
fn cancel_if_orphaned(host: &impl Host, root: &mut Root, token: u32) {
    let orphaned_grpc = root
        .call(token)
        .is_some_and(|call| call.grpc && call.orphaned());
    if !orphaned_grpc {
        return;
    }
    if let Err(err) = host.cancel_grpc(token) {
        debug!("cancelling gRPC check {token}: {err}");
    }
    root.finish_call(token);
}

mod configure;
mod ending;

pub use configure::announce;
use ending::Ending;

#[cfg(test)]
mod cache_tests;
#[cfg(test)]
mod crossing_tests;
#[cfg(test)]
mod native_tests;
#[cfg(test)]
mod tests;
