//! `decision: {"json": …}`: the verdict is a boolean in the answer's JSON body, named by an
//! RFC 6901 pointer; other values may be copied from it onto the request.

use super::json::{Item, Object};
use super::json_value::is_json_pointer;
use super::validate::{self, Checked, ConfigError};
use crate::headers::{is_envoy_owned, is_reserved};

const FIELDS: &[&str] = &["json", "headers_from_json"];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonRule {
    /// Where the verdict is: `true` allows, `false` denies, anything else is an error.
    pub pointer: String,
    /// Values copied onto the allowed request.
    pub headers: Vec<JsonHeader>,
    /// Values put on the deny reply (AuthZEN's reason).
    pub deny_headers: Vec<JsonHeader>,
    /// Any answer but a 2xx is an error, whatever its body says (AuthZEN).
    pub answer_2xx_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonHeader {
    pub pointer: String,
    /// Lowercase. The client's own copies are removed from every request, as for
    /// `allowed_upstream_headers`.
    pub header: String,
}

pub fn parse(item: &Item) -> Checked<JsonRule> {
    let rule = item.object(FIELDS)?;
    let pointer = read_pointer(&rule, "json")?.ok_or_else(|| {
        ConfigError::new(
            rule.field("json"),
            "is missing: the pointer to the verdict, e.g. \"/allow\"",
        )
    })?;
    let headers = rule
        .list("headers_from_json")?
        .unwrap_or_default()
        .iter()
        .map(header)
        .collect::<Checked<_>>()?;
    Ok(JsonRule {
        pointer,
        headers,
        deny_headers: Vec::new(),
        answer_2xx_only: false,
    })
}

/// `{"pointer": …, "header": …}`: a value of the answer's JSON body as a header.
pub fn header(item: &Item) -> Checked<JsonHeader> {
    let entry = item.object(&["pointer", "header"])?;
    let pointer = read_pointer(&entry, "pointer")?
        .ok_or_else(|| ConfigError::new(entry.field("pointer"), "is missing"))?;
    let field = entry.field("header");
    let name = entry
        .string("header")?
        .ok_or_else(|| ConfigError::new(&field, "is missing"))?;
    let header = validate::header_name(&field, name)?;
    if is_reserved(&header) || is_envoy_owned(&header, b"") {
        return Err(ConfigError::new(
            field,
            format!("\"{header}\" is Envoy's to set: it cannot come from the auth answer"),
        ));
    }
    Ok(JsonHeader { pointer, header })
}

fn read_pointer(object: &Object, key: &str) -> Checked<Option<String>> {
    let Some(pointer) = object.string(key)? else {
        return Ok(None);
    };
    if !is_json_pointer(pointer) {
        return Err(ConfigError::new(
            object.field(key),
            format!("\"{pointer}\" is not a JSON pointer: write it as \"/allow\" or \"/result/allowed\" (RFC 6901)"),
        ));
    }
    Ok(Some(pointer.to_owned()))
}
