//! `rolehop exec` serving renewing credentials on loopback, end to end against moto: the real
//! aws CLI, boto3 and an aws-sdk-rust program take their credentials from rolehop's endpoint
//! and keep working after rolehop has renewed them. Renewals are forced with a short refresh
//! window: STS issues no session under 15 minutes, so a 15-minute session renewed 14m55s
//! before it expires is renewed every 5 seconds. The attacks on the endpoint (every request
//! that is not the command's own is refused) are in `attacks/local.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command as StdCommand;
use std::time::Duration;

use rolehop_testkit::{Moto, seed_chain, venv_tool};

mod common;

use common::*;

/// Sessions of 15 minutes, renewed every 5 seconds.
const FAST: [&str; 6] = [
    "--refresh",
    "on",
    "--duration",
    "15m",
    "--refresh-before",
    "895s",
];

/// The aws-sdk-rust program (`crates/aws/examples/sdk_child.rs`), built on first use into
/// this test's own target directory.
fn sdk_child() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let debug = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = StdCommand::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "rolehop-aws",
            "--example",
            "sdk_child",
        ])
        .env("CARGO_TARGET_DIR", debug.parent().unwrap())
        .current_dir(rolehop_testkit::workspace_root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    debug.join("examples/sdk_child")
}

fn stderr_of(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// boto3 with one session for the whole run, as a long deploy script holds it: the
/// credentials object refreshes itself from the endpoint when they near expiry.
const BOTO3: &str = r#"
import boto3, json, sys, time
s = boto3.Session()
c = s.get_credentials()
sts = s.client("sts")
k1 = c.get_frozen_credentials().access_key
a1 = sts.get_caller_identity()["Arn"]
time.sleep(int(sys.argv[1]))
k2 = c.get_frozen_credentials().access_key
a2 = sts.get_caller_identity()["Arn"]
print(json.dumps({"key1": k1, "key2": k2, "arn1": a1, "arn2": a2}))
"#;

/// The access key the aws CLI resolves (`aws configure list` shows its last four characters)
/// and where it came from.
fn cli_key(aws: &str) -> String {
    format!("\"{aws}\" configure list | awk '$1==\"access_key\" {{print $2, $3}}'")
}

#[test]
fn the_aws_cli_boto3_and_aws_sdk_rust_keep_working_after_rolehop_renews_their_credentials() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let sdk = sdk_child();
    let dir = tempfile::tempdir().unwrap();
    let aws = venv_tool("aws").display().to_string();
    let py = venv_tool("python").display().to_string();
    std::fs::write(dir.path().join("deploy_boto3.py"), BOTO3).unwrap();
    // One deploy script running the three clients; 7 s waits span at least one renewal.
    let script = format!(
        r#"set -e
test -z "$AWS_ACCESS_KEY_ID" && test -z "$AWS_SECRET_ACCESS_KEY"
"{aws}" sts get-caller-identity --query Arn --output text > cli1
{cli_key} > clikey1
"{py}" deploy_boto3.py 7 > boto3.json
"{aws}" sts get-caller-identity --query Arn --output text > cli2
{cli_key} > clikey2
SDK_CHILD_WAIT_SECS=7 SDK_CHILD_BUFFER_SECS=895 "{sdk}" > sdk.json
"#,
        cli_key = cli_key(&aws),
        sdk = sdk.display()
    );
    let out = rolehop(&moto, &seed)
        .current_dir(dir.path())
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["exec"])
        .args(FAST)
        .args(["--", "sh", "-c", &script])
        .timeout(Duration::from_secs(180))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("rolehop: renewed the credentials"), "{err}");
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
    assert_eq!(read("cli1").trim(), DEPLOY_SESSION);
    assert_eq!(read("cli2").trim(), DEPLOY_SESSION);
    let (k1, k2) = (read("clikey1"), read("clikey2"));
    assert!(
        k1.contains("container-role"),
        "the CLI read the endpoint: {k1}"
    );
    assert_ne!(k1, k2, "the CLI got the renewed session");
    for file in ["boto3.json", "sdk.json"] {
        let v: serde_json::Value = serde_json::from_str(&read(file)).unwrap();
        assert_eq!(v["arn1"], DEPLOY_SESSION, "{file}: {v}");
        assert_eq!(v["arn2"], DEPLOY_SESSION, "{file}: {v}");
        assert_ne!(
            v["key1"], v["key2"],
            "{file} still used the first session: {v}"
        );
    }
    // Nothing of the base identity or the served token reaches the job log.
    assert!(!err.contains(&seed.secret_access_key));
    assert!(!stdout(&out).contains(&seed.secret_access_key));
}

