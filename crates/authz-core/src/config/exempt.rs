//! `exempt`: paths, path prefixes and methods that skip the check, kept sorted for lookups.

use super::fields::strings;
use super::json::Object;
use super::validate::{self, Checked};

/// Paths and methods are kept sorted for binary search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exemptions {
    pub paths: Vec<String>,
    pub path_prefixes: Vec<String>,
    pub methods: Vec<String>,
}

impl Exemptions {
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty() && self.path_prefixes.is_empty() && self.methods.is_empty()
    }

    pub fn has_path(&self, path: &str) -> bool {
        contains(&self.paths, path)
    }

    pub fn has_method(&self, method: &str) -> bool {
        contains(&self.methods, method)
    }
}

fn contains(sorted: &[String], value: &str) -> bool {
    sorted.binary_search_by(|s| s.as_str().cmp(value)).is_ok()
}

fn sorted(mut values: Vec<String>) -> Vec<String> {
    values.sort();
    values.dedup();
    values
}

/// Reads `exempt` from the configuration's root.
pub fn parse(root: &Object) -> Checked<Exemptions> {
    Ok(
        match root.object("exempt", &["paths", "path_prefixes", "methods"])? {
            None => Exemptions::default(),
            Some(exempt) => Exemptions {
                paths: sorted(strings(&exempt, "paths", validate::path)?),
                path_prefixes: strings(&exempt, "path_prefixes", validate::path)?,
                methods: sorted(strings(&exempt, "methods", validate::exempt_method)?),
            },
        },
    )
}
