//! The credential chain end to end against moto: two accounts, broker user keys -> service
//! role -> deployment role, each output consumed by the real aws CLI and boto3.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rolehop_testkit::{FaultProxy, Moto, aws_cli, seed_chain, venv_tool};

mod common;

use common::*;

const DEPLOY_SESSION: &str =
    "arn:aws:sts::222222222222:assumed-role/rolehop-test-deploy/gl-42-1001-5005";

#[test]
fn chain_reaches_the_deployment_role_named_after_the_job() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let out = rolehop(&moto, &seed)
        .args(["assume", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["account"], TARGET);
    assert_eq!(v["assumed_role_arn"], DEPLOY_SESSION);
    assert_eq!(
        v["hops"][0]["assumed_role_arn"],
        "arn:aws:sts::111111111111:assumed-role/rolehop-test-service/gl-42-1001-5005"
    );
    assert_eq!(v["hops"][0]["source_identity"], "acme.shop@1001");
    assert_eq!(v["hops"][0]["session_tags"], 5);

    // The credentials really are the deployment role's, as the AWS CLI sees them.
    let who = caller_identity(&moto, &v["credentials"]);
    assert_eq!(who["Arn"], DEPLOY_SESSION);
    assert_eq!(who["Account"], TARGET);
}

#[test]
fn env_format_is_evaluated_by_a_shell_for_the_aws_cli() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let out = rolehop(&moto, &seed).args(["assume"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let script = format!(
        "unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY; {}\n\"$AWS\" sts get-caller-identity --query Arn --output text",
        stdout(&out)
    );
    let who = aws_cli(&moto)
        .env("AWS", venv_tool("aws"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(who.status.success());
    let sh = std::process::Command::new("sh")
        .args(["-c", &script])
        .env("AWS", venv_tool("aws"))
        .env("AWS_ENDPOINT_URL", moto.url())
        .env("AWS_DEFAULT_REGION", "eu-west-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    assert!(sh.status.success(), "{}", stderr(&sh));
    assert_eq!(stdout(&sh).trim(), DEPLOY_SESSION);
}

#[test]
fn dotenv_and_credential_process_and_profile_are_read_by_boto3_and_the_cli() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let dir = tempfile::tempdir().unwrap();

    // dotenv: KEY=value lines, loaded by a program (here Python) into boto3.
    let out = rolehop(&moto, &seed)
        .args(["assume", "--format", "dotenv"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::write(dir.path().join("creds.env"), &out.stdout).unwrap();
    let py = "import sys,boto3\nenv=dict(l.split('=',1) for l in open(sys.argv[1]).read().splitlines())\n\
              s=boto3.Session(aws_access_key_id=env['AWS_ACCESS_KEY_ID'],aws_secret_access_key=env['AWS_SECRET_ACCESS_KEY'],aws_session_token=env['AWS_SESSION_TOKEN'],region_name='eu-west-1')\n\
              print(s.client('sts').get_caller_identity()['Arn'])";
    let b = std::process::Command::new(venv_tool("python"))
        .args(["-c", py, dir.path().join("creds.env").to_str().unwrap()])
        .env("AWS_ENDPOINT_URL", moto.url())
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    assert!(b.status.success(), "{}", stderr(&b));
    assert_eq!(stdout(&b).trim(), DEPLOY_SESSION);

    // credential_process: the AWS CLI and boto3 run rolehop themselves.
    let bin = assert_cmd::cargo::cargo_bin("rolehop");
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!(
            "[profile deploy]\nregion = eu-west-1\ncredential_process = {} credential-process\n",
            bin.display()
        ),
    )
    .unwrap();
    let base_env = |c: &mut std::process::Command| {
        c.env("AWS_CONFIG_FILE", &config)
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_ENDPOINT_URL", moto.url())
            .env("ROLEHOP_BASE_ACCESS_KEY_ID", &seed.access_key_id)
            .env("ROLEHOP_SERVICE_ROLE_ARN", &seed.service_role_arn)
            .env("ROLEHOP_DEPLOY_ROLE_ARN", &seed.deploy_role_arn)
            .env("CI_PROJECT_ID", "42")
            .env("CI_PIPELINE_ID", "1001")
            .env("CI_JOB_ID", "5005")
            // The process inherits the broker keys, the profile uses the deployment role.
            .env("AWS_ACCESS_KEY_ID", &seed.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &seed.secret_access_key)
            .env("AWS_REGION", "eu-west-1");
    };
    let mut cli = std::process::Command::new(venv_tool("aws"));
    cli.args([
        "--profile",
        "deploy",
        "sts",
        "get-caller-identity",
        "--query",
        "Arn",
        "--output",
        "text",
    ]);
    base_env(&mut cli);
    let o = cli.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), DEPLOY_SESSION);
    let mut py = std::process::Command::new(venv_tool("python"));
    py.args(["-c", "import boto3;print(boto3.Session(profile_name='deploy').client('sts').get_caller_identity()['Arn'])"]);
    base_env(&mut py);
    let o = py.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), DEPLOY_SESSION);

    // --write-profile: 0600 files the CLI and boto3 read with --profile.
    let creds_file = dir.path().join("aws/credentials");
    let conf_file = dir.path().join("aws/config");
    std::fs::create_dir_all(dir.path().join("aws")).unwrap();
    std::fs::write(&creds_file, "[keep]\naws_access_key_id = X\n").unwrap();
    let out = rolehop(&moto, &seed)
        .args(["assume", "--write-profile", "deploy"])
        .env("AWS_SHARED_CREDENTIALS_FILE", &creds_file)
        .env("AWS_CONFIG_FILE", &conf_file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        out.stdout.is_empty(),
        "--write-profile prints no credentials"
    );
    use std::os::unix::fs::PermissionsExt;
    for f in [&creds_file, &conf_file] {
        assert_eq!(
            std::fs::metadata(f).unwrap().permissions().mode() & 0o777,
            0o600,
            "{}",
            f.display()
        );
    }
    assert!(
        std::fs::read_to_string(&creds_file)
            .unwrap()
            .contains("[keep]"),
        "other profiles survive"
    );
    for tool in ["aws", "python"] {
        let mut c = std::process::Command::new(venv_tool(tool));
        if tool == "aws" {
            c.args([
                "--profile",
                "deploy",
                "sts",
                "get-caller-identity",
                "--query",
                "Arn",
                "--output",
                "text",
            ]);
        } else {
            c.args(["-c", "import boto3;print(boto3.Session(profile_name='deploy').client('sts').get_caller_identity()['Arn'])"]);
        }
        let o = c
            .env("AWS_SHARED_CREDENTIALS_FILE", &creds_file)
            .env("AWS_CONFIG_FILE", &conf_file)
            .env("AWS_ENDPOINT_URL", moto.url())
            .output()
            .unwrap();
        assert!(o.status.success(), "{tool}: {}", stderr(&o));
        assert_eq!(stdout(&o).trim(), DEPLOY_SESSION, "{tool}");
    }
}

