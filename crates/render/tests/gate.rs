//! Gate mode (examples/oidc-gate): the broker template with one claim gate per environment
//! (snapshot, real cfn-lint), and the gate configs exactly as `rolehop gate` reads them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use rolehop_core::Topology;
use rolehop_render::gate::{GATE_CONFIG_ENV, gate_config};
use rolehop_render::iam::{TRUST_POLICY_MAX_CHARS, policy_chars, service_role_trust};
use rolehop_render::render;
use serde_json::json;

fn example() -> Topology {
    rolehop_testkit::topology("examples/oidc-gate/rolehop.toml")
}

fn load_yaml(content: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f.yaml");
    std::fs::write(&p, content).unwrap();
    rolehop_testkit::python_json(
        "import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        &p,
    )
}

#[test]
fn every_rendered_gate_mode_file_matches_its_snapshot() {
    let files = render(&example()).files;
    let mut names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "broker.yaml",
            "gate-nonprod.toml",
            "gate-prod.toml",
            "gitlab-ci.yml",
            "jobs/nonprod.toml",
            "jobs/prod.toml",
            "target-nonprod.yaml",
            "target-prod.yaml"
        ]
    );
    for (name, content) in files {
        // Job files live in `jobs/`; a snapshot name holds no `/`.
        let name = name.replace('/', "-");
        insta::assert_snapshot!(format!("oidc-gate__{name}"), content);
    }
}

/// A gate-mode deploy job asks GitLab for an ID token with the gate's audience, in the variable
/// the job side reads in both OIDC modes; without it the job would have nothing to post to the
/// gate. (crates/cli/tests/gate_pipeline.rs runs this pipeline with gitlab-ci-local.)
#[test]
fn gate_mode_deploy_jobs_request_an_id_token_for_the_gate() {
    let ci = load_yaml(
        &render(&example())
            .files
            .into_iter()
            .find(|(n, _)| n == "gitlab-ci.yml")
            .unwrap()
            .1,
    );
    for job in [
        "rolehop:deploy:prod:prod-eu",
        "rolehop:deploy:nonprod:staging",
        "rolehop:deploy:nonprod:dev",
    ] {
        assert_eq!(
            ci[job]["id_tokens"],
            json!({"ROLEHOP_ID_TOKEN": {"aud": "https://gate.rolehop.example.com"}}),
            "{job}: {}",
            ci[job]
        );
    }
    assert_eq!(
        ci["rolehop:deploy:prod:prod-eu"]["rules"][0]["if"],
        "$CI_COMMIT_REF_PROTECTED == \"true\" && $CI_COMMIT_BRANCH =~ /^main$/"
    );
    // No rotation jobs: nothing is stored to rotate.
    assert!(ci.get("rolehop:rotate-keys:prod").is_none(), "{ci}");
}

#[test]
fn gate_mode_templates_pass_cfn_lint_without_errors_or_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let mut templates = Vec::new();
    for (name, content) in render(&example()).files {
        if name.ends_with(".yaml") {
            let p = dir.path().join(&name);
            std::fs::write(&p, content).unwrap();
            templates.push(p);
        }
    }
    assert_eq!(templates.len(), 3);
    let out = Command::new(rolehop_testkit::venv_tool("cfn-lint"))
        .args(["-f", "json", "--"])
        .args(&templates)
        .output()
        .unwrap();
    let code = out.status.code().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(code & 0b110, 0, "cfn-lint exit {code}:\n{stdout}");
    let findings: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for f in findings.as_array().unwrap() {
        assert_eq!(f["Level"], "Informational", "{f:#}");
    }
}

