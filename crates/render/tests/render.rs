//! Renders both example topologies: every file is snapshot-tested, and every CloudFormation
//! template must pass the real cfn-lint without errors or warnings.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

use rolehop_core::Topology;
use rolehop_render::{Rendered, render};

const EXAMPLES: [&str; 2] = ["access-keys", "oidc"];

fn example(name: &str) -> Topology {
    rolehop_testkit::topology(&format!("examples/{name}/rolehop.toml"))
}

#[test]
fn every_rendered_file_matches_its_snapshot() {
    for ex in EXAMPLES {
        let Rendered { files } = render(&example(ex));
        let mut names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "broker.yaml",
                "gitlab-ci.yml",
                "jobs/nonprod.toml",
                "jobs/prod.toml",
                "target-nonprod.yaml",
                "target-prod.yaml"
            ],
            "{ex}"
        );
        for (name, content) in files {
            let name = name.replace('/', "-");
            insta::assert_snapshot!(format!("{ex}__{name}"), content);
        }
    }
}

/// `[pipeline] component = ...`: the deploy jobs become includes of rolehop's CI/CD component,
/// with the rules the inline jobs would have as its `run_if` (the pipeline test of
/// scripts/component_e2e.py runs them with gitlab-ci-local).
#[test]
fn a_component_pipeline_includes_the_component_per_environment_and_account() {
    let src = std::fs::read_to_string(
        rolehop_testkit::workspace_root().join("examples/oidc/rolehop.toml"),
    )
    .unwrap()
        + r#"
[pipeline]
component = "gitlab.example.com/platform/rolehop/deploy@0.1.0"
image = "registry.example.com/acme/deploy-tools:1.4"
rolehop_version = "0.1.0"
rolehop_sha256 = "3f5e7a0b9c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f"
package_registry = "https://gitlab.example.com/api/v4/projects/42/packages/generic/rolehop"
deploy_script = "./app/deploy.sh"
"#;
    let topo = rolehop_testkit::topology_src("examples/oidc/rolehop.toml", &src);
    let pipeline = file(&render(&topo), "gitlab-ci.yml").to_owned();
    insta::assert_snapshot!("oidc-component__gitlab-ci.yml", pipeline);
    let doc = load_yaml(&pipeline);
    assert!(
        doc.get(".rolehop").is_none(),
        "no inline template in component mode"
    );
    assert_eq!(doc["include"].as_array().map(Vec::len), Some(3), "{doc}");
}

/// Where the topology was read from is not part of what it means: the same text under another
/// name renders the same bytes, so rollout has nothing to change after a rename.
#[test]
fn a_renamed_topology_renders_the_same_bytes() {
    for ex in EXAMPLES {
        let path = format!("examples/{ex}/rolehop.toml");
        let src = std::fs::read_to_string(rolehop_testkit::workspace_root().join(&path)).unwrap();
        let renamed =
            rolehop_testkit::topology_src(&format!("examples/{ex}/northwind-platform.toml"), &src);
        assert_eq!(render(&example(ex)), render(&renamed), "{ex}");
    }
}

/// A job file reads back as the environment it was rendered from: the ARNs and rules a job
/// gets from it are the topology's.
#[test]
fn every_job_file_reads_back_as_its_environment() {
    for ex in EXAMPLES {
        let topo = example(ex);
        let rendered = render(&topo);
        for env in &topo.environments {
            let name = rolehop_render::job_file_name(&env.name);
            let view = rolehop_core::job_file::parse(&name, file(&rendered, &name)).unwrap();
            let v = &view.environments[0];
            assert_eq!(view.service_role_arn(v), topo.service_role_arn(env), "{ex}");
            let arns = |t: &Topology, e: &rolehop_core::topology::Environment| -> Vec<String> {
                e.accounts
                    .iter()
                    .map(|a| t.deployment_role_arn(e, a).to_string())
                    .collect()
            };
            assert_eq!(arns(&view, v), arns(&topo, env), "{ex}");
            assert_eq!(v.gitlab.sub_patterns(), env.gitlab.sub_patterns(), "{ex}");
            assert_eq!(view.auth, topo.auth, "{ex}");
        }
    }
}

#[test]
fn rendering_is_deterministic() {
    for ex in EXAMPLES {
        assert_eq!(render(&example(ex)), render(&example(ex)), "{ex}");
    }
}

