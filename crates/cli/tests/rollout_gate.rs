//! `rolehop rollout` of a gate-mode topology (examples/oidc-gate) against moto: the first
//! rollout needs the gate's binary and refuses to start without it (nothing created); with it,
//! the code is zipped as `bootstrap`, uploaded under its SHA-256 to a private bucket, and each
//! environment's gate function runs it with the rendered config; a second run without the
//! binary keeps the deployed code and changes nothing. (moto creates Lambda functions but
//! cannot invoke them without Docker, and skips `AWS::Lambda::Url`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Output;

use assert_cmd::Command;
use rolehop_testkit::{Moto, xml_value};
use serde_json::Value;

const BROKER: &str = "111111111111";

fn example() -> std::path::PathBuf {
    rolehop_testkit::example("oidc-gate")
}

fn admin_keys(moto: &Moto) -> (String, String) {
    moto.iam(BROKER, "CreateUser", &[("UserName", "admin")]);
    let xml = moto.iam(BROKER, "CreateAccessKey", &[("UserName", "admin")]);
    (
        xml_value(&xml, "AccessKeyId").unwrap(),
        xml_value(&xml, "SecretAccessKey").unwrap(),
    )
}

fn with_keys(
    c: &mut std::process::Command,
    moto: &Moto,
    keys: &(String, String),
    home: &std::path::Path,
) {
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("CI", "true")
        .env("AWS_ACCESS_KEY_ID", &keys.0)
        .env("AWS_SECRET_ACCESS_KEY", &keys.1)
        .env("AWS_DEFAULT_REGION", "eu-west-1")
        .env("AWS_ENDPOINT_URL", moto.url())
        .env("AWS_EC2_METADATA_DISABLED", "true");
}

fn rolehop(moto: &Moto, keys: &(String, String), home: &std::path::Path, args: &[&str]) -> Output {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("rolehop"));
    with_keys(&mut c, moto, keys, home);
    c.arg("rollout").arg("--config").arg(example()).args(args);
    c.output().unwrap()
}

/// The real aws CLI, as the broker account's administrator.
fn aws(moto: &Moto, keys: &(String, String), home: &std::path::Path, args: &[&str]) -> Value {
    let mut c = std::process::Command::new(rolehop_testkit::venv_tool("aws"));
    with_keys(&mut c, moto, keys, home);
    c.args(["--endpoint-url", &moto.url(), "--output", "json"])
        .args(args);
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "aws {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// Nothing was uploaded: a refused or dry-run rollout creates no bucket.
fn assert_no_bucket(moto: &Moto, keys: &(String, String), home: &std::path::Path) {
    let buckets = aws(moto, keys, home, &["s3api", "list-buckets"]);
    assert_eq!(
        buckets["Buckets"].as_array().map(Vec::len),
        Some(0),
        "{buckets}"
    );
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn gate_rollout_uploads_the_code_and_deploys_one_gate_per_environment() {
    let moto = Moto::start();
    let keys = admin_keys(&moto);
    let home = tempfile::tempdir().unwrap();
    // A small Linux x86_64 ELF stands in for the release binary.
    let binary = home.path().join("rolehop-x86_64-linux-gnu");
    rolehop_testkit::stand_in_gate_code(&binary);
    let bucket = "rolehop-gate-code-111111111111-eu-west-1";

    // No binary on the first rollout: refused before anything exists.
    let o = rolehop(&moto, &keys, home.path(), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("has no gate code yet; pass --gate-code"),
        "{}",
        text(&o)
    );
    // Something that is not a Linux x86_64 executable: refused before any AWS call.
    let script = home.path().join("rolehop.sh");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    let o = rolehop(
        &moto,
        &keys,
        home.path(),
        &["--gate-code", script.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("is not a Linux x86_64 executable"));
    assert_no_bucket(&moto, &keys, home.path());

    // A dry run plans with the code and uploads nothing.
    let o = rolehop(
        &moto,
        &keys,
        home.path(),
        &["--dry-run", "--gate-code", binary.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("dry run: nothing was changed"));
    assert_no_bucket(&moto, &keys, home.path());

    let o = rolehop(
        &moto,
        &keys,
        home.path(),
        &["--gate-code", binary.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!(
            "uploading the gate's code to s3://{bucket}/rolehop-gate/"
        )),
        "{}",
        text(&o)
    );

    let objects = aws(
        &moto,
        &keys,
        home.path(),
        &["s3api", "list-objects-v2", "--bucket", bucket],
    );
    let key = objects["Contents"][0]["Key"].as_str().unwrap().to_owned();
    assert!(
        key.starts_with("rolehop-gate/") && key.ends_with(".zip"),
        "{key}"
    );
    let pab = aws(
        &moto,
        &keys,
        home.path(),
        &["s3api", "get-public-access-block", "--bucket", bucket],
    );
    assert_eq!(
        pab["PublicAccessBlockConfiguration"]["BlockPublicPolicy"],
        true
    );

    let rendered = tempfile::tempdir().unwrap();
    let mut r = Command::cargo_bin("rolehop").unwrap();
    r.args(["render", "--config"])
        .arg(example())
        .arg("--out")
        .arg(rendered.path());
    r.assert().success();
    for env in ["prod", "nonprod"] {
        let f = aws(
            &moto,
            &keys,
            home.path(),
            &[
                "lambda",
                "get-function",
                "--function-name",
                &format!("rolehop-{env}-gate"),
            ],
        );
        let c = &f["Configuration"];
        assert_eq!(c["Runtime"], "provided.al2023");
        assert_eq!(c["Handler"], "bootstrap");
        assert_eq!(
            c["Role"],
            format!("arn:aws:iam::111111111111:role/rolehop-{env}-gate")
        );
        let config =
            std::fs::read_to_string(rendered.path().join(format!("gate-{env}.toml"))).unwrap();
        assert_eq!(
            c["Environment"]["Variables"]["ROLEHOP_GATE_CONFIG"],
            config.as_str()
        );
        let role = aws(
            &moto,
            &keys,
            home.path(),
            &[
                "iam",
                "get-role",
                "--role-name",
                &format!("rolehop-{env}-service"),
            ],
        );
        let trust = role["Role"]["AssumeRolePolicyDocument"].to_string();
        assert!(
            trust.contains(&format!("role/rolehop-{env}-gate")),
            "{trust}"
        );
        assert!(!trust.contains("AssumeRoleWithWebIdentity"), "{trust}");
    }

    // Again, without the binary: the deployed code is kept and nothing changes.
    let o = rolehop(&moto, &keys, home.path(), &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("nothing to change"), "{}", text(&o));
    // With the same binary: same key, no upload, nothing to change.
    let o = rolehop(
        &moto,
        &keys,
        home.path(),
        &["--gate-code", binary.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("nothing to change"), "{}", text(&o));
}
