//! Requests to stop from outside: SIGINT (Ctrl-C), SIGTERM (`kill`, an IDE's stop button) and
//! SIGHUP (a closed terminal), all handled alike so that what was started is stopped and its
//! temporary files removed.

use std::future::Future;

use anyhow::{anyhow, Context, Result};
use tokio::signal::unix::{signal, Signal, SignalKind};

/// Each stop signal listened for, or `None` for one this process was started ignoring.
pub struct StopSignals {
    interrupt: Option<Signal>,
    terminate: Option<Signal>,
    hangup: Option<Signal>,
}

impl StopSignals {
    /// From here on these signals no longer end the process by themselves: `recv` must be
    /// awaited for as long as there is anything to stop. A signal this process was started
    /// ignoring (`nohup` ignores SIGHUP, a script's `&` SIGINT) stays ignored.
    pub fn install() -> Result<StopSignals> {
        let listen = |number: libc::c_int, kind: SignalKind| -> Result<Option<Signal>> {
            if is_ignored(number) {
                return Ok(None);
            }
            Ok(Some(signal(kind).context("cannot listen for signals")?))
        };
        Ok(StopSignals {
            interrupt: listen(libc::SIGINT, SignalKind::interrupt())?,
            terminate: listen(libc::SIGTERM, SignalKind::terminate())?,
            hangup: listen(libc::SIGHUP, SignalKind::hangup())?,
        })
    }

    /// The name of the next stop signal to arrive.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            () = next(&mut self.interrupt) => "SIGINT",
            () = next(&mut self.terminate) => "SIGTERM",
            () = next(&mut self.hangup) => "SIGHUP",
        }
    }
}

/// The next delivery of a signal listened for; never, for one that is not.
async fn next(signal: &mut Option<Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// Whether this process ignores `signal` (it inherited SIG_IGN).
fn is_ignored(signal: libc::c_int) -> bool {
    // SAFETY: a zeroed sigaction is a valid out-parameter; a null new action only reads.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut current) == 0
            && current.sa_sigaction == libc::SIG_IGN
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
