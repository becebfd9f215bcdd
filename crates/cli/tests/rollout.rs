//! `rolehop rollout` against a private moto server: the broker stack and the deployment roles
//! appear in their accounts, a second run changes nothing and says so, a failing account is
//! named with its reason (exit 11), and credentials of the wrong account are refused (exit 5).
//! Service-managed StackSets run against moto's Organizations: OUs seeded in the broker
//! account, which is the organization's management account here (so the topology calls
//! StackSets as the management account; moto cannot emulate a delegated administrator),
//! whose member accounts get the deployment role.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use assert_cmd::Command;
use predicates::prelude::*;
use rolehop_testkit::{Moto, xml_value};

mod common;

const BROKER: &str = "111111111111";

fn example() -> std::path::PathBuf {
    rolehop_testkit::example("access-keys")
}

/// The text of `<tag>` in an IAM answer.
fn xml_field(xml: &str, tag: &str) -> String {
    xml_value(xml, tag).unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
}

/// Administrator keys in the broker account.
fn admin_keys(moto: &Moto) -> (String, String) {
    moto.iam(BROKER, "CreateUser", &[("UserName", "admin")]);
    let xml = moto.iam(BROKER, "CreateAccessKey", &[("UserName", "admin")]);
    (
        xml_field(&xml, "AccessKeyId"),
        xml_field(&xml, "SecretAccessKey"),
    )
}

fn rolehop(moto: &Moto, keys: &(String, String), home: &std::path::Path) -> Command {
    let mut c = Command::cargo_bin("rolehop").unwrap();
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("CI", "true")
        .env("AWS_ACCESS_KEY_ID", &keys.0)
        .env("AWS_SECRET_ACCESS_KEY", &keys.1)
        .env("AWS_ENDPOINT_URL", moto.url())
        .env("AWS_EC2_METADATA_DISABLED", "true");
    c
}

fn role_in(moto: &Moto, account: &str, role: &str) -> Option<String> {
    let (s, xml) = moto.try_query(
        "iam",
        account,
        "GetRole",
        "2010-05-08",
        &[("RoleName", role)],
    );
    (s == 200).then_some(xml)
}

#[test]
fn rollout_deploys_every_account_and_a_second_run_changes_nothing() {
    let moto = Moto::start();
    let keys = admin_keys(&moto);
    let home = tempfile::tempdir().unwrap();

    rolehop(&moto, &keys, home.path())
        .args(["rollout", "--dry-run", "--config"])
        .arg(example())
        .assert()
        .success()
        .stdout(
            predicate::str::contains(
                "stack rolehop-broker (account 111111111111, eu-west-1): create",
            )
            .and(predicate::str::contains("create    prod-eu (222222222222)"))
            .and(predicate::str::contains("dry run: nothing was changed")),
        );
    assert!(
        role_in(&moto, "222222222222", "rolehop-prod-deploy").is_none(),
        "--dry-run must not deploy"
    );

    let started = Instant::now();
    rolehop(&moto, &keys, home.path())
        .args(["rollout", "--config"])
        .arg(example())
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "broker stack: created; accounts: 3 changed, 0 unchanged, 0 failed",
        ))
        .stderr(
            predicate::str::contains("[prod] prod-eu (222222222222): created")
                .and(predicate::str::contains(
                    "[nonprod] staging (333333333333): created",
                ))
                .and(predicate::str::contains(
                    "[nonprod] dev (444444444444): created",
                )),
        );
    eprintln!("rollout to 3 accounts took {:?}", started.elapsed());

    for (account, env) in [
        ("222222222222", "prod"),
        ("333333333333", "nonprod"),
        ("444444444444", "nonprod"),
    ] {
        let role = role_in(&moto, account, &format!("rolehop-{env}-deploy"))
            .unwrap_or_else(|| panic!("no deployment role in {account}"));
        // The trust policy names this environment's service role in the broker account.
        assert!(
            role.contains(&format!("rolehop-{env}-service")),
            "{account}: {role}"
        );
        assert!(
            role.contains("sts%3ASourceIdentity") || role.contains("sts:SourceIdentity"),
            "{role}"
        );
    }
    for env in ["prod", "nonprod"] {
        assert!(role_in(&moto, BROKER, &format!("rolehop-{env}-service")).is_some());
        let xml = moto.iam(
            BROKER,
            "ListUserPolicies",
            &[("UserName", &format!("rolehop-{env}"))],
        );
        assert!(xml.contains("rolehop-assume-service-role"), "{xml}");
    }

    let started = Instant::now();
    rolehop(&moto, &keys, home.path())
        .args(["rollout", "--config"])
        .arg(example())
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "nothing to change: stack rolehop-broker and 2 stack set(s) on 3 account(s) are up to date",
        ));
    eprintln!("no-op rollout took {:?}", started.elapsed());
}

