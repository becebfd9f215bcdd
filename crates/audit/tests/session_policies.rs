//! Per-project blast radius: a topology's session policies narrow what each project's jobs
//! can do with the shared deployment role, and the audit shows it per project.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rolehop_audit::input::topology::estate_of;
use rolehop_audit::session::ProjectReach;
use rolehop_audit::{Report, audit};

const EXAMPLE: &str = "examples/session-policies/rolehop.toml";

fn report_of(src: &str, files: &[(&str, &str)]) -> Report {
    let root = rolehop_testkit::workspace_root().join("examples/session-policies");
    let mut read = |p: &str| {
        files
            .iter()
            .find(|(n, _)| *n == p)
            .map(|(_, t)| (*t).to_owned())
            .map_or_else(
                || std::fs::read_to_string(root.join(p)).map_err(|e| e.to_string()),
                Ok,
            )
    };
    let topo = rolehop_core::Topology::parse(EXAMPLE, src, &mut read).unwrap();
    audit(&estate_of(&topo), 0)
}

fn example_src() -> String {
    std::fs::read_to_string(rolehop_testkit::workspace_root().join(EXAMPLE)).unwrap()
}

fn reach<'r>(r: &'r Report, jobs: &str) -> &'r ProjectReach {
    r.project_blast_radius
        .iter()
        .find(|p| p.jobs == jobs)
        .unwrap_or_else(|| panic!("no reach for {jobs}: {:#?}", r.project_blast_radius))
}

fn actions(p: &ProjectReach) -> Vec<(&str, Vec<&str>)> {
    p.grants
        .iter()
        .map(|g| {
            (
                g.action.as_str(),
                g.resources.iter().map(String::as_str).collect(),
            )
        })
        .collect()
}

#[test]
fn each_project_reaches_only_what_its_session_policy_and_the_role_both_allow() {
    let r = report_of(&example_src(), &[]);
    let web = reach(&r, "project acme/shop");
    assert_eq!(
        actions(web),
        [
            ("s3:GetObject", vec!["arn:aws:s3:::acme-shop-web/*"]),
            ("s3:PutObject", vec!["arn:aws:s3:::acme-shop-web/*"]),
            ("sts:GetCallerIdentity", vec!["*"]),
        ]
    );
    let api = reach(&r, "project acme/shop-api");
    assert_eq!(
        actions(api),
        [
            (
                "dynamodb:DescribeTable",
                vec!["arn:aws:dynamodb:*:*:table/shop-*"]
            ),
            (
                "dynamodb:PutItem",
                vec!["arn:aws:dynamodb:*:*:table/shop-orders"]
            ),
            (
                "dynamodb:UpdateItem",
                vec!["arn:aws:dynamodb:*:*:table/shop-orders"]
            ),
            ("sts:GetCallerIdentity", vec!["*"]),
        ]
    );
    assert!(!web.full_role && !api.full_role);
    let text = rolehop_audit::output::table(&r);
    assert!(
        text.contains("project acme/shop in prod reaches 1 role(s) with s3:GetObject on arn:aws:s3:::acme-shop-web/*"),
        "{text}"
    );
    let json = rolehop_audit::output::json(&r);
    assert_eq!(json["project_blast_radius"].as_array().unwrap().len(), 2);
    assert!(rolehop_audit::output::markdown(&r).contains("### Blast radius per project"));
    assert!(
        !r.findings.iter().any(|f| f.id.starts_with("RH06")),
        "{:#?}",
        r.findings
    );
}

fn ids(r: &Report) -> Vec<&str> {
    r.findings.iter().map(|f| f.id).collect()
}

#[test]
fn a_misspelt_session_policy_grants_nothing_and_says_so() {
    let typo = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObjekt","Resource":"arn:aws:s3:::acme-shop-web/*"}]}"#;
    let r = report_of(&example_src(), &[("policies/session-shop-web.json", typo)]);
    let ids = ids(&r);
    assert!(ids.contains(&"RH060") && ids.contains(&"RH061"), "{ids:?}");
    assert!(reach(&r, "project acme/shop").grants.is_empty());
    let f = r.findings.iter().find(|f| f.id == "RH061").unwrap();
    assert!(
        f.title.contains("s3:PutObjekt") && !f.fix.is_empty(),
        "{f:?}"
    );
}

#[test]
fn a_session_policy_as_wide_as_the_role_is_reported_as_narrowing_nothing() {
    let all =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    let r = report_of(&example_src(), &[("policies/session-shop-web.json", all)]);
    assert!(ids(&r).contains(&"RH062"), "{:?}", ids(&r));
    // Its reach is the role's whole grant, dynamodb included.
    let web = reach(&r, "project acme/shop");
    assert!(web.grants.iter().any(|g| g.action == "dynamodb:PutItem"));
}

#[test]
fn a_project_left_to_the_full_role_shows_with_the_role_s_rights() {
    let src = example_src()
        .replace(
            r#"projects = ["acme/shop", "acme/shop-api"]"#,
            r#"projects = ["acme/shop", "acme/shop-api", "acme/billing"]"#,
        )
        .replace(
            r#"session_policy_default = "refuse""#,
            r#"session_policy_default = "full-role""#,
        );
    let r = report_of(&src, &[]);
    assert!(ids(&r).contains(&"RH063"), "{:?}", ids(&r));
    let billing = reach(&r, "project acme/billing");
    assert!(billing.full_role);
    assert!(billing.grants.iter().any(|g| g.action == "s3:DeleteObject"));
    assert!(
        billing.sentence().contains("no session policy"),
        "{}",
        billing.sentence()
    );
}

#[test]
fn an_unknown_managed_session_policy_is_taken_as_allowing_everything() {
    let src = example_src().replace(
        "arn:aws:iam::aws:policy/AmazonDynamoDBReadOnlyAccess",
        "arn:aws:iam::222222222222:policy/shop-api-extra",
    );
    let r = report_of(&src, &[]);
    assert!(ids(&r).contains(&"RH064"), "{:?}", ids(&r));
    let api = reach(&r, "project acme/shop-api");
    assert!(api.grants.iter().any(|g| g.action == "s3:DeleteObject"));
}
