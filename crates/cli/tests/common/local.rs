//! Setup shared by the tests of credentials delivered on the runner (the credential-process
//! cache, the refresh endpoint) and by their attacks in `attacks/local.rs`: STS behind a
//! counting proxy, a job's environment for `credential-process`, and `rolehop exec` serving
//! its endpoint to a command that waits to be released.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use rolehop_testkit::{FaultPlan, FaultProxy, Moto, SeededChain, venv_tool};

/// The deployment session every test job (project 42, pipeline 1001, job 5005) gets.
pub const DEPLOY_SESSION: &str =
    "arn:aws:sts::222222222222:assumed-role/rolehop-test-deploy/gl-42-1001-5005";

/// A proxy in front of moto that forwards everything and records each request, so a test
/// counts the STS calls the chain really made.
pub fn counting_proxy(moto: &Moto) -> FaultProxy {
    FaultProxy::start(moto.port, FaultPlan::none())
}

/// AssumeRole calls `proxy` saw, all jobs together.
pub fn assume_calls(proxy: &FaultProxy) -> usize {
    proxy
        .stats()
        .seen
        .iter()
        .filter(|r| r.contains("Action=AssumeRole"))
        .count()
}

/// AssumeRole calls `proxy` saw from job `job`'s chain.
pub fn chain_calls(proxy: &FaultProxy, job: &str) -> usize {
    let session = format!("gl-42-1001-{job}");
    proxy
        .stats()
        .seen
        .iter()
        .filter(|r| r.contains("Action=AssumeRole") && r.contains(&session))
        .count()
}