#[test]
fn a_failing_account_is_named_with_its_reason_and_the_others_still_deploy() {
    let moto = Moto::start();
    let keys = admin_keys(&moto);
    let home = tempfile::tempdir().unwrap();
    // Someone already made a role of that name in the prod account by hand.
    moto.iam(
        "222222222222",
        "CreateRole",
        &[
            ("RoleName", "rolehop-prod-deploy"),
            (
                "AssumeRolePolicyDocument",
                r#"{"Version":"2012-10-17","Statement":[]}"#,
            ),
        ],
    );

    rolehop(&moto, &keys, home.path())
        .args(["rollout", "--config"])
        .arg(example())
        .assert()
        .code(11)
        .stdout(predicate::str::contains("2 changed, 0 unchanged, 1 failed"))
        .stderr(
            predicate::str::contains("environment `prod` account `prod-eu` (222222222222)")
                .and(predicate::str::contains("already exists")),
        );
    assert!(role_in(&moto, "333333333333", "rolehop-nonprod-deploy").is_some());
    assert!(role_in(&moto, "444444444444", "rolehop-nonprod-deploy").is_some());
}

#[test]
fn credentials_of_another_account_are_refused_before_anything_changes() {
    let moto = Moto::start();
    let home = tempfile::tempdir().unwrap();
    // Unknown keys act in moto's default account, not the broker.
    let keys = ("AKIAEXAMPLEEXAMPLE00".to_owned(), "secret".to_owned());
    rolehop(&moto, &keys, home.path())
        .args(["rollout", "--config"])
        .arg(example())
        .assert()
        .code(5)
        .stderr(predicate::str::contains(
            "the topology's broker account is `111111111111`",
        ));
}

#[test]
fn no_credentials_at_all_exit_7() {
    let moto = Moto::start();
    let home = tempfile::tempdir().unwrap();
    Command::cargo_bin("rolehop")
        .unwrap()
        .env_clear()
        .env("HOME", home.path())
        .env("AWS_ENDPOINT_URL", moto.url())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["rollout", "--config"])
        .arg(example())
        .assert()
        .code(7)
        .stderr(predicate::str::contains("no AWS credentials"));
}

#[test]
fn after_rollout_a_job_reaches_the_deployment_role_through_the_rendered_iam() {
    let moto = Moto::start();
    let keys = admin_keys(&moto);
    let home = tempfile::tempdir().unwrap();
    rolehop(&moto, &keys, home.path())
        .args(["rollout", "--config"])
        .arg(example())
        .assert()
        .success();

    // What `rolehop rotate` would put in GitLab: keys of each broker user.
    let user_keys = |user: &str| {
        let xml = moto.iam(BROKER, "CreateAccessKey", &[("UserName", user)]);
        (
            xml_field(&xml, "AccessKeyId"),
            xml_field(&xml, "SecretAccessKey"),
        )
    };
    let broker_keys = user_keys("rolehop-prod");
    let nonprod_keys = user_keys("rolehop-nonprod");
    // From here on moto enforces identity policies: the broker user's rendered policy and the
    // service role's must allow each hop.
    moto.enable_auth();

    let mut assume = rolehop(&moto, &broker_keys, home.path());
    common::job_env(&mut assume);
    let out = assume
        .env_remove("CI")
        .args([
            "assume",
            "--format",
            "json",
            "--env",
            "prod",
            "--account",
            "prod-eu",
            "--config",
        ])
        .arg(example())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let v = common::json(&out);
    assert_eq!(v["account"], "222222222222");
    assert!(
        v["assumed_role_arn"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:sts::222222222222:assumed-role/rolehop-prod-deploy/"),
        "{v}"
    );

    // The nonprod broker user's keys cannot reach prod: its policy names only its own role.
    let mut cross = rolehop(&moto, &nonprod_keys, home.path());
    common::job_env(&mut cross);
    cross
        .env_remove("CI")
        .args([
            "assume",
            "--env",
            "prod",
            "--account",
            "prod-eu",
            "--config",
        ])
        .arg(example())
        .assert()
        .code(5)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("rolehop-prod-service"));
}

/// A git project holding the access-keys example (its topology passed through `edit`), the
/// rendered pipeline included from `.gitlab-ci.yml`, rolled out to moto.
fn ci_project(
    moto: &Moto,
    keys: &(String, String),
    home: &std::path::Path,
    edit: impl Fn(String) -> String,
) -> tempfile::TempDir {
    let project = tempfile::tempdir().unwrap();
    let p = project.path();
    let src = example().parent().unwrap().to_path_buf();
    let topo = std::fs::read_to_string(src.join("rolehop.toml")).unwrap();
    std::fs::write(p.join("rolehop.toml"), edit(topo)).unwrap();
    std::fs::create_dir(p.join("policies")).unwrap();
    std::fs::copy(
        src.join("policies/deploy-app.json"),
        p.join("policies/deploy-app.json"),
    )
    .unwrap();
    rolehop(moto, keys, home)
        .current_dir(p)
        .args(["render", "--config", "rolehop.toml", "--out", "rolehop"])
        .assert()
        .success();
    std::fs::write(
        p.join(".gitlab-ci.yml"),
        "include:\n  - local: rolehop/gitlab-ci.yml\nvariables:\n  ROLEHOP_DEPLOY_SCRIPT: aws sts get-caller-identity --query Arn --output text\n",
    )
    .unwrap();
    common::commit_shop_repo(p, "init");
    rolehop(moto, keys, home)
        .current_dir(p)
        .args(["rollout", "--config", "rolehop.toml"])
        .assert()
        .success();
    project
}

