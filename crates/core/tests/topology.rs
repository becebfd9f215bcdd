//! `rolehop.toml` validation, data-driven: each case breaks one rule and must be reported with
//! that rule's name at the line and column of the offending value.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rolehop_core::Topology;
use rolehop_core::topology::{Auth, RefType, Tier};

const VALID: &str = r#"[broker]
account_id = "111111111111"
region = "eu-west-1"

[auth]
mode = "access-keys"

[environments.prod]
protected = true
external_id = "acme-prod"

[environments.prod.gitlab]
projects = ["acme/shop"]
branches = ["main"]

[environments.prod.accounts]
prod-eu = "222222222222"

[environments.prod.permissions]
inline_policies = ["deploy.json"]

[environments.dev]
max_session = "30m"

[environments.dev.gitlab]
projects = ["acme/*"]
branches = ["*"]

[environments.dev.accounts]
dev = "333333333333"
"#;

fn parse(src: &str) -> Result<Topology, rolehop_core::TopologyError> {
    let mut read = |p: &str| {
        match p {
        "deploy.json" => Ok(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#.to_owned()),
        "broken.json" => Ok("{not json".to_owned()),
        "no-prefix.json" => Ok(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"GetObject","Resource":"*"}]}"#.to_owned()),
        "bad-effect.json" => Ok(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},{"Effect":"Permit","Action":"s3:*","Resource":"*"}]}"#.to_owned()),
        "with-principal.json" => Ok(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}"#.to_owned()),
        _ => Err("No such file or directory (os error 2)".to_owned()),
    }
    };
    Topology::parse("rolehop.toml", src, &mut read)
}

#[test]
fn the_valid_topology_has_defaults_filled_in() {
    let t = parse(VALID).unwrap();
    assert_eq!(t.auth, Auth::AccessKeys);
    let names: Vec<&str> = t.environments.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["prod", "dev"], "environments keep file order");
    let prod = &t.environments[0];
    assert_eq!(prod.tier, Tier::Production);
    assert_eq!(prod.service_role, "rolehop-prod-service");
    assert_eq!(prod.deployment_role, "rolehop-prod-deploy");
    assert_eq!(prod.max_session_secs, 3600);
    assert_eq!(prod.gitlab.branches, ["main"]);
    assert!(prod.gitlab.tags.is_empty());
    assert_eq!(prod.gitlab.environments, ["prod"]);
    assert_eq!(prod.permissions.inline_policies[0].name, "deploy");
    assert_eq!(t.environments[1].max_session_secs, 1800);
    assert_eq!(
        t.service_role_arn(prod),
        "arn:aws:iam::111111111111:role/rolehop-prod-service"
    );
    assert_eq!(
        t.deployment_role_arn(prod, &prod.accounts[0]),
        "arn:aws:iam::222222222222:role/rolehop-prod-deploy"
    );
    assert_eq!(
        prod.gitlab.sub_patterns(),
        ["project_path:acme/shop:ref_type:branch:ref:main"]
    );
}

#[test]
fn the_examples_parse() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for ex in ["access-keys", "oidc"] {
        let dir = root.join(ex);
        let src = std::fs::read_to_string(dir.join("rolehop.toml")).unwrap();
        let mut read = |p: &str| std::fs::read_to_string(dir.join(p)).map_err(|e| e.to_string());
        let t = Topology::parse(ex, &src, &mut read).unwrap_or_else(|e| panic!("{ex}: {e}"));
        assert_eq!(t.environments.len(), 2);
        assert_eq!(
            t.environments
                .iter()
                .map(|e| e.accounts.len())
                .sum::<usize>(),
            3
        );
    }
}

