//! The claim-gate example (examples/oidc-gate) end to end through gitlab-ci-local: rendered,
//! rolled out to moto, its prod gate served by `rolehop gate serve` with the rendered
//! `gate-prod.toml` (issuer: testkit's local issuer, real RS256), and the rendered pipeline run
//! with ID tokens from that issuer (gitlab-ci-local accepts `id_tokens:` but mints nothing, so
//! the token GitLab would mint for the job is passed as the job's variable).
//!
//! Protected `main` deploys the sample stack into the prod account. An unprotected `main`, whose
//! `sub` (`project_path:acme/shop:ref_type:branch:ref:main`) is exactly what an OIDC trust
//! pattern for prod admits, is refused by the gate on the signed `ref_protected` claim: through
//! rolehop with its own protected-ref check switched off by the job author
//! (`--allow-unprotected-ref`), and by a job that posts its token to the gate with curl and no
//! rolehop at all. No token and no secret key shows in any job log or in the gate's log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{secret_key_like, stderr, stdout};
use rolehop_testkit::oidc_issuer::OidcIssuer;
use rolehop_testkit::{Moto, node_bin_dir, venv_tool, workspace_root, xml_value};

const BROKER: &str = "111111111111";
const PROD: &str = "222222222222";
const AUD: &str = "https://gate.rolehop.example.com";

/// The application repository's own pipeline: rolehop's rendered jobs, the deploy command, and
/// the two jobs a developer adds on an unprotected branch to reach prod anyway.
const PIPELINE: &str = r#"include:
  - local: rolehop/gitlab-ci.yml
variables:
  ROLEHOP_DEPLOY_SCRIPT: ./app/deploy.sh
# rolehop's own protected-ref check reads CI_* variables; the job author turns it off.
attack:rolehop:
  extends: rolehop:deploy:prod:prod-eu
  script:
    - rolehop exec --config rolehop/jobs/prod.toml --env prod --account prod-eu --allow-unprotected-ref -- sh -c ./app/deploy.sh
# No rolehop at all: the job posts its ID token to the gate itself.
attack:curl:
  stage: deploy
  environment: production
  id_tokens:
    ROLEHOP_ID_TOKEN:
      aud: https://gate.rolehop.example.com
  script:
    - 'code=$(curl -sS -o answer.json -w "%{http_code}" -H "Content-Type: application/json" --data "{\"environment\":\"prod\",\"token\":\"$ROLEHOP_ID_TOKEN\"}" "$ROLEHOP_GATE_URL")'
    - 'echo "the gate answered HTTP $code: $(cat answer.json)"'
    - test "$code" = 200
