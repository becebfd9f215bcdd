//! The session-policies example rendered: the job file carries each rule with its inline
//! session policy embedded (format 2), the deployment role's trust admits the environment's
//! extra session tag keys (and only the service role's trust stays with rolehop's own), and
//! the templates pass the real cfn-lint.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use rolehop_render::{Rendered, render};

fn rendered() -> Rendered {
    render(&rolehop_testkit::topology(
        "examples/session-policies/rolehop.toml",
    ))
}

fn file<'a>(r: &'a Rendered, name: &str) -> &'a str {
    &r.files.iter().find(|(n, _)| n == name).unwrap().1
}

#[test]
fn the_job_file_and_the_deployment_trust_match_their_snapshots() {
    let r = rendered();
    insta::assert_snapshot!(
        "session-policies__jobs-prod.toml",
        file(&r, "jobs/prod.toml")
    );
    insta::assert_snapshot!(
        "session-policies__target-prod.yaml",
        file(&r, "target-prod.yaml")
    );
    let job = file(&r, "jobs/prod.toml");
    assert!(job.contains("format = 2") && job.contains("session_policy_default = \"refuse\""));
    // The job's repository has no policy files: the document travels in the job file.
    assert!(job.contains(r#"policy = "{\"Version\":"#), "{job}");
}

#[test]
fn only_the_deployment_role_admits_the_extra_tag_keys() {
    let topo = rolehop_testkit::topology("examples/session-policies/rolehop.toml");
    let env = &topo.environments[0];
    let deploy = rolehop_render::iam::deployment_role_trust(&topo, env).to_string();
    let service = rolehop_render::iam::service_role_trust(&topo, env).to_string();
    assert!(
        deploy.contains("\"team\"") && deploy.contains("\"cost-center\""),
        "{deploy}"
    );
    assert!(!service.contains("\"team\""), "{service}");
}

#[test]
fn the_templates_pass_cfn_lint() {
    let cfn_lint = rolehop_testkit::venv_tool("cfn-lint");
    let dir = tempfile::tempdir().unwrap();
    let mut templates = Vec::new();
    for (name, content) in rendered().files {
        if name.ends_with(".yaml") {
            let p = dir.path().join(name.replace('/', "-"));
            std::fs::write(&p, content).unwrap();
            templates.push(p);
        }
    }
    assert_eq!(templates.len(), 2);
    let out = Command::new(cfn_lint)
        .args(["-f", "json", "--"])
        .args(&templates)
        .output()
        .unwrap();
    // Exit code bitmask: 2 errors, 4 warnings, 8 informational.
    assert_eq!(
        out.status.code().unwrap() & 0b110,
        0,
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
