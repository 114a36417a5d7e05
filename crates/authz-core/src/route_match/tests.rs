use super::*;

fn prefix(p: &str) -> RouteMatch {
    RouteMatch {
        path: Some(PathCondition::Prefix(p.into())),
        ..RouteMatch::default()
    }
}

fn on_path(rules: &[RouteMatch], path: &str) -> Selection {
    let facts = Facts {
        path: Some(path),
        method: Some("GET"),
        ..Facts::default()
    };
    select(rules.iter(), &facts)
}

#[test]
fn the_first_rule_that_matches_wins() {
    let rules = [prefix("/api/admin/"), prefix("/api/"), prefix("/")];
    assert_eq!(on_path(&rules, "/api/admin/users"), Selection::Rule(0));
    assert_eq!(
        on_path(&rules, "/api/users?x=/api/admin/"),
        Selection::Rule(1)
    );
    assert_eq!(on_path(&rules, "/static/a.css"), Selection::Rule(2));
    assert_eq!(on_path(&rules[..2], "/static/a.css"), Selection::Default);
}

#[test]
fn every_condition_of_a_rule_must_hold() {
    let rule = RouteMatch {
        route_name: Some("orders".into()),
        virtual_host: Some("shop".into()),
        authority: Some("shop.example.com".into()),
        path: Some(PathCondition::Exact("/orders".into())),
        methods: vec!["POST".into()],
    };
    let all = Facts {
        route_name: Some("orders"),
        virtual_host: Some("shop"),
        authority: Some("Shop.Example.COM"),
        path: Some("/orders?id=1"),
        method: Some("post"),
    };
    assert_eq!(select([&rule].into_iter(), &all), Selection::Rule(0));
    for one_off in [
        Facts {
            route_name: Some("other"),
            ..all
        },
        Facts {
            route_name: None,
            ..all
        },
        Facts {
            virtual_host: Some("admin"),
            ..all
        },
        Facts {
            authority: Some("shop.example.com.evil"),
            ..all
        },
        Facts {
            authority: None,
            ..all
        },
        Facts {
            path: Some("/orders/1"),
            ..all
        },
        Facts { path: None, ..all },
        Facts {
            method: Some("GET"),
            ..all
        },
        Facts {
            method: None,
            ..all
        },
    ] {
        assert_eq!(
            select([&rule].into_iter(), &one_off),
            Selection::Default,
            "{one_off:?}"
        );
    }
}

#[test]
fn hosts_are_compared_without_case_only_as_envoy_picks_a_virtual_host() {
    assert_eq!(host_of("API.example.com"), "api.example.com");
    assert_eq!(host_of("api.example.com:443"), "api.example.com:443");
    assert_eq!(host_of("api.example.com."), "api.example.com.");
}

#[test]
fn a_path_read_without_regard_to_case_must_select_the_same_rule() {
    let rules = [prefix("/admin/"), prefix("/")];
    assert_eq!(on_path(&rules, "/ADMIN/users"), Selection::Ambiguous);
    assert_eq!(on_path(&rules, "/Admin/users"), Selection::Ambiguous);
    assert_eq!(
        on_path(&rules, "/Api/Users"),
        Selection::Rule(1),
        "no rule cares"
    );
    let upper = [prefix("/API/v1/")];
    assert_eq!(on_path(&upper, "/API/v1/x"), Selection::Rule(0));
    assert_eq!(on_path(&upper, "/api/v1/x"), Selection::Ambiguous);
}

#[test]
fn an_encoded_backslash_and_a_sent_path_resolved_are_readings_too() {
    let rules = [prefix("/admin/"), prefix("/public/")];
    for path in [
        "/public/..%5Cadmin/users",
        "/public/%2e%2e%5cadmin/users",
        "/public/x%2Fy/../../admin/users",
    ] {
        assert_eq!(on_path(&rules, path), Selection::Ambiguous, "{path}");
    }
}

#[test]
fn a_path_trick_never_reaches_another_rule() {
    // The strict rule first; a trick aimed at the lenient one must not land there.
    let rules = [prefix("/admin/"), prefix("/public/")];
    for path in [
        "/public/../admin/users",
        "/public/..;/admin/users",
        "/public/%2e%2e/admin/users",
        "/public/%2E%2E%2Fadmin/users",
        "/public\\..\\admin\\users",
        "/public/x/..;/..;/admin/users",
        "//admin/users",
        "/%61dmin/users",
        "/admin;x=1/users",
    ] {
        assert_eq!(on_path(&rules, path), Selection::Ambiguous, "{path}");
    }
    // Readings that agree select as usual.
    assert_eq!(on_path(&rules, "/public/a%20b.png"), Selection::Rule(1));
    assert_eq!(on_path(&rules, "/admin/./users"), Selection::Rule(0));
    assert_eq!(on_path(&rules, "/other/%2e%2e/x"), Selection::Default);
}

#[test]
fn normalizing_resolves_dots_parameters_and_slashes() {
    for (decoded, normalized) in [
        ("/a/b/../c", "/a/c"),
        ("/a/./b/", "/a/b/"),
        ("/a/b/..", "/a/"),
        ("/..", "/"),
        ("/a//b", "/a/b"),
        ("/a/..;/b;c=d/e", "/b/e"),
        ("", "/"),
    ] {
        assert_eq!(normalize(decoded), normalized, "{decoded}");
    }
    assert_eq!(decode("/a%2Fb\\c%zz"), "/a/b/c%zz");
}

#[test]
fn only_the_names_a_rule_uses_are_asked_for() {
    let by_name = RouteMatch {
        route_name: Some("r".into()),
        ..RouteMatch::default()
    };
    assert_eq!(needs([prefix("/")].iter()), (false, false));
    assert_eq!(needs([prefix("/"), by_name].iter()), (true, false));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever a client writes, a path never selects the lenient rule while its
        /// normalized reading selects the strict one.
        #[test]
        fn no_path_reaches_public_while_it_reads_as_admin(
            segments in prop::collection::vec(
                prop::sample::select(vec!["public", "admin", "..", ".", "..;", "%2e%2e", "%2f", "", "x", "%61dmin", "\\", "%5c", "ADMIN", "x%2Fy"]),
                1..6,
            )
        ) {
            let path = format!("/{}", segments.join("/"));
            let rules = [prefix("/admin"), prefix("/public")];
            let chosen = on_path(&rules, &path);
            let readings = [normalize(&decode(&path)), normalize(&path), normalize(&decode(&path)).to_ascii_lowercase()];
            if readings.iter().any(|reading| reading.starts_with("/admin")) {
                prop_assert!(chosen == Selection::Rule(0) || chosen == Selection::Ambiguous, "{} -> {:?}", path, chosen);
            }
        }
    }
}
