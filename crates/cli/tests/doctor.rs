//! `rolehop doctor`: one test per failure cause it names, each checking the explanation and
//! the fix a user reads, plus the healthy case.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rolehop_testkit::{Moto, SeededChain, seed_chain};

mod common;

use common::*;

struct Case {
    moto: Moto,
    seed: SeededChain,
    dir: tempfile::TempDir,
}

fn case() -> Case {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    Case {
        moto,
        seed,
        dir: tempfile::tempdir().unwrap(),
    }
}

fn doctor(c: &Case, oidc: bool) -> assert_cmd::Command {
    let cfg = seeded_topology(c.dir.path(), oidc);
    let mut cmd = rolehop(&c.moto, &c.seed);
    cmd.env_remove("ROLEHOP_SERVICE_ROLE_ARN")
        .env_remove("ROLEHOP_DEPLOY_ROLE_ARN")
        .args(["doctor", "--config", cfg.to_str().unwrap(), "--env", "prod"]);
    cmd
}

fn run(cmd: &mut assert_cmd::Command) -> (Option<i32>, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}

#[test]
fn a_healthy_job_passes_and_shows_the_session_left() {
    let c = case();
    let (code, text) = run(&mut doctor(&c, false));
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(
            "ok    the keys work: they belong to arn:aws:iam::111111111111:user/rolehop-test"
        ),
        "{text}"
    );
    assert!(text.contains("ok    deployment role hop: arn:aws:sts::222222222222:assumed-role/rolehop-test-deploy/gl-42-1001-5005"), "{text}");
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("session")
            // moto's expiry and doctor's clock may differ by a second or two either way.
            && (l.contains(" 1h left") || l.contains(" 59m") || l.contains(" 1h1s left") || l.contains(" 1h2s left"))),
        "{text}"
    );
    assert!(text.contains("all checks passed"));
    assert!(!text.contains(&c.seed.secret_access_key));
}

#[test]
fn an_unprotected_ref_for_a_protected_environment() {
    let c = case();
    let (code, text) = run(doctor(&c, false)
        .env("CI_COMMIT_REF_PROTECTED", "false")
        .env("CI_COMMIT_REF_NAME", "feature-x"));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("FAIL  environment `prod` is protected but ref `feature-x` is not"),
        "{text}"
    );
    assert!(
        text.contains("fix: deploy from a protected branch or tag"),
        "{text}"
    );
}

#[test]
fn a_job_the_topology_does_not_name_is_reported_as_assume_would_refuse_it() {
    let c = case();
    let (code, text) = run(&mut doctor(&c, false));
    assert!(
        text.contains(
            "ok    project, ref and GitLab environment are ones environment `prod` allows"
        ),
        "{text}"
    );
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = run(doctor(&c, false)
        .env("CI_PROJECT_PATH", "acme/shop-fork")
        .env("CI_ENVIRONMENT_NAME", "staging"));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("FAIL  project: `acme/shop-fork` (CI_PROJECT_PATH) is not allowed; allowed projects: `acme/shop`: rolehop refuses to hand out `prod`'s credentials"), "{text}");
    assert!(text.contains("FAIL  environment: `staging` (CI_ENVIRONMENT_NAME) is not allowed; allowed environments: `production`"), "{text}");
    assert!(
        text.contains(
            "fix: run the job from a project the topology's `[environments.prod.gitlab]` names"
        ),
        "{text}"
    );
    // The hops are still tried, so the report also says whether the keys would work.
    assert!(text.contains("ok    deployment role hop"), "{text}");
}

#[test]
fn missing_keys_point_at_protected_variables() {
    let c = case();
    let (code, text) = run(doctor(&c, false).env_remove("AWS_ACCESS_KEY_ID"));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(
            "FAIL  no ROLEHOP_BROKER_KEY (nor AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) in the job"
        ),
        "{text}"
    );
    assert!(text.contains("masked, protected variable"), "{text}");
    assert!(text.contains("`<access key id>:<secret>`"), "{text}");
}

#[test]
fn the_combined_broker_key_is_read_and_a_malformed_one_named_without_its_value() {
    let c = case();
    let id = "AKIAIOSFODNN7EXAMPLE";
    let (code, text) = run(doctor(&c, false)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("ROLEHOP_BROKER_KEY", "not a pair"));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("`ROLEHOP_BROKER_KEY` is not `<access key id>:<secret access key>`"),
        "{text}"
    );
    assert!(!text.contains("not a pair"), "{text}");
    let (_, text) = run(doctor(&c, false)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("ROLEHOP_BROKER_KEY", format!("{id}:wJalrXUtnFEMI/K7MDENG")));
    assert!(
        text.contains(&format!("{id} from ROLEHOP_BROKER_KEY")),
        "{text}"
    );
    assert!(!text.contains("wJalrXUtnFEMI"), "{text}");
}

#[test]
fn keys_of_another_user_are_named() {
    let c = case();
    c.moto
        .iam(BROKER, "CreateUser", &[("UserName", "someone-else")]);
    let keys = c
        .moto
        .iam(BROKER, "CreateAccessKey", &[("UserName", "someone-else")]);
    let id = rolehop_testkit::xml_value(&keys, "AccessKeyId").unwrap();
    let secret = rolehop_testkit::xml_value(&keys, "SecretAccessKey").unwrap();
    let (code, text) = run(doctor(&c, false)
        .env("AWS_ACCESS_KEY_ID", &id)
        .env("AWS_SECRET_ACCESS_KEY", &secret));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("these are not environment `prod`'s broker keys (`arn:aws:iam::111111111111:user/rolehop-test`)"), "{text}");
    assert!(!text.contains(&secret));
}

