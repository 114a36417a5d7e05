//! Query-string edits an auth service asks for (ext_authz's `query_parameters_to_set` and
//! `_remove`), with the `form_urlencoded` crate.

/// `path` with `set` keys replaced (every value of the key becomes one) or added, and `remove`
/// keys taken out. Other parameters keep their order; an edited path with no parameters left has
/// no `?`. Values are URL-encoded (native ext_authz inserts them as given, which can make the
/// request line invalid).
pub fn edit(path: &str, set: &[(String, String)], remove: &[String]) -> String {
    if set.is_empty() && remove.is_empty() {
        return path.to_owned();
    }
    let (base, query) = path.split_once('?').unwrap_or((path, ""));
    let mut params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .filter(|(key, _)| !remove.contains(key))
        .collect();
    for (key, value) in set {
        let mut placed = false;
        params.retain_mut(|(k, v)| {
            if k != key {
                return true;
            }
            if placed {
                return false;
            }
            placed = true;
            v.clone_from(value);
            true
        });
        if !placed {
            params.push((key.clone(), value.clone()));
        }
    }
    if params.is_empty() {
        return base.to_owned();
    }
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish();
    format!("{base}?{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sets_replace_every_value_and_add_new_keys_removes_take_all() {
        assert_eq!(
            edit(
                "/p?a=1&b=2&a=3&c=4",
                &set(&[("a", "x"), ("new", "y")]),
                &["c".into()]
            ),
            "/p?a=x&b=2&new=y"
        );
        assert_eq!(edit("/p?a=1", &[], &["a".into()]), "/p");
        assert_eq!(edit("/p", &set(&[("a", "v w")]), &[]), "/p?a=v+w");
        assert_eq!(
            edit("/p?a=1", &[], &[]),
            "/p?a=1",
            "untouched without edits"
        );
    }
}
