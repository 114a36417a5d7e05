//! An SVG bar chart of Envoy CPU time per request: median bars with min–max whiskers.

use std::fmt::Write;

use super::summary::Summary;

pub fn cpu_chart(summaries: &[Summary], title: &str) -> String {
    let bar_height = 28.0;
    let gap = 14.0;
    let left = 130.0;
    let width = 640.0;
    let plot = width - left - 80.0;
    let top = 48.0;
    let height = top + summaries.len() as f64 * (bar_height + gap) + 40.0;
    let most = summaries
        .iter()
        .map(|s| s.cpu_us.max)
        .fold(1.0_f64, f64::max)
        * 1.1;
    let x = |value: f64| left + value / most * plot;

    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="13">
<rect width="100%" height="100%" fill="white"/>
<text x="{left}" y="24" font-size="15" font-weight="bold">{}</text>
<text x="{left}" y="40" fill="#555">Envoy CPU µs per request (median, min–max over rounds); lower is better</text>
"##,
        escape(title)
    );
    for (i, summary) in summaries.iter().enumerate() {
        let y = top + 8.0 + i as f64 * (bar_height + gap);
        let colour = match summary.setup.name() {
            "plugin-fnv" | "plugin-status" | "plugin-json" | "plugin-authzen" => "#2a7ab9",
            "ext_authz" => "#d08a2a",
            _ => "#999999",
        };
        let middle = y + bar_height / 2.0;
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="end">{}</text>
<rect x="{left}" y="{y}" width="{:.1}" height="{bar_height}" fill="{colour}"/>
<line x1="{:.1}" x2="{:.1}" y1="{middle}" y2="{middle}" stroke="black"/>
<line x1="{:.1}" x2="{:.1}" y1="{}" y2="{}" stroke="black"/>
<line x1="{:.1}" x2="{:.1}" y1="{}" y2="{}" stroke="black"/>
<text x="{:.1}" y="{}">{:.0} µs</text>
"##,
            left - 8.0,
            middle + 4.0,
            summary.setup.name(),
            x(summary.cpu_us.median) - left,
            x(summary.cpu_us.min),
            x(summary.cpu_us.max),
            x(summary.cpu_us.min),
            x(summary.cpu_us.min),
            middle - 6.0,
            middle + 6.0,
            x(summary.cpu_us.max),
            x(summary.cpu_us.max),
            middle - 6.0,
            middle + 6.0,
            x(summary.cpu_us.max) + 6.0,
            middle + 4.0,
            summary.cpu_us.median
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