#[test]
fn exec_passes_credentials_exit_codes_and_signals_through() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let aws = venv_tool("aws");
    let script = format!(
        "test -z \"$ROLEHOP_ID_TOKEN\" && \"{}\" sts get-caller-identity --query Arn --output text && exit 7",
        aws.display()
    );
    let out = rolehop(&moto, &seed)
        .args(["exec", "--base", "access-keys", "--", "sh", "-c", &script])
        .env("ROLEHOP_ID_TOKEN", "must-not-reach-the-deploy-script")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_PROFILE", "would-shadow-the-credentials")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), DEPLOY_SESSION);

    use std::os::unix::process::ExitStatusExt;
    let out = rolehop(&moto, &seed)
        .args(["exec", "--", "sh", "-c", "kill -TERM $$"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(15),
        "the command's signal is the job's"
    );

    let out = rolehop(&moto, &seed)
        .args(["exec", "--", "/nonexistent/deploy"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
    assert!(stderr(&out).contains("cannot run `/nonexistent/deploy`"));
}

#[test]
fn protected_environments_refuse_unprotected_refs() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let out = rolehop(&moto, &seed)
        .args(["assume", "--protected"])
        .env("CI_COMMIT_REF_PROTECTED", "false")
        .env("CI_COMMIT_REF_NAME", "feature-x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let e = stderr(&out);
    assert!(
        e.contains("unprotected ref `feature-x`") && e.contains("defence in depth"),
        "{e}"
    );
    assert!(out.stdout.is_empty());
    let out = rolehop(&moto, &seed)
        .args(["assume", "--protected", "--allow-unprotected-ref"])
        .env("CI_COMMIT_REF_PROTECTED", "false")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_denied_hop_and_a_missing_role_are_explained() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    // A role the service role's policy does not cover, and one that does not exist.
    moto.iam(
        TARGET,
        "CreateRole",
        &[
            ("RoleName", "other"),
            (
                "AssumeRolePolicyDocument",
                r#"{"Version":"2012-10-17","Statement":[]}"#,
            ),
        ],
    );
    moto.enable_auth();
    let out = rolehop(&moto, &seed)
        .env(
            "ROLEHOP_DEPLOY_ROLE_ARN",
            "arn:aws:iam::222222222222:role/other",
        )
        .arg("assume")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(
        e.contains(
            "deployment role hop failed: could not assume `arn:aws:iam::222222222222:role/other`"
        ),
        "{e}"
    );
    assert!(
        e.contains("likely cause: the service role may not assume this deployment role"),
        "{e}"
    );

    let out = rolehop(&moto, &seed)
        .env(
            "ROLEHOP_SERVICE_ROLE_ARN",
            "arn:aws:iam::111111111111:role/missing",
        )
        .arg("assume")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("service role hop failed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_input_gets_its_exit_code_and_no_request() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    // (arguments, environment changes, exit code, a word of the message)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], i32, &'a str);
    let cases: &[Case] = &[
        (
            &["assume"],
            &[("ROLEHOP_DEPLOY_ROLE_ARN", "arn:aws:iam::2222:role/x")],
            3,
            "deployment role ARN",
        ),
        (&["assume", "--duration", "10m"], &[], 3, "too short"),
        (&["assume", "--duration", "1x"], &[], 2, "--duration"),
        (
            &["assume"],
            &[("AWS_ACCESS_KEY_ID", "")],
            7,
            "no base AWS credentials",
        ),
        (&["assume", "--region", "Mars"], &[], 2, "region"),
        // botocore ends a line at `\r`: such a section would break the whole AWS config.
        (
            &["assume", "--write-profile", "x\rfoo"],
            &[],
            2,
            "profile name",
        ),
        (&["assume", "--base", "oidc"], &[], 7, "ID token"),
        (
            &["assume", "--base", "oidc"],
            &[("ROLEHOP_ID_TOKEN", "not.a.jwt")],
            3,
            "not a JWT",
        ),
        (
            &[
                "assume",
                "--config",
                "/nonexistent/rolehop.toml",
                "--env",
                "prod",
            ],
            &[
                ("ROLEHOP_SERVICE_ROLE_ARN", ""),
                ("ROLEHOP_DEPLOY_ROLE_ARN", ""),
            ],
            8,
            "cannot read topology",
        ),
    ];
    for (args, env, code, needle) in cases {
        let mut c = rolehop(&moto, &seed);
        c.args(*args);
        for (k, v) in *env {
            if v.is_empty() {
                c.env_remove(k);
            } else {
                c.env(k, v);
            }
        }
        let out = c.output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(*code),
            "{args:?} {env:?}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains(needle),
            "{args:?}: `{}` lacks `{needle}`",
            stderr(&out)
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn an_unreachable_endpoint_fails_as_unavailable() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let dead = format!("http://127.0.0.1:{}", rolehop_testkit::free_port());
    let out = rolehop(&moto, &seed)
        .env("AWS_ENDPOINT_URL", &dead)
        .arg("assume")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("could not reach STS"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn oidc_token_is_exchanged_then_chained() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let token = id_token(
        "project_path:acme/shop:ref_type:branch:ref:main",
        "https://aws.example",
        600,
    );
    let out = rolehop(&moto, &seed)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("ROLEHOP_ID_TOKEN", &token)
        .args(["assume", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["assumed_role_arn"], DEPLOY_SESSION);
    // The web identity hop cannot carry them, so the second hop sets identity and tags.
    assert_eq!(v["hops"][1]["source_identity"], "acme.shop@1001");
    assert_eq!(v["hops"][1]["session_tags"], 5);
    assert!(!stderr(&out).contains(&token));

    let expired = id_token(
        "project_path:acme/shop:ref_type:branch:ref:main",
        "https://aws.example",
        -60,
    );
    let out = rolehop(&moto, &seed)
        .env("ROLEHOP_ID_TOKEN", &expired)
        .args(["assume", "--base", "oidc"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(
        stderr(&out).contains("ID token expired"),
        "{}",
        stderr(&out)
    );

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), format!("{token}\n")).unwrap();
    let out = rolehop(&moto, &seed)
        .args([
            "assume",
            "--base",
            "oidc",
            "--id-token-file",
            file.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Every run of `-vvv` with trace logging, in every format and base: the base secrets (broker
/// key, ID token) appear nowhere, and the deployment secrets appear only on stdout.
#[test]
fn no_secret_leaks_outside_the_requested_output() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let token = id_token(
        "project_path:acme/shop:ref_type:branch:ref:main",
        "https://aws.example",
        600,
    );
    for format in ["env", "dotenv", "json", "credential-process"] {
        for base in ["access-keys", "oidc"] {
            let out = rolehop(&moto, &seed)
                .args(["-vvv", "assume", "--format", format, "--base", base])
                .env("ROLEHOP_ID_TOKEN", &token)
                .env("ROLEHOP_LOG", "trace")
                .output()
                .unwrap();
            assert!(out.status.success(), "{format}/{base}: {}", stderr(&out));
            let (o, e) = (stdout(&out), stderr(&out));
            assert!(e.len() > 1000, "{format}/{base}: trace logging was on");
            for s in [&seed.secret_access_key, &token] {
                assert!(
                    !o.contains(s.as_str()) && !e.contains(s.as_str()),
                    "{format}/{base}: a base secret leaked"
                );
            }
            let issued = issued_in(&o);
            assert_eq!(
                issued.len(),
                2,
                "{format}/{base}: one secret key and one session token on stdout: {issued:?}"
            );
            for s in &issued {
                assert!(
                    !e.contains(s.as_str()),
                    "{format}/{base}: an issued secret reached stderr"
                );
            }
        }
    }
    // The failure path: nothing secret in error messages either.
    moto.enable_auth();
    let out = rolehop(&moto, &seed)
        .args(["-vvv", "assume"])
        .env(
            "ROLEHOP_DEPLOY_ROLE_ARN",
            "arn:aws:iam::222222222222:role/none",
        )
        .env("ROLEHOP_LOG", "trace")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!all.contains(&seed.secret_access_key));
}

/// Runs `rolehop exec ... -- sh -c 'env > FILE'` and returns what the deploy command saw.
fn child_env(cmd: &mut assert_cmd::Command) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("env");
    let out = cmd
        .args(["--", "sh", "-c", &format!("env > '{}'", file.display())])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::read_to_string(&file).unwrap()
}

#[test]
fn exec_hands_the_deploy_command_nothing_rolehop_consumed() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let dir = tempfile::tempdir().unwrap();
    // The topology names its own variables for a hand-made key pair.
    let cfg = seeded_topology(dir.path(), false);
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace(
            "[environments.prod]",
            "[gitlab]\nproject = \"acme/shop\"\naccess_key_var = \"PROD_KEY_ID\"\nsecret_key_var = \"PROD_KEY_SECRET\"\n\n[environments.prod]",
        ),
    )
    .unwrap();
    let pair = format!("{}:{}", seed.access_key_id, seed.secret_access_key);
    let jwt = id_token(
        "project_path:acme/shop:ref_type:branch:ref:main",
        "https://vault.example",
        600,
    );
    let seen = child_env(
        rolehop(&moto, &seed)
            .args(["exec", "--config"])
            .arg(&cfg)
            .args(["--env", "prod"])
            .env_remove("ROLEHOP_SERVICE_ROLE_ARN")
            .env_remove("ROLEHOP_DEPLOY_ROLE_ARN")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("ROLEHOP_BROKER_KEY", &pair)
            // Copies under names the job chose (`MY_KEY: $ROLEHOP_BROKER_KEY`).
            .env("MY_KEY", &pair)
            .env("MY_SECRET_COPY", &seed.secret_access_key)
            .env("PROD_KEY_ID", &seed.access_key_id)
            .env("PROD_KEY_SECRET", &seed.secret_access_key)
            .env("GITLAB_TOKEN", "glpat-must-not-reach-deploy")
            .env(
                "ROLEHOP_ROTATOR_KEY",
                "AKIAROTATOR000000000:rotatorSecret000",
            )
            .env("VAULT_ID_TOKEN", &jwt)
            .env("APP_SETTING", "kept"),
    );
    for name in [
        "ROLEHOP_BROKER_KEY=",
        "MY_KEY=",
        "MY_SECRET_COPY=",
        "PROD_KEY_ID=",
        "PROD_KEY_SECRET=",
        "GITLAB_TOKEN=",
        "ROLEHOP_ROTATOR_KEY=",
        "VAULT_ID_TOKEN=",
    ] {
        assert!(
            !seen.lines().any(|l| l.starts_with(name)),
            "the deploy command got {name}"
        );
    }
    for value in [&seed.secret_access_key, &seed.access_key_id, &jwt] {
        assert!(
            !seen.contains(value.as_str()),
            "a consumed value reached the deploy command"
        );
    }
    assert!(seen.contains("APP_SETTING=kept"), "{seen}");
    assert!(
        seen.contains("AWS_SESSION_TOKEN="),
        "the deployment credentials are there"
    );

    // OIDC from a file (a GitLab file variable holds its path): neither the path nor the token
    // reaches the deploy command, whatever the variables are called.
    let token = id_token(
        "project_path:acme/shop:ref_type:branch:ref:main",
        "https://aws.example",
        600,
    );
    let file = dir.path().join("id-token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    let path = file.to_str().unwrap();
    let seen = child_env(
        rolehop(&moto, &seed)
            .args(["exec", "--base", "oidc", "--id-token-file", path])
            .env("GITLAB_ID_TOKEN_FILE", path)
            .env("TOKEN_PATH", path)
            .env("MY_JWT", &token),
    );
    for value in [path, token.as_str()] {
        assert!(
            !seen.contains(value),
            "the deploy command got `{value}`:\n{seen}"
        );
    }
}

/// This test's job id: its requests name sessions `gl-42-1001-990001`, so requests of other
/// tests that reach its proxy (a port another test took as a dead endpoint) are not counted.
const OWN_JOB: &str = "990001";

/// The requests `proxy` forwarded that this test's job made.
fn own_requests(proxy: &FaultProxy) -> usize {
    let session = format!("gl-42-1001-{OWN_JOB}");
    proxy
        .stats()
        .seen
        .iter()
        .filter(|r| r.contains(&session))
        .count()
}

/// Every way a job can differ from what the topology names, each refused with exit 4 before a
/// single request reaches AWS: the test records requests through a forwarding proxy in front
/// of moto, and the legitimate job passes through the same proxy with exactly two calls.
#[test]
fn jobs_the_topology_does_not_name_are_refused_before_any_sts_call() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let dir = tempfile::tempdir().unwrap();
    let cfg = seeded_topology(dir.path(), false);
    let assume = |vars: &[(&str, Option<&str>)]| {
        let proxy = common::counting_proxy(&moto);
        let mut cmd = rolehop(&moto, &seed);
        cmd.env_remove("ROLEHOP_SERVICE_ROLE_ARN")
            .env_remove("ROLEHOP_DEPLOY_ROLE_ARN")
            .env("CI_JOB_ID", OWN_JOB)
            .env("AWS_ENDPOINT_URL", proxy.url())
            .args(["assume", "--format", "json", "--config"])
            .arg(&cfg)
            .args(["--env", "prod"]);
        for (k, v) in vars {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let out = cmd.output().unwrap();
        (out, own_requests(&proxy))
    };

    let (out, requests) = assume(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        json(&out)["assumed_role_arn"],
        format!("arn:aws:sts::222222222222:assumed-role/rolehop-test-deploy/gl-42-1001-{OWN_JOB}")
    );
    assert_eq!(requests, 2, "the legitimate job makes both hops");

    // (what, variables set (Some) or removed (None), what the refusal says)
    type Vars<'a> = &'a [(&'a str, Option<&'a str>)];
    let cases: &[(&str, Vars, &str)] = &[
        (
            "another project",
            &[("CI_PROJECT_PATH", Some("acme/tools"))],
            "project: `acme/tools` (CI_PROJECT_PATH) is not allowed; allowed projects: `acme/shop`",
        ),
        (
            "a sibling project sharing a prefix",
            &[("CI_PROJECT_PATH", Some("acme/shop-fork"))],
            "project: `acme/shop-fork` (CI_PROJECT_PATH)",
        ),
        (
            "a subgroup project",
            &[("CI_PROJECT_PATH", Some("acme/shop/sub"))],
            "project: `acme/shop/sub` (CI_PROJECT_PATH)",
        ),
        (
            "a tag named like the allowed branch",
            &[("CI_COMMIT_BRANCH", None), ("CI_COMMIT_TAG", Some("main"))],
            "ref: tag `main` (CI_COMMIT_TAG) is not allowed; allowed tags: none",
        ),
        (
            "another protected branch",
            &[
                ("CI_COMMIT_BRANCH", Some("release")),
                ("CI_COMMIT_REF_NAME", Some("release")),
            ],
            "ref: branch `release` (CI_COMMIT_BRANCH) is not allowed; allowed branches: `main`",
        ),
        (
            "another GitLab environment",
            &[("CI_ENVIRONMENT_NAME", Some("staging"))],
            "environment: `staging` (CI_ENVIRONMENT_NAME) is not allowed; allowed environments: `production`",
        ),
        (
            "no GitLab environment",
            &[("CI_ENVIRONMENT_NAME", None)],
            "CI_ENVIRONMENT_NAME is not set",
        ),
    ];
    for (what, vars, says) in cases {
        let (out, requests) = assume(vars);
        let e = stderr(&out);
        assert_eq!(out.status.code(), Some(4), "{what}: {e}");
        assert!(
            e.contains("refusing to hand out credentials for environment `prod`"),
            "{what}: {e}"
        );
        assert!(e.contains(says), "{what}: {e}");
        assert!(e.contains("defence in depth"), "{what}: {e}");
        assert!(out.stdout.is_empty(), "{what}: no credentials printed");
        assert_eq!(requests, 0, "{what}: no request may reach AWS");
    }

    // OIDC mode too: the trust policy is the enforcement there, the check an early, clear
    // error, made before the ID token is even read.
    std::fs::create_dir(dir.path().join("oidc")).unwrap();
    let oidc_cfg = seeded_topology(&dir.path().join("oidc"), true);
    let proxy = common::counting_proxy(&moto);
    let out = rolehop(&moto, &seed)
        .env_remove("ROLEHOP_SERVICE_ROLE_ARN")
        .env_remove("ROLEHOP_DEPLOY_ROLE_ARN")
        .env("CI_JOB_ID", OWN_JOB)
        .env("AWS_ENDPOINT_URL", proxy.url())
        .env("CI_PROJECT_PATH", "acme/shop-fork")
        .env(
            "ROLEHOP_ID_TOKEN",
            id_token(
                "project_path:acme/shop-fork:ref_type:branch:ref:main",
                "https://aws.example",
                600,
            ),
        )
        .args(["assume", "--config"])
        .arg(&oidc_cfg)
        .args(["--env", "prod"])
        .output()
        .unwrap();
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{e}");
    assert!(
        e.contains("project: `acme/shop-fork` (CI_PROJECT_PATH)"),
        "{e}"
    );
    assert_eq!(own_requests(&proxy), 0, "no request may reach AWS");
}
