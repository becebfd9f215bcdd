//! `cargo bench -p rolehop --bench gate_chain [-- RUNS]`: the whole gate-mode chain against
//! moto, next to the direct web-identity chain, measured in the same run. Each run is one
//! `rolehop assume --format json` process, start to credentials printed:
//!
//! - gate: POST the ID token to `rolehop gate serve` on loopback (real RS256 verification
//!   against testkit's issuer with a warm JWKS, claim rules, AssumeRole with 13 tags and a
//!   SourceIdentity on moto), then the deployment hop;
//! - web identity: AssumeRoleWithWebIdentity on moto, then the deployment hop.
//!
//! The two alternate run by run, so machine load hits both alike. Prints p50, p90 and mean.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rolehop_testkit::oidc_issuer::OidcIssuer;
use rolehop_testkit::{Moto, free_port, http_request, seed_chain};

mod common;

use common::AUD;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(40);
    let bin = env!("CARGO_BIN_EXE_rolehop");
    let (moto, issuer) = (Moto::start(), OidcIssuer::start());
    let seed = seed_chain(&moto, "111111111111", "222222222222");

    let dir = tempfile::tempdir().unwrap();
    let config = common::write_gate_config(dir.path(), &issuer.url(), &seed.service_role_arn);
    let port = free_port();
    let mut gate = Command::new(bin)
        .args(["gate", "serve", "--threads", "2"])
        .args(["--listen", &format!("127.0.0.1:{port}"), "--config"])
        .arg(&config)
        .env("AWS_ENDPOINT_URL", moto.url())
        .env("AWS_ACCESS_KEY_ID", &seed.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &seed.secret_access_key)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !matches!(http_request(port, "GET", "/healthz", &[], ""), Ok((200, _))) {
        assert!(Instant::now() < deadline, "the gate did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    let job = |base: &str, token: &str| {
        let mut cmd = Command::new(bin);
        cmd.args(["assume", "--format", "json", "--base", base])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("HOME", "/nonexistent")
            .env("AWS_ENDPOINT_URL", moto.url())
            .env("AWS_REGION", "eu-west-1")
            .env("ROLEHOP_SERVICE_ROLE_ARN", &seed.service_role_arn)
            .env("ROLEHOP_DEPLOY_ROLE_ARN", &seed.deploy_role_arn)
            .env("ROLEHOP_GATE_URL", format!("http://127.0.0.1:{port}/"))
            .env("ROLEHOP_GATE_ENV", "prod")
            .env("ROLEHOP_ID_TOKEN", token)
            .env("CI_PROJECT_PATH", "acme/shop")
            .env("CI_PROJECT_ID", "42")
            .env("CI_PIPELINE_ID", "1001")
            .env("CI_JOB_ID", "5005")
            .env("CI_COMMIT_REF_NAME", "main")
            .env("CI_COMMIT_REF_PROTECTED", "true")
            .env("CI_ENVIRONMENT_NAME", "production")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let t = Instant::now();
        let out = cmd.output().unwrap();
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        assert!(
            out.status.success(),
            "{base}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ms
    };
    // The `--base gate` invocation ignores the service role ARN (the gate picks it); the web
    // identity one ignores the gate settings.
    let token = || issuer.token(AUD).claim("job_id", "5005").sign();
    // Warm up both (the gate's first request fetches the JWKS; moto's first calls are slow).
    for _ in 0..3 {
        job("gate", &token());
        job("oidc", &token());
    }
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let (mut gate_ms, mut web_ms) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        gate_ms.push(job("gate", &token()));
        web_ms.push(job("oidc", &token()));
    }
    let load_after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let _ = gate.kill();
    let _ = gate.wait();

    println!("rolehop assume, whole process, {runs} runs each, alternating (moto on loopback)");
    println!(
        "load average before: {}  after: {}",
        load_before.trim(),
        load_after.trim()
    );
    println!("| chain | p50 | p90 | mean |");
    println!("|---|---|---|---|");
    for (name, v) in [
        ("ID token -> claim gate -> deployment role", &mut gate_ms),
        (
            "ID token -> AssumeRoleWithWebIdentity -> deployment role",
            &mut web_ms,
        ),
    ] {
        v.sort_by(f64::total_cmp);
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {:.1} ms |",
            percentile(v, 0.5),
            percentile(v, 0.9),
            mean
        );
    }
}