/// Runs one job of the project's pipeline with gitlab-ci-local (shell executor) and the
/// given `--variable`s; returns whether it passed and its output.
fn gitlab_ci_local(
    project: &std::path::Path,
    home: &std::path::Path,
    job: &str,
    vars: &[(&str, &str)],
) -> (bool, String) {
    let bin_dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        assert_cmd::cargo::cargo_bin("rolehop"),
        bin_dir.path().join("rolehop"),
    )
    .unwrap();
    let path = format!(
        "{}:{}:{}:{}",
        bin_dir.path().display(),
        rolehop_testkit::node_bin_dir().display(),
        rolehop_testkit::venv_tool("aws")
            .parent()
            .unwrap()
            .display(),
        std::env::var("PATH").unwrap()
    );
    let mut c = std::process::Command::new("gitlab-ci-local");
    c.current_dir(project)
        .env("PATH", path)
        .env("HOME", home)
        .arg(job);
    for (k, v) in vars {
        c.arg("--variable").arg(format!("{k}={v}"));
    }
    let out = c.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A new key of the nonprod broker user, as `rolehop rotate` stores it for the pipeline: one
/// variable, `<id>:<secret>`.
fn nonprod_broker_pair(moto: &Moto) -> String {
    let xml = moto.iam(
        BROKER,
        "CreateAccessKey",
        &[("UserName", "rolehop-nonprod")],
    );
    format!(
        "{}:{}",
        xml_field(&xml, "AccessKeyId"),
        xml_field(&xml, "SecretAccessKey")
    )
}

#[test]
fn the_rendered_pipeline_deploys_through_rolehop_exec_in_gitlab_ci_local() {
    let moto = Moto::start();
    let keys = admin_keys(&moto);
    let home = tempfile::tempdir().unwrap();
    let project = ci_project(&moto, &keys, home.path(), |t| t);
    let pair = nonprod_broker_pair(&moto);
    moto.enable_auth();
    deploys_to_staging(&moto, project.path(), home.path(), &pair);
}

/// The staging deploy job, given `ROLEHOP_BROKER_KEY` = `pair`, passes and its deploy command
/// runs as the deployment role of the staging account.
fn deploys_to_staging(moto: &Moto, project: &std::path::Path, home: &std::path::Path, pair: &str) {
    let (ok, text) = gitlab_ci_local(
        project,
        home,
        "rolehop:deploy:nonprod:staging",
        &[
            ("ROLEHOP_BROKER_KEY", pair),
            ("AWS_ENDPOINT_URL", &moto.url()),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
        ],
    );
    assert!(ok, "{text}");
    assert!(
        text.contains("PASS  rolehop:deploy:nonprod:staging"),
        "{text}"
    );
    assert!(
        text.contains("arn:aws:sts::333333333333:assumed-role/rolehop-nonprod-deploy/"),
        "{text}"
    );
}