"#;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "{cmd:?}: {text}");
    text
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn protected_main_deploys_through_the_gate_and_an_unprotected_main_is_refused_even_without_rolehop()
{
    let (moto, issuer) = (Moto::start(), OidcIssuer::start());
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("shop");
    let root = workspace_root();
    copy_dir(&root.join("examples/oidc-gate"), &repo);
    // The example's sample application is the OIDC example's.
    copy_dir(&root.join("examples/oidc/app"), &repo.join("app"));
    let topo = std::fs::read_to_string(repo.join("rolehop.toml"))
        .unwrap()
        .replace(
            "issuer = \"https://gitlab.example.com\"",
            &format!("issuer = \"{}\"", issuer.url()),
        );
    std::fs::write(repo.join("rolehop.toml"), topo).unwrap();
    std::fs::write(repo.join(".gitlab-ci.yml"), PIPELINE).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("rolehop");
    let path = format!(
        "{}:{}:{}:{}",
        bin.parent().unwrap().display(),
        node_bin_dir().display(),
        venv_tool("aws").parent().unwrap().display(),
        std::env::var("PATH").unwrap()
    );
    let admin_xml = moto.iam(BROKER, "CreateUser", &[("UserName", "admin")]);
    assert!(admin_xml.contains("admin"));
    let keys = moto.iam(BROKER, "CreateAccessKey", &[("UserName", "admin")]);
    let admin = (
        xml_value(&keys, "AccessKeyId").unwrap(),
        xml_value(&keys, "SecretAccessKey").unwrap(),
    );
    let rolehop = |args: &[&str]| {
        let mut c = Command::new(&bin);
        c.args(args)
            .current_dir(&repo)
            .env_clear()
            .env("PATH", &path)
            .env("HOME", dir.path())
            .env("AWS_ENDPOINT_URL", moto.url())
            .env("AWS_DEFAULT_REGION", "eu-west-1")
            .env("AWS_ACCESS_KEY_ID", &admin.0)
            .env("AWS_SECRET_ACCESS_KEY", &admin.1)
            .env("AWS_EC2_METADATA_DISABLED", "true");
        run(&mut c)
    };

    // Render and roll out. moto stores the gate's Lambda code but cannot run it: a small ELF
    // stands in, and the gate runs below as `rolehop gate serve` with the same config.
    rolehop(&["render", "--config", "rolehop.toml", "--out", "rolehop"]);
    let elf = dir.path().join("rolehop-x86_64-linux-gnu");
    rolehop_testkit::stand_in_gate_code(&elf);
    rolehop(&[
        "rollout",
        "--config",
        "rolehop.toml",
        "--gate-code",
        elf.to_str().unwrap(),
    ]);

    // The gate's identity is its rendered role, as Lambda would hand it over.
    let session = moto.query(
        "sts",
        BROKER,
        "AssumeRole",
        "2011-06-15",
        &[
            (
                "RoleArn",
                &format!("arn:aws:iam::{BROKER}:role/rolehop-prod-gate"),
            ),
            ("RoleSessionName", "gate"),
        ],
    );
    let gate_creds = (
        xml_value(&session, "AccessKeyId").unwrap(),
        xml_value(&session, "SecretAccessKey").unwrap(),
        xml_value(&session, "SessionToken").unwrap(),
    );
    let gate_dir = tempfile::tempdir().unwrap();
    let gate = common::gate::serve_config(
        &moto,
        gate_dir,
        &repo.join("rolehop/gate-prod.toml"),
        (&gate_creds.0, &gate_creds.1, Some(&gate_creds.2)),
        &[],
    );

    common::commit_shop_repo(&repo, "shop with rolehop's claim gate");

    // One pipeline: `protected` as GitLab would say it, the job's ID token as GitLab would
    // mint it for that ref, in gitlab-ci-local's variables file (as a demo would not echo it).
    let pipeline = |protected: bool, token: &str, jobs: &[&str]| {
        std::fs::write(
            repo.join(".gitlab-ci-local-variables.yml"),
            format!("ROLEHOP_ID_TOKEN: \"{token}\"\n"),
        )
        .unwrap();
        let out = common::gitlab_ci_local(&repo, &path, protected, &moto.url())
            .args(["--variable", "AWS_CONFIG_FILE=/dev/null"])
            .args(["--variable", &format!("ROLEHOP_GATE_URL={}", gate.url())])
            .args(jobs)
            .output()
            .unwrap();
        (
            out.status.success(),
            format!("{}{}", stdout(&out), stderr(&out)),
        )
    };
    let stack_in_prod = || {
        let (_, body) = moto.try_query_in(
            "eu-west-1",
            "cloudformation",
            PROD,
            "DescribeStacks",
            "2010-05-15",
            &[("StackName", "acme-shop-app")],
        );
        xml_value(&body, "StackStatus")
    };
    let secrets = [
        admin.1.as_str(),
        gate_creds.1.as_str(),
        gate_creds.2.as_str(),
    ];

    // Protected main: the gate admits the job, which deploys into the prod account.
    let good = issuer.token(AUD).claim("job_id", "7001").sign();
    let (ok, text) = pipeline(true, &good, &["rolehop:deploy:prod:prod-eu"]);
    assert!(ok, "{text}");
    assert!(text.contains("PASS  rolehop:deploy:prod:prod-eu"), "{text}");
    assert!(
        text.contains(&format!(
            "deploying as arn:aws:sts::{PROD}:assumed-role/rolehop-prod-deploy/gl-"
        )),
        "{text}"
    );
    assert_eq!(
        stack_in_prod().as_deref(),
        Some("CREATE_COMPLETE"),
        "{text}"
    );
    assert!(
        gate.log()
            .contains("200 env=\"prod\" project=\"acme/shop\" (42) ref=\"main\""),
        "{}",
        gate.log()
    );

    // Unprotected main: same `sub`, but GitLab signs `ref_protected: "false"`.
    let (status, _) = moto.try_query_in(
        "eu-west-1",
        "cloudformation",
        PROD,
        "DeleteStack",
        "2010-05-15",
        &[("StackName", "acme-shop-app")],
    );
    assert_eq!(status, 200);
    assert!(matches!(
        stack_in_prod().as_deref(),
        None | Some("DELETE_COMPLETE")
    ));
    let evil = issuer
        .token(AUD)
        .branch("main", false)
        .claim("job_id", "7002")
        .sign();
    let (ok, bad) = pipeline(false, &evil, &["attack:rolehop", "attack:curl"]);
    assert!(!ok, "{bad}");
    assert!(bad.contains("FAIL  attack:rolehop"), "{bad}");
    assert!(bad.contains("FAIL  attack:curl"), "{bad}");
    // Through rolehop: its own check was off, the gate's 403 names the rule and the claim.
    assert!(
        bad.contains("the gate said: HTTP 403: rule `ref_protected` refused the job"),
        "{bad}"
    );
    // Without rolehop: the same 403, with the rule, straight from the gate.
    assert!(bad.contains("the gate answered HTTP 403: "), "{bad}");
    assert!(bad.contains("\"rule\":\"ref_protected\""), "{bad}");
    assert!(!bad.contains("deploying as"), "{bad}");
    assert!(
        matches!(stack_in_prod().as_deref(), None | Some("DELETE_COMPLETE")),
        "{bad}"
    );
    assert_eq!(
        gate.log().matches("403 env=\"prod\"").count(),
        2,
        "{}",
        gate.log()
    );

    // Neither the tokens nor any secret key in the job logs or the gate's log.
    let log = gate.log();
    for shown in [&text, &bad, &log] {
        for t in [&good, &evil] {
            assert!(!shown.contains(t.as_str()), "an ID token was shown");
            assert!(
                !shown.contains(t.rsplit('.').next().unwrap()),
                "an ID token's signature was shown"
            );
        }
        for s in secrets {
            assert!(!shown.contains(s), "a secret was shown");
        }
        assert_eq!(secret_key_like(shown), None, "{shown}");
    }
}
