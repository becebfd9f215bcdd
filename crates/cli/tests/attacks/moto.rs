//! The attacks moto can enforce: the access-keys example rolled out by `rolehop rollout` into a
//! private moto server, then moto's IAM enforcement switched on. moto checks identity policies
//! (the broker user's, the service role's) and same-account trust by exact ARN; it never checks
//! cross-account trust, SourceIdentity, tags or web-identity tokens, so only attacks refused by
//! an identity policy are run here.

use std::path::PathBuf;
use std::process::Output;

use assert_cmd::Command;
use rolehop_testkit::{Moto, aws_cli, xml_value};

pub const BROKER: &str = "111111111111";
pub const PROD_DEPLOY: &str = "arn:aws:iam::222222222222:role/rolehop-prod-deploy";
pub const PROD_SERVICE: &str = "arn:aws:iam::111111111111:role/rolehop-prod-service";
pub const NONPROD_SERVICE: &str = "arn:aws:iam::111111111111:role/rolehop-nonprod-service";

/// Access keys (id, secret).
pub type Keys = (String, String);

/// The rendered access-keys example, rolled out, with a key pair of each broker user.
pub struct Deployed {
    pub moto: Moto,
    pub prod: Keys,
    pub nonprod: Keys,
    home: tempfile::TempDir,
}

pub fn access_keys_example() -> PathBuf {
    rolehop_testkit::workspace_root().join("examples/access-keys/rolehop.toml")
}

fn keys_of(moto: &Moto, user: &str) -> Keys {
    let xml = moto.iam(BROKER, "CreateAccessKey", &[("UserName", user)]);
    (
        xml_value(&xml, "AccessKeyId").unwrap(),
        xml_value(&xml, "SecretAccessKey").unwrap(),
    )
}

impl Deployed {
    pub fn start() -> Deployed {
        let moto = Moto::start();
        let home = tempfile::tempdir().unwrap();
        moto.iam(BROKER, "CreateUser", &[("UserName", "admin")]);
        let admin = keys_of(&moto, "admin");
        let out = rolehop_with(&moto, home.path(), &admin)
            .args(["rollout", "--config"])
            .arg(access_keys_example())
            .output()
            .unwrap();
        assert!(out.status.success(), "rollout: {}", stderr(&out));
        // What `rolehop rotate` would store in GitLab: a key pair of each broker user.
        let d = Deployed {
            prod: keys_of(&moto, "rolehop-prod"),
            nonprod: keys_of(&moto, "rolehop-nonprod"),
            moto,
            home,
        };
        d.moto.enable_auth();
        // The control: the prod job itself gets through the rendered IAM.
        let out = d.job(&d.prod).output().unwrap();
        assert!(
            out.status.success(),
            "the legitimate prod job failed: {}",
            stderr(&out)
        );
        d
    }

    /// `rolehop` with only these keys, the endpoint and a clean home.
    pub fn rolehop(&self, keys: &Keys) -> Command {
        rolehop_with(&self.moto, self.home.path(), keys)
    }

    /// `rolehop assume` as the prod deploy job of the example runs it, with `keys`.
    pub fn job(&self, keys: &Keys) -> Command {
        let mut c = self.rolehop(keys);
        crate::common::job_env(&mut c);
        c.args([
            "assume",
            "--format",
            "json",
            "--env",
            "prod",
            "--account",
            "prod-eu",
            "--config",
        ])
        .arg(access_keys_example());
        c
    }

    /// The real aws CLI with `keys` (and a session token when given), from outside any job.
    pub fn aws(&self, keys: &Keys, token: Option<&str>) -> std::process::Command {
        let mut c = aws_cli(&self.moto);
        c.env("AWS_ACCESS_KEY_ID", &keys.0)
            .env("AWS_SECRET_ACCESS_KEY", &keys.1);
        if let Some(t) = token {
            c.env("AWS_SESSION_TOKEN", t);
        }
        c
    }
}

fn rolehop_with(moto: &Moto, home: &std::path::Path, keys: &Keys) -> Command {
    let mut c = Command::cargo_bin("rolehop").unwrap();
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_ACCESS_KEY_ID", &keys.0)
        .env("AWS_SECRET_ACCESS_KEY", &keys.1)
        .env("AWS_ENDPOINT_URL", moto.url())
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    c
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs an aws CLI call and returns its parsed JSON answer, or the error text.
pub fn aws_json(mut c: std::process::Command, args: &[&str]) -> Result<serde_json::Value, String> {
    let out = c.args(args).args(["--output", "json"]).output().unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(stderr(&out))
    }
}