/// (what to replace in VALID, with what, rule expected, line, column, a word of the message)
const CASES: &[(&str, &str, &str, usize, usize, &str)] = &[
    (
        "\"111111111111\"",
        "\"11111111111\"",
        "account-id",
        2,
        14,
        "exactly 12 digits",
    ),
    (
        "region = \"eu-west-1\"",
        "region = \"Europe\"",
        "region",
        3,
        10,
        "region",
    ),
    (
        "mode = \"access-keys\"",
        "mode = \"ldap\"",
        "auth-mode",
        6,
        8,
        "`ldap`",
    ),
    (
        "mode = \"access-keys\"",
        "mode = \"oidc\"",
        "oidc-issuer",
        5,
        1,
        "needs `issuer`",
    ),
    (
        "prod-eu = \"222222222222\"",
        "prod-eu = \"333333333333\"",
        "shared-account",
        30,
        7,
        "`prod`",
    ),
    (
        "prod-eu = \"222222222222\"",
        "prod-eu = \"111111111111\"",
        "broker-as-target",
        17,
        11,
        "broker",
    ),
    (
        "protected = true",
        "protected = true\nservice_role = \"a-role-name-that-is-far-too-long-for-iam-because-it-has-more-than-64\"",
        "role-name",
        10,
        16,
        "1 to 64",
    ),
    (
        "max_session = \"30m\"",
        "max_session = \"2h\"",
        "session-duration",
        23,
        15,
        "1h",
    ),
    (
        "max_session = \"30m\"",
        "max_session = \"10m\"",
        "session-duration",
        23,
        15,
        "15m",
    ),
    (
        "max_session = \"30m\"",
        "max_session = \"soon\"",
        "session-duration",
        23,
        15,
        "duration `soon`",
    ),
    (
        "external_id = \"acme-prod\"",
        "external_id = \"a b\"",
        "external-id",
        10,
        15,
        "external id",
    ),
    (
        "projects = [\"acme/*\"]",
        "projects = [\"*\"]",
        "gitlab-project",
        26,
        13,
        "any namespace",
    ),
    (
        "projects = [\"acme/shop\"]",
        "projects = []",
        "gitlab-projects",
        12,
        1,
        "at least one",
    ),
    (
        "branches = [\"main\"]",
        "refs = [\"main\", \"v*\"]\nref_types = [\"branch\", \"tag\"]",
        "refs-split",
        14,
        8,
        "`tags = [...]` for the tag names",
    ),
    (
        "branches = [\"main\"]",
        "environments = [\"production\"]",
        "gitlab-refs",
        12,
        1,
        "`branches = [...]` and/or `tags = [...]`",
    ),
    (
        "branches = [\"*\"]",
        "branches = [\"feature?\"]",
        "gitlab-ref",
        27,
        13,
        "`*` is the only wildcard",
    ),
    (
        "branches = [\"main\"]",
        "branches = [\"main\"]\ntags = [\"v*\"]",
        "protected-ref-glob",
        15,
        9,
        "admits every tag whose name matches `v*`",
    ),
    (
        "branches = [\"main\"]",
        "branches = [\"release/*\"]",
        "protected-ref-glob",
        14,
        13,
        "`protected_ref_globs = [\"release/*\"]`",
    ),
    (
        "branches = [\"main\"]",
        "branches = [\"main\"]\nprotected_ref_globs = [\"v*\"]",
        "protected-ref-glob",
        15,
        24,
        "not a glob listed in `branches` or `tags`",
    ),
    (
        "projects = [\"acme/shop\"]",
        "projects = [\"acme/*\"]",
        "project-glob",
        13,
        13,
        "in that group and in every subgroup below it",
    ),
    (
        "projects = [\"acme/shop\"]",
        "projects = [\"acme/shop\"]\naccept_project_globs = [\"acme/*\"]",
        "project-glob",
        14,
        25,
        "not a project glob listed in `projects`",
    ),
    (
        "projects = [\"acme/*\"]",
        "projects = [\"acme*/shop\"]",
        "gitlab-project",
        26,
        13,
        "top-level group",
    ),
    (
        "inline_policies = [\"deploy.json\"]",
        "inline_policies = [\"missing.json\"]",
        "policy-file",
        20,
        20,
        "cannot read",
    ),
    (
        "inline_policies = [\"deploy.json\"]",
        "inline_policies = [\"broken.json\"]",
        "policy-file",
        20,
        20,
        "not JSON",
    ),
    (
        "inline_policies = [\"deploy.json\"]",
        "managed_policies = [\"arn:aws:iam::aws:role/x\"]",
        "policy-arn",
        20,
        21,
        "managed policy ARN",
    ),
    (
        "environments.dev",
        "environments.Dev",
        "environment-name",
        22,
        15,
        "`Dev`",
    ),
    (
        "protected = true",
        "protected = true\ncolour = \"blue\"",
        "unknown-key",
        10,
        1,
        "unknown key `colour` in `[environments.prod]`",
    ),
    (
        "region = \"eu-west-1\"",
        "region = eu-west-1",
        "syntax",
        3,
        10,
        "",
    ),
    (
        "dev = \"333333333333\"",
        "dev = 333333333333",
        "wrong-type",
        30,
        7,
        "quote it, `dev = \"333333333333\"`",
    ),
    (
        "protected = true",
        "protected = true\ntier = \"prod\"",
        "tier",
        10,
        8,
        "deployment tier",
    ),
    // Strings that reach rendered files or CloudFormation keep their strict shape.
    (
        "region = \"eu-west-1\"",
        "region = \"eu-west-1\"\nstack_name = \"broker\\nResources:\"",
        "stack-name",
        4,
        14,
        "only letters, digits and `-`",
    ),
    (
        "branches = [\"main\"]",
        "branches = [\"main\"]\nenvironments = [\"prod$CI_JOB_ID\"]",
        "gitlab-environment",
        15,
        17,
        "not a GitLab environment name",
    ),
    (
        "inline_policies = [\"deploy.json\"]",
        "inline_policies = [\"deploy.json\"]\nboundary = \"arn:aws:iam::aws:policy/x\\u2028Resources:\"",
        "policy-arn",
        21,
        12,
        "managed policy ARN",
    ),
    (
        "mode = \"access-keys\"",
        "mode = \"oidc\"\nissuer = \"https://gitlab.example.com\"\naudience = \"https://aws/$CI_PROJECT_PATH\"",
        "oidc-audience",
        8,
        12,
        "expands variables",
    ),
    (
        "mode = \"access-keys\"",
        "mode = \"oidc\"\nissuer = \"https://gitlab.example.com\"\naudience = \"{{resolve:ssm:/aud}}\"",
        "oidc-audience",
        8,
        12,
        "CloudFormation would replace it",
    ),
];

