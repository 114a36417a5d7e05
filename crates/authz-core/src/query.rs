//! Query-string edits an auth service asks for (ext_authz's `query_parameters_to_set` and
//! `_remove`), with the `form_urlencoded` crate reading keys and writing new parameters.

/// `path` with `set` keys replaced (the first parameter of the key takes the value, later ones
/// go) or added at the end, and `remove` keys taken out; an edited path with no parameters left
/// has no `?`. Keys are compared decoded. Parameters the answer does not touch keep their bytes
/// exactly, as they were authorized (a signed URL stays valid); values the answer sets are
/// URL-encoded (native ext_authz inserts them as given, which can add parameters or make the
/// request line invalid).
pub fn edit(path: &[u8], set: &[(String, String)], remove: &[String]) -> Vec<u8> {
    if set.is_empty() && remove.is_empty() {
        return path.to_vec();
    }
    let (base, query) = match path.iter().position(|b| *b == b'?') {
        Some(at) => {
            let (base, rest) = path.split_at(at);
            (base, rest.get(1..).unwrap_or_default())
        }
        None => (path, &b""[..]),
    };
    // Each key to set (the last value given for it, as native overwrites), and whether it has
    // found its place among the parameters yet.
    let mut to_set: Vec<(&(String, String), bool)> = Vec::new();
    for pair in set {
        match to_set.iter_mut().find(|((k, _), _)| *k == pair.0) {
            Some(entry) => entry.0 = pair,
            None => to_set.push((pair, false)),
        }
    }
    let mut kept: Vec<Vec<u8>> = Vec::new();
    let segments = query
        .split(|b| *b == b'&')
        .filter(|s| !query.is_empty() || !s.is_empty());
    for segment in segments {
        let key = form_urlencoded::parse(segment).next().map(|(key, _)| key);
        let Some(key) = key else {
            kept.push(segment.to_vec());
            continue;
        };
        if remove.iter().any(|r| *r == key) {
            continue;
        }
        match to_set.iter_mut().find(|((k, _), _)| *k == key) {
            Some((_, true)) => {}
            Some((pair, placed)) => {
                *placed = true;
                kept.push(encoded(pair));
            }
            None => kept.push(segment.to_vec()),
        }
    }
    for (pair, placed) in to_set {
        if !placed {
            kept.push(encoded(pair));
        }
    }
    let mut edited = base.to_vec();
    if !kept.is_empty() {
        edited.push(b'?');
        edited.extend_from_slice(&kept.join(&b'&'));
    }
    edited
}

/// One `key=value` parameter, URL-encoded.
fn encoded((key, value): &(String, String)) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .append_pair(key, value)
        .finish()
        .into_bytes()
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

    fn edited(path: &str, pairs: &[(&str, &str)], remove: &[&str]) -> String {
        let remove: Vec<String> = remove.iter().map(|r| r.to_string()).collect();
        String::from_utf8(edit(path.as_bytes(), &set(pairs), &remove)).unwrap()
    }

    #[test]
    fn sets_replace_the_first_value_and_add_new_keys_removes_take_all() {
        assert_eq!(
            edited("/p?a=1&b=2&a=3&c=4", &[("a", "x"), ("new", "y")], &["c"]),
            "/p?a=x&b=2&new=y"
        );
        assert_eq!(edited("/p?a=1", &[], &["a"]), "/p");
        assert_eq!(edited("/p", &[("a", "v w")], &[]), "/p?a=v+w");
        assert_eq!(
            edited("/p?a=1", &[], &[]),
            "/p?a=1",
            "untouched without edits"
        );
    }

    #[test]
    fn parameters_the_answer_does_not_touch_keep_their_bytes() {
        assert_eq!(
            edited(
                "/p?sig=a%2Fb&x=%FF&flag&sp=a%20b&semi=a;b&c=%zz",
                &[("z", "1")],
                &[]
            ),
            "/p?sig=a%2Fb&x=%FF&flag&sp=a%20b&semi=a;b&c=%zz&z=1"
        );
        // Keys are compared decoded: an encoded spelling of a removed key goes too.
        assert_eq!(edited("/p?%61=1&b=2", &[], &["a"]), "/p?b=2");
    }

    #[test]
    fn a_key_set_twice_takes_the_last_value() {
        assert_eq!(
            edited("/p?a=1&b=2", &[("a", "x"), ("a", "y")], &[]),
            "/p?a=y&b=2"
        );
        assert_eq!(edited("/p", &[("n", "x"), ("n", "y")], &[]), "/p?n=y");
    }

    #[test]
    fn a_set_value_cannot_add_parameters_or_a_fragment() {
        assert_eq!(
            edited("/p?a=1", &[("a", "x&admin=1#f")], &[]),
            "/p?a=x%26admin%3D1%23f"
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_survive_an_edit() {
        let path = b"/p\xff?k=\xfe&a=1";
        assert_eq!(edit(path, &[], &["a".into()]), b"/p\xff?k=\xfe".to_vec());
    }
}
