//! A recording `Host` for native tests of the request flow.
//! Test code only: its module is declared under #[cfg(test)].

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::host::{Counter, Headers, Host, HostError, HostResult};

/// Something the flow asked the host to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Dispatch {
        cluster: String,
        headers: Vec<(String, String)>,
        timeout: Duration,
    },
    Resume,
    Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    SetRequestHeader(String, Vec<u8>),
    AddRequestHeader(String, Vec<u8>),
    RemoveRequestHeader(String),
    AddResponseHeader(String, Vec<u8>),
}

#[derive(Default)]
pub struct MockHost {
    pub request: Headers,
    pub answer_headers: Headers,
    pub answer_body: Vec<u8>,
    /// Host calls (by their `HostError::call` name) that fail.
    pub failing: HashSet<&'static str>,
    pub effects: RefCell<Vec<Effect>>,
    pub counters: RefCell<HashMap<Counter, u64>>,
    pub latencies: RefCell<Vec<u64>>,
    pub in_flight: Cell<i64>,
    pub body_reads: Cell<u32>,
    pub clock: Cell<u64>,
    next_token: Cell<u32>,
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

pub fn headers(pairs: &[(&str, &str)]) -> Headers {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect()
}

impl MockHost {
    pub fn with_request(pairs: &[(&str, &str)]) -> Self {
        MockHost {
            request: headers(pairs),
            next_token: Cell::new(7),
            ..MockHost::default()
        }
    }

    /// Sets what the auth service answers.
    pub fn answering(mut self, status: &str, extra: &[(&str, &str)], body: &[u8]) -> Self {
        let mut answer = headers(&[(":status", status)]);
        answer.extend(headers(extra));
        self.answer_headers = answer;
        self.answer_body = body.to_vec();
        self
    }

    pub fn failing(mut self, call: &'static str) -> Self {
        self.failing.insert(call);
        self
    }

    pub fn effects(&self) -> Vec<Effect> {
        self.effects.borrow().clone()
    }

    pub fn count_of(&self, counter: Counter) -> u64 {
        self.counters.borrow().get(&counter).copied().unwrap_or(0)
    }

    pub fn last_token(&self) -> u32 {
        self.next_token.get() - 1
    }

    fn check(&self, call: &'static str) -> HostResult<()> {
        if self.failing.contains(call) {
            Err(HostError::new(call, "refused by the mock"))
        } else {
            Ok(())
        }
    }

    fn record(&self, effect: Effect) {
        self.effects.borrow_mut().push(effect);
    }
}

impl Host for MockHost {
    fn request_headers(&self) -> HostResult<Headers> {
        self.check("request_headers")?;
        Ok(self.request.clone())
    }

    fn request_header(&self, name: &str) -> HostResult<Option<Vec<u8>>> {
        self.check("request_header")?;
        Ok(self
            .request
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone()))
    }

    fn set_request_header(&self, name: &str, value: &[u8]) -> HostResult<()> {
        self.check("set_request_header")?;
        self.record(Effect::SetRequestHeader(name.to_owned(), value.to_vec()));
        Ok(())
    }

    fn add_request_header(&self, name: &str, value: &[u8]) -> HostResult<()> {
        self.check("add_request_header")?;
        self.record(Effect::AddRequestHeader(name.to_owned(), value.to_vec()));
        Ok(())
    }

    fn remove_request_header(&self, name: &str) -> HostResult<()> {
        self.check("remove_request_header")?;
        self.record(Effect::RemoveRequestHeader(name.to_owned()));
        Ok(())
    }

    fn add_response_header(&self, name: &str, value: &[u8]) -> HostResult<()> {
        self.check("add_response_header")?;
        self.record(Effect::AddResponseHeader(name.to_owned(), value.to_vec()));
        Ok(())
    }

    fn dispatch(
        &self,
        cluster: &str,
        headers: Vec<(&str, &str)>,
        timeout: Duration,
    ) -> HostResult<u32> {
        self.check("dispatch")?;
        self.record(Effect::Dispatch {
            cluster: cluster.to_owned(),
            headers: owned(&headers),
            timeout,
        });
        let token = self.next_token.get();
        self.next_token.set(token + 1);
        Ok(token)
    }

    fn call_response_header(&self, name: &str) -> HostResult<Option<Vec<u8>>> {
        self.check("call_response_header")?;
        Ok(self
            .answer_headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone()))
    }

    fn call_response_headers(&self) -> HostResult<Headers> {
        self.check("call_response_headers")?;
        Ok(self.answer_headers.clone())
    }

    fn call_response_body(&self, size: usize) -> HostResult<Vec<u8>> {
        self.check("call_response_body")?;
        self.body_reads.set(self.body_reads.get() + 1);
        Ok(self.answer_body.iter().copied().take(size).collect())
    }

    fn resume_request(&self) -> HostResult<()> {
        self.check("resume_request")?;
        self.record(Effect::Resume);
        Ok(())
    }

    fn send_response(
        &self,
        status: u16,
        headers: Vec<(&str, &str)>,
        body: &[u8],
    ) -> HostResult<()> {
        self.check("send_response")?;
        self.record(Effect::Reply {
            status,
            headers: owned(&headers),
            body: body.to_vec(),
        });
        Ok(())
    }

    fn now_nanos(&self) -> u64 {
        let now = self.clock.get();
        self.clock.set(now + 3_000_000);
        now
    }

    fn count(&self, counter: Counter) {
        *self.counters.borrow_mut().entry(counter).or_default() += 1;
    }

    fn record_auth_latency(&self, millis: u64) {
        self.latencies.borrow_mut().push(millis);
    }

    fn add_calls_in_flight(&self, delta: i64) {
        self.in_flight.set(self.in_flight.get() + delta);
    }
}