#[test]
fn every_broken_rule_is_located() {
    for (from, to, rule, line, col, word) in CASES {
        assert!(VALID.contains(from), "case {rule}: `{from}` not in VALID");
        // A renamed table must be renamed everywhere; other edits touch one place.
        let src = if from.starts_with("environments.") {
            VALID.replace(from, to)
        } else {
            VALID.replacen(from, to, 1)
        };
        let err = parse(&src).expect_err(&format!("{rule}: accepted\n{src}"));
        let d = err
            .diagnostics
            .iter()
            .find(|d| d.rule == *rule)
            .unwrap_or_else(|| panic!("{rule}: not reported; got {err}"));
        assert_eq!(
            (d.location.line, d.location.column),
            (*line, *col),
            "{rule}: {d}"
        );
        assert!(
            d.message.contains(word),
            "{rule}: `{}` lacks `{word}`",
            d.message
        );
        let shown = err.to_string();
        assert!(
            shown.contains(&format!("rolehop.toml:{line}:{col}")),
            "{shown}"
        );
    }
}

#[test]
fn branches_and_tags_are_trusted_only_as_what_they_are() {
    let src = VALID.replacen(
        "branches = [\"main\"]",
        "branches = [\"main\"]\ntags = [\"v*\"]\nprotected_ref_globs = [\"v*\"]",
        1,
    );
    let t = parse(&src).unwrap();
    let prod = &t.environments[0];
    // Never `ref_type:branch:ref:v*` (any developer's branch) nor `ref_type:tag:ref:main`.
    assert_eq!(
        prod.gitlab.sub_patterns(),
        [
            "project_path:acme/shop:ref_type:branch:ref:main",
            "project_path:acme/shop:ref_type:tag:ref:v*",
        ]
    );
    let refs: Vec<(RefType, &str)> = prod.gitlab.refs().collect();
    assert_eq!(refs, [(RefType::Branch, "main"), (RefType::Tag, "v*")]);
    assert_eq!(prod.gitlab.protected_ref_globs, ["v*"]);

    // A glob the topology accepts for a protected environment is kept, and declared.
    let src = VALID.replacen(
        "projects = [\"acme/shop\"]",
        "projects = [\"acme/shop\", \"acme/shop-*\"]\naccept_project_globs = [\"acme/shop-*\"]",
        1,
    );
    let t = parse(&src).unwrap();
    assert_eq!(
        t.environments[0].gitlab.accept_project_globs,
        ["acme/shop-*"]
    );
    // Unprotected environments may use globs without acknowledging them (dev in VALID).
    assert_eq!(t.environments[1].gitlab.projects, ["acme/*"]);
}

#[test]
fn the_old_refs_keys_are_refused_with_their_rewrite() {
    // Without `ref_types`, the old schema meant branches: the rewrite is exact.
    let src = VALID.replacen("branches = [\"main\"]", "refs = [\"main\"]", 1);
    let err = parse(&src).unwrap_err();
    assert_eq!(err.diagnostics.len(), 1, "{err}");
    let d = &err.diagnostics[0];
    assert_eq!(d.rule, "refs-split");
    assert!(
        d.message
            .contains("in `[environments.prod.gitlab]` write `branches = [\"main\"]`"),
        "{d}"
    );
    let src = VALID.replacen(
        "branches = [\"main\"]",
        "refs = [\"v*\"]\nref_types = [\"tag\"]",
        1,
    );
    let err = parse(&src).unwrap_err();
    // Both old keys are pointed at, and nothing else is reported about the table.
    let rules: Vec<&str> = err.diagnostics.iter().map(|d| d.rule).collect();
    assert_eq!(rules, ["refs-split", "refs-split"], "{err}");
    assert!(
        err.diagnostics[0]
            .message
            .contains("write `tags = [\"v*\"]`"),
        "{err}"
    );
    assert_eq!(err.diagnostics[1].location.line, 15, "{err}");
}

