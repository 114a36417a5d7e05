//! Readers for the field shapes several sections share: header lists, name matchers, statuses,
//! limits and string lists, each validated and named by its path.

use super::json::{Item, Object};
use super::validate::{self, Checked, ConfigError};
use crate::matcher::{NameMatcher, NameSet};

/// A status with a default, as a refusal's status (300–599).
pub fn status(object: &Object, key: &str, default: u32) -> Checked<u16> {
    let code = object
        .integer(key)?
        .map_or(Ok(default), |code| u32::try_from(code).or(Ok(u32::MAX)))?;
    validate::status(&object.field(key), code)
}

/// ext_authz's `HeaderValue` list: `[{"key": ..., "value": ...}]`, headers the plugin adds.
pub fn headers(list: Vec<Item>) -> Checked<Vec<(String, String)>> {
    list.iter()
        .map(|item| {
            let header = item.object(&["key", "value"])?;
            let key = header
                .string("key")?
                .ok_or_else(|| ConfigError::new(header.field("key"), "is missing"))?;
            let value = header
                .string("value")?
                .ok_or_else(|| ConfigError::new(header.field("value"), "is missing"))?;
            let name = validate::header_name(&header.field("key"), key)?;
            let value = validate::header_value(&header.field("value"), value)?;
            validate::added_header(&header.field("key"), &name, &value)?;
            Ok((name, value))
        })
        .collect()
}

/// An integer limit with a default, within `min..=max`.
pub fn limit(root: &Object, key: &str, default: u64, min: u64, max: u64) -> Checked<usize> {
    let value = validate::in_range(key, root.integer(key)?.unwrap_or(default), min, max, "")?;
    Ok(usize::try_from(value).unwrap_or(usize::MAX))
}

/// A list of name matchers.
pub fn name_set(list: Vec<Item>) -> Checked<NameSet> {
    let mut set = NameSet::default();
    for item in &list {
        set.insert(matcher(item)?);
    }
    Ok(set)
}

/// ext_authz's `StringMatcher`, restricted to the kinds that make sense for header names.
pub fn matcher(item: &Item) -> Checked<NameMatcher> {
    let object = item.object(&["exact", "prefix", "suffix", "contains", "ignore_case"])?;
    // Accepted for ext_authz compatibility: names are always compared lowercased.
    object.bool("ignore_case")?;
    let kinds = [
        ("exact", NameMatcher::Exact as fn(String) -> NameMatcher),
        ("prefix", NameMatcher::Prefix),
        ("suffix", NameMatcher::Suffix),
        ("contains", NameMatcher::Contains),
    ];
    let mut chosen = Vec::new();
    for (kind, make) in kinds {
        if let Some(value) = object.string(kind)? {
            chosen.push((kind, value, make));
        }
    }
    let (kind, value, make) = match chosen.as_slice() {
        [one] => *one,
        [] => {
            return Err(ConfigError::new(
                &item.path,
                "needs one of exact, prefix, suffix or contains",
            ))
        }
        _ => {
            return Err(ConfigError::new(
                &item.path,
                "has more than one of exact, prefix, suffix and contains",
            ))
        }
    };
    let field = object.field(kind);
    if value.is_empty() {
        return Err(ConfigError::new(field, "is empty"));
    }
    let name = match value.strip_prefix(':') {
        // Pseudo-headers may be named exactly (e.g. `:path`).
        Some(pseudo) if kind == "exact" => format!(":{}", validate::header_name(&field, pseudo)?),
        _ => validate::header_name(&field, value)?,
    };
    Ok(make(name))
}

/// A list of strings, each checked.
pub fn strings(
    object: &Object,
    key: &str,
    check: fn(&str, &str) -> Checked<String>,
) -> Checked<Vec<String>> {
    object
        .list(key)?
        .unwrap_or_default()
        .iter()
        .map(|item| check(&item.path, item.string()?))
        .collect()
}