/// A job longer than one session gets the endpoint without asking; a job that fits in one
/// session keeps fixed credentials in its environment. A job ending in 20 minutes gets a
/// session cut to its end.
#[test]
fn the_job_timeout_decides_serving_and_cuts_the_session() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let env_of = |timeout: &str, extra: &[&str]| {
        let out = rolehop(&moto, &seed)
            .env("CI_JOB_TIMEOUT", timeout)
            .args(["exec"])
            .args(extra)
            .args(["--", "sh", "-c", "env"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        (stdout(&out), stderr(&out))
    };
    let (long, _) = env_of("10800", &[]);
    assert!(
        long.contains("AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:"),
        "{long}"
    );
    assert!(long.contains("AWS_CONTAINER_AUTHORIZATION_TOKEN="));
    for gone in [
        "AWS_ACCESS_KEY_ID=",
        "AWS_SECRET_ACCESS_KEY=",
        "AWS_SESSION_TOKEN=",
    ] {
        assert!(!long.contains(gone), "{gone} reached a served command");
    }
    assert!(!long.contains(&seed.secret_access_key));
    let (short, _) = env_of("3600", &[]);
    assert!(short.contains("AWS_SESSION_TOKEN="));
    assert!(!short.contains("AWS_CONTAINER_CREDENTIALS_FULL_URI"));

    let (_, err) = env_of("1200", &["--refresh", "on"]);
    assert!(err.contains("session cut from 1h to 19m5"), "{err}");
    assert!(
        !err.contains("renewed"),
        "a session that lasts the job is never renewed: {err}"
    );
    let out = rolehop(&moto, &seed)
        .env("CI_JOB_TIMEOUT", "1h")
        .args(["exec", "--refresh", "on", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("`CI_JOB_TIMEOUT` is `1h`"));
}

/// With an ID token, renewals go on while the token is valid; then the job is told, in its
/// log, until when its credentials last and why they cannot be renewed.
#[test]
fn with_an_id_token_the_job_is_told_when_renewals_must_stop() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    // Valid for 40 s: renewals are possible until 30 s before that.
    let token = id_token(
        "project_path:acme/shop:ref_type:branch:ref:main",
        "https://aws.example",
        40,
    );
    let out = rolehop(&moto, &seed)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("ROLEHOP_ID_TOKEN", &token)
        .args(["exec", "--base", "oidc"])
        .args(FAST)
        .args(["--", "sh", "-c", "sleep 13; exit 4"])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("rolehop: renewed the credentials"), "{err}");
    assert!(
        err.contains("the deployment credentials cannot be renewed after")
            && err.contains("the GitLab ID token expires then"),
        "{err}"
    );
    assert!(!err.contains(&token));
}

/// The command's exit status and the runner's signals pass through rolehop as they do when
/// it replaces itself: a TERM sent to rolehop reaches the command, which may clean up.
#[test]
fn a_served_command_gets_the_runners_signals_and_its_exit_status_is_the_jobs() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let dir = tempfile::tempdir().unwrap();
    let script = "trap 'echo cleaned > cleaned; exit 9' TERM; touch started; \
                  while true; do sleep 0.1; done";
    let mut c = StdCommand::new(assert_cmd::cargo::cargo_bin("rolehop"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("AWS_ENDPOINT_URL", moto.url())
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ACCESS_KEY_ID", &seed.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &seed.secret_access_key)
        .env("ROLEHOP_SERVICE_ROLE_ARN", &seed.service_role_arn)
        .env("ROLEHOP_DEPLOY_ROLE_ARN", &seed.deploy_role_arn)
        .current_dir(dir.path())
        .args(["exec", "--refresh", "on", "--", "sh", "-c", script])
        .stderr(std::process::Stdio::piped());
    let child = c.spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !dir.path().join("started").exists() {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    StdCommand::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(9), "{}", stderr_of(&out));
    assert!(dir.path().join("cleaned").exists());

    let out = rolehop(&moto, &seed)
        .args(["exec", "--refresh", "on", "--", "sh", "-c", "kill -TERM $$"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(143), "as a shell reports a signal");
}

/// Several target accounts in one job: `--profile shared-net` serves a second profile next to
/// the default credentials; `AWS_PROFILE` selects it for the aws CLI, boto3 and aws-sdk-rust,
/// and the base identity still never reaches the command.
#[test]
fn one_exec_serves_a_profile_per_target_account() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    second_account_deploy_role(&moto, &seed);
    let dir = tempfile::tempdir().unwrap();
    let topo = seeded_topology(dir.path(), false);
    let text = std::fs::read_to_string(&topo).unwrap() + "shared-net = \"333333333333\"\n";
    std::fs::write(&topo, text).unwrap();
    let sdk = sdk_child();
    let aws = venv_tool("aws").display().to_string();
    let py = venv_tool("python").display().to_string();
    let script = format!(
        r#"set -e
test -z "$AWS_SECRET_ACCESS_KEY"
"{aws}" sts get-caller-identity --query Arn --output text > default
AWS_PROFILE=shared-net "{aws}" sts get-caller-identity --query Arn --output text > net-cli
AWS_PROFILE=shared-net "{py}" -c 'import boto3; print(boto3.client("sts").get_caller_identity()["Arn"])' > net-boto3
AWS_PROFILE=shared-net "{sdk}" > net-sdk.json
"#,
        sdk = sdk.display()
    );
    let out = rolehop(&moto, &seed)
        .env_remove("ROLEHOP_SERVICE_ROLE_ARN")
        .env_remove("ROLEHOP_DEPLOY_ROLE_ARN")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .current_dir(dir.path())
        .arg("exec")
        .arg("--config")
        .arg(&topo)
        .args([
            "--env",
            "prod",
            "--account",
            "prod-eu",
            "--profile",
            "shared-net",
        ])
        .args(["--", "sh", "-c", &script])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let read = |f: &str| {
        std::fs::read_to_string(dir.path().join(f))
            .unwrap()
            .trim()
            .to_owned()
    };
    assert_eq!(read("default"), DEPLOY_SESSION);
    let net = "arn:aws:sts::333333333333:assumed-role/rolehop-test-deploy/gl-42-1001-5005";
    assert_eq!(read("net-cli"), net);
    assert_eq!(read("net-boto3"), net);
    let v: serde_json::Value = serde_json::from_str(&read("net-sdk.json")).unwrap();
    assert_eq!(v["arn1"], net, "{v}");
}
