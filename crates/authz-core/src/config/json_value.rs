//! Configuration JSON as values, parsed by serde_json: numbers classified the way configuration
//! needs them (exact whole numbers, however written), objects in order with duplicate fields
//! refused, since `{"timeout_ms": 1, "timeout_ms": 0}` would otherwise silently keep the last.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A parsed JSON value. Object fields keep their order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// What configuration needs to know about a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Number {
    /// A non-negative whole number, however written (`500`, `500.0`, `5e2`).
    Whole(u64),
    /// A whole number too large for u64.
    Huge,
    Negative,
    Fractional,
}

impl Json {
    /// The value an RFC 6901 JSON pointer names (`""` is the whole value, `/a/0` the first
    /// element of `a`), if there is one. `pointer` is one `json_pointer` accepted.
    pub fn pointer(&self, pointer: &str) -> Option<&Json> {
        let mut value = self;
        for token in pointer.split('/').skip(1) {
            let token = unescape(token);
            value = match value {
                Json::Object(fields) => &fields.iter().find(|(key, _)| *key == *token)?.1,
                Json::Array(items) => {
                    // An index is digits without a leading zero; `-` names no element to read.
                    let index = match token.as_bytes() {
                        [b'0'] => 0,
                        [b'1'..=b'9', ..] => token.parse::<usize>().ok()?,
                        _ => return None,
                    };
                    items.get(index)?
                }
                _ => return None,
            };
        }
        Some(value)
    }
}

/// A pointer token as written (`~1` for `/`, `~0` for `~`) to the key it names.
fn unescape(token: &str) -> std::borrow::Cow<'_, str> {
    if !token.as_bytes().contains(&b'~') {
        return std::borrow::Cow::Borrowed(token);
    }
    let mut key = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        match (c, c == '~') {
            (_, true) => key.push(if chars.next() == Some('1') { '/' } else { '~' }),
            (c, false) => key.push(c),
        }
    }
    std::borrow::Cow::Owned(key)
}

/// Whether `pointer` is an RFC 6901 JSON pointer: empty, or `/`-separated tokens in which `~`
/// only escapes (`~0` for `~`, `~1` for `/`).
pub fn is_json_pointer(pointer: &str) -> bool {
    (pointer.is_empty() || pointer.starts_with('/'))
        && pointer
            .split('~')
            .skip(1)
            .all(|after| after.starts_with('0') || after.starts_with('1'))
}