#[test]
fn all_problems_are_reported_at_once() {
    let src = VALID.replacen("\"111111111111\"", "\"1\"", 1).replacen(
        "region = \"eu-west-1\"",
        "region = \"x\"",
        1,
    );
    let err = parse(&src).unwrap_err();
    assert_eq!(err.diagnostics.len(), 2, "{err}");
    assert!(err.to_string().ends_with("2 problems in the topology"));
}

#[test]
fn an_empty_file_says_what_is_missing() {
    let err = parse("").unwrap_err();
    assert_eq!(
        err.to_string(),
        "rolehop.toml: the topology has no `[broker]` section: add it [missing-key]"
    );
}

/// VALID with service-managed StackSets; `prod_ous` and `dev_ous` are the TOML arrays.
fn service_managed(prod_ous: &str, dev_ous: &str) -> String {
    VALID
        .replacen(
            "[auth]",
            "[rollout]\npermission_model = \"service-managed\"\n\n[auth]",
            1,
        )
        .replacen(
            "external_id = \"acme-prod\"",
            &format!("external_id = \"acme-prod\"\norganizational_units = {prod_ous}"),
            1,
        )
        .replacen(
            "max_session = \"30m\"",
            &format!("max_session = \"30m\"\norganizational_units = {dev_ous}"),
            1,
        )
}

