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

/// What waits until the core has returned: acting on a stream can make Envoy call the filter
/// again at once.
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
}

#[derive(Default)]
pub struct Registry {
    pub streams: HashMap<u32, StreamEntry>,
    pub calls: HashMap<u32, CallEntry>,
    /// Roots configured on this worker, with when each last ticked.
    pub roots: HashMap<u32, u64>,
    pub pending: Vec<Effect>,
    next_stream: u32,
    next_token: u32,
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
        self.calls.insert(self.next_token, entry);
        self.next_token
    }

    /// The token of the call Envoy knows as this callout of this stream.
    pub fn callout_token(&self, stream: u32, callout: u64) -> Option<u32> {
        self.calls.iter().find_map(|(token, call)| {
            (call.stream == stream && matches!(call.carrier, Carrier::Callout(id) if id == callout))
                .then_some(*token)
        })
    }

    /// The token of the gRPC check a stream runs on this HTTP stream (Envoy numbers each
    /// filter's HTTP streams on their own).
    pub fn grpc_token(&self, stream: u32, http_stream: HttpStream) -> Option<u32> {
        self.calls.iter().find_map(|(token, call)| {
            (call.stream == stream
                && matches!(&call.carrier, Carrier::Grpc { stream, .. } if *stream == http_stream))
            .then_some(*token)
        })
    }

    /// Forgets every call of a stream that has gone: Envoy ended them with it.
    pub fn forget_calls_of(&mut self, stream: u32) {
        self.calls.retain(|_, call| call.stream != stream);
    }
}
