//! The benchmark's results as text: a narrow table for the terminal (at most 100 columns), the
//! full one as Markdown for the file next to the JSON, and a legend of the configurations.

use std::fmt::Write;

use super::setups::AuthPath;
use super::summary::{Spread, Summary};

/// The widest line the terminal table may print.
pub const TERMINAL_WIDTH: usize = 100;

/// Non-2xx answers the run should have: every checked request on the deny path, none otherwise.
fn expected_non_2xx(summary: &Summary, path: AuthPath) -> u64 {
    match (path, summary.setup.checks_auth()) {
        (AuthPath::Deny, true) => summary.requests,
        _ => 0,
    }
}

fn ratio(spread: Option<Spread>) -> String {
    spread.map_or("–".to_owned(), |r| format!("{:.2}×", r.median))
}

fn ratio_range(spread: Option<Spread>) -> String {
    spread.map_or("–".to_owned(), |r| {
        format!("{:.2}× ({:.2}–{:.2})", r.median, r.min, r.max)
    })
}

/// The medians that matter, one line per configuration, for the terminal.
pub fn terminal(summaries: &[Summary], path: AuthPath) -> Vec<String> {
    let mut lines = vec![
        format!(
            "{:<15}{:>12}{:>10}{:>9}{:>9}{:>10}{:>15}{:>9}",
            "configuration",
            "CPU µs/req",
            "req/s",
            "p50 ms",
            "p99 ms",
            "non-2xx",
            "CPU/ext_authz",
            "CPU/none"
        ),
        "-".repeat(89),
    ];
    for s in summaries {
        let unexpected = if s.non_2xx == expected_non_2xx(s, path) {
            ""
        } else {
            "!"
        };
        lines.push(format!(
            "{:<15}{:>12.0}{:>10.0}{:>9.2}{:>9.2}{:>10}{:>15}{:>9}",
            s.setup.name(),
            s.cpu_us.median,
            s.rps.median,
            s.p50_ms.median,
            s.p99_ms.median,
            format!("{}{unexpected}", s.non_2xx),
            ratio(s.cpu_vs_ext_authz),
            ratio(s.cpu_vs_none),
        ));
    }
    lines.push(
        "(medians over the rounds; CPU/ext_authz compares with ext_authz speaking the same \
         protocol;"
            .to_owned(),
    );
    lines.push(
        " non-2xx marked ! is unexpected; ranges, RSS, startup and auth calls are in the file)"
            .to_owned(),
    );
    lines
}

/// What each configuration shown is, one line each.
pub fn legend(summaries: &[Summary]) -> Vec<String> {
    summaries
        .iter()
        .map(|s| format!("  {:<15}{}", s.setup.name(), s.setup.describe()))
        .collect()
}

/// Every figure with its range over the rounds, as a Markdown table, then the legend.
pub fn markdown(summaries: &[Summary], path: AuthPath, title: &str) -> String {
    let mut out = format!("# {title}\n\n");
    out.push_str(
        "| configuration | Envoy CPU µs/req | req/s median (min–max) | p50 ms | p99 ms | non-2xx \
         | RSS MiB | startup ms | auth calls/req | CPU vs ext_authz (same protocol) \
         | p99 vs ext_authz | CPU vs none |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for s in summaries {
        let unexpected = if s.non_2xx == expected_non_2xx(s, path) {
            ""
        } else {
            " (unexpected!)"
        };
        let _ = writeln!(
            out,
            "| {} | {:.0} ({:.0}–{:.0}) | {:.0} ({:.0}–{:.0}) | {:.2} | {:.2} | {}{unexpected} | {:.0} \
             | {:.0} | {:.3} | {} | {} | {} |",
            s.setup.name(),
            s.cpu_us.median,
            s.cpu_us.min,
            s.cpu_us.max,
            s.rps.median,
            s.rps.min,
            s.rps.max,
            s.p50_ms.median,
            s.p99_ms.median,
            s.non_2xx,
            s.rss_mib.median,
            s.startup_ms.median,
            s.auth_calls_per_request.median,
            ratio_range(s.cpu_vs_ext_authz),
            ratio_range(s.p99_vs_ext_authz),
            ratio_range(s.cpu_vs_none),
        );
    }
    out.push_str("\nConfigurations:\n\n");
    for s in summaries {
        let _ = writeln!(out, "- `{}`: {}", s.setup.name(), s.setup.describe());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::setups::Setup;
    use super::*;

    fn summary(setup: Setup, figure: f64) -> Summary {
        let spread = Spread {
            median: figure,
            min: figure * 0.9,
            max: figure * 1.1,
        };
        Summary {
            setup,
            cpu_us: spread,
            rps: Spread {
                median: 123_456.0,
                min: 100_000.0,
                max: 150_000.0,
            },
            p50_ms: spread,
            p99_ms: spread,
            rss_mib: spread,
            startup_ms: spread,
            auth_calls_per_request: spread,
            non_2xx: 1_234_567,
            requests: 9_999_999,
            cpu_vs_ext_authz: Some(spread),
            p99_vs_ext_authz: Some(spread),
            cpu_vs_none: Some(spread),
        }
    }

    fn all() -> Vec<Summary> {
        Setup::ALL.iter().map(|&s| summary(s, 1234.5)).collect()
    }

    #[test]
    fn the_terminal_table_is_narrow() {
        for line in terminal(&all(), AuthPath::Allow)
            .into_iter()
            .chain(legend(&all()))
        {
            assert!(
                line.chars().count() <= TERMINAL_WIDTH,
                "{} columns: {line}",
                line.chars().count()
            );
        }
    }

    #[test]
    fn unexpected_non_2xx_are_marked() {
        let table = terminal(&all(), AuthPath::Allow).join("\n");
        assert!(table.contains("1234567!"), "{table}");
        let mut fine = all();
        for s in &mut fine {
            s.non_2xx = 0;
        }
        let table = terminal(&fine, AuthPath::Allow).join("\n");
        assert!(!table.contains("0!"), "{table}");
    }

    #[test]
    fn the_file_has_every_figure_and_the_legend() {
        let text = markdown(&all(), AuthPath::Allow, "allow path");
        assert!(text.starts_with("# allow path\n"));
        assert!(text.contains("| plugin-fnv | 1234 (1111–1358) |"), "{text}");
        assert!(text.contains("RSS MiB") && text.contains("startup ms"));
        for setup in Setup::ALL {
            assert!(text.contains(&format!("- `{}`: ", setup.name())), "{text}");
        }
    }
}
