//! One worker's filter state (the core's `Worker` and this module's `Registry`, one of each per
//! Envoy worker thread, as Envoy calls a stream's hooks on its own worker only) and the way
//! every hook runs the core: with a host for the current stream, the configuration's root
//! ready and ticked, and the effects that re-enter Envoy applied after the core returns.

use std::cell::RefCell;
use std::sync::Arc;

use authz_core::protocol::grpc::wire;
use authz_core::worker::{Worker, TICK};
use log::error;

use crate::config::ModuleConfig;
use crate::ffi::envoy::Filter;
use crate::host::NativeHost;
use crate::registry::{Delivery, Effect, Ending, Registry, StreamEntry};

thread_local! {
    static WORKER: RefCell<Worker> = RefCell::new(Worker::default());
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

/// Runs the core for a hook: `current` is the stream the hook is for. `None` if the core is
/// busy on this thread (a hook Envoy called from inside another, which the deferred effects
/// are there to prevent).
pub fn run<R>(
    config: &Arc<ModuleConfig>,
    current: Option<(u32, Filter)>,
    body: impl FnOnce(&mut Worker, &NativeHost) -> R,
) -> Option<R> {
    REGISTRY.with(|registry| {
        let result = WORKER.with(|worker| {
            let Ok(mut worker) = worker.try_borrow_mut() else {
                error!("a hook re-entered the filter while it was busy: ignored");
                return None;
            };
            let host = NativeHost::new(config, registry, current);
            prepare_root(&mut worker, &host, config, registry);
            host.set_current(current);
            let result = body(&mut worker, &host);
            worker.flush_stats(&host, config.root_id);
            Some(result)
        });
        drain(registry);
        result
    })
}

/// Configures the configuration's root on this worker the first time it is used here, and
/// ticks it (deadlines, stats) at most every `TICK` after.
fn prepare_root(
    worker: &mut Worker,
    host: &NativeHost,
    config: &Arc<ModuleConfig>,
    registry: &RefCell<Registry>,
) {
    use authz_core::host::Host;
    let now = host.now_nanos();
    let root = config.root_id;
    let last = registry.borrow().roots.get(&root).map(|(last, _)| *last);
    match last {
        None => {
            forget_destroyed_roots(worker, registry);
            worker.on_context_create(root, 0);
            if !worker.on_configure_quietly(host, root, &config.bytes) {
                error!("the configuration Envoy accepted was refused on a worker");
            }
            let weak = Arc::downgrade(config);
            registry.borrow_mut().roots.insert(root, (now, weak));
        }
        Some(last) if now.saturating_sub(last) >= tick_nanos() => {
            crate::logger::follow_envoys_level();
            worker.on_tick(host, root);
            if let Some(entry) = registry.borrow_mut().roots.get_mut(&root) {
                entry.0 = now;
            }
        }
        Some(_) => {}
    }
}

/// Drops this worker's roots of configurations Envoy has destroyed (a reload replaces them),
/// without a word to Envoy: their stats went with them.
fn forget_destroyed_roots(worker: &mut Worker, registry: &RefCell<Registry>) {
    let gone: Vec<u32> = registry
        .borrow()
        .roots
        .iter()
        .filter(|(_, (_, config))| config.strong_count() == 0)
        .map(|(id, _)| *id)
        .collect();
    for id in gone {
        worker.forget_root(id);
        registry.borrow_mut().roots.remove(&id);
    }
}

fn tick_nanos() -> u64 {
    u64::try_from(TICK.as_nanos()).unwrap_or(u64::MAX)
}

/// Applies what the core deferred, each only if its stream is still the one it was for.
fn drain(registry: &RefCell<Registry>) {
    loop {
        let effects = std::mem::take(&mut registry.borrow_mut().pending);
        if effects.is_empty() {
            return;
        }
        for effect in effects {
            match effect {
                Effect::Resume { stream, filter } => {
                    if alive(registry, stream, filter).is_some() {
                        filter.continue_decoding();
                    }
                }
                Effect::Respond {
                    stream,
                    filter,
                    status,
                    headers,
                    body,
                } => {
                    if let Some(grpc_client) = alive(registry, stream, filter) {
                        respond(filter, grpc_client, status, &headers, &body);
                    }
                }
                Effect::Deliver(delivery) => {
                    if alive(registry, delivery.stream, delivery.filter).is_some() {
                        deliver(*delivery);
                    }
                }
            }
        }
    }
}

/// Whether the stream is still there with this filter; and if so, whether its client speaks gRPC.
fn alive(registry: &RefCell<Registry>, stream: u32, filter: Filter) -> Option<bool> {
    registry
        .borrow()
        .streams
        .get(&stream)
        .filter(|entry| entry.filter == filter)
        .map(|entry| entry.grpc_client)
}

/// The response code details of the filter's own replies, as the wasm plugin's (the access log
/// tells them from Envoy's own by it).
const REPLY_DETAILS: &str = "http_auth_random";

/// A local reply. A gRPC client gets the status in `grpc-status` too: Envoy 1.40 sends a
/// module's local reply to a gRPC client with `grpc-status: 0`, which would read as success.
pub fn respond(
    filter: Filter,
    grpc_client: bool,
    status: u16,
    headers: &[(String, Vec<u8>)],
    body: &[u8],
) {
    let mut all: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .filter(|(n, _)| !grpc_client || *n != "grpc-status")
        .collect();
    let grpc_status = grpc_client.then(|| wire::status_for_http(status).to_string());
    if let Some(grpc_status) = &grpc_status {
        all.push(("grpc-status", grpc_status.as_bytes()));
    }
    filter.send_response(status, &all, body, REPLY_DETAILS);
}

/// Tells the core how a call ended. Envoy may end a call inside a call the core made (while
/// the message is sent): the core is busy then, and hears of it once it has returned.
pub fn deliver(delivery: Delivery) {
    let busy = WORKER.with(|worker| worker.try_borrow_mut().is_err());
    if busy {
        with_registry(|registry| registry.pending.push(Effect::Deliver(Box::new(delivery))));
        return;
    }
    let Delivery {
        config,
        stream,
        filter,
        root,
        token,
        ending,
    } = delivery;
    run(
        &config,
        Some((stream, filter)),
        |worker, host| match ending {
            Ending::Callout {
                answer,
                num_headers,
                body_size,
            } => {
                *host.callout_answer.borrow_mut() = Some(answer);
                worker.on_call_response(host, root, token, num_headers, body_size);
            }
            Ending::Grpc(wire::Ended::Message(message)) => {
                let size = message.len();
                *host.grpc_message.borrow_mut() = Some(message);
                worker.on_grpc_receive(host, root, token, size);
            }
            Ending::Grpc(wire::Ended::Oversized(size)) => {
                worker.on_grpc_receive(host, root, token, size);
            }
            Ending::Grpc(wire::Ended::Status(status)) => {
                worker.on_grpc_close(host, root, token, status);
            }
        },
    );
}

/// A new stream on this worker; its id for the core.
pub fn add_stream(filter: Filter, config: Arc<ModuleConfig>) -> u32 {
    REGISTRY.with(|registry| {
        registry.borrow_mut().new_stream(StreamEntry {
            filter,
            config,
            created: false,
            grpc_client: false,
            calls: Vec::new(),
        })
    })
}

/// Drops what the core queued for a stream it could not finish (a panic mid-hook): the stream
/// is answered 500 instead, and nothing left over may resume it later.
pub fn discard_effects_for(filter: Filter) {
    with_registry(|registry| {
        registry.pending.retain(|effect| effect.filter() != filter);
    });
}

/// Reads or edits the registry outside the core.
pub fn with_registry<R>(edit: impl FnOnce(&mut Registry) -> R) -> R {
    REGISTRY.with(|registry| edit(&mut registry.borrow_mut()))
}
