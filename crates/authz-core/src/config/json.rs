//! Reads configuration values out of parsed JSON, tracking each value's path for error messages.

use super::json_value::{Json, Number};
use super::validate::{Checked, ConfigError};

/// A JSON object whose fields are all known to the caller.
pub struct Object<'a> {
    path: String,
    fields: &'a [(String, Json)],
}

/// A value and where it came from.
pub struct Item<'a> {
    pub path: String,
    pub value: &'a Json,
}

impl<'a> Item<'a> {
    /// This value as an object with only these fields.
    pub fn object(&self, fields: &[&str]) -> Checked<Object<'a>> {
        Object::new(self.path.clone(), self.value, fields)
    }

    pub fn string(&self) -> Checked<&'a str> {
        match self.value {
            Json::String(text) => Ok(text),
            other => Err(type_error(&self.path, "a string", other)),
        }
    }
}

impl<'a> Object<'a> {
    /// `value` as an object; any field not in `fields` is refused by name.
    pub fn new(path: String, value: &'a Json, fields: &[&str]) -> Checked<Object<'a>> {
        let Json::Object(map) = value else {
            return Err(not_an_object(&path, value, fields));
        };
        let object = Object { path, fields: map };
        if let Some(unknown) = map
            .iter()
            .map(|(key, _)| key)
            .find(|key| !fields.contains(&key.as_str()))
        {
            let field = match (unknown.is_empty(), object.path.is_empty()) {
                (false, _) => object.field(unknown),
                (true, true) => "configuration".to_owned(),
                (true, false) => object.path.clone(),
            };
            let hint = match nearest(unknown, fields) {
                Some(near) => format!(" (did you mean `{near}`?)"),
                None => String::new(),
            };
            return Err(ConfigError::new(
                field,
                format!(
                    "unknown field `{unknown}`{hint}, expected one of {}",
                    one_of(fields)
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

    /// Whether no field at all is given.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Whether the field is given (and not null).
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The fields given, each as a string-to-string map entry.
    pub fn string_map(&self, key: &str) -> Checked<std::collections::BTreeMap<String, String>> {
        let mut map = std::collections::BTreeMap::new();
        if let Some(item) = self.get(key) {
            let Json::Object(fields) = item.value else {
                return Err(type_error(&item.path, "an object of strings", item.value));
            };
            for (name, value) in fields {
                let Json::String(text) = value else {
                    return Err(type_error(
                        &format!("{}.{name}", item.path),
                        "a string",
                        value,
                    ));
                };
                map.insert(name.clone(), text.clone());
            }
        }
        Ok(map)
    }

    /// A field's value as it is, when given (and not null).
    pub fn item(&self, key: &str) -> Option<Item<'a>> {
        self.get(key)
    }

    fn get(&self, key: &str) -> Option<Item<'a>> {
        self.fields
            .iter()
            .find(|(name, value)| name == key && *value != Json::Null)
            .map(|(_, value)| Item {
                path: self.field(key),
                value,
            })
    }

    pub fn string(&self, key: &str) -> Checked<Option<&'a str>> {
        self.get(key).map(|item| item.string()).transpose()
    }

    pub fn bool(&self, key: &str) -> Checked<Option<bool>> {
        self.get(key)
            .map(|item| match item.value {
                Json::Bool(b) => Ok(*b),
                other => Err(type_error(&item.path, "true or false", other)),
            })
            .transpose()
    }

    /// A non-negative integer. A whole number written as a decimal (`500.0`) counts:
    /// configuration that passed through a protobuf `Struct` (Istio's `pluginConfig`, Envoy
    /// Gateway's `config`) holds every number as a double.
    pub fn integer(&self, key: &str) -> Checked<Option<u64>> {
        self.get(key)
            .map(|item| match item.value {
                Json::Number(Number::Whole(n)) => Ok(*n),
                Json::Number(Number::Huge) => Ok(u64::MAX),
                other => Err(type_error(&item.path, "a non-negative integer", other)),
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
        let Json::Array(array) = item.value else {
            return Err(type_error(&item.path, "a list", item.value));
        };
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

fn one_of(fields: &[&str]) -> String {
    let mut list = String::new();
    for field in fields {
        if !list.is_empty() {
            list.push_str(", ");
        }
        list.push_str(field);
    }
    list
}

/// Why a value is not the object expected. A bare header name where a matcher goes
/// (`"allowed_headers": ["authorization"]`, the likeliest slip) is shown the form it takes.
fn not_an_object(path: &str, value: &Json, fields: &[&str]) -> ConfigError {
    match value {
        Json::String(name) if fields.contains(&"exact") => {
            // A name that could not be shown inside quotes as it is gets a stand-in.
            let shown = if name.is_empty()
                || name
                    .chars()
                    .any(|c| !c.is_ascii_graphic() || c == '"' || c == '\\')
            {
                "x-user-id"
            } else {
                name
            };
            let form = format!("an object such as {{\"exact\": \"{shown}\"}}");
            type_error(path, &form, value)
        }
        _ => type_error(path, "an object", value),
    }
}

/// The accepted field an unknown one most likely misspells: the nearest within a slip or two (a
/// third of the longer name's letters, at least one), the first listed on a tie.
fn nearest<'f>(unknown: &str, fields: &[&'f str]) -> Option<&'f str> {
    let mut best = None;
    let mut fewest = usize::MAX;
    for field in fields {
        let most = (unknown.len().max(field.len()) / 3).max(1);
        // Too different in length to be within `most` edits: not worth comparing.
        if unknown.len().abs_diff(field.len()) > most {
            continue;
        }
        let edits = distance(unknown.as_bytes(), field.as_bytes());
        if edits <= most && edits < fewest {
            best = Some(*field);
            fewest = edits;
        }
    }
    best
}

/// How many letters must be inserted, deleted, changed or swapped with a neighbour to turn `a`
/// into `b` (optimal string alignment distance), filled in row by row; `usize::MAX` for a `b`
/// longer than any field name.
pub(super) fn distance(a: &[u8], b: &[u8]) -> usize {
    // The table's rows for `a`'s prefixes: two letters back, one back, and this one.
    let mut two_back = [0; 64];
    let mut last = [0; 64];
    let mut row = [0; 64];
    if b.len() >= row.len() {
        return usize::MAX;
    }
    for (j, cell) in last.iter_mut().enumerate() {
        *cell = j;
    }
    let mut previous = None;
    for (i, &x) in a.iter().enumerate() {
        let mut left = i + 1;
        let mut diagonal = i;
        // The letter of `b` and the cell two rows back, each one column before this one.
        let mut before = None;
        let mut swapped = 0;
        let cells = row.iter_mut().skip(1).zip(last.iter().skip(1));
        for (((cell, &above), &y), &two) in cells.zip(b).zip(&two_back) {
            left = (diagonal + usize::from(x != y))
                .min(above + 1)
                .min(left + 1);
            // Two neighbours swapped (`pahts`) is one slip, not two.
            if previous == Some(y) && before == Some(x) {
                left = left.min(swapped + 1);
            }
            *cell = left;
            diagonal = above;
            before = Some(y);
            swapped = two;
        }
        if let Some(first) = row.first_mut() {
            *first = i + 1;
        }
        two_back = last;
        last = row;
        previous = Some(x);
    }
    last.get(b.len()).copied().unwrap_or(usize::MAX)
}

fn type_error(path: &str, expected: &str, got: &Json) -> ConfigError {
    let got = match got {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(Number::Whole(_) | Number::Huge) => "an integer",
        Json::Number(Number::Negative) => "a negative number",
        Json::Number(Number::Fractional) => "a fractional number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    };
    let field = if path.is_empty() {
        "configuration"
    } else {
        path
    };
    ConfigError::new(field, format!("expected {expected}, got {got}"))
}