#[test]
fn the_rendered_rotation_job_rotates_as_the_administrator_in_gitlab_ci_local() {
    use rolehop_aws::iam::IamKeyStore;
    use rolehop_core::rotation::{KeyStatus, KeyStore, Verification};
    use rolehop_core::secret::secret;
    use rolehop_testkit::gitlab::{GitlabServer, TOKEN};

    let moto = Moto::start();
    let gitlab = GitlabServer::start();
    let keys = admin_keys(&moto);
    let home = tempfile::tempdir().unwrap();
    let url = gitlab.url();
    let project = ci_project(&moto, &keys, home.path(), |t| {
        t.replace("https://gitlab.example.com", &url)
    });
    // The broker user's current key, in GitLab the way the rotation stores it.
    let xml = moto.iam(
        BROKER,
        "CreateAccessKey",
        &[("UserName", "rolehop-nonprod")],
    );
    let (old, old_secret) = (
        xml_field(&xml, "AccessKeyId"),
        xml_field(&xml, "SecretAccessKey"),
    );
    gitlab.set_variable(
        "projects/acme/shop",
        "ROLEHOP_BROKER_KEY",
        "staging",
        &format!("{old}:{old_secret}"),
    );
    // The rotation administrator: an IAM user with IAM rights only (moto 5.2.5 authorizes IAM
    // calls against `*` and refuses TagUser under a list of named actions, so the least
    // privilege docs/rotation.md gives cannot be reproduced here; `iam:*` on `*` stands in).
    moto.iam(BROKER, "CreateUser", &[("UserName", "rolehop-rotator")]);
    moto.iam(
        BROKER,
        "PutUserPolicy",
        &[
            ("UserName", "rolehop-rotator"),
            ("PolicyName", "rotate"),
            (
                "PolicyDocument",
                &serde_json::json!({"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow",
                    "Action": "iam:*",
                    "Resource": "*",
                }]})
                .to_string(),
            ),
        ],
    );
    let xml = moto.iam(
        BROKER,
        "CreateAccessKey",
        &[("UserName", "rolehop-rotator")],
    );
    let rotator = (
        xml_field(&xml, "AccessKeyId"),
        xml_field(&xml, "SecretAccessKey"),
    );
    // moto's auth stays off for the job: with it on, moto 5.2.5 answers aws-sdk-rust's signed
    // iam:TagUser with an error the SDK cannot parse (boto3's passes). What the job signs as is
    // still decided: moto's GetCallerIdentity names the user owning the key, and rotate refuses
    // to run as a broker user, so the job passing means it ran as the rotator.

    // A scheduled pipeline on main. The broker key is also handed to the job in the AWS SDK's
    // own variables, as an environment used to: rotate must not run as it.
    let moto_url = moto.url();
    let scheduled = [
        ("CI_PIPELINE_SOURCE", "schedule"),
        ("CI_SERVER_URL", url.as_str()),
        ("GITLAB_TOKEN", TOKEN),
        ("AWS_ACCESS_KEY_ID", old.as_str()),
        ("AWS_SECRET_ACCESS_KEY", old_secret.as_str()),
        ("AWS_ENDPOINT_URL", moto_url.as_str()),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
    ];

    // Without the rotator's key the job refuses: it never falls back to the AWS_* variables.
    let (ok, text) = gitlab_ci_local(
        project.path(),
        home.path(),
        "rolehop:rotate-keys:nonprod",
        &scheduled,
    );
    assert!(!ok, "{text}");
    assert!(text.contains("`ROLEHOP_ROTATOR_KEY` is not set"), "{text}");
    assert!(
        gitlab.requests().is_empty(),
        "GitLab was called: {:?}",
        gitlab.requests()
    );

    // With the rotator's key it rotates, as the rotator.
    let rotator_pair = format!("{}:{}", rotator.0, rotator.1);
    let mut with_rotator = scheduled.to_vec();
    with_rotator.push(("ROLEHOP_ROTATOR_KEY", rotator_pair.as_str()));
    let (ok, text) = gitlab_ci_local(
        project.path(),
        home.path(),
        "rolehop:rotate-keys:nonprod",
        &with_rotator,
    );
    assert!(ok, "{text}");
    assert!(text.contains("PASS  rolehop:rotate-keys:nonprod"), "{text}");
    assert!(text.contains("rotated: GitLab now holds key"), "{text}");
    for s in [&old_secret, &rotator.1, &TOKEN.to_owned()] {
        assert!(
            !text.contains(s.as_str()),
            "a secret is in the job log:\n{text}"
        );
    }

    // GitLab holds a new pair that authenticates as the broker user (moto checks signatures).
    moto.enable_auth();
    let stored = gitlab
        .variable("projects/acme/shop", "ROLEHOP_BROKER_KEY", "staging")
        .unwrap()["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let (new, new_secret) = stored.split_once(':').unwrap();
    assert_ne!(new, old);
    let mut iam = IamKeyStore::connect_with(
        "eu-west-1",
        "rolehop-nonprod",
        Some(&moto.url()),
        Some((&rotator.0, &secret(rotator.1.clone()))),
    )
    .unwrap();
    assert!(
        matches!(iam.verify(new, &secret(new_secret)).unwrap(), Verification::Accepted { ref arn } if arn.ends_with(":user/rolehop-nonprod")),
        "the stored pair does not authenticate"
    );
    // The old key is retired: inactive, kept for the grace period.
    let listed = iam.list_keys().unwrap();
    assert!(
        listed
            .iter()
            .any(|k| k.id == old && k.status == KeyStatus::Inactive),
        "{listed:?}"
    );
    assert!(
        listed
            .iter()
            .any(|k| k.id == new && k.status == KeyStatus::Active),
        "{listed:?}"
    );

    // And a deploy job with what GitLab now holds reaches the staging deployment role.
    deploys_to_staging(&moto, project.path(), home.path(), &stored);
}

#[test]
fn the_oidc_example_rolls_out_too() {
    let moto = Moto::start();
    let keys = admin_keys(&moto);
    let home = tempfile::tempdir().unwrap();
    let config = rolehop_testkit::example("oidc");
    rolehop(&moto, &keys, home.path())
        .args(["rollout", "--config"])
        .arg(&config)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "accounts: 3 changed, 0 unchanged, 0 failed",
        ));
    let service = role_in(&moto, BROKER, "rolehop-prod-service").unwrap();
    assert!(service.contains("AssumeRoleWithWebIdentity"), "{service}");
    assert!(role_in(&moto, "444444444444", "rolehop-nonprod-deploy").is_some());
    rolehop(&moto, &keys, home.path())
        .args(["rollout", "--config"])
        .arg(&config)
        .assert()
        .success()
        .stdout(predicate::str::starts_with("nothing to change"));
}

/// An AWS Organizations call (JSON 1.1) acting in `account`. Panics on a non-200 answer.
fn org(moto: &Moto, account: &str, action: &str, body: serde_json::Value) -> serde_json::Value {
    let auth = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/organizations/aws4_request, SignedHeaders=host, Signature=0";
    let target = format!("AWSOrganizationsV20161128.{action}");
    let (status, text) = moto.request(
        "POST",
        "/",
        &[
            ("Authorization", auth),
            ("x-moto-account-id", account),
            ("X-Amz-Target", &target),
            ("Content-Type", "application/x-amz-json-1.1"),
        ],
        &body.to_string(),
    );
    assert_eq!(status, 200, "organizations:{action} failed: {text}");
    serde_json::from_str(&text).unwrap()
}