#[test]
fn a_dead_key_is_explained() {
    let c = case();
    c.moto.enable_auth();
    let (code, text) = run(doctor(&c, false).env("AWS_ACCESS_KEY_ID", "AKIADEADDEADDEADDEAD"));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("FAIL  GetCallerIdentity with the job's keys failed"),
        "{text}"
    );
    assert!(text.contains("rotated"), "{text}");
}

#[test]
fn a_hop_the_service_role_may_not_make_is_explained() {
    let c = case();
    // Remove the service role's right to assume the deployment role.
    c.moto.iam(
        BROKER,
        "DeleteRolePolicy",
        &[
            ("RoleName", "rolehop-test-service"),
            ("PolicyName", "assume-deploy"),
        ],
    );
    c.moto.enable_auth();
    let (code, text) = run(&mut doctor(&c, false));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("ok    service role hop"), "{text}");
    assert!(
        text.contains("FAIL  rolehop: error: deployment role hop failed")
            || text.contains("FAIL  deployment role hop failed"),
        "{text}"
    );
    assert!(
        text.contains("the service role may not assume this deployment role"),
        "{text}"
    );
}

#[test]
fn an_id_token_for_another_ref_shows_both_subjects() {
    let c = case();
    let token = id_token(
        "project_path:acme/shop:ref_type:branch:ref:feature-x",
        "https://aws.example",
        600,
    );
    let (code, text) = run(doctor(&c, true).env("ROLEHOP_ID_TOKEN", &token));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("the service role trusts sub like project_path:acme/shop:ref_type:branch:ref:main, the token's sub is project_path:acme/shop:ref_type:branch:ref:feature-x"),
        "{text}"
    );
    assert!(
        text.contains("ok    audience `https://aws.example` matches"),
        "{text}"
    );
    assert!(!text.contains(&token), "the token itself is never printed");
}

#[test]
fn a_tag_named_like_a_trusted_branch_is_explained() {
    let c = case();
    let token = id_token(
        "project_path:acme/shop:ref_type:tag:ref:main",
        "https://aws.example",
        600,
    );
    let (code, text) = run(doctor(&c, true).env("ROLEHOP_ID_TOKEN", &token));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(
            "`main` is a tag here, but environment `prod` lists `main` under `branches` only"
        ),
        "{text}"
    );
}

#[test]
fn a_wrong_audience_and_an_expired_token_are_named() {
    let c = case();
    let token = id_token(
        "project_path:acme/shop:ref_type:branch:ref:main",
        "https://gitlab.example.com",
        600,
    );
    let (code, text) = run(doctor(&c, true).env("ROLEHOP_ID_TOKEN", &token));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("the token's aud `https://gitlab.example.com` is not the audience"),
        "{text}"
    );
    assert!(
        text.contains("fix: set `id_tokens: ROLEHOP_ID_TOKEN: aud: https://aws.example`"),
        "{text}"
    );

    let token = id_token(
        "project_path:acme/shop:ref_type:branch:ref:main",
        "https://aws.example",
        -30,
    );
    let (code, text) = run(doctor(&c, true).env("ROLEHOP_ID_TOKEN", &token));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("FAIL  the ID token expired"), "{text}");
}

#[test]
fn a_matching_id_token_passes() {
    let c = case();
    let token = id_token(
        "project_path:acme/shop:ref_type:branch:ref:main",
        "https://aws.example",
        600,
    );
    let (code, text) = run(doctor(&c, true).env("ROLEHOP_ID_TOKEN", &token));
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("ok    sub `project_path:acme/shop:ref_type:branch:ref:main` matches the service role's trust"), "{text}");
}

/// Issue 17: with no token, the fix names the audience the topology expects, not a placeholder.
#[test]
fn a_missing_id_token_is_fixed_with_the_topologys_audience() {
    let c = case();
    let (code, text) = run(doctor(&c, true).env_remove("ROLEHOP_ID_TOKEN"));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("  FAIL  no ID token in `ROLEHOP_ID_TOKEN`\n        fix: declare it in the job: `id_tokens: {ROLEHOP_ID_TOKEN: {aud: https://aws.example}}`\n"),
        "{text}"
    );
}

/// Issue 17: the expired token's message says to rerun the job; its fix says how to keep the
/// token valid, instead of repeating it.
#[test]
fn an_expired_token_says_rerun_the_job_once() {
    let c = case();
    let token = id_token(
        "project_path:acme/shop:ref_type:branch:ref:main",
        "https://aws.example",
        -30,
    );
    let (_, text) = run(doctor(&c, true).env("ROLEHOP_ID_TOKEN", &token));
    assert_eq!(text.matches("rerun the job").count(), 1, "{text}");
    assert!(
        text.contains("fix: assume credentials early in the job, before long steps, or raise the job's `timeout:`"),
        "{text}"
    );
}

/// Issue 17: an endpoint that cannot be reached is worded as rollout and assume word it, and
/// the fix points at the network, not at the key.
#[test]
fn an_unreachable_endpoint_is_worded_like_rollout() {
    let c = case();
    let dead = format!("http://127.0.0.1:{}", rolehop_testkit::free_port());
    let (code, text) = run(doctor(&c, false).env("AWS_ENDPOINT_URL", &dead));
    assert_eq!(code, Some(1), "{text}");
    let fail = text
        .lines()
        .skip_while(|l| !l.contains("FAIL"))
        .take(2)
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        fail,
        "  FAIL  GetCallerIdentity with the job's keys failed: could not reach STS: connection failed: Connection refused (os error 111)\n        fix: STS endpoint unreachable after retries: check the network, the region (`--region`/`AWS_REGION`) and AWS_ENDPOINT_URL"
    );
}
