//! The main job end to end, as the README's demo runs it (scripts/demo.py): render, rollout
//! to moto, the rendered pipeline run for real by gitlab-ci-local on a protected main and a
//! feature branch, then audit. The demo checks every expectation itself; this test runs it
//! with the binary under test and requires all of them, and that it stopped its moto.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rolehop_testkit::run_e2e_script;

#[test]
fn the_demo_pipeline_deploys_where_it_must_and_is_refused_where_it_must() {
    let (ok, text) = run_e2e_script("demo.py", &assert_cmd::cargo::cargo_bin("rolehop"));
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
            >= 18,
        "{summary}"
    );
    assert!(!summary.contains("FAIL"), "{summary}");
    for must in [
        "PASS  rolehop:deploy:prod:prod-eu",
        "assumed-role/rolehop-prod-deploy/gl-",
        "refusing to hand out credentials for protected environment `prod` from unprotected ref `feature-x`",
        "nothing to change",
        "flowchart LR",
    ] {
        assert!(
            text.contains(must),
            "the demo no longer shows `{must}`:\n{text}"
        );
    }
}
