#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `${AWS::AccountId}` in a topology's managed policy ARN is evaluated per target account: the
//! deployment role in each account gets that account's policy, so a policy that is harmless
//! in one account and admin in another is found where it is admin.

use rolehop_audit::{audit, input};
use serde_json::json;

const NOW: i64 = 1_795_651_200;

#[test]
fn each_account_is_audited_with_its_own_policy_of_that_name() {
    let src = std::fs::read_to_string(
        rolehop_testkit::workspace_root().join("examples/oidc/rolehop.toml"),
    )
    .unwrap()
    .replacen(
        "[environments.nonprod.permissions]\ninline_policies = [\"policies/deploy-app.json\"]\nboundary = \"arn:aws:iam::aws:policy/PowerUserAccess\"\n",
        "[environments.nonprod.permissions]\nmanaged_policies = [\"arn:aws:iam::${AWS::AccountId}:policy/deploy-extras\"]\n",
        1,
    );
    let topo = rolehop_testkit::topology_src("examples/oidc/rolehop.toml", &src);
    let mut estate = input::topology::estate_of(&topo);
    let doc = |action: &str| json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]});
    // staging's policy of that name is admin, dev's reads S3.
    estate.managed.insert(
        "arn:aws:iam::333333333333:policy/deploy-extras".into(),
        doc("*"),
    );
    estate.managed.insert(
        "arn:aws:iam::444444444444:policy/deploy-extras".into(),
        doc("s3:GetObject"),
    );
    let report = audit(&estate, NOW);
    let admin: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| f.id == "RH009")
        .map(|f| f.resource.as_str())
        .collect();
    assert_eq!(
        admin,
        ["arn:aws:iam::333333333333:role/rolehop-nonprod-deploy"]
    );
    assert!(
        !report.findings.iter().any(|f| f.id == "RH091"),
        "both accounts' policies were found: {:#?}",
        report.findings
    );
}
