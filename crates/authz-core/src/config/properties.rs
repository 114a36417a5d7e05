//! Property tests: no input makes the configuration parser panic, and whatever it accepts is sane.
//! Test code only: its module is declared under #[cfg(test)].

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

/// Any JSON value, nested a little.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::hash_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A configuration object whose fields are real field names with arbitrary values.
fn config_like() -> impl Strategy<Value = Value> {
    let field = prop::sample::select(FIELDS.to_vec());
    prop::collection::vec((field, any_json()), 0..8).prop_map(|fields| {
        Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    })
}

fn check_accepted(config: &Config) {
    let timeout = config.auth_request.timeout.as_millis();
    assert!((1..=u128::from(MAX_TIMEOUT_MS)).contains(&timeout));
    assert!((300..=599).contains(&config.failure.status_on_error));
    assert!((300..=599).contains(&config.deny.status));
    assert!(!config.auth_request.cluster.is_empty());
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(config) = Config::parse(&bytes) {
            check_accepted(&config);
        }
    }

    #[test]
    fn arbitrary_values_of_real_fields_are_accepted_sanely_or_refused_by_name(value in config_like()) {
        let text = value.to_string();
        match Config::parse(text.as_bytes()) {
            Ok(config) => check_accepted(&config),
            Err(err) => {
                prop_assert!(!err.field.is_empty());
                prop_assert!(!err.reason.is_empty());
                let top = err.field.split(['.', '[']).next().unwrap_or_default();
                prop_assert!(FIELDS.contains(&top) || top == "configuration", "{}", err);
            }
        }
    }

    #[test]
    fn header_names_and_values_from_anywhere_are_checked(key in ".{0,10}", value in ".{0,10}") {
        let text = json!({"headers_to_add": [{"key": key, "value": value}]}).to_string();
        if let Ok(config) = Config::parse(text.as_bytes()) {
            let (name, val) = &config.auth_request.headers_to_add[0];
            prop_assert!(!name.is_empty());
            prop_assert!(name.bytes().all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase()));
            prop_assert!(!val.contains(['\r', '\n', '\0']));
        }
    }
}
