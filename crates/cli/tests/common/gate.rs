//! `rolehop gate serve` on loopback for the gate tests (gate.rs, gate_job.rs, gate_pipeline.rs):
//! the real binary with a config and the gate's own AWS keys, waited for on `/healthz`, its log
//! kept for the assertions that it never holds a token or credentials, killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rolehop_testkit::oidc_issuer::OidcIssuer;
use rolehop_testkit::{Moto, SeededChain, free_port, http_request};
use serde_json::{Value, json};

/// The audience of the hand-written gate config of [`serve`].
pub const AUD: &str = "https://gate.rolehop.test";

/// A running gate.
pub struct Gate {
    child: Child,
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gate {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Everything the gate wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    pub fn post(&self, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
        let (status, text) = http_request(self.port, "POST", "/", headers, body).unwrap();
        let v = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }));
        (status, v)
    }

    /// A job's exchange: `{"environment", "token"}` as JSON.
    pub fn exchange(&self, env: &str, token: &str) -> (u16, Value) {
        self.post(
            &[("Content-Type", "application/json")],
            &json!({"environment": env, "token": token}).to_string(),
        )
    }
}

/// A gate config for `prod` of the seeded chain: protected `main` and `release/*` of project 42
/// deploying to the protected `production` environment, no merge request pipelines, replays
/// refused.
pub fn write_config(dir: &Path, issuer: &str, seed: &SeededChain) -> PathBuf {
    let path = dir.join("gate.toml");
    std::fs::write(
        &path,
        format!(
            r#"issuer = "{issuer}"
audience = "{AUD}"
region = "eu-west-1"
replay = true

[environments.prod]
service_role_arn = "{}"

[environments.prod.rules]
project_ids = ["42"]
branches = ["main", "release/*"]
ref_protected = true
environments = ["production"]
environment_protected = true
pipeline_sources = {{ deny = ["merge_request_event"] }}
"#,
            seed.service_role_arn
        ),
    )
    .unwrap();
    path
}

/// `rolehop gate serve` with [`write_config`]'s config and the seeded broker user's keys as
/// the gate's own identity; `extra` arguments after the config.
pub fn serve(moto: &Moto, seed: &SeededChain, issuer: &OidcIssuer, extra: &[&str]) -> Gate {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &issuer.url(), seed);
    serve_config(
        moto,
        dir,
        &config,
        (&seed.access_key_id, &seed.secret_access_key, None),
        extra,
    )
}

/// `rolehop gate serve --config <config>` with the given AWS credentials (key id, secret,
/// session token) as its identity, logging at trace level into `dir`, which it keeps.
pub fn serve_config(
    moto: &Moto,
    dir: tempfile::TempDir,
    config: &Path,
    creds: (&str, &str, Option<&str>),
    extra: &[&str],
) -> Gate {
    let port = free_port();
    let log = dir.path().join("gate.log");
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("rolehop"));
    cmd.args([
        "gate",
        "serve",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--config",
    ])
    .arg(config)
    .args(extra)
    .env_clear()
    .env("PATH", std::env::var("PATH").unwrap())
    .env("AWS_ENDPOINT_URL", moto.url())
    .env("AWS_ACCESS_KEY_ID", creds.0)
    .env("AWS_SECRET_ACCESS_KEY", creds.1)
    .env("ROLEHOP_LOG", "trace")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap());
    if let Some(token) = creds.2 {
        cmd.env("AWS_SESSION_TOKEN", token);
    }
    let gate = Gate {
        child: cmd.spawn().unwrap(),
        port,
        log,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !matches!(http_request(port, "GET", "/healthz", &[], ""), Ok((200, _))) {
        assert!(
            Instant::now() < deadline,
            "gate did not start: {}",
            gate.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    gate
}
