//! Any auth answer (status bytes and body) under either rule, and any request headers through the
//! auth-call builder: a verdict or an error, never a panic.
#![no_main]

use authz_core::protocol::http::auth_headers;
use authz_core::config::{Config, Rule};
use authz_core::decision::{answer_status, decide, needs_body};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (status, rest) = data.split_at(data.len().min(4));
    for rule in &[Rule::FnvParity, Rule::Status] {
        if let Ok(code) = answer_status(Some(status)) {
            let body = if needs_body(rule, code) { rest } else { &[] };
            let _ = decide(rule, code, body);
        }
    }
    // The rest as request headers: name/value pairs split on 0xff and 0xfe.
    let headers: Vec<(String, Vec<u8>)> = rest
        .split(|b| *b == 0xff)
        .filter_map(|pair| {
            let mut parts = pair.splitn(2, |b| *b == 0xfe);
            let name = String::from_utf8(parts.next()?.to_vec()).ok()?;
            Some((name.to_ascii_lowercase(), parts.next().unwrap_or_default().to_vec()))
        })
        .collect();
    for json in [&b"{}"[..], br#"{"allowed_headers": [{"prefix": "x-"}], "path_prefix": "/a"}"#] {
        if let Ok(config) = Config::parse(json) {
            let _ = auth_headers(&config.auth_request, &headers, None);
        }
    }
});
