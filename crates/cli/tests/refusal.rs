//! The protected-ref refusal as a job meets it (issue 17): it names what should already have
//! kept the job out in the topology's mode (the service role's trust in OIDC mode, the
//! protected broker key with access keys), before any request reaches AWS.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assert_cmd::Command;

mod common;

fn refusal(oidc: bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::seeded_topology(dir.path(), oidc);
    let mut c = Command::cargo_bin("rolehop").unwrap();
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("HOME", "/nonexistent")
        // Nothing listens there: the refusal must come first.
        .env(
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", rolehop_testkit::free_port()),
        );
    common::job_env(&mut c);
    let out = c
        .env("CI_COMMIT_REF_PROTECTED", "false")
        .args(["assume", "--env", "prod", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", common::stderr(&out));
    common::stderr(&out)
}

#[test]
fn in_oidc_mode_the_refusal_speaks_of_the_trust_not_of_broker_credentials() {
    assert_eq!(
        refusal(true),
        "rolehop: error: refusing to hand out credentials for protected environment `prod` from unprotected ref `main` (CI_COMMIT_REF_PROTECTED is not `true`).\nThis is defence in depth: the service role's trust admits only the refs the topology names for `prod`, which GitLab should protect, so this job's ID token should not reach `prod`; deploy from a protected branch or tag, or, for local use only, pass --allow-unprotected-ref\n"
    );
}

#[test]
fn with_access_keys_the_refusal_speaks_of_the_broker_key() {
    assert!(
        refusal(false).contains(
            "This is defence in depth: GitLab's protected variables and protected environments should already keep this job from `prod`'s broker key;"
        )
    );
}