#[test]
fn templates_pass_cfn_lint_without_errors_or_warnings() {
    let cfn_lint = rolehop_testkit::venv_tool("cfn-lint");
    let dir = tempfile::tempdir().unwrap();
    let mut templates: Vec<PathBuf> = Vec::new();
    for ex in EXAMPLES {
        for (name, content) in render(&example(ex)).files {
            if name.ends_with(".yaml") {
                let p = dir.path().join(format!("{ex}-{name}"));
                std::fs::write(&p, content).unwrap();
                templates.push(p);
            }
        }
    }
    assert_eq!(templates.len(), 6);
    let out = Command::new(cfn_lint)
        .args(["-f", "json", "--"])
        .args(&templates)
        .output()
        .unwrap();
    let code = out.status.code().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Exit code bitmask: 2 errors, 4 warnings, 8 informational.
    assert_eq!(
        code & 0b110,
        0,
        "cfn-lint exit {code}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let findings: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for f in findings.as_array().unwrap() {
        assert_eq!(f["Level"], "Informational", "{f:#}");
    }
}

/// The rendered YAML as a YAML 1.1 parser (PyYAML, as GitLab's and cfn-lint's loaders are
/// YAML 1.1-ish) reads it, converted to JSON.
fn load_yaml(content: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f.yaml");
    std::fs::write(&p, content).unwrap();
    rolehop_testkit::python_json(
        "import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        &p,
    )
}

fn file<'a>(r: &'a Rendered, name: &str) -> &'a str {
    &r.files.iter().find(|(n, _)| n == name).unwrap().1
}

#[test]
fn yaml_parsers_read_what_was_meant() {
    use serde_json::json;
    let r = render(&example("access-keys"));
    let target = load_yaml(file(&r, "target-prod.yaml"));
    assert_eq!(target["AWSTemplateFormatVersion"], "2010-09-09");
    assert_eq!(
        target["Resources"]["DeploymentRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
            [0]["Condition"],
        json!({
            "Null": {"sts:SourceIdentity": "false"},
            "StringEquals": {"sts:ExternalId": "acme-shop-prod"},
            "StringLike": {"sts:SourceIdentity": ["acme.shop@*"]},
            "ForAllValues:StringEquals": {"aws:TagKeys": [
                "gitlab:project", "gitlab:ref", "gitlab:pipeline", "gitlab:job", "gitlab:environment"
            ]},
        })
    );
    let ci = load_yaml(file(&r, "gitlab-ci.yml"));
    let deploy = &ci["rolehop:deploy:prod:prod-eu"];
    assert_eq!(deploy["extends"], ".rolehop");
    assert_eq!(
        deploy["environment"],
        json!({"name": "production", "deployment_tier": "production"})
    );
    assert_eq!(deploy["resource_group"], "rolehop-prod");
    assert_eq!(
        deploy["rules"][1]["if"],
        "$CI_COMMIT_REF_PROTECTED == \"true\" && $CI_COMMIT_BRANCH =~ /^main$/"
    );
    assert!(ci[".rolehop"].get("image").is_none());
    assert_eq!(
        ci["rolehop:rotate-keys:nonprod"]["rules"][0]["if"],
        "$CI_PIPELINE_SOURCE == \"schedule\""
    );
    // The rotation job declares no environment: one would hand it the environment-scoped broker
    // key it rotates, which AWS SDKs read before anything else.
    for job in ["rolehop:rotate-keys:prod", "rolehop:rotate-keys:nonprod"] {
        assert!(ci[job].get("environment").is_none(), "{job}: {}", ci[job]);
    }

    let r = render(&example("oidc"));
    let ci = load_yaml(file(&r, "gitlab-ci.yml"));
    assert_eq!(
        ci["rolehop:deploy:nonprod:dev"]["id_tokens"],
        json!({"ROLEHOP_ID_TOKEN": {"aud": "https://aws.rolehop.example.com"}})
    );
    assert!(ci.get("rolehop:rotate-keys:nonprod").is_none());
    let broker = load_yaml(file(&r, "broker.yaml"));
    assert_eq!(
        broker["Resources"]["GitlabOidcProvider"]["Properties"]["ClientIdList"],
        json!(["https://aws.rolehop.example.com"])
    );
}
