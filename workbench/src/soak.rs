//! The soak run: many mixed requests through one Envoy, with its memory sampled as it goes.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::load::{self, Tally};
use crate::stack::Stack;

/// Envoy counts every VM it creates here; a restart would add to it.
pub const VMS_CREATED: &str = "wasm.envoy.wasm.runtime.v8.created";

#[derive(Debug, Clone)]
pub struct Sample {
    pub done: u64,
    pub rss_kib: u64,
    pub seconds: f64,
}

#[derive(Debug)]
pub struct SoakReport {
    pub samples: Vec<Sample>,
    pub tally: Tally,
    pub vms_created: (u64, u64),
    pub calls_in_flight_after: u64,
}

impl SoakReport {
    /// RSS after the last sample against RSS after the first (the warm-up), as a fraction.
    pub fn growth_after_warmup(&self) -> f64 {
        match (self.samples.first(), self.samples.last()) {
            (Some(first), Some(last)) if first.rss_kib > 0 => {
                (last.rss_kib as f64 - first.rss_kib as f64) / first.rss_kib as f64
            }
            _ => 0.0,
        }
    }

    pub fn vm_restarts(&self) -> u64 {
        self.vms_created.1.saturating_sub(self.vms_created.0)
    }
}

/// Sends `requests` mixed requests in `samples` equal rounds, sampling Envoy's RSS after each;
/// the first round is the warm-up the others are measured against.
pub async fn soak(
    stack: &Stack,
    requests: u64,
    concurrency: usize,
    samples: u64,
    mut on_sample: impl FnMut(&Sample),
) -> Result<SoakReport> {
    let started = Instant::now();
    let vms_before = vms_created(stack).await?;
    let port = stack.port();
    let rounds = samples.max(1);
    let mut tally = Tally::default();
    let mut report_samples = Vec::new();
    for round in 0..rounds {
        let from = requests * round / rounds;
        let to = requests * (round + 1) / rounds;
        let part = load::drive(port, from, to, concurrency, load::mixed).await?;
        tally.add(part);
        // The test servers keep what they saw; a long run must not measure their memory.
        if let Some(auth) = &stack.auth {
            auth.clear_seen();
        }
        if let Some(auth) = &stack.grpc_auth {
            auth.clear_seen();
        }
        stack.upstream.clear_seen();
        let sample = Sample {
            done: to,
            rss_kib: stack.envoy.rss_kib().unwrap_or_default(),
            seconds: started.elapsed().as_secs_f64(),
        };
        on_sample(&sample);
        report_samples.push(sample);
    }
    // Reset calls end when the auth service answers them; give those a moment.
    tokio::time::sleep(load::RESET_HOLD + Duration::from_millis(500)).await;
    Ok(SoakReport {
        samples: report_samples,
        tally,
        vms_created: (vms_before, vms_created(stack).await?),
        calls_in_flight_after: stack.plugin_stat("calls_in_flight").await?,
    })
}

/// Wasm VMs Envoy has made so far; a native module has none (it cannot be restarted: a crash
/// would take Envoy down, which the soak sees as Envoy gone).
async fn vms_created(stack: &Stack) -> anyhow::Result<u64> {
    match crate::shell::Shell::current() {
        crate::shell::Shell::Native => Ok(0),
        crate::shell::Shell::Wasm => stack.envoy.stat(VMS_CREATED).await,
    }
}
