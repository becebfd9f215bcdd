//! Per-project session policies and extra session tags with the real binary against moto:
//! the deployment hop's AssumeRole carries the job's session policy (`Policy`, `PolicyArns`)
//! and the topology's extra tags, as a recording proxy in front of moto sees the request
//! (moto itself ignores session policies); a job matching no rule is refused (exit 4) before
//! any request; the job file `render` writes carries the same session to the job.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use rolehop_testkit::fault::{FaultPlan, FaultProxy, form_decode};
use rolehop_testkit::{Moto, seed_chain};

const SESSION: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::acme-shop-web/*"}]}"#;

fn topology(dir: &Path, oidc: bool, default: &str) -> PathBuf {
    let path = seeded_topology(dir, oidc);
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "projects = [\"acme/shop\"]",
        "projects = [\"acme/shop\", \"acme/shop-api\"]",
    );
    let text = text.replace(
        "broker_user = \"rolehop-test\"\n",
        &format!(
            "broker_user = \"rolehop-test\"\nsession_policy_default = \"{default}\"\nsession_tags = {{ team = \"payments\" }}\n"
        ),
    );
    let text = format!(
        "{text}\n[[environments.prod.session_policies]]\nproject = \"acme/shop\"\npolicy_file = \"session-shop.json\"\nmanaged = [\"arn:aws:iam::aws:policy/ReadOnlyAccess\"]\n"
    );
    std::fs::write(&path, text).unwrap();
    // Pretty-printed on disk: what STS gets is the compact form.
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(SESSION).unwrap())
            .unwrap();
    std::fs::write(dir.join("session-shop.json"), pretty).unwrap();
    path
}

/// The form body of each AssumeRole request the proxy saw, decoded.
fn assume_role_requests(proxy: &FaultProxy) -> Vec<String> {
    proxy
        .stats()
        .seen
        .iter()
        .filter(|r| r.contains("Action=AssumeRole&") || r.ends_with("Action=AssumeRole"))
        .map(|r| form_decode(r.split("\r\n\r\n").nth(1).unwrap_or("")))
        .collect()
}

fn assume(
    moto: &Moto,
    seed: &rolehop_testkit::SeededChain,
    cfg: &Path,
    proxy: &FaultProxy,
) -> assert_cmd::Command {
    let mut cmd = rolehop(moto, seed);
    cmd.env_remove("ROLEHOP_SERVICE_ROLE_ARN")
        .env_remove("ROLEHOP_DEPLOY_ROLE_ARN")
        .env("AWS_ENDPOINT_URL", proxy.url())
        .args(["assume", "--format", "json", "--config"])
        .arg(cfg)
        .args(["--env", "prod"]);
    cmd
}

#[test]
fn the_deployment_hop_carries_the_projects_session_policy_and_the_extra_tags() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let dir = tempfile::tempdir().unwrap();
    let cfg = topology(dir.path(), false, "refuse");
    let proxy = counting_proxy(&moto);
    let out = assume(&moto, &seed, &cfg, &proxy).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("session policy for project acme/shop applied to the deployment session"),
        "{}",
        stderr(&out)
    );
    let requests = assume_role_requests(&proxy);
    assert_eq!(requests.len(), 2, "{requests:#?}");
    let (service, deploy) = (&requests[0], &requests[1]);
    assert!(
        !service.contains("Policy"),
        "the first hop is not narrowed: {service}"
    );
    assert!(
        !service.contains("payments"),
        "extra tags go on the deployment hop: {service}"
    );
    assert!(deploy.contains(&format!("Policy={SESSION}")), "{deploy}");
    assert!(
        deploy.contains("PolicyArns.member.1.arn=arn:aws:iam::aws:policy/ReadOnlyAccess"),
        "{deploy}"
    );
    assert!(
        deploy.contains("Tags.member.1.Key=team")
            && deploy.contains("Tags.member.1.Value=payments"),
        "{deploy}"
    );
    assert!(
        !deploy.contains("TransitiveTagKeys"),
        "extra tags are not transitive: {deploy}"
    );
    // The credentials work: moto accepts the request as STS would (it ignores the policy).
    assert!(
        json(&out)["assumed_role_arn"]
            .as_str()
            .unwrap()
            .contains("rolehop-test-deploy")
    );
}

#[test]
fn a_job_no_rule_matches_is_refused_before_any_request_unless_the_topology_says_full_role() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let dir = tempfile::tempdir().unwrap();
    let cfg = topology(dir.path(), false, "refuse");
    let proxy = counting_proxy(&moto);
    let out = assume(&moto, &seed, &cfg, &proxy)
        .env("CI_PROJECT_PATH", "acme/shop-api")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("environment `prod` has session policies and none matches this job (project acme/shop-api (id 42) on branch main"),
        "{}",
        stderr(&out)
    );
    assert_eq!(proxy.stats().seen.len(), 0, "refused before any request");

    let cfg = topology(dir.path(), false, "full-role");
    let out = assume(&moto, &seed, &cfg, &proxy)
        .env("CI_PROJECT_PATH", "acme/shop-api")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("full rights"), "{}", stderr(&out));
    let requests = assume_role_requests(&proxy);
    assert!(!requests[1].contains("Policy"), "{}", requests[1]);
    assert!(
        requests[1].contains("Tags.member.1.Key=team"),
        "{}",
        requests[1]
    );
}

/// OIDC mode reads the project from the ID token's claims, not from CI_PROJECT_PATH: a job
/// that sets CI_PROJECT_PATH to another project still gets its token's rule.
#[test]
fn in_oidc_mode_the_token_s_project_picks_the_rule() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let dir = tempfile::tempdir().unwrap();
    let cfg = topology(dir.path(), true, "refuse");
    let token = id_token(
        "project_path:acme/shop:ref_type:branch:ref:main",
        "https://aws.example",
        600,
    );
    let proxy = counting_proxy(&moto);
    let out = assume(&moto, &seed, &cfg, &proxy)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("ROLEHOP_ID_TOKEN", &token)
        .env("CI_PROJECT_PATH", "acme/shop-api")
        .output()
        .unwrap();
    // The job check compares CI_PROJECT_PATH with the topology's projects (both allowed);
    // the session policy is the token's project's.
    assert!(out.status.success(), "{}", stderr(&out));
    let requests = assume_role_requests(&proxy);
    assert!(
        requests
            .last()
            .unwrap()
            .contains(&format!("Policy={SESSION}")),
        "{requests:#?}"
    );
}

#[test]
fn the_rendered_job_file_carries_the_session_to_the_job() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let dir = tempfile::tempdir().unwrap();
    let cfg = topology(dir.path(), false, "refuse");
    let out_dir = dir.path().join("out");
    let mut render = assert_cmd::Command::cargo_bin("rolehop").unwrap();
    render
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .args(["render", "--out"])
        .arg(&out_dir)
        .arg("--config")
        .arg(&cfg)
        .assert()
        .success();
    let job_file = out_dir.join("jobs/prod.toml");
    let text = std::fs::read_to_string(&job_file).unwrap();
    assert!(text.contains("format = 2"), "{text}");
    // The job's repository has no policy files: the job file is all it needs.
    std::fs::remove_file(dir.path().join("session-shop.json")).unwrap();
    let proxy = counting_proxy(&moto);
    let out = assume(&moto, &seed, &job_file, &proxy).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let requests = assume_role_requests(&proxy);
    assert!(
        requests[1].contains(&format!("Policy={SESSION}")),
        "{requests:#?}"
    );
    assert!(
        requests[1].contains("Tags.member.1.Key=team"),
        "{requests:#?}"
    );
}

/// STS's packed-size refusal through the real binary: the first refusal of the deployment
/// hop drops the topology's optional tag (`team`), warns naming it, and the retry deploys;
/// a refusal that persists without the optional tags fails with exit 5 and says what to
/// shorten, after exactly one retry.
#[test]
fn a_packed_policy_too_large_drops_the_optional_tags_once_then_fails_clearly() {
    use rolehop_testkit::fault::Fault;

    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let dir = tempfile::tempdir().unwrap();
    let cfg = topology(dir.path(), false, "refuse");

    // Only a request carrying the optional tag is refused: the retry without it goes through.
    let proxy = FaultProxy::start_matching(
        moto.port,
        FaultPlan::always(Fault::PackedPolicyTooLarge),
        "Key=team",
    );
    let out = assume(&moto, &seed, &cfg, &proxy).output().unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(
            "too large (PackedPolicyTooLarge); retrying once without the optional session tags team"
        ),
        "{err}"
    );
    assert_eq!(proxy.stats().faults, vec![Fault::PackedPolicyTooLarge]);
    let requests = assume_role_requests(&proxy);
    assert_eq!(requests.len(), 3, "service hop, refused deploy hop, retry");
    let retry = &requests[2];
    assert!(
        !retry.contains("Key=team"),
        "the retry drops the optional tag: {retry}"
    );

    assert!(
        retry.contains("Policy="),
        "the session policy is never dropped: {retry}"
    );
    let session = json(&out);
    assert!(
        session["assumed_role_arn"]
            .as_str()
            .unwrap()
            .contains(":assumed-role/rolehop-test-deploy/")
    );

    // Every attempt at the deployment role is refused: one retry, then exit 5 with the fix.
    let proxy = FaultProxy::start_matching(
        moto.port,
        FaultPlan::always(Fault::PackedPolicyTooLarge),
        "rolehop-test-deploy",
    );
    let out = assume(&moto, &seed, &cfg, &proxy).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert_eq!(proxy.stats().faults.len(), 2, "exactly one retry");
    assert!(err.contains("shorten the session policy"), "{err}");
    assert!(stdout(&out).is_empty(), "no credentials on a failure");
    assert!(secret_key_like(&err).is_none(), "{err}");
}