/// What the gate function runs with is what `rolehop gate` parses: the environment variable in
/// the template holds gate-<env>.toml byte for byte, and that text is a valid gate config with
/// the topology's rules.
#[test]
fn each_gate_runs_the_config_rolehop_gate_reads_with_the_topologys_rules() {
    let topo = example();
    let rendered = render(&topo);
    let broker = load_yaml(rendered.file("broker.yaml").unwrap());
    for (env, id) in [("prod", "Prod"), ("nonprod", "Nonprod")] {
        let e = topo.environment(env).unwrap();
        let text = rendered.file(&format!("gate-{env}.toml")).unwrap();
        assert_eq!(gate_config(&topo, e).as_deref(), Some(text));
        let f = &broker["Resources"][format!("{id}Gate")];
        assert_eq!(
            f["Properties"]["Environment"]["Variables"][GATE_CONFIG_ENV],
            json!(text)
        );
        assert_eq!(f["Properties"]["Runtime"], "provided.al2023");
        assert_eq!(
            f["Properties"]["Role"],
            json!({"Fn::GetAtt": [format!("{id}GateRole"), "Arn"]})
        );

        let cfg = rolehop_gate::GateConfig::from_toml(text, "gate.toml").unwrap();
        assert_eq!(cfg.verifier.issuer, "https://gitlab.example.com");
        assert_eq!(cfg.verifier.audience, "https://gate.rolehop.example.com");
        let names: Vec<&String> = cfg.environments.keys().collect();
        assert_eq!(names, [env], "one environment per gate");
        let g = &cfg.environments[env];
        assert_eq!(g.service_role_arn, topo.service_role_arn(e));
        let r = &g.rules;
        let globs = |v: &[rolehop_gate::Glob]| -> Vec<String> {
            v.iter().map(|g| g.as_str().to_owned()).collect()
        };
        assert_eq!(globs(&r.project_paths), e.gitlab.projects);
        assert_eq!(globs(&r.branches), e.gitlab.branches);
        assert_eq!(globs(&r.tags), e.gitlab.tags);
        assert_eq!(globs(&r.environments), e.gitlab.environments);
        let gate = e.gate.as_ref().unwrap();
        assert_eq!(r.project_ids, gate.project_ids);
        assert_eq!(r.namespace_ids, gate.namespace_ids);
        assert_eq!(r.ref_protected, gate.ref_protected);
        assert_eq!(r.environment_protected, gate.environment_protected);
        assert_eq!(r.deployment_tiers, gate.deployment_tiers);
        assert_eq!(r.pipeline_sources.deny, gate.pipeline_sources.deny);
    }
    // prod: protected, so protected refs only; nonprod: not protected, any ref it lists.
    assert!(
        topo.environment("prod")
            .unwrap()
            .gate
            .as_ref()
            .unwrap()
            .ref_protected
    );
    assert!(
        !topo
            .environment("nonprod")
            .unwrap()
            .gate
            .as_ref()
            .unwrap()
            .ref_protected
    );
}

/// One gate identity per environment: each gate role may assume only its own service role,
/// each service role trusts only its own gate role, and no web-identity trust or OIDC
/// provider exists in gate mode.
#[test]
fn each_gate_role_reaches_only_its_own_environment() {
    let topo = example();
    let broker = load_yaml(render(&topo).file("broker.yaml").unwrap());
    let res = broker["Resources"].as_object().unwrap();
    assert!(
        res.values().all(|r| r["Type"] != "AWS::IAM::OIDCProvider"),
        "no OIDC provider in gate mode"
    );
    for (env, id) in [("prod", "Prod"), ("nonprod", "Nonprod")] {
        let e = topo.environment(env).unwrap();
        let policy = &res[&format!("{id}GateRolePolicy")]["Properties"]["PolicyDocument"];
        assert_eq!(
            policy["Statement"][0]["Resource"],
            json!(topo.service_role_arn(e))
        );
        let trust = service_role_trust(&topo, e);
        assert!(policy_chars(&trust) <= TRUST_POLICY_MAX_CHARS);
        for st in trust["Statement"].as_array().unwrap() {
            assert_eq!(
                st["Principal"],
                json!({"AWS": topo.gate_role_arn(e).unwrap()}),
                "{env}: {st}"
            );
            assert_ne!(st["Action"], "sts:AssumeRoleWithWebIdentity");
        }
        let url = &res[&format!("{id}GateUrl")]["Properties"];
        assert_eq!(url["AuthType"], "NONE");
        let logs = &res[&format!("{id}GateLogGroup")]["Properties"];
        assert_eq!(
            logs["LogGroupName"],
            format!("/aws/lambda/rolehop-{env}-gate")
        );
        assert_eq!(logs["RetentionInDays"], 90);
    }
    assert_eq!(
        broker["Parameters"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["GateCodeBucket", "GateCodeKey"]
    );
    // prod's trust requires what its rules pin, as tags AWS checks.
    let prod = service_role_trust(&topo, topo.environment("prod").unwrap());
    let cond = &prod["Statement"][0]["Condition"];
    assert_eq!(cond["Null"], json!({"sts:SourceIdentity": "false"}));
    assert_eq!(
        cond["StringEquals"],
        json!({
            "aws:RequestTag/gitlab:ref_protected": "true",
            "aws:RequestTag/gitlab:environment_protected": "true",
            "aws:RequestTag/gitlab:project_id": ["42"],
            "aws:RequestTag/gitlab:deployment_tier": ["production"],
        })
    );
    // nonprod pins no protection: its trust does not require the tag.
    let nonprod = service_role_trust(&topo, topo.environment("nonprod").unwrap());
    assert!(
        nonprod["Statement"][0]["Condition"]["StringEquals"]
            .get("aws:RequestTag/gitlab:ref_protected")
            .is_none()
    );
}