/// The environment `common::rolehop` sets: STS at `sts_url`, the broker keys and role ARNs
/// of `seed`, outside any job.
pub fn chain_env(sts_url: &str, seed: &SeededChain) -> Vec<(String, String)> {
    [
        ("PATH", std::env::var("PATH").unwrap()),
        ("HOME", "/nonexistent".into()),
        ("AWS_ENDPOINT_URL", sts_url.to_owned()),
        ("AWS_REGION", "eu-west-1".into()),
        ("AWS_ACCESS_KEY_ID", seed.access_key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY", seed.secret_access_key.clone()),
        ("ROLEHOP_SERVICE_ROLE_ARN", seed.service_role_arn.clone()),
        ("ROLEHOP_DEPLOY_ROLE_ARN", seed.deploy_role_arn.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// An AWS config with a `deploy` profile whose credentials come from `rolehop
/// credential-process` (the rolehop under test).
pub fn credential_process_config(dir: &Path) -> PathBuf {
    let p = dir.join("config");
    std::fs::write(
        &p,
        format!(
            "[profile deploy]\nregion = eu-west-1\ncredential_process = {} credential-process\n",
            assert_cmd::cargo::cargo_bin("rolehop").display()
        ),
    )
    .unwrap();
    p
}

/// `aws sts get-caller-identity --profile deploy` `n` times in one job script.
pub fn aws_cli_script(n: usize) -> String {
    format!(
        "for i in $(seq {n}); do \"{}\" sts get-caller-identity --profile deploy --query Arn --output text || exit 1; done",
        venv_tool("aws").display()
    )
}

/// The environment of job `job_id` on a protected `main`: the chain's, STS behind `proxy`,
/// the AWS config `config` and the cache under `cache`.
pub fn job_vars(
    seed: &SeededChain,
    proxy: &FaultProxy,
    cache: &Path,
    config: &Path,
    job_id: &str,
) -> Vec<(String, String)> {
    let mut v = chain_env(&proxy.url(), seed);
    v.extend(
        [
            ("AWS_CONFIG_FILE", config.display().to_string()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("ROLEHOP_CACHE_DIR", cache.display().to_string()),
            ("CI_PROJECT_PATH", "acme/shop".into()),
            ("CI_PROJECT_ID", "42".into()),
            ("CI_PIPELINE_ID", "1001".into()),
            ("CI_JOB_ID", job_id.into()),
            ("CI_COMMIT_REF_NAME", "main".into()),
            ("CI_COMMIT_BRANCH", "main".into()),
            ("CI_COMMIT_REF_PROTECTED", "true".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v)),
    );
    v.sort();
    v
}

/// `sh -c script` in a job's environment.
pub fn sh(vars: &[(String, String)], script: &str) -> Output {
    Command::new("sh")
        .env_clear()
        .envs(vars.iter().cloned())
        .args(["-c", script])
        .output()
        .unwrap()
}

/// `rolehop credential-process` in a job's environment.
pub fn credential_process(vars: &[(String, String)]) -> Output {
    assert_cmd::Command::cargo_bin("rolehop")
        .unwrap()
        .env_clear()
        .envs(vars.iter().cloned())
        .arg("credential-process")
        .output()
        .unwrap()
}

/// This process's user id.
pub fn uid() -> u32 {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The permission bits of `p`.
pub fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// `rolehop exec --refresh on` serving its endpoint to a command that waits for `release`.
pub struct Serving {
    pub child: std::process::Child,
    pub url: String,
    pub token: String,
    pub port: u16,
    pub path: String,
    pub dir: tempfile::TempDir,
}

impl Serving {
    /// Starts it and waits until the command has written the endpoint's URL and token.
    pub fn start(moto: &Moto, seed: &SeededChain) -> Serving {
        let dir = tempfile::tempdir().unwrap();
        let script = "echo \"$AWS_CONTAINER_CREDENTIALS_FULL_URI\" > url.tmp && mv url.tmp url && \
                      echo \"$AWS_CONTAINER_AUTHORIZATION_TOKEN\" > token && \
                      while ! test -e release; do sleep 0.1; done; exit 3";
        let child = Command::new(assert_cmd::cargo::cargo_bin("rolehop"))
            .env_clear()
            .envs(chain_env(&moto.url(), seed))
            .env("CI_PROJECT_PATH", "acme/shop")
            .env("CI_PROJECT_ID", "42")
            .env("CI_PIPELINE_ID", "1001")
            .env("CI_JOB_ID", "5005")
            .env("CI_COMMIT_REF_PROTECTED", "true")
            .current_dir(dir.path())
            .args(["exec", "--refresh", "on", "--", "sh", "-c", script])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !dir.path().join("url").exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "exec never started its command"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let read = |f: &str| {
            std::fs::read_to_string(dir.path().join(f))
                .unwrap()
                .trim()
                .to_owned()
        };
        let (url, token) = (read("url"), read("token"));
        let rest = url.strip_prefix("http://127.0.0.1:").unwrap();
        let (port, path) = rest.split_once('/').unwrap();
        Serving {
            child,
            port: port.parse().unwrap(),
            path: format!("/{path}"),
            url,
            token,
            dir,
        }
    }

    /// One request to the endpoint: its status and body.
    pub fn request(&self, method: &str, headers: &[(&str, &str)]) -> (u16, String) {
        rolehop_testkit::http_request(self.port, method, &self.path, headers, "").unwrap()
    }

    /// Lets the command end (exit 3) and waits for rolehop; its output.
    pub fn release(self) -> (Output, u16, String, String) {
        std::fs::write(self.dir.path().join("release"), "").unwrap();
        let out = self.child.wait_with_output().unwrap();
        (out, self.port, self.path, self.token)
    }
}

/// A second target account, 333333333333, with a deployment role of the seeded chain's name
/// that trusts its service role: a job deploying to two accounts (`--profile`).
pub fn second_account_deploy_role(moto: &Moto, seed: &SeededChain) {
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{}"}},"Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"]}}]}}"#,
        seed.service_role_arn
    );
    moto.iam(
        "333333333333",
        "CreateRole",
        &[
            ("RoleName", "rolehop-test-deploy"),
            ("AssumeRolePolicyDocument", &trust),
        ],
    );
}
