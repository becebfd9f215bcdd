//! A customer managed policy that exists in each target account, named with
//! `${AWS::AccountId}`: the target template attaches it through `Fn::Sub`, so each StackSet
//! instance attaches its own account's policy, and the template passes the real cfn-lint.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use rolehop_render::render;

const POLICY: &str = "arn:aws:iam::${AWS::AccountId}:policy/acme/deploy-extras";

fn rendered_target() -> String {
    let src = std::fs::read_to_string(
        rolehop_testkit::workspace_root().join("examples/oidc/rolehop.toml"),
    )
    .unwrap();
    // nonprod has two target accounts, so one concrete ARN could not fit both.
    let src = src.replacen(
        "[environments.nonprod.permissions]\n",
        &format!(
            "[environments.nonprod.permissions]\nmanaged_policies = [\"{POLICY}\", \"arn:aws:iam::aws:policy/ReadOnlyAccess\"]\n"
        ),
        1,
    );
    let topo = rolehop_testkit::topology_src("examples/oidc/rolehop.toml", &src);
    render(&topo)
        .files
        .into_iter()
        .find(|(n, _)| n == "target-nonprod.yaml")
        .unwrap()
        .1
}

#[test]
fn the_policy_of_each_account_is_attached_with_fn_sub() {
    let t = rendered_target();
    let start = t.find("      ManagedPolicyArns:").unwrap();
    let block: Vec<&str> = t[start..].lines().take(4).collect();
    insta::assert_snapshot!(block.join("\n"), @r#"
          ManagedPolicyArns:
            - Fn::Sub: 'arn:aws:iam::${AWS::AccountId}:policy/acme/deploy-extras'
            - arn:aws:iam::aws:policy/ReadOnlyAccess
          PermissionsBoundary: arn:aws:iam::aws:policy/PowerUserAccess
    "#);
}

#[test]
fn the_template_passes_cfn_lint() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("target-nonprod.yaml");
    std::fs::write(&p, rendered_target()).unwrap();
    let out = Command::new(rolehop_testkit::venv_tool("cfn-lint"))
        .args(["-f", "json", "--"])
        .arg(&p)
        .output()
        .unwrap();
    let code = out.status.code().unwrap();
    assert_eq!(
        code & 0b110,
        0,
        "cfn-lint exit {code}:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