/// An organization run from the broker account (so the topology says
/// `call_as = "management-account"`), with one OU holding `members` new accounts
/// and `outside` more left at the root. Returns the OU id, the members' and the others' ids.
fn seed_organization(
    moto: &Moto,
    members: usize,
    outside: usize,
) -> (String, Vec<String>, Vec<String>) {
    org(
        moto,
        BROKER,
        "CreateOrganization",
        serde_json::json!({"FeatureSet": "ALL"}),
    );
    let roots = org(moto, BROKER, "ListRoots", serde_json::json!({}));
    let root = roots["Roots"][0]["Id"].as_str().unwrap().to_owned();
    let ou = org(
        moto,
        BROKER,
        "CreateOrganizationalUnit",
        serde_json::json!({"ParentId": root, "Name": "deploy-prod"}),
    )["OrganizationalUnit"]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut create = |n: usize| {
        let st = org(
            moto,
            BROKER,
            "CreateAccount",
            serde_json::json!({"AccountName": format!("acct{n}"), "Email": format!("acct{n}@example.com")}),
        );
        st["CreateAccountStatus"]["AccountId"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let inside: Vec<String> = (0..members).map(&mut create).collect();
    let others: Vec<String> = (members..members + outside).map(&mut create).collect();
    for id in &inside {
        org(
            moto,
            BROKER,
            "MoveAccount",
            serde_json::json!({"AccountId": id, "SourceParentId": root, "DestinationParentId": ou}),
        );
    }
    (ou, inside, others)
}

/// A service-managed topology: environment `prod` targets `ou` and lists `accounts`.
fn service_managed_topology(
    dir: &std::path::Path,
    ou: &str,
    accounts: &[(&str, &str)],
) -> std::path::PathBuf {
    let listed: String = accounts
        .iter()
        .map(|(name, id)| format!("{name} = \"{id}\"\n"))
        .collect();
    let text = format!(
        r#"[broker]
account_id = "{BROKER}"
region = "eu-west-1"

[auth]
mode = "access-keys"

[gitlab]
url = "https://gitlab.example.com"
project = "acme/shop"

[rollout]
permission_model = "service-managed"
# The estate these tests seed runs its organization from the broker account, so StackSets are
# called as the management account. The default (`delegated-admin`) is for a broker registered
# as delegated administrator of an organization run elsewhere; AWS refuses DELEGATED_ADMIN from
# the management account itself, and moto 5.2.5 cannot emulate that estate (its StackSets read
# the organization of the calling account only).
call_as = "management-account"

[environments.prod]
protected = true
tier = "production"
max_session = "1h"
organizational_units = ["{ou}"]

[environments.prod.gitlab]
projects = ["acme/shop"]
branches = ["main"]
environments = ["production"]

[environments.prod.accounts]
{listed}
[environments.prod.permissions]
managed_policies = ["arn:aws:iam::aws:policy/AWSCloudFormationFullAccess"]
boundary = "arn:aws:iam::aws:policy/PowerUserAccess"
"#
    );
    let path = dir.join("rolehop.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn service_managed_rollout_reaches_the_accounts_of_the_organizational_unit() {
    let moto = Moto::start();
    let keys = admin_keys(&moto);
    let home = tempfile::tempdir().unwrap();
    let (ou, members, _) = seed_organization(&moto, 2, 0);
    let config = service_managed_topology(
        home.path(),
        &ou,
        &[("prod-a", &members[0]), ("prod-b", &members[1])],
    );

    rolehop(&moto, &keys, home.path())
        .args(["rollout", "--dry-run", "--config"])
        .arg(&config)
        .assert()
        .success()
        .stdout(
            predicate::str::contains(format!("deploy    organizational unit {ou}"))
                .and(predicate::str::contains(format!(
                    "create    prod-a ({}) through organizational unit {ou}",
                    members[0]
                )))
                .and(predicate::str::contains("dry run: nothing was changed")),
        );
    for id in &members {
        assert!(
            role_in(&moto, id, "rolehop-prod-deploy").is_none(),
            "--dry-run must not deploy"
        );
    }

    rolehop(&moto, &keys, home.path())
        .args(["rollout", "--config"])
        .arg(&config)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "broker stack: created; accounts: 2 changed, 0 unchanged, 0 failed",
        ))
        .stderr(
            predicate::str::contains(format!(
                "deploying rolehop-prod to organizational unit {ou}"
            ))
            .and(predicate::str::contains(format!(
                "[prod] prod-a ({}): created",
                members[0]
            )))
            .and(predicate::str::contains(format!(
                "[prod] prod-b ({}): created",
                members[1]
            ))),
        );
    for id in &members {
        let role = role_in(&moto, id, "rolehop-prod-deploy")
            .unwrap_or_else(|| panic!("no deployment role in member account {id}"));
        assert!(role.contains("rolehop-prod-service"), "{id}: {role}");
    }
    // StackSets never deploy to the organization's management account.
    assert!(role_in(&moto, BROKER, "rolehop-prod-deploy").is_none());

    rolehop(&moto, &keys, home.path())
        .args(["rollout", "--config"])
        .arg(&config)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "nothing to change: stack rolehop-broker and 1 stack set(s) on 2 account(s) are up to date",
        ));

    // A changed deployment role updates the StackSet, whose instances are the listed accounts.
    // (A shorter `max_session` alone would not: it is the DurationSeconds rolehop asks for and
    // only a comment in the template, and comments are no change.)
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            "boundary = \"arn:aws:iam::aws:policy/PowerUserAccess\"",
            "boundary = \"arn:aws:iam::aws:policy/ReadOnlyAccess\"",
        ),
    )
    .unwrap();
    rolehop(&moto, &keys, home.path())
        .args(["rollout", "--config"])
        .arg(&config)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("stack set rolehop-prod (environment prod): update")
                .and(predicate::str::contains(
                    "    ~ DeploymentRole (AWS::IAM::Role)\n        PermissionsBoundary:",
                ))
                .and(predicate::str::contains(format!(
                    "  update    prod-b ({})",
                    members[1]
                )))
                .and(predicate::str::contains(
                    "accounts: 2 changed, 0 unchanged, 0 failed",
                )),
        )
        .stderr(predicate::str::contains(format!(
            "[prod] prod-a ({}): updated",
            members[0]
        )));

    // A job reaches a member account's deployment role through the rolled-out broker IAM.
    let xml = moto.iam(BROKER, "CreateAccessKey", &[("UserName", "rolehop-prod")]);
    let job_keys = (
        xml_field(&xml, "AccessKeyId"),
        xml_field(&xml, "SecretAccessKey"),
    );
    moto.enable_auth();
    let mut assume = rolehop(&moto, &job_keys, home.path());
    common::job_env(&mut assume);
    let out = assume
        .env_remove("CI")
        .args([
            "assume",
            "--format",
            "json",
            "--env",
            "prod",
            "--account",
            "prod-b",
            "--config",
        ])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let v = common::json(&out);
    assert_eq!(v["account"], members[1].as_str());
    assert!(
        v["assumed_role_arn"]
            .as_str()
            .unwrap()
            .starts_with(&format!(
                "arn:aws:sts::{}:assumed-role/rolehop-prod-deploy/",
                members[1]
            )),
        "{v}"
    );
}

