//! The JSON verdict reader: any bytes as an auth answer's body, with any status and any pointers,
//! through `decide` under a JSON rule (as `decision: {"json": …}` and AuthZEN build it) and
//! through `json_headers`. Checked against serde_json's own reading of the same body: an allow
//! only where the body is JSON with `true` at the pointer in a 2xx answer, a deny only where it
//! has `false` there, and headers only from strings, whole numbers and booleans at their
//! pointers, fit for a header. Never a panic.
#![no_main]

use arbitrary::Arbitrary;
use authz_core::config::{parse_json, Config, JsonHeader, JsonRule, Rule};
use authz_core::decision::{decide, json_headers, Verdict};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

#[derive(Debug, Arbitrary)]
struct Input {
    /// A real answer's status: 200 to 499 (a 5xx never reaches the rule).
    status: u16,
    /// Any 2xx is an error but a 2xx (AuthZEN), or a non-2xx `false` denies too.
    answer_2xx_only: bool,
    pointer: Pointer,
    headers: Vec<Pointer>,
    /// The answer's body: the rest of the input.
    body: Body,
}

/// Any bytes, or JSON built from a tree (so that the keys pointers name turn up), or such JSON
/// with bytes spliced in.
#[derive(Debug, Arbitrary)]
enum Body {
    Raw(Vec<u8>),
    Json(Node),
    Spliced(Node, u16, Vec<u8>),
}

#[derive(Debug, Arbitrary)]
enum Node {
    Null,
    Bool(bool),
    Whole(u64),
    /// Number text of each kind the plugin classifies.
    Number(u8),
    Text(String),
    Array(Vec<Node>),
    Object(Vec<(Key, Node)>),
}

#[derive(Debug, Arbitrary)]
enum Key {
    Known(u8),
    Any(String),
}

/// Keys the known pointers name.
const KEYS: [&str; 9] = [
    "allow", "decision", "a", "b", "a/b", "m~n", "0", "result", "allowed",
];

const NUMBERS: [&str; 8] = [
    "0",
    "-1",
    "5e2",
    "500.0",
    "1e400",
    "18446744073709551616",
    "1.5",
    "-0",
];

