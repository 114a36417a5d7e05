//! Figures per configuration across rounds: medians, ranges, and ratios taken pair by pair
//! within each round (so a slow round slows both sides of a ratio alike).

use serde_json::{json, Value};

use super::{Run, Setup};

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(mut values: Vec<f64>) -> Spread {
        if values.is_empty() {
            return Spread::default();
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Spread {
            median,
            min: values[0],
            max: values[n - 1],
        }
    }

    fn to_json(self) -> Value {
        json!({ "median": self.median, "min": self.min, "max": self.max })
    }
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub setup: Setup,
    pub cpu_us: Spread,
    pub rps: Spread,
    pub p50_ms: Spread,
    pub p99_ms: Spread,
    pub rss_mib: Spread,
    pub startup_ms: Spread,
    pub auth_calls_per_request: Spread,
    pub non_2xx: u64,
    pub requests: u64,
    /// Against ext_authz speaking the same protocol, and against none, per round: CPU per
    /// request and p99.
    pub cpu_vs_ext_authz: Option<Spread>,
    pub p99_vs_ext_authz: Option<Spread>,
    pub cpu_vs_none: Option<Spread>,
}

impl Summary {
    pub fn to_json(&self) -> Value {
        json!({
            "setup": self.setup.name(),
            "envoy_cpu_us_per_request": self.cpu_us.to_json(),
            "requests_per_second": self.rps.to_json(),
            "p50_ms": self.p50_ms.to_json(),
            "p99_ms": self.p99_ms.to_json(),
            "envoy_rss_mib": self.rss_mib.to_json(),
            "startup_ms": self.startup_ms.to_json(),
            "auth_calls_per_request": self.auth_calls_per_request.to_json(),
            "non_2xx": self.non_2xx,
            "requests": self.requests,
            "cpu_vs_ext_authz": self.cpu_vs_ext_authz.map(Spread::to_json),
            "p99_vs_ext_authz": self.p99_vs_ext_authz.map(Spread::to_json),
            "cpu_vs_none": self.cpu_vs_none.map(Spread::to_json),
        })
    }
}

pub fn summarize(runs: &[Run], setups: &[Setup]) -> Vec<Summary> {
    setups
        .iter()
        .map(|&setup| {
            let mine: Vec<&Run> = runs.iter().filter(|r| r.setup == setup).collect();
            let figure = |f: fn(&Run) -> f64| Spread::of(mine.iter().map(|r| f(r)).collect());
            Summary {
                setup,
                cpu_us: figure(|r| r.envoy_cpu_us_per_request),
                rps: figure(|r| r.requests_per_second),
                p50_ms: figure(|r| r.p50_ms),
                p99_ms: figure(|r| r.p99_ms),
                rss_mib: figure(|r| r.envoy_rss_mib),
                startup_ms: figure(|r| r.startup_ms),
                auth_calls_per_request: figure(|r| r.auth_calls_per_request),
                non_2xx: mine.iter().map(|r| r.non_2xx).sum(),
                requests: mine.iter().map(|r| r.requests).sum(),
                cpu_vs_ext_authz: ratio(runs, setup, setup.native_peer(), |r| {
                    r.envoy_cpu_us_per_request
                }),
                p99_vs_ext_authz: ratio(runs, setup, setup.native_peer(), |r| r.p99_ms),
                cpu_vs_none: ratio(runs, setup, Setup::None, |r| r.envoy_cpu_us_per_request),
            }
        })
        .collect()
}

/// `setup`'s figure over `base`'s, round by round.
fn ratio(runs: &[Run], setup: Setup, base: Setup, figure: fn(&Run) -> f64) -> Option<Spread> {
    let ratios: Vec<f64> = runs
        .iter()
        .filter(|r| r.setup == setup)
        .filter_map(|mine| {
            let theirs = runs
                .iter()
                .find(|r| r.setup == base && r.round == mine.round)?;
            let denominator = figure(theirs);
            (denominator > 0.0).then(|| figure(mine) / denominator)
        })
        .collect();
    (!ratios.is_empty()).then(|| Spread::of(ratios))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(setup: Setup, round: usize, cpu: f64) -> Run {
        Run {
            setup,
            round,
            requests: 100,
            requests_per_second: 1000.0 / cpu,
            p50_ms: 1.0,
            p99_ms: cpu / 100.0,
            non_2xx: 0,
            socket_errors: 0,
            envoy_cpu_us_per_request: cpu,
            envoy_rss_mib: 80.0,
            startup_ms: 300.0,
            auth_calls_per_request: 1.0,
        }
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(Spread::of(vec![3.0, 1.0, 2.0]).median, 2.0);
        assert_eq!(Spread::of(vec![4.0, 1.0, 2.0, 3.0]).median, 2.5);
        assert_eq!(Spread::of(vec![]), Spread::default());
    }

    #[test]
    fn ratios_pair_runs_of_the_same_round() {
        // Round 1 is slow for everyone; pairing by round keeps the ratio at 0.5.
        let runs = vec![
            run(Setup::ExtAuthz, 0, 400.0),
            run(Setup::PluginFnv, 0, 200.0),
            run(Setup::ExtAuthz, 1, 800.0),
            run(Setup::PluginFnv, 1, 400.0),
        ];
        let summary = summarize(&runs, &[Setup::ExtAuthz, Setup::PluginFnv]);
        let plugin = &summary[1];
        let ratio = plugin.cpu_vs_ext_authz.unwrap();
        assert_eq!((ratio.min, ratio.median, ratio.max), (0.5, 0.5, 0.5));
        assert_eq!(plugin.cpu_us.median, 300.0);
        assert_eq!(plugin.requests, 200);
        assert!(
            plugin.cpu_vs_none.is_none(),
            "no `none` runs to compare with"
        );
    }
}