#[test]
fn a_listed_account_outside_the_organizational_unit_is_named_as_failed() {
    let moto = Moto::start();
    let keys = admin_keys(&moto);
    let home = tempfile::tempdir().unwrap();
    let (ou, members, outside) = seed_organization(&moto, 1, 1);
    let config = service_managed_topology(
        home.path(),
        &ou,
        &[("prod-a", &members[0]), ("stray", &outside[0])],
    );
    rolehop(&moto, &keys, home.path())
        .args(["rollout", "--config"])
        .arg(&config)
        .assert()
        .code(11)
        .stdout(predicate::str::contains("1 changed, 0 unchanged, 1 failed"))
        .stderr(
            predicate::str::contains(format!(
                "environment `prod` account `stray` ({})",
                outside[0]
            ))
            .and(predicate::str::contains(format!(
                "not in organizational unit {ou}"
            ))),
        );
    assert!(role_in(&moto, &members[0], "rolehop-prod-deploy").is_some());
    assert!(role_in(&moto, &outside[0], "rolehop-prod-deploy").is_none());
}

#[test]
fn an_ou_member_the_topology_does_not_list_gets_the_role_and_is_noted() {
    let moto = Moto::start();
    let keys = admin_keys(&moto);
    let home = tempfile::tempdir().unwrap();
    let (ou, members, _) = seed_organization(&moto, 2, 0);
    let config = service_managed_topology(home.path(), &ou, &[("prod-a", &members[0])]);
    rolehop(&moto, &keys, home.path())
        .args(["rollout", "--config"])
        .arg(&config)
        .assert()
        .success()
        .stdout(predicate::str::contains("2 changed, 0 unchanged, 0 failed"))
        .stderr(predicate::str::contains(format!(
            "[prod] {}: created",
            members[1]
        )));
    // Auto-deployment gave it the role; rolehop says so but does not fight the OU.
    assert!(role_in(&moto, &members[1], "rolehop-prod-deploy").is_some());
    rolehop(&moto, &keys, home.path())
        .args(["rollout", "--config"])
        .arg(&config)
        .assert()
        .success()
        .stdout(
            predicate::str::starts_with("nothing to change").and(predicate::str::contains(
                format!(
                    "note      {} has the deployment role through organizational unit {ou} but is not among the accounts of environment prod",
                    members[1]
                ),
            )),
        );
}

/// Issue 17: `rollout` against an unreachable endpoint says what `assume` and `doctor` say
/// (`could not reach STS`, with what to check), not the SDK's `dispatch failure` dump.
#[test]
fn an_unreachable_endpoint_is_worded_like_the_chain_and_exits_6() {
    let home = tempfile::tempdir().unwrap();
    let dead = format!("http://127.0.0.1:{}", rolehop_testkit::free_port());
    let run = |args: &[&str], job: bool| {
        let mut c = Command::cargo_bin("rolehop").unwrap();
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00")
            .env("AWS_SECRET_ACCESS_KEY", "secret")
            .env("AWS_ENDPOINT_URL", &dead)
            .env("AWS_EC2_METADATA_DISABLED", "true");
        if job {
            common::job_env(&mut c);
        }
        let out = c
            .args(args)
            .arg("--config")
            .arg(example())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(6),
            "{args:?}: {}",
            common::stderr(&out)
        );
        common::stderr(&out)
    };
    let rollout = run(&["rollout"], false);
    let assume = run(&["assume", "--env", "prod", "--account", "prod-eu"], true);
    for (what, err) in [("rollout", &rollout), ("assume", &assume)] {
        assert!(
            err.contains("could not reach STS: connection failed: ")
                && err.contains(
                    "likely cause: STS endpoint unreachable after retries: check the network"
                ),
            "{what}: {err}"
        );
        assert!(
            !err.contains("dispatch failure") && !err.contains("ConnectorError"),
            "{what} shows the SDK's dump: {err}"
        );
    }
    assert!(
        rollout.contains("sts:GetCallerIdentity: could not reach STS"),
        "{rollout}"
    );
}

