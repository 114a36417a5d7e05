//! The plugin's counters and calls-in-flight gauge, kept in the VM and handed to Envoy in batches:
//! a host call per metric per request measurably slowed the auth path, a flush every tick does not.

use std::cell::Cell;

use crate::host::Counter;

/// Metric changes not yet reported to the host.
#[derive(Debug, Default)]
pub struct PendingMetrics {
    counters: [Cell<u64>; Counter::ALL.len()],
    in_flight: Cell<i64>,
    reported_in_flight: Cell<i64>,
}

/// What one flush reports: counter increments, and the gauge's change.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Flush {
    pub counters: Vec<(Counter, u64)>,
    pub in_flight_delta: i64,
}

impl PendingMetrics {
    pub fn count(&self, counter: Counter) {
        if let Some(cell) = self.cell(counter) {
            cell.set(cell.get() + 1);
        }
    }

    pub fn add_in_flight(&self, delta: i64) {
        self.in_flight.set(self.in_flight.get() + delta);
    }

    /// Takes everything not yet reported.
    pub fn take(&self) -> Flush {
        let counters = Counter::ALL
            .iter()
            .zip(&self.counters)
            .filter_map(|(counter, cell)| {
                let n = cell.replace(0);
                (n > 0).then_some((*counter, n))
            })
            .collect();
        let now = self.in_flight.get();
        let delta = now - self.reported_in_flight.replace(now);
        Flush {
            counters,
            in_flight_delta: delta,
        }
    }

    fn cell(&self, counter: Counter) -> Option<&Cell<u64>> {
        let index = Counter::ALL.iter().position(|c| *c == counter)?;
        self.counters.get(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flush_reports_what_happened_since_the_last_one() {
        let pending = PendingMetrics::default();
        pending.count(Counter::Ok);
        pending.count(Counter::Ok);
        pending.count(Counter::Denied);
        pending.add_in_flight(1);
        pending.add_in_flight(1);
        pending.add_in_flight(-1);
        assert_eq!(
            pending.take(),
            Flush {
                counters: vec![(Counter::Ok, 2), (Counter::Denied, 1)],
                in_flight_delta: 1
            }
        );
        assert_eq!(pending.take(), Flush::default(), "nothing new");
        pending.add_in_flight(-1);
        pending.count(Counter::Error);
        assert_eq!(
            pending.take(),
            Flush {
                counters: vec![(Counter::Error, 1)],
                in_flight_delta: -1
            }
        );
    }
}
