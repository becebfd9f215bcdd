#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Estates rolehop did not build: exports of hand-built broker patterns with names of their
//! own (tests/fixtures/handbuilt/, written by its make.py). The clean ones raise nothing;
//! the one with planted defects raises exactly the planted findings, whatever its principals
//! are called; blast radius is what a reader computes by hand from the exports.

use std::collections::BTreeSet;

use rolehop_audit::graph::NodeKind;
use rolehop_audit::model::Part;
use rolehop_audit::{Estate, Report, Severity, audit, input};
use rolehop_testkit::workspace_root as root;

/// 2026-11-26T00:00:00Z
const NOW: i64 = 1_795_651_200;

fn dir(estate: &str) -> std::path::PathBuf {
    root()
        .join("crates/audit/tests/fixtures/handbuilt")
        .join(estate)
}

fn read(estate: &str, file: &str) -> String {
    std::fs::read_to_string(dir(estate).join(file)).unwrap()
}

/// Every export of `estate` (the files named after their account), optionally renamed.
fn load(estate: &str, rename: &dyn Fn(String) -> String) -> Estate {
    let mut files: Vec<String> = std::fs::read_dir(dir(estate))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| {
            f.ends_with(".json")
                && f.trim_end_matches(".json")
                    .rsplit('-')
                    .next()
                    .is_some_and(|a| a.len() == 12)
        })
        .collect();
    files.sort();
    let mut e = Estate::default();
    for f in &files {
        input::gaad::add_export(&mut e, f, &rename(read(estate, f))).unwrap();
    }
    e
}

fn with_env_map(mut e: Estate, estate: &str) -> Estate {
    input::labels::add_env_map(&mut e, "env-map.json", &read(estate, "env-map.json")).unwrap();
    e
}

fn with_org(mut e: Estate, estate: &str) -> Estate {
    input::labels::add_org_accounts(
        &mut e,
        "organizations.json",
        &read(estate, "organizations.json"),
    )
    .unwrap();
    e
}

fn same(s: String) -> String {
    s
}

fn northwind() -> Report {
    audit(&with_org(load("northwind", &same), "northwind"), NOW)
}

fn tailspin() -> Report {
    audit(&with_env_map(load("tailspin", &same), "tailspin"), NOW)
}

fn ids(r: &Report) -> BTreeSet<(&'static str, Severity, String)> {
    r.findings
        .iter()
        .map(|f| (f.id, f.severity, f.resource.clone()))
        .collect()
}