/// Issue 17: `--region` other than the broker's would plan a second broker stack whose IAM
/// names collide with the first; it is refused before any AWS call, saying how to move.
#[test]
fn another_region_than_the_brokers_is_refused_before_any_call() {
    let moto = Moto::start();
    let keys = admin_keys(&moto);
    let home = tempfile::tempdir().unwrap();
    let out = rolehop(&moto, &keys, home.path())
        .args([
            "rollout",
            "--dry-run",
            "--region",
            "eu-central-1",
            "--config",
        ])
        .arg(example())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
    assert_eq!(
        common::stderr(&out),
        "rolehop: error: `--region eu-central-1` is not the topology's broker region `eu-west-1`: stack `rolehop-broker` and the StackSets live in `eu-west-1`, and the IAM roles and users they create are global, so a second broker stack in `eu-central-1` would collide with the first. To move rolehop to `eu-central-1`, delete stack `rolehop-broker` and the StackSets in `eu-west-1` first (jobs cannot assume roles until the new rollout), then set `region = \"eu-central-1\"` under `[broker]` and roll out\n"
    );
    assert!(out.stdout.is_empty(), "no plan is printed");
    // The broker's own region is accepted.
    let out = rolehop(&moto, &keys, home.path())
        .args(["rollout", "--dry-run", "--region", "eu-west-1", "--config"])
        .arg(example())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
}

/// The example copied into `dir`, without its `nonprod` environment (the last one).
fn without_nonprod(dir: &std::path::Path) -> std::path::PathBuf {
    let src = std::fs::read_to_string(example()).unwrap();
    let cut = src.find("[environments.nonprod]").unwrap();
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    for p in std::fs::read_dir(example().parent().unwrap().join("policies")).unwrap() {
        let p = p.unwrap().path();
        std::fs::copy(&p, dir.join("policies").join(p.file_name().unwrap())).unwrap();
    }
    let path = dir.join("platform.toml");
    std::fs::write(&path, &src[..cut]).unwrap();
    path
}

fn stack_set_exists(moto: &Moto, name: &str) -> bool {
    let (status, xml) = moto.try_query_in(
        "eu-west-1",
        "cloudformation",
        BROKER,
        "DescribeStackSet",
        "2010-05-15",
        &[("StackSetName", name)],
    );
    status == 200 && xml.contains("<Status>ACTIVE</Status>")
}

