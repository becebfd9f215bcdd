//! The main job end to end, as the README's demo runs it (scripts/demo.py): render, rollout
//! to moto, the rendered pipeline run for real by gitlab-ci-local on a protected main and a
//! feature branch, then audit; then the claim-gate example through `rolehop gate serve` with
//! ID tokens from testkit's issuer (run here, in the test's process). The demo checks every
//! expectation itself; this test runs it with the binary under test and requires all of them,
//! and that it stopped its moto.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rolehop_testkit::oidc_issuer::OidcIssuer;
use rolehop_testkit::run_e2e_script_with;

#[test]
fn the_demo_pipeline_deploys_where_it_must_and_is_refused_where_it_must() {
    let issuer = OidcIssuer::start();
    let (ok, text) = run_e2e_script_with(
        "demo.py",
        &assert_cmd::cargo::cargo_bin("rolehop"),
        &[("ROLEHOP_TEST_ISSUER_URL", &issuer.url())],
    );
    assert!(ok, "{text}");
    assert!(
        text.contains("checks passed: the broker design held end to end"),
        "{text}"
    );
    let summary = text.split("== summary").nth(1).unwrap_or_default();
    assert!(
        summary
            .lines()
            .filter(|l| l.trim_start().starts_with("ok "))
            .count()
            >= 28,
        "{summary}"
    );
    assert!(!summary.contains("FAIL"), "{summary}");
    for must in [
        "PASS  rolehop:deploy:prod:prod-eu",
        "assumed-role/rolehop-prod-deploy/gl-",
        "refusing to hand out credentials for protected environment `prod` from unprotected ref `feature-x`",
        "nothing to change",
        "flowchart LR",
        "PASS  rolehop:deploy:prod:prod-eu",
        "the gate said: HTTP 403: rule `ref_protected` refused the job",
        "the gate answered HTTP 403: ",
    ] {
        assert!(
            text.contains(must),
            "the demo no longer shows `{must}`:\n{text}"
        );
    }
}
