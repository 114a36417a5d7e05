//! The configuration reference keeps up with the parser: every field the parser accepts, at the
//! top level and in the nested objects, is a row of a field table in docs/configuration.md, and
//! every row there names a field the parser accepts. A failure names the field.
//!
//! The top-level and cache fields are the parser's own lists (`FIELDS`, `CACHE_FIELDS`); the
//! other nested objects' fields are read from the parser's behaviour: an unknown field in one is
//! refused with the list of the fields it accepts.

// A test: a failed read or an unexpected answer from the parser is the failure it reports.
#![allow(clippy::panic)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use authz_core::config::{Config, CACHE_FIELDS, FIELDS};

/// The nested objects whose fields the reference lists as `object.field`.
const NESTED: [&str; 4] = ["deny", "exempt", "with_request_body", "cache"];

/// A field name no object accepts, nor is near enough to one to be taken for a slip.
const UNKNOWN: &str = "zzzzzzzzzzzzzzzz";

/// Accepted only by the plugin's test build (feature `test-switches`), documented all the same.
const TEST_BUILD_ONLY: &str = "test_switches";

/// The configuration reference, from the repository's root.
const PAGE: &str = "docs/configuration.md";

fn reference() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(PAGE);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("cannot read {PAGE}: {err}"))
}

/// The field each row of the page's field tables names: the first cell's code span, in a table
/// whose first column is headed `field`.
fn documented(page: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut in_field_table = false;
    for line in page.lines() {
        let Some(row) = line.trim().strip_prefix('|') else {
            in_field_table = false;
            continue;
        };
        let first = row.split('|').next().unwrap_or_default().trim();
        if first == "field" {
            in_field_table = true;
            continue;
        }
        if !in_field_table || first.starts_with("---") {
            continue;
        }
        let name = first.split('`').nth(1);
        fields.push(name.unwrap_or(first).to_owned());
    }
    fields
}

/// The fields a nested object accepts, as the parser lists them when it refuses an unknown one.
fn accepted_in(object: &str) -> Vec<String> {
    let json = format!(r#"{{"decision": "status", "{object}": {{"{UNKNOWN}": 1}}}}"#);
    let err = match Config::parse(json.as_bytes()) {
        Ok(_) => panic!("{json} was accepted: the parser no longer refuses unknown fields"),
        Err(err) => err,
    };
    assert_eq!(err.field, format!("{object}.{UNKNOWN}"), "{json}: {err}");
    let (_, list) = err
        .reason
        .split_once("expected one of ")
        .unwrap_or_else(|| panic!("{json}: the error lists no accepted fields: {err}"));
    list.split(", ")
        .map(|name| {
            name.trim_end_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .to_owned()
        })
        .collect()
}

/// Every field the parser accepts, each as the reference writes it.
fn accepted() -> BTreeSet<String> {
    let mut fields: BTreeSet<String> = FIELDS.iter().map(|f| (*f).to_owned()).collect();
    fields.insert(TEST_BUILD_ONLY.to_owned());
    for object in NESTED {
        for field in accepted_in(object) {
            fields.insert(format!("{object}.{field}"));
        }
    }
    fields
}

#[test]
fn the_parsers_error_lists_the_fields_a_nested_object_accepts() {
    // The route by error message agrees with the list the cache section exports.
    assert_eq!(accepted_in("cache"), CACHE_FIELDS);
    for object in NESTED {
        assert!(FIELDS.contains(&object), "{object}");
        assert!(!accepted_in(object).is_empty(), "{object}");
    }
}

#[test]
fn every_field_the_parser_accepts_has_a_row_in_the_configuration_reference() {
    let page = reference();
    let rows: BTreeSet<String> = documented(&page).into_iter().collect();
    let missing: Vec<String> = accepted()
        .into_iter()
        .filter(|field| !rows.contains(field))
        .map(|field| format!("`{field}`"))
        .collect();
    assert!(
        missing.is_empty(),
        "{PAGE} has no row for {}, accepted by the parser: add a row whose first cell is the \
         field in backticks to the table of Fields (top level) or of Fields of the nested objects \
         (`object.field`)",
        missing.join(", ")
    );
}

#[test]
fn every_row_of_the_configuration_reference_names_a_field_the_parser_accepts() {
    let page = reference();
    let accepted = accepted();
    let unknown: Vec<String> = documented(&page)
        .into_iter()
        .filter(|field| !accepted.contains(field))
        .map(|field| format!("`{field}`"))
        .collect();
    assert!(
        unknown.is_empty(),
        "{PAGE} has a row for {}, which the parser refuses",
        unknown.join(", ")
    );
}

#[test]
fn each_field_has_one_row() {
    let page = reference();
    let mut seen = BTreeSet::new();
    for field in documented(&page) {
        assert!(seen.insert(field.clone()), "{PAGE}: `{field}` has two rows");
    }
}