/// An environment dropped from the topology: the plan names its StackSet, its instances and
/// the broker resources that go; `--dry-run` changes nothing; a rollout broken by a fault at
/// any request (a garbled or cut answer, the write done or not) leaves a state the next run
/// finishes; in the end its roles are gone, prod is untouched, and a StackSet rolehop did
/// not make is still there although its name has rolehop's prefix.
#[test]
fn a_removed_environment_is_torn_down_by_rollout_even_after_a_fault_at_any_step() {
    let moto = Moto::start();
    let keys = admin_keys(&moto);
    let home = tempfile::tempdir().unwrap();
    rolehop(&moto, &keys, home.path())
        .args(["rollout", "-c"])
        .arg(example())
        .assert()
        .success();
    // Someone's own StackSet, named like rolehop's but without its tag.
    let (status, body) = moto.try_query_in(
        "eu-west-1",
        "cloudformation",
        BROKER,
        "CreateStackSet",
        "2010-05-15",
        &[
            ("StackSetName", "rolehop-handmade"),
            (
                "TemplateBody",
                "Resources:\n  T:\n    Type: AWS::SNS::Topic\n",
            ),
        ],
    );
    assert_eq!(status, 200, "{body}");
    assert!(stack_set_exists(&moto, "rolehop-handmade"));
    let dir = tempfile::tempdir().unwrap();
    let topology = without_nonprod(dir.path());

    let plan = rolehop(&moto, &keys, home.path())
        .args(["rollout", "--dry-run", "-c"])
        .arg(&topology)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let plan = String::from_utf8(plan).unwrap();
    for line in [
        "stack set rolehop-nonprod (environment nonprod): remove, the topology no longer declares it",
        "  remove    333333333333: its deployment role is deleted",
        "  remove    444444444444: its deployment role is deleted",
        "stack rolehop-broker (account 111111111111, eu-west-1): update",
        "    - NonprodServiceRole (AWS::IAM::Role)",
        "    - NonprodBrokerUser (AWS::IAM::User)",
        "    - Outputs.NonprodServiceRoleArn",
        "stack set rolehop-prod (environment prod): unchanged",
        "dry run: nothing was changed",
    ] {
        assert!(plan.contains(line), "no `{line}` in:\n{plan}");
    }
    assert!(!plan.contains("handmade"), "{plan}");
    assert!(role_in(&moto, "333333333333", "rolehop-nonprod-deploy").is_some());

    // A fault at request k of the run, for k = 0, 1, 2, ...: each run re-reads the state the
    // previous one left, so every step of the teardown is interrupted once (a cut answer the
    // SDK reads as an empty list can let a run end early: the clean run after the loop then
    // finishes the job, which is what a user would do).
    let mut runs = 0;
    let mut finished = false;
    for k in 0..200 {
        // From request k on, every answer is a 503 (the SDK retries, then gives up).
        let proxy = rolehop_testkit::FaultProxy::start_after(
            moto.port,
            rolehop_testkit::FaultPlan::always(rolehop_testkit::Fault::Status(503)),
            k,
        );
        let out = rolehop(&moto, &keys, home.path())
            .env("AWS_ENDPOINT_URL", proxy.url())
            .args(["rollout", "-c"])
            .arg(&topology)
            .output()
            .unwrap();
        runs += 1;
        let err = common::stderr(&out);
        eprintln!(
            "run {runs} (fault after {k} requests): exit {:?}\n{}{err}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(!err.contains("panicked"), "{err}");
        if out.status.success() {
            finished = true;
            break;
        }
        assert!(
            matches!(out.status.code(), Some(5 | 6 | 11)),
            "k={k}: {:?} {err}",
            out.status.code()
        );
    }
    assert!(finished, "no run finished the teardown");
    eprintln!("teardown finished after {runs} run(s), each interrupted at the next request");
    rolehop(&moto, &keys, home.path())
        .args(["rollout", "-c"])
        .arg(&topology)
        .assert()
        .success();

    rolehop(&moto, &keys, home.path())
        .args(["rollout", "-c"])
        .arg(&topology)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "nothing to change: stack rolehop-broker and 1 stack set(s) on 1 account(s) are up to date",
        ));
    assert!(role_in(&moto, "333333333333", "rolehop-nonprod-deploy").is_none());
    assert!(role_in(&moto, "444444444444", "rolehop-nonprod-deploy").is_none());
    // The broker stack no longer declares nonprod's service role. (moto 5.2.5 cannot delete a
    // role together with its AWS::IAM::Policy in one UpdateStack, NoSuchEntity, and keeps the
    // role, so its absence in IAM is not checked here; CloudFormation deletes both.)
    let (_, template) = moto.try_query_in(
        "eu-west-1",
        "cloudformation",
        BROKER,
        "GetTemplate",
        "2010-05-15",
        &[("StackName", "rolehop-broker")],
    );
    assert!(
        template.contains("ProdServiceRole") && !template.contains("NonprodServiceRole"),
        "{template}"
    );
    assert!(role_in(&moto, "222222222222", "rolehop-prod-deploy").is_some());
    assert!(!stack_set_exists(&moto, "rolehop-nonprod"));
    assert!(
        stack_set_exists(&moto, "rolehop-handmade"),
        "not rolehop's: kept"
    );
}

/// The same topology under another file name (and in another folder) changes nothing: the
/// file name is not part of what the templates mean.
#[test]
fn a_renamed_topology_has_nothing_to_change() {
    let moto = Moto::start();
    let keys = admin_keys(&moto);
    let home = tempfile::tempdir().unwrap();
    rolehop(&moto, &keys, home.path())
        .args(["rollout", "-c"])
        .arg(example())
        .assert()
        .success();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    for p in std::fs::read_dir(example().parent().unwrap().join("policies")).unwrap() {
        let p = p.unwrap().path();
        std::fs::copy(&p, dir.path().join("policies").join(p.file_name().unwrap())).unwrap();
    }
    let renamed = dir.path().join("northwind-platform.toml");
    std::fs::copy(example(), &renamed).unwrap();
    rolehop(&moto, &keys, home.path())
        .env("ROLEHOP_CONFIG", &renamed)
        .arg("rollout")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("nothing to change"));
}

/// An application repository holds only the pipeline and the job files `render` wrote (no
/// topology, no policy file): its deploy job, run by gitlab-ci-local through the rendered
/// pipeline, reaches the deployment role with its environment's job file alone.
#[test]
fn an_application_repository_deploys_with_its_job_file_and_no_topology() {
    let moto = Moto::start();
    let keys = admin_keys(&moto);
    let home = tempfile::tempdir().unwrap();
    let platform = ci_project(&moto, &keys, home.path(), |t| t);
    let pair = nonprod_broker_pair(&moto);
    moto.enable_auth();

    let app = tempfile::tempdir().unwrap();
    let a = app.path();
    std::fs::create_dir_all(a.join("rolehop/jobs")).unwrap();
    for f in ["gitlab-ci.yml", "jobs/prod.toml", "jobs/nonprod.toml"] {
        std::fs::copy(
            platform.path().join("rolehop").join(f),
            a.join("rolehop").join(f),
        )
        .unwrap();
    }
    std::fs::copy(
        platform.path().join(".gitlab-ci.yml"),
        a.join(".gitlab-ci.yml"),
    )
    .unwrap();
    common::commit_shop_repo(a, "init");
    let files: Vec<String> = walk(a);
    assert!(
        !files
            .iter()
            .any(|f| f.ends_with("rolehop.toml") || f.contains("policies")),
        "{files:?}"
    );
    deploys_to_staging(&moto, a, home.path(), &pair);
}

/// Every file below `dir` (`.git` left out), relative.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out
}
