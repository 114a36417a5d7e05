//! One worker's book of what Envoy and the core each call things: streams (Envoy's filter, the
//! core's context id), auth calls (Envoy's callout or stream, the core's token), the roots
//! configured here, and effects held back until the core is no longer borrowed.

use std::collections::HashMap;
use std::sync::Arc;

use authz_core::protocol::grpc::wire;

use crate::config::ModuleConfig;
use crate::ffi::envoy::{Filter, HttpStream};

/// A stream's filter as Envoy knows it, and its configuration.
pub struct StreamEntry {
    pub filter: Filter,
    pub config: Arc<ModuleConfig>,
    /// Whether the core has been told of the stream (at its request headers, when its route's
    /// settings are known).
    pub created: bool,
    /// Whether the client speaks gRPC: a local reply must then carry a gRPC status.
    pub grpc_client: bool,
    /// The stream's outstanding calls.
    pub calls: Vec<u32>,
}

/// How an auth call travels.
pub enum Carrier {
    /// An HTTP callout, with the id Envoy gave it.
    Callout(u64),
    /// A gRPC check on an HTTP/2 stream, and what has come back on it so far.
    Grpc {
        stream: HttpStream,
        answer: wire::Answer,
    },
}

/// An auth call: which stream made it (Envoy delivers its answer there), its root, its carrier.
pub struct CallEntry {
    pub stream: u32,
    pub root: u32,
    pub carrier: Carrier,
}

/// An HTTP callout's answer, copied out of Envoy's buffers.
pub struct CalloutAnswer {
    pub headers: authz_core::host::Headers,
    pub body: Vec<u8>,
}

/// How an auth call ended, as the core is told of it.
pub enum Ending {
    Callout {
        answer: CalloutAnswer,
        num_headers: usize,
        body_size: usize,
    },
    Grpc(wire::Ended),
}

/// A call's ending for the core: which stream's call, under which configuration.
pub struct Delivery {
    pub config: Arc<ModuleConfig>,
    pub stream: u32,
    pub filter: Filter,
    pub root: u32,
    pub token: u32,
    pub ending: Ending,
}

/// What waits until the core has returned: acting on a stream can make Envoy call the filter
/// again at once, and a call Envoy ends inside a call the core made finds the core busy.
pub enum Effect {
    Resume {
        stream: u32,
        filter: Filter,
    },
    Respond {
        stream: u32,
        filter: Filter,
        status: u16,
        headers: Vec<(String, Vec<u8>)>,
        body: Vec<u8>,
    },
    Deliver(Box<Delivery>),
}

impl Effect {
    /// The stream the effect is for.
    pub fn filter(&self) -> Filter {
        match self {
            Effect::Resume { filter, .. } | Effect::Respond { filter, .. } => *filter,
            Effect::Deliver(delivery) => delivery.filter,
        }
    }
}

/// A call as Envoy names it: the stream that made it, and Envoy's id for it on that stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum EnvoyCall {
    Callout(u32, u64),
    Grpc(u32, HttpStream),
}

#[derive(Default)]
pub struct Registry {
    pub streams: HashMap<u32, StreamEntry>,
    calls: HashMap<u32, CallEntry>,
    /// Envoy's names of the calls, for the answers it delivers.
    by_envoy: HashMap<EnvoyCall, u32>,
    /// Roots configured on this worker: when each last ticked, and its configuration (gone
    /// once Envoy has destroyed it).
    pub roots: HashMap<u32, (u64, std::sync::Weak<ModuleConfig>)>,
    pub pending: Vec<Effect>,
    next_stream: u32,
    next_token: u32,
}

fn envoy_name(entry: &CallEntry) -> EnvoyCall {
    match &entry.carrier {
        Carrier::Callout(id) => EnvoyCall::Callout(entry.stream, *id),
        Carrier::Grpc { stream, .. } => EnvoyCall::Grpc(entry.stream, *stream),
    }
}

impl Registry {
    /// A new stream id: never 0, never with bit 31 (a root's).
    pub fn new_stream(&mut self, entry: StreamEntry) -> u32 {
        loop {
            self.next_stream = self.next_stream.wrapping_add(1) & !(1 << 31);
            if self.next_stream != 0 && !self.streams.contains_key(&self.next_stream) {
                break;
            }
        }
        self.streams.insert(self.next_stream, entry);
        self.next_stream
    }

