//! The JSON reader against fixed cases and, by property, against serde_json.
//! Test code only: its module is declared under #[cfg(test)].

use proptest::prelude::*;
use serde_json::Value;

use super::*;

fn whole(n: u64) -> Json {
    Json::Number(Number::Whole(n))
}

#[test]
fn values_of_every_kind() {
    let parsed =
        parse(br#" {"a": [1, -2, 2.5, true, false, null, "x\"\u00e9\n"], "b": {}} "#).unwrap();
    assert_eq!(
        parsed,
        Json::Object(vec![
            (
                "a".into(),
                Json::Array(vec![
                    whole(1),
                    Json::Number(Number::Negative),
                    Json::Number(Number::Fractional),
                    Json::Bool(true),
                    Json::Bool(false),
                    Json::Null,
                    Json::String("x\"é\n".into()),
                ])
            ),
            ("b".into(), Json::Object(vec![])),
        ])
    );
}

#[test]
fn numbers_are_whole_when_their_digits_say_so() {
    for (text, number) in [
        ("0", Number::Whole(0)),
        ("-0", Number::Whole(0)),
        ("500", Number::Whole(500)),
        ("500.0", Number::Whole(500)),
        ("5e2", Number::Whole(500)),
        ("5.0E+2", Number::Whole(500)),
        ("100e-2", Number::Whole(1)),
        ("0.5e1", Number::Whole(5)),
        ("18446744073709551615", Number::Whole(u64::MAX)),
        ("18446744073709551616", Number::Huge),
        ("1e300", Number::Huge),
        ("0.5", Number::Fractional),
        ("1e-1", Number::Fractional),
        ("1e-999999999999999999999", Number::Fractional),
        ("-1", Number::Negative),
        ("-0.5", Number::Negative),
    ] {
        assert_eq!(parse(text.as_bytes()), Ok(Json::Number(number)), "{text}");
    }
}

#[test]
fn errors_say_what_and_where() {
    let err = parse(b"{\n  \"a\" 1\n}").unwrap_err();
    assert_eq!((err.message, err.line, err.column), ("expected ':'", 2, 7));
    assert_eq!(
        parse(br#"{"a": 1, "a": 2}"#).unwrap_err().message,
        "duplicate field"
    );
    assert_eq!(parse(b"[1] x").unwrap_err().message, "trailing characters");
    assert_eq!(parse(b"\"\xff\"").unwrap_err().message, "not UTF-8");
    assert_eq!(
        parse(br#""\ud800""#).unwrap_err().message,
        "lone surrogate in a \\u escape"
    );
    let deep = "[".repeat(100) + &"]".repeat(100);
    assert_eq!(
        parse(deep.as_bytes()).unwrap_err().message,
        "nested too deeply"
    );
    for bad in [
        "", "{", "[1,]", "{\"a\":}", "01", "1.", "-", "1e", "tru", "\"a\tb\"", "{'a': 1}",
    ] {
        assert!(parse(bad.as_bytes()).is_err(), "{bad:?}");
    }
}

/// What serde_json's value means to configuration, in this reader's terms.
fn expected(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Number(n) => Json::Number(match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Number::Whole(u),
            (None, Some(_), _) => Number::Negative,
            (_, _, Some(f)) if f < 0.0 => Number::Negative,
            (_, _, Some(f)) if f.fract() == 0.0 && f < 18_446_744_073_709_551_616.0 => {
                Number::Whole(f as u64)
            }
            (_, _, Some(f)) if f.fract() == 0.0 => Number::Huge,
            _ => Number::Fractional,
        }),
        Value::String(s) => Json::String(s.clone()),
        Value::Array(items) => Json::Array(items.iter().map(expected).collect()),
        Value::Object(map) => {
            Json::Object(map.iter().map(|(k, v)| (k.clone(), expected(v))).collect())
        }
    }
}

fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::btree_map(any::<String>(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn reads_whatever_serde_json_writes(value in any_value(), pretty in any::<bool>()) {
        let text = if pretty { serde_json::to_string_pretty(&value) } else { serde_json::to_string(&value) };
        let text = text.unwrap();
        prop_assert_eq!(parse(text.as_bytes()), Ok(expected(&value)), "{}", text);
    }

    #[test]
    fn accepts_exactly_what_serde_json_accepts(text in r#"[\[\]{}:,"0-9a-e\\ .E+\-nulrtfs]{0,24}"#) {
        let ours = parse(text.as_bytes());
        let theirs = serde_json::from_str::<Value>(&text);
        match (&ours, &theirs) {
            (Ok(mine), Ok(value)) => prop_assert_eq!(mine, &expected(value)),
            (Err(err), Ok(_)) => prop_assert!(err.message == "duplicate field", "{} refused: {}", text, err),
            (Ok(mine), Err(err)) => prop_assert!(false, "{} accepted as {:?}, serde_json says {}", text, mine, err),
            (Err(_), Err(_)) => {}
        }
    }

    #[test]
    fn never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = parse(&bytes);
    }
}
