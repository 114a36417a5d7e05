//! Configuration JSON as values, parsed by serde_json: numbers classified the way configuration
//! needs them (exact whole numbers, however written), objects in order with duplicate fields
//! refused, since `{"timeout_ms": 1, "timeout_ms": 0}` would otherwise silently keep the last.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

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

/// Parses configuration bytes; the error says what and where (line and column).
pub fn parse(bytes: &[u8]) -> Result<Json, String> {
    serde_json::from_slice(bytes).map_err(|err| err.to_string())
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

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
            if fields.iter().any(|(existing, _)| *existing == key) {
                return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
            }
            let value = map.next_value()?;
            fields.push((key, value));
        }
        Ok(Json::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn duplicates_and_syntax_errors_are_refused_with_a_position() {
        let err = parse(br#"{"timeout_ms": 1, "timeout_ms": 0}"#).unwrap_err();
        assert!(err.contains("duplicate field `timeout_ms`"), "{err}");
        assert!(err.contains("line 1 column"), "{err}");
        let err = parse(b"{\n  \"a\": ,\n}").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        for bad in ["{", "{} {}", "\u{0}", "[1,]", "\"\\ud800\""] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