    /// A token for a new call: never 0, never one outstanding.
    pub fn new_token(&mut self, entry: CallEntry) -> u32 {
        loop {
            self.next_token = self.next_token.wrapping_add(1);
            if self.next_token != 0 && !self.calls.contains_key(&self.next_token) {
                break;
            }
        }
        self.by_envoy.insert(envoy_name(&entry), self.next_token);
        if let Some(stream) = self.streams.get_mut(&entry.stream) {
            stream.calls.push(self.next_token);
        }
        self.calls.insert(self.next_token, entry);
        self.next_token
    }

    /// Takes a call off the book.
    pub fn take_call(&mut self, token: u32) -> Option<CallEntry> {
        let entry = self.calls.remove(&token)?;
        self.by_envoy.remove(&envoy_name(&entry));
        if let Some(stream) = self.streams.get_mut(&entry.stream) {
            stream.calls.retain(|t| *t != token);
        }
        Some(entry)
    }

    pub fn call_mut(&mut self, token: u32) -> Option<&mut CallEntry> {
        self.calls.get_mut(&token)
    }

    /// The token of the call Envoy knows as this callout of this stream.
    pub fn callout_token(&self, stream: u32, callout: u64) -> Option<u32> {
        self.by_envoy
            .get(&EnvoyCall::Callout(stream, callout))
            .copied()
    }

    /// The token of the gRPC check a stream runs on this HTTP stream (Envoy numbers each
    /// filter's HTTP streams on their own).
    pub fn grpc_token(&self, stream: u32, http_stream: HttpStream) -> Option<u32> {
        self.by_envoy
            .get(&EnvoyCall::Grpc(stream, http_stream))
            .copied()
    }

    /// Forgets a stream that has gone, and its calls: Envoy ended them with it.
    pub fn forget_stream(&mut self, stream: u32) {
        let Some(entry) = self.streams.remove(&stream) else {
            return;
        };
        for token in entry.calls {
            if let Some(call) = self.calls.remove(&token) {
                self.by_envoy.remove(&envoy_name(&call));
            }
        }
    }

    /// Calls outstanding on this worker.
    #[cfg(test)]
    pub fn calls_len(&self) -> usize {
        self.calls.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::envoy::ConfigHandle;

    fn config() -> Arc<ModuleConfig> {
        let mut next = 0;
        let config = ModuleConfig::new(
            ConfigHandle::new(std::ptr::null_mut()),
            "t",
            b"{}",
            |_, _| {
                next += 1;
                Some(next)
            },
        );
        Arc::new(config.unwrap_or_else(|err| panic!("{err}")))
    }

    fn stream(registry: &mut Registry) -> u32 {
        registry.new_stream(StreamEntry {
            filter: Filter::new(std::ptr::null_mut()),
            config: config(),
            created: true,
            grpc_client: false,
            calls: Vec::new(),
        })
    }

    #[test]
    fn calls_are_found_by_envoys_names_per_stream_and_go_with_their_stream() {
        let mut registry = Registry::default();
        let (a, b) = (stream(&mut registry), stream(&mut registry));
        // Envoy numbers each filter's callouts and streams on their own: the same id twice.
        let callout = |stream| CallEntry {
            stream,
            root: 1,
            carrier: Carrier::Callout(1),
        };
        let grpc = |stream| CallEntry {
            stream,
            root: 1,
            carrier: Carrier::Grpc {
                stream: HttpStream(1),
                answer: wire::Answer::new(10),
            },
        };
        let ta = registry.new_token(callout(a));
        let tb = registry.new_token(callout(b));
        let ga = registry.new_token(grpc(a));
        assert_ne!(ta, tb);
        assert_eq!(registry.callout_token(a, 1), Some(ta));
        assert_eq!(registry.callout_token(b, 1), Some(tb));
        assert_eq!(registry.grpc_token(a, HttpStream(1)), Some(ga));
        assert_eq!(registry.grpc_token(b, HttpStream(1)), None);
        assert!(registry.take_call(tb).is_some());
        assert_eq!(registry.callout_token(b, 1), None);
        registry.forget_stream(a);
        assert_eq!(registry.calls_len(), 0);
        assert_eq!(registry.callout_token(a, 1), None);
        assert_eq!(registry.grpc_token(a, HttpStream(1)), None);
    }
}
