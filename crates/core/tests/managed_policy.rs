//! Customer managed policies per target account: `${AWS::AccountId}` names the policy of that
//! name in each account; a concrete ARN of another account is refused at its span, since IAM
//! attaches only the role's own account's policies and CloudFormation would fail there.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rolehop_core::Topology;

fn topology(managed: &str, boundary: &str) -> String {
    format!(
        r#"[broker]
account_id = "111111111111"
region = "eu-west-1"

[auth]
mode = "access-keys"

[environments.dev.gitlab]
projects = ["acme/shop"]
branches = ["main"]

[environments.dev.accounts]
dev-a = "333333333333"
dev-b = "444444444444"

[environments.dev.permissions]
managed_policies = ["{managed}"]
boundary = "{boundary}"
"#
    )
}

fn parse(src: &str) -> Result<Topology, String> {
    Topology::parse("rolehop.toml", src, &mut |_| Err("none".into())).map_err(|e| e.to_string())
}

#[test]
fn the_account_placeholder_resolves_to_each_target_account() {
    let t = parse(&topology(
        "arn:aws:iam::${AWS::AccountId}:policy/deploy-extras",
        "arn:aws:iam::${AWS::AccountId}:policy/boundaries/deploy",
    ))
    .unwrap();
    let p = &t.environments[0].permissions;
    assert_eq!(
        p.managed_policies_in("444444444444"),
        ["arn:aws:iam::444444444444:policy/deploy-extras"]
    );
    assert_eq!(
        p.boundary_in("333333333333").as_deref(),
        Some("arn:aws:iam::333333333333:policy/boundaries/deploy")
    );
}

#[test]
fn a_policy_of_another_account_is_refused_at_its_span() {
    let err = parse(&topology(
        "arn:aws:iam::333333333333:policy/deploy-extras",
        "arn:aws:iam::aws:policy/PowerUserAccess",
    ))
    .unwrap_err();
    assert_eq!(
        err,
        r#"rolehop.toml:17:21: managed policy `arn:aws:iam::333333333333:policy/deploy-extras` belongs to account `333333333333`, but the deployment role is created in `dev-b` (444444444444): IAM attaches only policies of the role's own account, so CloudFormation would fail there; write `arn:aws:iam::${AWS::AccountId}:policy/deploy-extras` to attach the policy of that name that exists in each target account [policy-account]
    17 | managed_policies = ["arn:aws:iam::333333333333:policy/deploy-extras"]
       |                     ^"#
    );
}

#[test]
fn the_placeholder_is_refused_anywhere_but_the_account() {
    let err = parse(&topology(
        "arn:aws:iam::aws:policy/${AWS::AccountId}",
        "arn:aws:iam::aws:policy/PowerUserAccess",
    ))
    .unwrap_err();
    assert!(err.contains("[policy-arn]"), "{err}");
}