impl Node {
    fn write(&self, out: &mut String) {
        match self {
            Node::Null => out.push_str("null"),
            Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Node::Whole(n) => out.push_str(&n.to_string()),
            Node::Number(n) => out.push_str(NUMBERS[usize::from(*n) % NUMBERS.len()]),
            Node::Text(text) => out.push_str(&Value::from(text.as_str()).to_string()),
            Node::Array(items) => {
                out.push('[');
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Node::Object(members) => {
                out.push('{');
                for (n, (key, value)) in members.iter().enumerate() {
                    if n > 0 {
                        out.push_str(", ");
                    }
                    let key = match key {
                        Key::Known(k) => KEYS[usize::from(*k) % KEYS.len()],
                        Key::Any(text) => text,
                    };
                    out.push_str(&Value::from(key).to_string());
                    out.push_str(": ");
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

impl Body {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Body::Raw(bytes) => bytes.clone(),
            Body::Json(node) => {
                let mut text = String::new();
                node.write(&mut text);
                text.into_bytes()
            }
            Body::Spliced(node, at, bytes) => {
                let mut text = String::new();
                node.write(&mut text);
                let mut body = text.into_bytes();
                let at = usize::from(*at) % (body.len() + 1);
                body.splice(at..at, bytes.iter().copied());
                body
            }
        }
    }
}

/// A pointer the configuration could hold, or any string at all.
#[derive(Debug, Arbitrary)]
enum Pointer {
    Known(u8),
    Any(String),
}

/// Pointers of each shape: the root, members, array indices, escaped `/` and `~`.
const KNOWN: [&str; 10] = [
    "/allow",
    "/decision",
    "",
    "/",
    "/a/0",
    "/a/1/b",
    "/a~1b",
    "/m~0n",
    "/0",
    "/result/allowed",
];

impl Pointer {
    fn as_str(&self) -> &str {
        match self {
            Pointer::Known(n) => KNOWN[usize::from(*n) % KNOWN.len()],
            Pointer::Any(text) => text,
        }
    }
}

/// Whether the configuration accepts `pointer` for `decision.json` (its own validation).
fn accepted(pointer: &str) -> bool {
    let config = serde_json::json!({"decision": {"json": pointer}}).to_string();
    match Config::parse(config.as_bytes()) {
        Ok(config) => matches!(&config.rule, Rule::Json(rule) if rule.pointer == pointer),
        Err(_) => false,
    }
}

fuzz_target!(|input: Input| {
    let status = 200 + input.status % 300;
    let body = input.body.bytes();
    let body = body.as_slice();
    let pointer = input.pointer.as_str();
    let rule = Rule::Json(JsonRule {
        pointer: pointer.to_owned(),
        headers: Vec::new(),
        deny_headers: Vec::new(),
        answer_2xx_only: input.answer_2xx_only,
    });
    let verdict = decide(&rule, status, body);
    let wanted: Vec<JsonHeader> = input
        .headers
        .iter()
        .take(8)
        .enumerate()
        .map(|(n, pointer)| JsonHeader {
            pointer: pointer.as_str().to_owned(),
            header: format!("x-h{n}"),
        })
        .collect();
    let headers = json_headers(&wanted, body);

    // Only pointers a configuration can hold are held to the oracle: others (no leading `/`,
    // a bare `~`) are refused before they reach the rule, and need only not panic.
    if !accepted(pointer) {
        return;
    }
    let ours = parse_json(body).ok();
    let theirs: Option<Value> = serde_json::from_slice(body).ok();
    // The plugin refuses what serde_json refuses (it refuses more: duplicate members).
    if theirs.is_none() {
        assert!(ours.is_none(), "read a body serde_json refuses");
    }
    let at = theirs.as_ref().and_then(|value| value.pointer(pointer));
    let two_xx = (200..300).contains(&status);
    match &verdict {
        Ok(Verdict::Allow) => {
            assert!(two_xx, "allowed on {status}");
            assert_eq!(
                at,
                Some(&Value::Bool(true)),
                "allowed without true at {pointer:?}"
            );
        }
        Ok(Verdict::DenyConfigured) => {
            assert!(
                two_xx || !input.answer_2xx_only,
                "denied on {status} under 2xx only"
            );
            assert_eq!(
                at,
                Some(&Value::Bool(false)),
                "denied without false at {pointer:?}"
            );
        }
        Ok(other) => panic!("a JSON rule gave {other:?}"),
        Err(_) => {
            // An error where the plugin read the same body and found a verdict would be wrong.
            if ours.is_some() && (two_xx || !input.answer_2xx_only) {
                let verdict_there = match at {
                    Some(Value::Bool(false)) => true,
                    Some(Value::Bool(true)) => two_xx,
                    _ => false,
                };
                assert!(
                    !verdict_there,
                    "an error with {at:?} at {pointer:?} in a {status}"
                );
            }
        }
    }

    match headers {
        Ok(headers) => {
            assert!(headers.len() <= wanted.len());
            if !wanted.is_empty() {
                assert!(ours.is_some(), "headers from a body the plugin cannot read");
            }
            for (name, value) in &headers {
                assert!(
                    !value.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)),
                    "{name}: {value:?} cannot be a header value"
                );
                let wanted = wanted
                    .iter()
                    .find(|w| &w.header == name)
                    .expect("a wanted header");
                if !accepted(&wanted.pointer) {
                    continue;
                }
                let text = std::str::from_utf8(value).expect("UTF-8 from a JSON string");
                match theirs.as_ref().and_then(|v| v.pointer(&wanted.pointer)) {
                    Some(Value::String(s)) => assert_eq!(s, text),
                    Some(Value::Bool(b)) => assert_eq!(b.to_string(), text),
                    Some(Value::Number(_)) => assert!(
                        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()),
                        "{text} from a number"
                    ),
                    other => panic!("{name}: {text} from {other:?}"),
                }
            }
        }
        Err(_) => assert!(!wanted.is_empty(), "an error with nothing wanted"),
    }
});
