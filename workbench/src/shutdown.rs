//! Requests to stop from outside: SIGINT (Ctrl-C), SIGTERM (`kill`, an IDE's stop button) and
//! SIGHUP (a closed terminal), all handled alike so that what was started is stopped and its
//! temporary files removed.

use std::future::Future;

use anyhow::{anyhow, Context, Result};
use tokio::signal::unix::{signal, Signal, SignalKind};

pub struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl StopSignals {
    /// From here on these signals no longer end the process by themselves: `recv` must be
    /// awaited for as long as there is anything to stop.
    pub fn install() -> Result<StopSignals> {
        let listen = |kind: SignalKind| signal(kind).context("cannot listen for signals");
        Ok(StopSignals {
            interrupt: listen(SignalKind::interrupt())?,
            terminate: listen(SignalKind::terminate())?,
            hangup: listen(SignalKind::hangup())?,
        })
    }

    /// The name of the next stop signal to arrive.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.hangup.recv() => "SIGHUP",
        }
    }
}

/// Runs `work` unless a stop signal comes first; then `work` is dropped, which stops what it
/// started (child processes are killed and temporary folders removed on drop), and the result is
/// an error naming the signal.
pub async fn unless_stopped<T>(work: impl Future<Output = Result<T>>) -> Result<T> {
    let mut signals = StopSignals::install()?;
    tokio::select! {
        result = work => result,
        name = signals.recv() => Err(anyhow!("stopped by {name}")),
    }
}
