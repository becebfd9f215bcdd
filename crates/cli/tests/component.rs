//! rolehop in a job through the CI/CD component (templates/deploy.yml): the verified install is
//! attacked directly (tampered, truncated, unpinned, plain-http, redirected with the job token,
//! pinned to another release), then a gitlab-ci-local pipeline includes the component, installs
//! the binary under test from a loopback package registry after checking its SHA-256, and
//! deploys through the broker chain against moto; pointed at a tampered artifact, the same
//! pipeline is refused before anything runs. The checks live in scripts/component_e2e.py.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rolehop_testkit::run_e2e_script;

#[test]
fn a_pipeline_gets_rolehop_through_the_component_and_a_tampered_binary_never_runs() {
    let (ok, text) = run_e2e_script("component_e2e.py", &assert_cmd::cargo::cargo_bin("rolehop"));
    assert!(ok, "{text}");
    let summary = text.split("== summary").nth(1).unwrap_or_default();
    assert!(summary.contains("20 passed, 0 failed"), "{text}");
    for must in [
        "SHA-256 mismatch",
        "no SHA-256 pinned",
        "PASS  rolehop:deploy:nonprod:staging",
        "PASS  rolehop:deploy:nonprod:dev",
        "assumed-role/rolehop-nonprod-deploy/gl-",
    ] {
        assert!(
            text.contains(must),
            "the component run no longer shows `{must}`:\n{text}"
        );
    }
}
