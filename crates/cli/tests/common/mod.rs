//! Helpers shared by the CLI integration tests: a GitLab job's environment, a rolehop
//! command pointed at a private moto, and test-signed GitLab ID tokens.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod gate;

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use rolehop_testkit::{Moto, SeededChain};

pub mod local;

pub use local::*;

pub const BROKER: &str = "111111111111";
pub const TARGET: &str = "222222222222";

/// A GitLab job's predefined variables, as a protected `main` pipeline has them.
pub fn job_env(cmd: &mut Command) {
    cmd.env("CI_PROJECT_PATH", "acme/shop")
        .env("CI_PROJECT_ID", "42")
        .env("CI_PIPELINE_ID", "1001")
        .env("CI_JOB_ID", "5005")
        .env("CI_COMMIT_REF_NAME", "main")
        .env("CI_COMMIT_BRANCH", "main")
        .env("CI_COMMIT_REF_PROTECTED", "true")
        .env("CI_ENVIRONMENT_NAME", "production");
}

pub fn rolehop(moto: &Moto, seed: &SeededChain) -> Command {
    let mut cmd = Command::cargo_bin("rolehop").unwrap();
    cmd.env_clear().envs(chain_env(&moto.url(), seed));
    job_env(&mut cmd);
    cmd
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

/// Signs a GitLab-shaped ID token with the test key (moto does not verify it; STS would).
pub fn id_token(sub: &str, aud: &str, exp_in: i64) -> String {
    let key = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/test-oidc-es256.pem"),
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = serde_json::json!({
        "iss": "https://gitlab.example.com", "sub": sub, "aud": aud,
        "iat": now, "nbf": now, "exp": now + exp_in,
        "project_path": "acme/shop", "ref": "main", "ref_type": "branch", "ref_protected": "true",
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
        &claims,
        &jsonwebtoken::EncodingKey::from_ec_pem(&key).unwrap(),
    )
    .unwrap()
}

/// A topology matching what `rolehop_testkit::seed_chain` creates, in `mode`.
pub fn seeded_topology(dir: &Path, oidc: bool) -> std::path::PathBuf {
    let auth = if oidc {
        "mode = \"oidc\"\nissuer = \"https://gitlab.example.com\"\naudience = \"https://aws.example\""
    } else {
        "mode = \"access-keys\""
    };
    let text = format!(
        r#"[broker]
account_id = "111111111111"
region = "eu-west-1"

[auth]
{auth}

[environments.prod]
protected = true
service_role = "rolehop-test-service"
deployment_role = "rolehop-test-deploy"
broker_user = "rolehop-test"

[environments.prod.gitlab]
projects = ["acme/shop"]
branches = ["main"]
environments = ["production"]

[environments.prod.accounts]
prod-eu = "222222222222"
"#
    );
    let path = dir.join("rolehop.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Secret key and session token values in any output format of `assume`.
pub fn issued_in(out: &str) -> Vec<String> {
    let mut found = Vec::new();
    for key in [
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "SecretAccessKey",
        "SessionToken",
        "secret_access_key",
        "session_token",
    ] {
        for (i, _) in out.match_indices(key) {
            let v: String = out[i + key.len()..]
                .trim_start_matches(['=', '"', ':', ' ', '\''])
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '+' | '='))
                .collect();
            if v.len() >= 20 && !found.contains(&v) {
                found.push(v);
            }
        }
    }
    found
}

/// `aws sts get-caller-identity` (the real CLI) with the `credentials` object of rolehop's
/// `--format json` document: who those credentials really are.
pub fn caller_identity(moto: &Moto, credentials: &serde_json::Value) -> serde_json::Value {
    let c = credentials;
    let who = rolehop_testkit::aws_cli(moto)
        .args(["sts", "get-caller-identity", "--output", "json"])
        .env("AWS_ACCESS_KEY_ID", c["access_key_id"].as_str().unwrap())
        .env(
            "AWS_SECRET_ACCESS_KEY",
            c["secret_access_key"].as_str().unwrap(),
        )
        .env("AWS_SESSION_TOKEN", c["session_token"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(who.status.success(), "{}", stderr(&who));
    serde_json::from_slice(&who.stdout).unwrap()
}

/// A maximal run of exactly 40 base64 characters mixing upper case, lower case and digits: an
/// AWS secret access key's shape (hex hashes and signatures are lower case only).
pub fn secret_key_like(text: &str) -> Option<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '/'))
        .find(|w| {
            w.len() == 40
                && w.chars().any(|c| c.is_ascii_uppercase())
                && w.chars().any(|c| c.is_ascii_lowercase())
                && w.chars().any(|c| c.is_ascii_digit())
        })
        .map(str::to_owned)
}

/// gitlab-ci-local in `repo`, as the pipeline tests run it: `path` as the jobs' PATH, the
/// repository's parent as HOME (no user config of this machine, as in [`commit_shop_repo`]),
/// each job in its own shell, `CI_COMMIT_REF_PROTECTED` as GitLab would say it for the ref,
/// and the jobs' AWS clients pointed at `aws_endpoint` with no shared credentials or instance
/// metadata to fall back on. Callers add their own variables and jobs.
pub fn gitlab_ci_local(
    repo: &Path,
    path: &str,
    protected: bool,
    aws_endpoint: &str,
) -> std::process::Command {
    let mut c = std::process::Command::new("gitlab-ci-local");
    c.current_dir(repo)
        .env("PATH", path)
        .env("HOME", repo.parent().unwrap_or(repo))
        .args([
            "--shell-isolation",
            "--ignore-predefined-vars",
            "CI_COMMIT_REF_PROTECTED",
        ]);
    for variable in [
        format!("CI_COMMIT_REF_PROTECTED={protected}"),
        format!("AWS_ENDPOINT_URL={aws_endpoint}"),
        "AWS_REGION=eu-west-1".to_owned(),
        "AWS_DEFAULT_REGION=eu-west-1".to_owned(),
        "AWS_SHARED_CREDENTIALS_FILE=/dev/null".to_owned(),
        "AWS_EC2_METADATA_DISABLED=true".to_owned(),
    ] {
        c.arg("--variable").arg(variable);
    }
    c
}

/// Commits everything in `repo` as the `acme/shop` project as gitlab-ci-local sees it: it
/// takes CI_PROJECT_PATH from the `origin` remote, and rolehop checks that path against the
/// topology's `projects`. Git runs with its own identity and no user config (`HOME` is `repo`'s
/// parent), so the test does not depend on the machine's git setup.
pub fn commit_shop_repo(repo: &Path, message: &str) {
    let home = repo.parent().unwrap_or(repo);
    for args in [
        &["init", "-q", "-b", "main"][..],
        &[
            "remote",
            "add",
            "origin",
            "https://gitlab.example.com/acme/shop.git",
        ],
        // In the repository's config, not `-c`: gitlab-ci-local reads the user from it.
        &["config", "user.email", "dev@acme.example"],
        &["config", "user.name", "dev"],
        &["add", "-A"],
        &["commit", "-qm", message],
    ] {
        let o = std::process::Command::new("git")
            .args(args)
            .current_dir(repo)
            .env("HOME", home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