/// Parses configuration bytes; the error says what and where (line and column).
pub fn parse(bytes: &[u8]) -> Result<Json, String> {
    let value: Json = serde_json::from_slice(bytes).map_err(|err| err.to_string())?;
    match duplicate(&value) {
        Some(key) => Err(format!("duplicate field `{key}`")),
        None => Ok(value),
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

/// Objects up to this many fields are checked for duplicates field by field.
const SMALL_OBJECT: usize = 16;

/// 2^64 as a double: doubles from here on are past u64.
const TWO_TO_THE_64: f64 = 18_446_744_073_709_551_616.0;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, value: bool) -> Result<Json, E> {
        Ok(Json::Bool(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Json, E> {
        Ok(Json::Number(Number::Whole(value)))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Json, E> {
        Ok(Json::Number(match u64::try_from(value) {
            Ok(whole) => Number::Whole(whole),
            Err(_) => Number::Negative,
        }))
    }

    /// Istio's `pluginConfig` and Envoy Gateway's `config` pass through a protobuf `Struct`, which
    /// holds every number as a double: a whole double is a whole number.
    fn visit_f64<E>(self, value: f64) -> Result<Json, E> {
        Ok(Json::Number(if value < 0.0 {
            Number::Negative
        } else if value.fract() != 0.0 || !value.is_finite() {
            Number::Fractional
        } else if value >= TWO_TO_THE_64 {
            Number::Huge
        } else {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let whole = value as u64;
            Number::Whole(whole)
        }))
    }

    fn visit_str<E>(self, value: &str) -> Result<Json, E> {
        Ok(Json::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Json, E> {
        Ok(Json::String(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut fields: Vec<(String, Json)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value()?;
            fields.push((key, value));
        }
        Ok(Json::Object(fields))
    }
}

/// The first member given twice in any object of `value`. Small objects are compared member by
/// member; a large one (an auth answer may be megabytes) sorted, so that none costs quadratic
/// time.
fn duplicate(value: &Json) -> Option<&str> {
    match value {
        Json::Array(items) => items.iter().find_map(duplicate),
        Json::Object(fields) => {
            let twice = if fields.len() <= SMALL_OBJECT {
                fields
                    .iter()
                    .enumerate()
                    .find(|(at, (key, _))| fields.iter().take(*at).any(|(k, _)| k == key))
                    .map(|(_, (key, _))| key.as_str())
            } else {
                // (Owned keys: sorting strings is code the configuration's lists already have.)
                let mut keys: Vec<String> = fields.iter().map(|(key, _)| key.clone()).collect();
                keys.sort();
                keys.windows(2)
                    .find(|pair| pair.first() == pair.get(1))
                    .and_then(|pair| pair.first())
                    .and_then(|key| fields.iter().find(|(k, _)| k == key))
                    .map(|(key, _)| key.as_str())
            };
            twice.or_else(|| fields.iter().find_map(|(_, value)| duplicate(value)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_name_values_as_rfc_6901_does() {
        // RFC 6901's own example document and pointers.
        let doc = parse(
            br#"{"foo": ["bar", "baz"], "": 0, "a/b": 1, "c%d": 2, "e^f": 3, "g|h": 4,
                 "i\\j": 5, "k\"l": 6, " ": 7, "m~n": 8}"#,
        )
        .unwrap();
        assert_eq!(doc.pointer(""), Some(&doc));
        assert_eq!(
            doc.pointer("/foo"),
            Some(&Json::Array(vec![
                Json::String("bar".into()),
                Json::String("baz".into())
            ]))
        );
        assert_eq!(doc.pointer("/foo/0"), Some(&Json::String("bar".into())));
        for (pointer, n) in [
            ("/", 0),
            ("/a~1b", 1),
            ("/c%d", 2),
            ("/e^f", 3),
            ("/g|h", 4),
            ("/i\\j", 5),
            ("/k\"l", 6),
            ("/ ", 7),
            ("/m~0n", 8),
        ] {
            assert_eq!(doc.pointer(pointer), Some(&whole(n)), "{pointer}");
        }
        for missing in [
            "/foo/2", "/foo/01", "/foo/-", "/foo/x", "/nope", "/foo/0/x", "/a~1b/c",
        ] {
            assert_eq!(doc.pointer(missing), None, "{missing}");
        }
        assert!(is_json_pointer("") && is_json_pointer("/a~0~1/b"));
        for bad in ["a", "/a~", "/a~2", "#/a"] {
            assert!(!is_json_pointer(bad), "{bad}");
        }
    }

    #[test]
    fn a_large_object_with_a_duplicate_is_refused_too() {
        let mut text = String::from("{");
        for n in 0..1000 {
            text.push_str(&format!("\"k{n}\": {n},"));
        }
        text.push_str("\"k500\": true}");
        let err = parse(text.as_bytes()).unwrap_err();
        assert!(err.contains("duplicate field `k500`"), "{err}");
        assert!(parse(text.replace("\"k500\": true", "\"last\": true").as_bytes()).is_ok());
    }

    fn whole(n: u64) -> Json {
        Json::Number(Number::Whole(n))
    }

    #[test]
    fn values_of_every_kind_in_order() {
        let parsed =
            parse(br#" {"b": [1, -2, 2.5, true, null, "x\"\u00e9\n"], "a": {}} "#).unwrap();
        assert_eq!(
            parsed,
            Json::Object(vec![
                (
                    "b".into(),
                    Json::Array(vec![
                        whole(1),
                        Json::Number(Number::Negative),
                        Json::Number(Number::Fractional),
                        Json::Bool(true),
                        Json::Null,
                        Json::String("x\"é\n".into()),
                    ])
                ),
                ("a".into(), Json::Object(vec![])),
            ])
        );
    }

    #[test]
    fn whole_numbers_however_written() {
        for text in ["500", "500.0", "5e2", "5.0E+2"] {
            assert_eq!(parse(text.as_bytes()), Ok(whole(500)), "{text}");
        }
        assert_eq!(parse(b"18446744073709551615"), Ok(whole(u64::MAX)));
        for huge in ["18446744073709551616", "1e20"] {
            assert_eq!(
                parse(huge.as_bytes()),
                Ok(Json::Number(Number::Huge)),
                "{huge}"
            );
        }
        assert_eq!(parse(b"-0.5"), Ok(Json::Number(Number::Negative)));
        assert_eq!(parse(b"0.5"), Ok(Json::Number(Number::Fractional)));
    }

    #[test]
    fn duplicates_are_refused_by_name_and_syntax_errors_with_a_position() {
        let err = parse(br#"{"timeout_ms": 1, "timeout_ms": 0}"#).unwrap_err();
        assert!(err.contains("duplicate field `timeout_ms`"), "{err}");
        let nested = parse(br#"{"cache": {"ttl_ms": 1, "key": [], "ttl_ms": 2}}"#).unwrap_err();
        assert!(nested.contains("duplicate field `ttl_ms`"), "{nested}");
        let in_list = parse(br#"[{"a": 1}, {"b": 1, "b": 2}]"#).unwrap_err();
        assert!(in_list.contains("duplicate field `b`"), "{in_list}");
        let err = parse(b"{\n  \"a\": ,\n}").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        for bad in ["{", "{} {}", "\u{0}", "[1,]", "\"\\ud800\""] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
