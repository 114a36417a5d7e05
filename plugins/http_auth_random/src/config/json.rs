//! Reads configuration values out of parsed JSON, tracking each value's path for error messages.
//! (A walk over `serde_json::Value` costs the wasm far less than serde derive for every type.)

use serde_json::{Map, Value};

use super::validate::{Checked, ConfigError};

/// A JSON object whose fields are all known to the caller.
pub struct Object<'a> {
    path: String,
    map: &'a Map<String, Value>,
}

/// A value and where it came from.
pub struct Item<'a> {
    pub path: String,
    pub value: &'a Value,
}

impl<'a> Item<'a> {
    /// This value as an object with only these fields.
    pub fn object(&self, fields: &[&str]) -> Checked<Object<'a>> {
        Object::new(self.path.clone(), self.value, fields)
    }

    pub fn string(&self) -> Checked<&'a str> {
        self.value
            .as_str()
            .ok_or_else(|| type_error(&self.path, "a string", self.value))
    }
}

impl<'a> Object<'a> {
    /// `value` as an object; any field not in `fields` is refused by name.
    pub fn new(path: String, value: &'a Value, fields: &[&str]) -> Checked<Object<'a>> {
        let map = value
            .as_object()
            .ok_or_else(|| type_error(&path, "an object", value))?;
        let object = Object { path, map };
        if let Some(unknown) = map.keys().find(|key| !fields.contains(&key.as_str())) {
            let field = match (unknown.is_empty(), object.path.is_empty()) {
                (false, _) => object.field(unknown),
                (true, true) => "configuration".to_owned(),
                (true, false) => object.path.clone(),
            };
            return Err(ConfigError::new(
                field,
                format!(
                    "unknown field `{unknown}`, expected one of {}",
                    fields.join(", ")
                ),
            ));
        }
        Ok(object)
    }

    /// The path of one of this object's fields.
    pub fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn get(&self, key: &str) -> Option<Item<'a>> {
        self.map
            .get(key)
            .filter(|v| !v.is_null())
            .map(|value| Item {
                path: self.field(key),
                value,
            })
    }

    pub fn string(&self, key: &str) -> Checked<Option<&'a str>> {
        self.get(key).map(|item| item.string()).transpose()
    }

    pub fn bool(&self, key: &str) -> Checked<Option<bool>> {
        self.get(key)
            .map(|item| {
                item.value
                    .as_bool()
                    .ok_or_else(|| type_error(&item.path, "true or false", item.value))
            })
            .transpose()
    }

    /// A non-negative integer. A whole float such as `500.0` counts: configuration that passed
    /// through a protobuf `Struct` (Istio's `pluginConfig`, Envoy Gateway's `config`) holds
    /// every number as a double.
    pub fn integer(&self, key: &str) -> Checked<Option<u64>> {
        self.get(key)
            .map(|item| {
                item.value
                    .as_u64()
                    .or_else(|| item.value.as_f64().and_then(whole))
                    .ok_or_else(|| type_error(&item.path, "a non-negative integer", item.value))
            })
            .transpose()
    }

    pub fn object(&self, key: &str, fields: &[&str]) -> Checked<Option<Object<'a>>> {
        self.get(key).map(|item| item.object(fields)).transpose()
    }

    /// An array's elements, each with its own path (`field[i]`).
    pub fn list(&self, key: &str) -> Checked<Option<Vec<Item<'a>>>> {
        let Some(item) = self.get(key) else {
            return Ok(None);
        };
        let array = item
            .value
            .as_array()
            .ok_or_else(|| type_error(&item.path, "a list", item.value))?;
        Ok(Some(
            array
                .iter()
                .enumerate()
                .map(|(i, value)| Item {
                    path: format!("{}[{i}]", item.path),
                    value,
                })
                .collect(),
        ))
    }
}

/// A double that is exactly a non-negative integer below 2^53.
fn whole(number: f64) -> Option<u64> {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    (number.fract() == 0.0 && (0.0..EXACT).contains(&number)).then_some(number as u64)
}

fn type_error(path: &str, expected: &str, got: &Value) -> ConfigError {
    let got = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_u64() => "an integer",
        Value::Number(n) if n.is_i64() => "a negative integer",
        Value::Number(_) => "a fractional number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    let field = if path.is_empty() {
        "configuration"
    } else {
        path
    };
    ConfigError::new(field, format!("expected {expected}, got {got}"))
}
