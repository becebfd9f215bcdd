//! The schema pass as a user meets it: several unknown or mistyped keys in one file are all
//! reported in one run, together with the semantic rules, each with the way forward (the key
//! meant, the quoting, the section to add). Whole messages are compared, not fragments.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rolehop_core::Topology;

fn errors(src: &str) -> String {
    Topology::parse("rolehop.toml", src, &mut |_| Err("no file".to_owned()))
        .map(|_| "accepted".to_owned())
        .unwrap_or_else(|e| e.to_string())
}

#[test]
fn every_schema_error_is_reported_with_the_semantic_ones_in_one_run() {
    let src = r#"[broker]
account_id = 111111111111
region = "Mars-1"
regoin = "eu-west-2"

[auth]
mode = "access-keys"

[environments.prod]
protectd = true
max_session = true

[environments.prod.gitlab]
projects = "acme/shop"
branches = ["main"]
enviroments = ["production"]

[environments.prod.accounts]
prod-eu = 222222222222
"#;
    let want = r#"rolehop.toml:2:14: account id `account_id = 111111111111` is a number: quote it, `account_id = "111111111111"` (account ids are strings of 12 digits, so leading zeros survive) [wrong-type]
     2 | account_id = 111111111111
       |              ^
rolehop.toml:3:10: `Mars-1` is not an AWS region name (like `eu-west-1`) [region]
     3 | region = "Mars-1"
       |          ^
rolehop.toml:4:1: unknown key `regoin` in `[broker]`; did you mean `region`? [unknown-key]
     4 | regoin = "eu-west-2"
       | ^
rolehop.toml:10:1: unknown key `protectd` in `[environments.prod]`; did you mean `protected`? [unknown-key]
    10 | protectd = true
       | ^
rolehop.toml:11:15: `max_session` must be a duration such as "1h", "45m" or a number of seconds [wrong-type]
    11 | max_session = true
       |               ^
rolehop.toml:14:12: `projects` is a list: write `projects = ["acme/shop"]` [wrong-type]
    14 | projects = "acme/shop"
       |            ^
rolehop.toml:16:1: unknown key `enviroments` in `[environments.prod.gitlab]`; did you mean `environments`? [unknown-key]
    16 | enviroments = ["production"]
       | ^
rolehop.toml:19:11: account id `prod-eu = 222222222222` is a number: quote it, `prod-eu = "222222222222"` (account ids are strings of 12 digits, so leading zeros survive) [wrong-type]
    19 | prod-eu = 222222222222
       |           ^
8 problems in the topology"#;
    assert_eq!(errors(src), want);
}

#[test]
fn an_unknown_key_without_a_near_miss_lists_the_known_ones() {
    let src = r#"[broker]
account_id = "111111111111"
region = "eu-west-1"
colour = "blue"
"#;
    assert_eq!(
        errors(src),
        "rolehop.toml:4:1: unknown key `colour` in `[broker]`; known keys: `account_id`, `region`, `partition`, `stack_name` [unknown-key]\n     4 | colour = \"blue\"\n       | ^\nrolehop.toml: the topology has no `[auth]` section: add it [missing-key]\n2 problems in the topology"
    );
}

#[test]
fn a_missing_section_points_at_the_table_that_lacks_it() {
    let src = r#"[broker]
account_id = "111111111111"
region = "eu-west-1"

[auth]
mode = "access-keys"

[environments.prod]
protected = true

[environments.prod.accounts]
prod-eu = "222222222222"
"#;
    assert_eq!(
        errors(src),
        "rolehop.toml:8:15: `[environments.prod]` has no `[environments.prod.gitlab]` section: add it [missing-key]\n     8 | [environments.prod]\n       |               ^"
    );
}

#[test]
fn a_bare_account_id_with_a_leading_zero_gets_the_quoting_hint() {
    let src = "[broker]\naccount_id = 011111111111\nregion = \"eu-west-1\"\n";
    assert_eq!(
        errors(src),
        "rolehop.toml:2:14: unexpected leading zero, expected nothing: account ids are strings of 12 digits, quote it: `\"011111111111\"` [syntax]\n     2 | account_id = 011111111111\n       |              ^"
    );
}

#[test]
fn a_wrong_type_for_a_required_key_is_reported_once() {
    // `mode` removed for its type must not come back as "missing".
    let src = "[broker]\naccount_id = \"111111111111\"\nregion = \"eu-west-1\"\n[auth]\nmode = 1\n";
    assert_eq!(
        errors(src),
        "rolehop.toml:5:8: `mode` must be a string: quote it, `mode = \"1\"` [wrong-type]\n     5 | mode = 1\n       |        ^"
    );
}