fn reach(r: &Report, principal: &str) -> (Vec<String>, bool) {
    let b = r
        .blast_radius
        .iter()
        .find(|b| b.principal == principal)
        .unwrap_or_else(|| panic!("no blast radius for {principal}: {:#?}", r.blast_radius));
    (b.reaches.clone(), b.admin)
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

const NW: &str = "arn:aws:iam::4100000000";
const TS: &str = "arn:aws:iam::5200000000";
const CT: &str = "arn:aws:iam::6300000000";

#[test]
fn clean_hand_built_estates_raise_nothing() {
    let nw = northwind();
    assert!(nw.findings.is_empty(), "{:#?}", nw.findings);
    let ct = audit(&load("contoso", &same), NOW);
    assert!(ct.findings.is_empty(), "{:#?}", ct.findings);
}

#[test]
fn blast_radius_is_the_hand_computed_one() {
    let nw = northwind();
    // alpha's runner -> its entry role -> prod's shipper, which may pass app-runtime to
    // Lambda and create a function: app-runtime is reached too (PassRole), nothing of staging.
    assert_eq!(
        reach(&nw, &format!("{NW}01:user/gl-runner-alpha")),
        (
            strs(&[
                &format!("{NW}01:role/pipeline-alpha-entry"),
                &format!("{NW}02:role/app-runtime"),
                &format!("{NW}02:role/cfn-shipper"),
            ]),
            false
        )
    );
    assert_eq!(
        reach(&nw, &format!("{NW}01:user/gl-runner-beta")),
        (
            strs(&[
                &format!("{NW}01:role/pipeline-beta-entry"),
                &format!("{NW}03:role/app-runtime"),
                &format!("{NW}03:role/cfn-shipper"),
            ]),
            false
        )
    );
    // A read-only human reaches nothing.
    assert_eq!(
        reach(&nw, &format!("{NW}02:user/dana")),
        (Vec::new(), false)
    );

    let ts = tailspin();
    // The bot's service role reaches both environments; live's role is admin and may assume
    // the signer; qa's role may pass qa-batch to CodeBuild.
    assert_eq!(
        reach(&ts, &format!("{TS}01:user/deploy-bot")),
        (
            strs(&[
                &format!("{TS}01:role/artifact-signer"),
                &format!("{TS}01:role/ship-gate"),
                &format!("{TS}02:role/release-hand"),
                &format!("{TS}03:role/qa-batch"),
                &format!("{TS}03:role/qa-hand"),
            ]),
            true
        )
    );
    assert_eq!(
        reach(
            &ts,
            "oidc:gitlab.tailspin.dev:project_path:tailspin/web:ref_type:branch:ref:develop"
        ),
        (
            strs(&[
                &format!("{TS}01:role/artifact-signer"),
                &format!("{TS}01:role/gitlab-check-entry"),
                &format!("{TS}03:role/qa-batch"),
                &format!("{TS}03:role/qa-hand"),
            ]),
            false
        )
    );
    assert_eq!(
        reach(
            &ts,
            "oidc:gitlab.tailspin.dev:project_path:tailspin/web:ref_type:branch:ref:*"
        ),
        (
            strs(&[
                &format!("{TS}01:role/artifact-signer"),
                &format!("{TS}01:role/gitlab-release-entry"),
                &format!("{TS}02:role/release-hand"),
            ]),
            true
        )
    );
}

/// The defects planted in tailspin's exports (see make.py), and nothing else.
fn tailspin_planted() -> BTreeSet<(&'static str, Severity, String)> {
    use Severity::*;
    [
        // deploy-bot holds AmazonS3FullAccess next to its AssumeRole.
        ("RH001", High, format!("{TS}01:user/deploy-bot")),
        // ... and through one service role reaches live and qa.
        ("RH002", Critical, format!("{TS}01:user/deploy-bot")),
        // qa's OIDC subject reaches the signer, which live's role reaches too.
        ("RH002", Critical, format!("{TS}01:role/artifact-signer")),
        ("RH030", Critical, format!("{TS}01:role/artifact-signer")),
        // live's role trusts the whole tooling account.
        ("RH003", High, format!("{TS}02:role/release-hand")),
        // qa's role trusts the service role shared with live.
        ("RH003", High, format!("{TS}03:role/qa-hand")),
        // OIDC trust without an audience.
        ("RH004", High, format!("{TS}01:role/gitlab-check-entry")),
        // Any branch reaches production (prod is inferred: it reaches only live).
        ("RH006", High, format!("{TS}01:role/gitlab-release-entry")),
        // No SourceIdentity required.
        ("RH008", Medium, format!("{TS}03:role/qa-hand")),
        // AdministratorAccess (from the data package) without a boundary.
        ("RH009", High, format!("{TS}02:role/release-hand")),
        // A typo: s3:GetObjekt.
        ("RH031", Low, format!("{TS}03:role/qa-hand")),
        // An AWS managed policy AWS does not have.
        ("RH091", Low, format!("{TS}02:role/release-hand")),
        // Chained, with MaxSessionDuration 14400.
        ("RH007", Info, format!("{TS}02:role/release-hand")),
    ]
    .into_iter()
    .collect()
}

#[test]
fn every_planted_defect_is_flagged_and_nothing_else() {
    let r = tailspin();
    assert_eq!(ids(&r), tailspin_planted(), "{:#?}", r.findings);
    let crossed = audit(&load("contoso-crossed", &same), NOW);
    let expected: BTreeSet<_> = [
        // preview's pipelines reach prod's stack writer ...
        (
            "RH002",
            Severity::Critical,
            format!("{CT}02:role/stack-writer"),
        ),
        (
            "RH030",
            Severity::Critical,
            format!("{CT}02:role/stack-writer"),
        ),
        // ... because it trusts preview's service role.
        ("RH003", Severity::High, format!("{CT}02:role/stack-writer")),
    ]
    .into_iter()
    .collect();
    assert_eq!(ids(&crossed), expected, "{:#?}", crossed.findings);
}

#[test]
fn findings_do_not_depend_on_what_principals_are_called() {
    // Every user and role renamed to a meaningless name: same findings, same severities.
    let names = [
        "deploy-bot",
        "ship-gate",
        "gitlab-release-entry",
        "gitlab-check-entry",
        "artifact-signer",
        "release-hand",
        "qa-hand",
        "qa-batch",
    ];
    let rename = |mut s: String| {
        for (i, n) in names.iter().enumerate() {
            s = s.replace(n, &format!("p{i}x"));
        }
        s
    };
    let r = audit(&with_env_map(load("tailspin", &rename), "tailspin"), NOW);
    let got: BTreeSet<_> = ids(&r);
    let want: BTreeSet<_> = tailspin_planted()
        .into_iter()
        .map(|(id, s, res)| (id, s, rename(res)))
        .collect();
    assert_eq!(got, want, "{:#?}", r.findings);
}

#[test]
fn findings_that_need_no_environment_fire_without_labels() {
    // No --env-map: nothing says which account is production.
    let r = audit(&load("tailspin", &same), NOW);
    let got = ids(&r);
    for (id, _, res) in tailspin_planted() {
        // Environment findings need labels, and so does "trusted by another environment's
        // service role" (qa-hand's shared service role); everything else stands.
        if matches!(id, "RH002" | "RH030" | "RH006")
            || res.ends_with("role/qa-hand") && id == "RH003"
        {
            continue;
        }
        assert!(
            got.iter().any(|(i, _, r)| *i == id && *r == res),
            "{id} on {res} missing without labels: {:#?}",
            r.findings
        );
    }
}

#[test]
fn parts_and_environments_are_inferred_from_structure_and_say_from_what() {
    let nw = northwind();
    let g = &nw.graph;
    let node = |id: &str| &g.nodes[g.find(id).unwrap()];
    assert_eq!(
        node(&format!("{NW}01:user/gl-runner-alpha")).part,
        Part::BrokerUser
    );
    assert_eq!(
        node(&format!("{NW}01:role/pipeline-alpha-entry")).part,
        Part::ServiceRole
    );
    assert_eq!(
        node(&format!("{NW}02:role/cfn-shipper")).part,
        Part::DeploymentRole
    );
    // Reached by PassRole only: not part of the pattern.
    assert_eq!(node(&format!("{NW}02:role/app-runtime")).part, Part::Other);
    assert_eq!(node(&format!("{NW}02:user/dana")).part, Part::Other);
    // Production by the Organizations tag; staging by the account's name; the hub's entry
    // role by what it reaches; the hub itself has no label.
    let env = |id: &str| node(id).env.clone().map(|e| (e.name, e.prod));
    assert_eq!(
        env(&format!("{NW}02:role/cfn-shipper")),
        Some(("prod".into(), true))
    );
    assert_eq!(
        env(&format!("{NW}03:role/cfn-shipper")),
        Some(("staging".into(), false))
    );
    assert_eq!(
        env(&format!("{NW}01:role/pipeline-alpha-entry")),
        Some(("prod".into(), true))
    );

    // Tags on the entry roles only: the environment flows forward into the target accounts.
    let ct = audit(&load("contoso", &same), NOW);
    let g = &ct.graph;
    let n = &g.nodes[g.find(&format!("{CT}02:role/stack-writer")).unwrap()];
    assert_eq!(n.env.as_ref().map(|e| e.prod), Some(true));

    // Each finding that rests on an inference says what and from what.
    let ts = tailspin();
    let f = ts.findings.iter().find(|f| f.id == "RH006").unwrap();
    assert!(
        f.detail.contains("service role: entered from `oidc:gitlab.tailspin.dev:")
            && f.detail.contains(
                "environment `prod` because every labelled role it reaches is `prod`, e.g. `arn:aws:iam::520000000002:role/release-hand`"
            )
            && f.detail.contains("--env-map env-map.json` (account `520000000002`)"),
        "{}",
        f.detail
    );
    let f = ts.findings.iter().find(|f| f.id == "RH001").unwrap();
    assert!(
        f.detail
            .contains("broker user: an IAM user (long-lived keys) whose policies grant `sts:AssumeRole` by name and which assumes"),
        "{}",
        f.detail
    );
}

#[test]
fn a_tag_overrides_the_inferred_part() {
    let mut e = with_env_map(load("tailspin", &same), "tailspin");
    for p in &mut e.principals {
        if p.name == "deploy-bot" {
            p.tags.insert("rolehop:part".into(), "none".into());
        }
    }
    let r = audit(&e, NOW);
    assert!(
        !r.findings.iter().any(|f| f.id == "RH001"),
        "{:#?}",
        r.findings
    );
}

#[test]
fn env_map_names_principals_and_accounts_and_refuses_what_it_cannot_read() {
    // A principal's own entry beats its account's.
    let mut e = load("northwind", &same);
    input::labels::add_env_map(
        &mut e,
        "m.json",
        r#"{"410000000002": "production", "arn:aws:iam::410000000002:role/app-runtime": {"env": "sandbox", "prod": false}}"#,
    )
    .unwrap();
    let r = audit(&e, NOW);
    let g = &r.graph;
    let env = |id: &str| g.nodes[g.find(id).unwrap()].env.clone().unwrap();
    assert!(env(&format!("{NW}02:role/cfn-shipper")).prod);
    assert_eq!(env(&format!("{NW}02:role/app-runtime")).name, "sandbox");
    // The shipper (prod) may pass app-runtime (sandbox): a labelled hop between two
    // environments is reported.
    assert!(
        r.findings
            .iter()
            .any(|f| f.id == "RH002" && f.resource == format!("{NW}02:role/app-runtime")),
        "{:#?}",
        r.findings
    );

    let mut e = Estate::default();
    let err = input::labels::add_env_map(&mut e, "m.json", r#"{"prod-account": "prod"}"#)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("m.json: `prod-account` is neither"),
        "{err}"
    );
    let err = input::labels::add_env_map(&mut e, "m.json", r#"{"410000000002": 3}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("must map to an environment name"), "{err}");
    let err =
        input::labels::add_org_accounts(&mut e, "org.json", r#"{"Accounts": [{"Id": "12"}]}"#)
            .unwrap_err()
            .to_string();
    assert_eq!(
        err,
        "org.json: Accounts[0].Id must be a 12-digit account id"
    );
}

/// One account: a CI user allowed PassRole on `target` with the given launch actions.
fn passrole_estate(pass: serde_json::Value, launch: &[&str]) -> Report {
    let a = "arn:aws:iam::710000000001";
    let role = |name: &str, service: &str, admin: bool| {
        serde_json::json!({
            "RoleName": name, "Arn": format!("{a}:role/{name}"),
            "AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]},
            "RolePolicyList": [], "Tags": [],
            "AttachedManagedPolicies": if admin {
                serde_json::json!([{"PolicyName": "AdministratorAccess", "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}])
            } else { serde_json::json!([]) }
        })
    };
    let export = serde_json::json!({
        "UserDetailList": [{"UserName": "builder", "Arn": format!("{a}:user/builder"), "GroupList": [], "AttachedManagedPolicies": [],
            "UserPolicyList": [{"PolicyName": "p", "PolicyDocument": {"Statement": [
                pass,
                {"Effect": "Allow", "Action": launch, "Resource": "*"}
            ]}}]}],
        "RoleDetailList": [
            role("fn-target", "lambda.amazonaws.com", false),
            role("fn-other", "lambda.amazonaws.com", false),
            role("vm-admin", "ec2.amazonaws.com", true),
        ]
    });
    let mut e = Estate::default();
    input::gaad::add_export(&mut e, "passrole.json", &export.to_string()).unwrap();
    audit(&e, NOW)
}

#[test]
fn passrole_on_a_named_role_with_a_way_to_run_code_is_an_edge_to_that_role_only() {
    let a = "arn:aws:iam::710000000001";
    let pass = serde_json::json!({"Effect": "Allow", "Action": "iam:PassRole", "Resource": format!("{a}:role/fn-target")});
    let r = passrole_estate(pass.clone(), &["lambda:CreateFunction"]);
    // The one role it may pass, not the other Lambda role nor the EC2 one.
    assert_eq!(
        reach(&r, &format!("{a}:user/builder")),
        (strs(&[&format!("{a}:role/fn-target")]), false)
    );
    let g = &r.graph;
    let e = g
        .edges
        .iter()
        .find(|e| g.nodes[e.from].kind == NodeKind::User)
        .unwrap();
    assert_eq!(e.action, "iam:PassRole+lambda:CreateFunction");
    assert!(e.conditions[0].contains("lambda.amazonaws.com"), "{e:?}");
    // No way to run code: no edge.
    let r = passrole_estate(pass.clone(), &["s3:GetObject"]);
    assert_eq!(
        reach(&r, &format!("{a}:user/builder")).0,
        Vec::<String>::new()
    );
    // PassRole on every role, but only to EC2 (`iam:PassedToService`), and both launchers:
    // a direct edge to the EC2 role only (the Lambda roles are not passable to Lambda) ...
    let pass_ec2 = serde_json::json!({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*",
        "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}});
    let r = passrole_estate(pass_ec2, &["lambda:CreateFunction", "ec2:RunInstances"]);
    let g = &r.graph;
    let from = g.find(&format!("{a}:user/builder")).unwrap();
    let direct: Vec<&str> = g.out[from]
        .iter()
        .map(|&e| g.nodes[g.edges[e].to].id.as_str())
        .collect();
    assert_eq!(direct, [format!("{a}:role/vm-admin")]);
    // ... and, since that role is admin and may pass any role, everything beyond it.
    assert_eq!(
        reach(&r, &format!("{a}:user/builder")),
        (
            strs(&[
                &format!("{a}:role/fn-other"),
                &format!("{a}:role/fn-target"),
                &format!("{a}:role/vm-admin"),
            ]),
            true
        )
    );
}

#[test]
fn aws_managed_policies_come_from_the_data_package() {
    // AWSLambda_FullAccess (never in rolehop's old table) grants lambda:* and PassRole to
    // Lambda only: the Lambda roles are reached, the EC2 role is not.
    let a = "arn:aws:iam::720000000001";
    let export = serde_json::json!({
        "UserDetailList": [{"UserName": "dev", "Arn": format!("{a}:user/dev"), "GroupList": [], "UserPolicyList": [],
            "AttachedManagedPolicies": [
                {"PolicyName": "AWSLambda_FullAccess", "PolicyArn": "arn:aws:iam::aws:policy/AWSLambda_FullAccess"},
                {"PolicyName": "NoSuchAwsPolicy", "PolicyArn": "arn:aws:iam::aws:policy/NoSuchAwsPolicy"}
            ]}],
        "RoleDetailList": [
            {"RoleName": "fn", "Arn": format!("{a}:role/fn"), "RolePolicyList": [], "AttachedManagedPolicies": [],
             "AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}},
            {"RoleName": "vm", "Arn": format!("{a}:role/vm"), "RolePolicyList": [], "AttachedManagedPolicies": [],
             "AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}}
        ]
    });
    let mut e = Estate::default();
    input::gaad::add_export(&mut e, "lambda.json", &export.to_string()).unwrap();
    let r = audit(&e, NOW);
    assert_eq!(
        reach(&r, &format!("{a}:user/dev")).0,
        strs(&[&format!("{a}:role/fn")])
    );
    // An AWS managed policy the data package does not know stays a finding.
    let f = r.findings.iter().find(|f| f.id == "RH091").unwrap();
    assert_eq!(f.resource, format!("{a}:user/dev"));
    assert!(
        f.detail.contains("arn:aws:iam::aws:policy/NoSuchAwsPolicy"),
        "{}",
        f.detail
    );
}

#[test]
fn a_typo_in_a_deny_or_notaction_removes_a_guard_and_is_medium() {
    let a = "arn:aws:iam::730000000001";
    let export = serde_json::json!({
        "UserDetailList": [{"UserName": "ops", "Arn": format!("{a}:user/ops"), "GroupList": [], "AttachedManagedPolicies": [],
            "UserPolicyList": [{"PolicyName": "guard", "PolicyDocument": {"Statement": [
                {"Effect": "Allow", "Action": ["s3:GetObject", "s3:Get*"], "Resource": "*"},
                {"Effect": "Deny", "Action": "s3:DeleteBukket", "Resource": "*"},
                {"Effect": "Allow", "NotAction": "iamm:*", "Resource": "*"}
            ]}}]}]
    });
    let mut e = Estate::default();
    input::gaad::add_export(&mut e, "typo.json", &export.to_string()).unwrap();
    let r = audit(&e, NOW);
    let typos: BTreeSet<(Severity, String)> = r
        .findings
        .iter()
        .filter(|f| f.id == "RH031")
        .map(|f| (f.severity, f.title.clone()))
        .collect();
    let want: BTreeSet<(Severity, String)> = [
        (
            Severity::Medium,
            "inline policy `guard` names `s3:DeleteBukket`, which is not an IAM action".to_owned(),
        ),
        (
            Severity::Medium,
            "inline policy `guard` names `iamm:*`, which is not an IAM action".to_owned(),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(typos, want);
}

#[test]
fn a_broker_wildcard_is_judged_by_the_actions_it_stands_for() {
    let a = "arn:aws:iam::740000000001";
    let audit_actions = |actions: serde_json::Value| {
        let export = serde_json::json!({
            "UserDetailList": [{"UserName": "hop", "Arn": format!("{a}:user/hop"), "GroupList": [], "AttachedManagedPolicies": [],
                "UserPolicyList": [{"PolicyName": "p", "PolicyDocument": {"Statement": [
                    {"Effect": "Allow", "Action": actions, "Resource": format!("{a}:role/next")}
                ]}}]}],
            "RoleDetailList": [{"RoleName": "next", "Arn": format!("{a}:role/next"), "RolePolicyList": [], "AttachedManagedPolicies": [],
                "AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow", "Principal": {"AWS": format!("{a}:user/hop")}, "Action": "sts:AssumeRole"}]}}]
        });
        let mut e = Estate::default();
        input::gaad::add_export(&mut e, "hop.json", &export.to_string()).unwrap();
        audit(&e, NOW)
            .findings
            .into_iter()
            .filter(|f| f.id == "RH001")
            .map(|f| f.detail)
            .collect::<Vec<_>>()
    };
    // Only AssumeRole and TagSession, however spelled: nothing to report.
    assert_eq!(
        audit_actions(serde_json::json!(["sts:AssumeRol?", "sts:TagSess*"])),
        Vec::<String>::new()
    );
    // `sts:*` also takes tokens of other kinds: reported, saying what it stands for.
    let d = audit_actions(serde_json::json!("sts:*"));
    assert_eq!(d.len(), 1);
    assert!(
        d[0].contains("`sts:*` (so `sts:AssumeRoleWithSAML`, `sts:AssumeRoleWithWebIdentity`, `sts:AssumeRoot`"),
        "{}",
        d[0]
    );
}

const FB: &str = "arn:aws:iam::8100000000";

#[test]
fn the_rest_of_the_catalogue_fires_on_a_hand_built_estate() {
    let mut e = with_org(load("fabrikam", &same), "fabrikam");
    input::add_credential_report(
        &mut e,
        "credential-report.csv",
        &read("fabrikam", "credential-report.csv"),
    )
    .unwrap();
    let r = audit(&e, NOW);
    use Severity::*;
    let planted: BTreeSet<_> = [
        // Trusted by `*` without a condition.
        ("RH012", Critical, format!("{FB}01:role/break-glass")),
        // oidc-main is production only because it reaches the account named fabrikam-prod.
        ("RH015", High, format!("{FB}01:role/oidc-main")),
        ("RH016", High, format!("{FB}01:role/oidc-main")),
        ("RH017", High, format!("{FB}01:role/oidc-main")),
        ("RH092", High, format!("{FB}01:role/legacy-trust")),
        ("RH005", Medium, format!("{FB}01:role/oidc-feature")),
        ("RH010", Medium, format!("{FB}01:user/svc-ci-main")),
        ("RH014", Medium, format!("{FB}01:user/ops-admin")),
        ("RH090", Medium, format!("{FB}01:role/legacy-broken")),
        ("RH011", Low, format!("{FB}01:user/svc-ci-main")),
        ("RH013", Low, format!("{FB}01:role/partner-read")),
    ]
    .into_iter()
    .collect();
    assert_eq!(ids(&r), planted, "{:#?}", r.findings);
    // The human admin reaches the open role and, passing it to EC2, the legacy role.
    assert_eq!(
        reach(&r, &format!("{FB}01:user/ops-admin")),
        (
            strs(&[
                &format!("{FB}01:role/break-glass"),
                &format!("{FB}01:role/legacy-broken"),
            ]),
            true
        )
    );
    assert_eq!(
        reach(&r, &format!("{FB}01:user/svc-ci-main")),
        (
            strs(&[
                &format!("{FB}01:role/gate-prod"),
                &format!("{FB}02:role/rollout"),
            ]),
            false
        )
    );
    // RH015 says why the role counts as production.
    let f = r.findings.iter().find(|f| f.id == "RH015").unwrap();
    assert!(
        f.detail
            .contains("account `810000000002` named `fabrikam-prod`"),
        "{}",
        f.detail
    );
}
