//! Runs wrk (Debian's package; `tools` installs it) and reads its report.

use std::time::Duration;

use anyhow::{bail, Context, Result};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct WrkReport {
    pub requests: u64,
    pub seconds: f64,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub non_2xx: u64,
    pub socket_errors: u64,
}

/// `wrk -t1 -cCONNECTIONS -dSECONDS --latency URL` (whole seconds, at least 1), optionally pinned.
pub async fn run(
    url: &str,
    connections: u32,
    duration: Duration,
    cpu_list: Option<&str>,
) -> Result<WrkReport> {
    let mut command = match cpu_list {
        Some(cpus) => {
            let mut c = tokio::process::Command::new("taskset");
            c.args(["-c", cpus, "wrk"]);
            c
        }
        None => tokio::process::Command::new("wrk"),
    };
    crate::process::die_with_parent(&mut command);
    let output = command
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{}s", duration.as_secs().max(1)),
            "--latency",
        ])
        .arg(url)
        .output()
        .await
        .context("cannot run wrk")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse(&text).with_context(|| format!("cannot read wrk's report:\n{text}"))
}

/// Reads wrk's text report.
pub fn parse(text: &str) -> Result<WrkReport> {
    let mut report = WrkReport::default();
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", value] => report.p50_ms = millis(value)?,
            ["99%", value] => report.p99_ms = millis(value)?,
            [requests, "requests", "in", seconds, ..] => {
                report.requests = requests.parse()?;
                report.seconds = millis(seconds.trim_end_matches(','))? / 1000.0;
            }
            ["Requests/sec:", value] => report.requests_per_second = value.parse()?,
            ["Non-2xx", "or", "3xx", "responses:", value] => report.non_2xx = value.parse()?,
            ["Socket", "errors:", rest @ ..] => {
                report.socket_errors = rest
                    .chunks(2)
                    .filter_map(|pair| pair.get(1))
                    .filter_map(|n| n.trim_end_matches(',').parse::<u64>().ok())
                    .sum();
            }
            _ => {}
        }
    }
    if report.requests == 0 {
        bail!("no request count in the report");
    }
    Ok(report)
}

/// wrk's durations: `812.00us`, `1.20ms`, `2.00s`, `1.5m`.
fn millis(value: &str) -> Result<f64> {
    let split = value
        .find(|c: char| c.is_ascii_alphabetic())
        .context("a duration without a unit")?;
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse()?;
    Ok(match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        "m" => number * 60_000.0,
        other => bail!("unknown duration unit {other}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 2s test @ http://127.0.0.1:1/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.34ms  412.71us   8.01ms   89.28%
    Req/Sec     4.81k   105.30     4.95k    85.00%
  Latency Distribution
     50%    3.28ms
     75%    3.41ms
     90%    3.67ms
     99%    4.91ms
  9573 requests in 2.00s, 1.18MB read
  Non-2xx or 3xx responses: 9573
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec:   4785.88
Transfer/sec:    603.56KB
";

    #[test]
    fn reads_every_figure() {
        let report = parse(REPORT).unwrap();
        assert_eq!(report.requests, 9573);
        assert!((report.seconds - 2.0).abs() < 1e-9);
        assert!((report.requests_per_second - 4785.88).abs() < 1e-9);
        assert!((report.p50_ms - 3.28).abs() < 1e-9);
        assert!((report.p99_ms - 4.91).abs() < 1e-9);
        assert_eq!(report.non_2xx, 9573);
        assert_eq!(report.socket_errors, 3);
    }

    #[test]
    fn units() {
        assert!((millis("812.00us").unwrap() - 0.812).abs() < 1e-9);
        assert!((millis("2.00s").unwrap() - 2000.0).abs() < 1e-9);
        assert!(millis("12").is_err());
    }

    #[test]
    fn an_empty_report_is_an_error() {
        assert!(parse("").is_err());
    }
}