#[test]
fn service_managed_environments_each_need_valid_organizational_units() {
    let t = parse(&service_managed(r#"["ou-ab12-cdef3456"]"#, r#"["r-ab12"]"#)).unwrap();
    assert_eq!(t.environments[0].organizational_units, ["ou-ab12-cdef3456"]);

    // CloudFormation refuses ids outside its pattern; say so at the value.
    let err = parse(&service_managed(r#"["ou-prod"]"#, r#"["r-ab12"]"#)).unwrap_err();
    let d = &err.diagnostics[0];
    assert_eq!(
        (d.rule, d.location.line),
        ("organizational-unit", 14),
        "{err}"
    );
    assert!(
        d.message
            .contains("`ou-prod` is not an organizational unit"),
        "{d}"
    );

    // An environment without OUs would deploy nowhere.
    let src = service_managed(r#"["ou-ab12-cdef3456"]"#, "[]");
    let err = parse(&src).unwrap_err();
    assert_eq!(err.diagnostics.len(), 1, "{err}");
    assert!(
        err.diagnostics[0]
            .message
            .contains("environment `dev` lists no `organizational_units`"),
        "{err}"
    );
}

#[test]
fn organizational_units_of_a_self_managed_rollout_are_refused_not_ignored() {
    let src = VALID.replacen(
        "external_id = \"acme-prod\"",
        "external_id = \"acme-prod\"\norganizational_units = [\"ou-ab12-cdef3456\"]",
        1,
    );
    let err = parse(&src).unwrap_err();
    let d = &err.diagnostics[0];
    assert_eq!(d.rule, "organizational-unit");
    assert_eq!((d.location.line, d.location.column), (11, 25), "{d}");
    assert!(d.message.contains("only used with"), "{d}");
}

#[test]
fn service_managed_stack_sets_are_called_as_a_delegated_administrator_unless_told() {
    use rolehop_core::topology::{CallAs, PermissionModel};
    let ous = (r#"["ou-ab12-cdef3456"]"#, r#"["r-ab12"]"#);
    let with = |call_as: &str| {
        service_managed(ous.0, ous.1).replacen(
            "permission_model = \"service-managed\"",
            &format!("permission_model = \"service-managed\"\ncall_as = \"{call_as}\""),
            1,
        )
    };
    // The broker account stays apart from the organization's management account by default.
    let model = |src: &str| parse(src).unwrap().rollout.permission_model;
    let delegated = PermissionModel::ServiceManaged {
        call_as: CallAs::DelegatedAdmin,
    };
    assert_eq!(model(&service_managed(ous.0, ous.1)), delegated);
    assert_eq!(model(&with("delegated-admin")), delegated);
    assert_eq!(
        model(&with("management-account")),
        PermissionModel::ServiceManaged {
            call_as: CallAs::Management
        }
    );

    let err = parse(&with("root")).unwrap_err();
    let d = &err.diagnostics[0];
    assert_eq!(d.rule, "call-as", "{err}");
    assert!(d.message.contains("unknown `call_as` `root`"), "{d}");

    // Self-managed StackSets belong to the caller: a `call_as` there is a mistake.
    let src = VALID.replacen(
        "[auth]",
        "[rollout]\ncall_as = \"delegated-admin\"\n\n[auth]",
        1,
    );
    let err = parse(&src).unwrap_err();
    assert_eq!(err.diagnostics[0].rule, "call-as", "{err}");
}

const PIPELINE: &str = r#"
[pipeline]
component = "gitlab.example.com/platform/rolehop/deploy@0.1.0"
image = "registry.example.com/acme/deploy-tools:1.4"
rolehop_version = "0.1.0"
rolehop_sha256 = "3F5E7A0B9C1D2E3F4A5B6C7D8E9F0A1B2C3D4E5F6A7B8C9D0E1F2A3B4C5D6E7F"
package_registry = "https://gitlab.example.com/api/v4/projects/42/packages/generic/rolehop/"
deploy_script = "./deploy.sh"
"#;

#[test]
fn a_component_pipeline_is_parsed_with_every_input_it_needs() {
    use rolehop_core::topology::Pipeline;
    let t = parse(&format!("{VALID}{PIPELINE}")).unwrap();
    let Pipeline::Component(c) = t.pipeline else {
        panic!("not a component pipeline: {:?}", t.pipeline)
    };
    assert_eq!(
        c.component,
        "gitlab.example.com/platform/rolehop/deploy@0.1.0"
    );
    // The install compares lower-case hex, and appends `/<version>/<file>` to the registry.
    assert_eq!(&c.rolehop_sha256[..8], "3f5e7a0b");
    assert!(!c.package_registry.ends_with('/'));
    assert_eq!(parse(VALID).unwrap().pipeline, Pipeline::Inline);
}

#[test]
fn a_component_pipeline_refuses_what_its_install_would_refuse() {
    let base = format!("{VALID}{PIPELINE}");
    let line = |key: &str| 1 + base.lines().position(|l| l.starts_with(key)).unwrap();
    for (from, to, key, word) in [
        (
            "deploy@0.1.0\"",
            "rolehop@0.1.0\"",
            "component",
            "component address",
        ),
        ("\"3F5E7A0B", "\"XX5E7A0B", "rolehop_sha256", "SHA-256"),
        (
            "\"https://gitlab.example.com/api",
            "\"http://gitlab.example.com/api",
            "package_registry",
            "plain http",
        ),
        (
            "rolehop_version = \"0.1.0\"",
            "rolehop_version = \"0.1 0\"",
            "rolehop_version",
            "release version",
        ),
    ] {
        let err = parse(&base.replacen(from, to, 1)).expect_err(key);
        let d = &err.diagnostics[0];
        assert_eq!(
            (d.rule, d.location.line),
            ("pipeline-component", line(key)),
            "{err}"
        );
        assert!(d.message.contains(word), "{err}");
    }
    // A missing input is named; inputs without `component` are refused, not ignored.
    let err = parse(&base.replacen("deploy_script = \"./deploy.sh\"\n", "", 1)).unwrap_err();
    assert!(err.to_string().contains("needs `deploy_script`"), "{err}");
    let err = parse(&base.replacen("component = ", "# component = ", 1)).unwrap_err();
    assert!(err.to_string().contains("set `component` too"), "{err}");
}

/// An inline policy is parsed with rolehop's policy parser when the topology is read: what it
/// refuses (and a `Principal`, which identity policies must not have) is reported at the TOML
/// span naming the file, with the JSON path inside the document, before anything is rendered.
#[test]
fn a_malformed_inline_policy_is_refused_at_the_toml_span_that_names_it() {
    let line = 1 + VALID
        .lines()
        .position(|l| l.contains("\"deploy.json\""))
        .unwrap();
    for (file, words) in [
        (
            "no-prefix.json",
            &["`Statement[0].Action`", "GetObject"][..],
        ),
        ("bad-effect.json", &["`Statement[1].Effect`", "Permit"][..]),
        (
            "with-principal.json",
            &["must not name a principal", "`Statement[0]`"][..],
        ),
    ] {
        let err = parse(&VALID.replacen("deploy.json", file, 1)).expect_err(file);
        let d = &err.diagnostics[0];
        assert_eq!(
            (d.rule, d.location.line, d.location.column),
            ("policy-file", line, 20),
            "{err}"
        );
        for w in words {
            assert!(d.message.contains(w), "{file}: `{}` lacks {w}", d.message);
        }
    }
}
