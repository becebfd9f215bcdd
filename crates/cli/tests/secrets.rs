//! Secret hygiene across the whole CLI: every command, in every output format, with `-vvv`
//! and `ROLEHOP_LOG=trace`, succeeding and failing. Base secrets (the broker user's secret
//! key, the ID token, a GitLab token) must appear nowhere; issued session secrets only on the
//! stdout of `assume`/`credential-process`; written profiles must be 0600.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Output;

use rolehop_testkit::{Moto, SeededChain, example, free_port, seed_chain, workspace_root};

mod common;

use common::*;

const GITLAB_TOKEN: &str = "glpat-FAKEgitlabTOKENforHygiene0123";

/// What one run may reveal, and where.
struct Leaks<'a> {
    base: Vec<&'a str>,
    /// Issued secrets known to the test (from the requested output or the child's file).
    issued: Vec<String>,
    /// Whether stdout is the requested credential output of this run.
    stdout_may_hold_issued: bool,
}

fn check(label: &str, out: &Output, leaks: &Leaks<'_>) {
    let (o, e) = (stdout(out), stderr(out));
    assert!(!e.contains("panicked"), "{label}: panicked:\n{e}");
    for s in &leaks.base {
        assert!(!o.contains(s), "{label}: a base secret reached stdout");
        assert!(!e.contains(s), "{label}: a base secret reached stderr");
    }
    for s in &leaks.issued {
        assert!(
            !e.contains(s.as_str()),
            "{label}: an issued secret reached stderr"
        );
        if !leaks.stdout_may_hold_issued {
            assert!(
                !o.contains(s.as_str()),
                "{label}: an issued secret reached stdout"
            );
        }
    }
    // Secrets the test cannot know (sessions issued inside doctor or exec): moto's session
    // tokens share a prefix, and secret keys are 40-character base64 runs.
    let outside = if leaks.stdout_may_hold_issued {
        e.clone()
    } else {
        format!("{o}\n{e}")
    };
    assert!(
        !outside.contains("FQoGZXIvYXdzE"),
        "{label}: a session token outside the requested output"
    );
    if let Some(k) = secret_key_like(&outside) {
        panic!("{label}: something like a secret key outside the requested output: {k}");
    }
}

fn traced(moto: &Moto, seed: &SeededChain, token: &str) -> assert_cmd::Command {
    let mut c = rolehop(moto, seed);
    c.arg("-vvv")
        .env("ROLEHOP_LOG", "trace")
        .env("GITLAB_TOKEN", GITLAB_TOKEN)
        .env("CI_JOB_TOKEN", GITLAB_TOKEN)
        .env("ROLEHOP_ID_TOKEN", token);
    c
}

fn gaad_fixtures() -> Vec<PathBuf> {
    let dir = workspace_root().join("crates/audit/tests/fixtures");
    ["broker-111111111111.json", "prod-222222222222.json"]
        .iter()
        .map(|f| dir.join(f))
        .collect()
}

#[test]
fn no_command_reveals_a_secret_outside_the_requested_output() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let token = id_token(
        "project_path:acme/shop:ref_type:branch:ref:main",
        "https://aws.example",
        600,
    );
    let base = vec![
        seed.secret_access_key.as_str(),
        token.as_str(),
        GITLAB_TOKEN,
    ];
    let dir = tempfile::tempdir().unwrap();
    let runs = std::cell::Cell::new(0);
    let run = |label: &str, c: &mut assert_cmd::Command, allowed: bool| -> Output {
        let out = c.output().unwrap();
        let issued = if allowed {
            issued_in(&stdout(&out))
        } else {
            Vec::new()
        };
        check(
            label,
            &out,
            &Leaks {
                base: base.clone(),
                issued,
                stdout_may_hold_issued: allowed,
            },
        );
        runs.set(runs.get() + 1);
        out
    };

    // The credential commands, succeeding, in every format and both bases.
    for format in ["env", "dotenv", "json", "credential-process"] {
        for b in ["access-keys", "oidc"] {
            let label = format!("assume --format {format} --base {b}");
            let out = run(
                &label,
                traced(&moto, &seed, &token).args(["assume", "--format", format, "--base", b]),
                true,
            );
            assert!(out.status.success(), "{label}: {}", stderr(&out));
            assert_eq!(issued_in(&stdout(&out)).len(), 2, "{label}");
            // The SDK's own trace output is in the haystack too.
            assert!(
                stderr(&out).contains("TRACE"),
                "{label}: trace logging was on"
            );
        }
    }
    let out = run(
        "credential-process",
        traced(&moto, &seed, &token).args(["credential-process"]),
        true,
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // --write-profile: secrets go to 0600 files only.
    let creds = dir.path().join("credentials");
    let config = dir.path().join("config");
    let out = run(
        "assume --write-profile",
        traced(&moto, &seed, &token)
            .args(["assume", "--write-profile", "deploy"])
            .env("AWS_SHARED_CREDENTIALS_FILE", &creds)
            .env("AWS_CONFIG_FILE", &config),
        false,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    for f in [&creds, &config] {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} is {mode:o}", f.display());
    }
    let written = std::fs::read_to_string(&creds).unwrap();
    let issued = issued_in(&written.replace(" = ", "="));
    assert!(issued.len() >= 2, "{written}");
    for s in &issued {
        assert!(!stderr(&out).contains(s.as_str()));
    }

    // exec: the child sees the credentials; rolehop itself prints none of them.
    let child_saw = dir.path().join("child");
    let script = format!(
        "printf '%s\\n%s\\n' \"$AWS_SECRET_ACCESS_KEY\" \"$AWS_SESSION_TOKEN\" > '{}'; echo child-ran",
        child_saw.display()
    );
    let out = traced(&moto, &seed, &token)
        .args(["exec", "--", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let seen: Vec<String> = std::fs::read_to_string(&child_saw)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(seen.len(), 2);
    check(
        "exec",
        &out,
        &Leaks {
            base: base.clone(),
            issued: seen,
            stdout_may_hold_issued: false,
        },
    );
    runs.set(runs.get() + 1);

    // doctor explains; it never shows a credential.
    let cfg = seeded_topology(dir.path(), false);
    let cfg = cfg.to_str().unwrap();
    let out = run(
        "doctor",
        traced(&moto, &seed, &token)
            .args(["doctor", "--config", cfg, "--env", "prod"])
            .env_remove("ROLEHOP_SERVICE_ROLE_ARN")
            .env_remove("ROLEHOP_DEPLOY_ROLE_ARN"),
        false,
    );
    assert!(out.status.code().is_some(), "{}", stderr(&out));

    // The offline commands, with base secrets in the environment.
    let render_out = dir.path().join("render");
    let out = run(
        "render",
        traced(&moto, &seed, &token)
            .args(["render", "--config"])
            .arg(example("oidc"))
            .arg("--out")
            .arg(&render_out),
        false,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    for format in ["table", "json", "sarif", "codequality", "markdown"] {
        let out = run(
            &format!("audit --format {format}"),
            traced(&moto, &seed, &token)
                .args(["audit", "--format", format, "--config"])
                .arg(example("access-keys")),
            false,
        );
        assert!(out.status.code().is_some());
        let out = run(
            &format!("audit --authz-details --format {format}"),
            traced(&moto, &seed, &token)
                .args(["audit", "--format", format, "--authz-details"])
                .args(gaad_fixtures()),
            false,
        );
        assert!(out.status.code().is_some());
    }
    for format in ["mermaid", "dot"] {
        let out = run(
            &format!("graph --format {format}"),
            traced(&moto, &seed, &token)
                .args(["graph", "--format", format, "--config"])
                .arg(example("oidc")),
            false,
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let cases = dir.path().join("cases.json");
    std::fs::write(
        &cases,
        r#"[{"name":"t","request":{"action":"sts:AssumeRole","resource":{"resource":"arn:aws:iam::111111111111:role/deploy","accountId":"111111111111"},"principal":"arn:aws:iam::111111111111:user/ci","context":{}},"identityPolicies":[],"resourcePolicy":{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"AWS":"arn:aws:iam::111111111111:user/ci"}}},"expected":{"response":"Allowed"}}]"#,
    )
    .unwrap();
    for format in ["json", "table"] {
        let out = run(
            &format!("simulate --format {format}"),
            traced(&moto, &seed, &token)
                .args(["simulate", "--check", "--format", format])
                .arg(&cases),
            false,
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = run(
        "rollout --dry-run",
        traced(&moto, &seed, &token)
            .args(["rollout", "--dry-run", "--config"])
            .arg(example("access-keys")),
        false,
    );
    assert!(out.status.code().is_some());

    // Failing runs: a dead endpoint, a denied chain, bad inputs; errors carry no secret.
    let dead = format!("http://127.0.0.1:{}", free_port());
    for (label, args) in [
        ("assume (endpoint down)", vec!["assume", "--format", "json"]),
        (
            "credential-process (endpoint down)",
            vec!["credential-process"],
        ),
        ("exec (endpoint down)", vec!["exec", "--", "true"]),
        ("rollout (endpoint down)", vec!["rollout", "--config"]),
    ] {
        let mut c = traced(&moto, &seed, &token);
        c.args(&args).env("AWS_ENDPOINT_URL", &dead);
        if label.starts_with("rollout") {
            c.arg(example("access-keys"));
        }
        let out = run(label, &mut c, false);
        assert!(!out.status.success(), "{label}");
    }
    let out = run(
        "doctor (endpoint down)",
        traced(&moto, &seed, &token)
            .args(["doctor", "--config", cfg, "--env", "prod"])
            .env_remove("ROLEHOP_SERVICE_ROLE_ARN")
            .env_remove("ROLEHOP_DEPLOY_ROLE_ARN")
            .env("AWS_ENDPOINT_URL", &dead),
        false,
    );
    assert!(!out.status.success());
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, format!("{{\"oops\": \"{GITLAB_TOKEN}\"")).unwrap();
    for (label, args) in [
        (
            "render (bad topology)",
            vec!["render", "--out", "x", "--config"],
        ),
        ("audit (bad export)", vec!["audit", "--authz-details"]),
        ("graph (bad topology)", vec!["graph", "--config"]),
        ("simulate (bad cases)", vec!["simulate"]),
    ] {
        let out = {
            let mut c = traced(&moto, &seed, &token);
            c.args(&args).arg(&bad);
            c.output().unwrap()
        };
        // The file's own text may be quoted back, but not as the GitLab token: here the
        // secret is planted in the input on purpose, so only a panic or trace leak counts.
        assert!(!out.status.success(), "{label}");
        assert!(!stderr(&out).contains("panicked"), "{label}");
        runs.set(runs.get() + 1);
    }
    moto.enable_auth();
    let out = run(
        "assume (denied)",
        traced(&moto, &seed, &token)
            .args(["assume", "--base", "access-keys"])
            .env(
                "ROLEHOP_DEPLOY_ROLE_ARN",
                "arn:aws:iam::222222222222:role/none",
            ),
        false,
    );
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let out = run(
        "assume --base oidc (expired token)",
        traced(
            &moto,
            &seed,
            &id_token("project_path:acme/shop:ref_type:branch:ref:main", "x", -600),
        )
        .args(["assume", "--base", "oidc"]),
        false,
    );
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    eprintln!("secrets: {} runs checked", runs.get());
}

/// The checker itself: a planted secret in each place it must not be is caught.
#[test]
fn the_checker_catches_planted_leaks() {
    use std::os::unix::process::ExitStatusExt;
    let output = |o: &str, e: &str| Output {
        status: std::process::ExitStatus::from_raw(0),
        stdout: o.as_bytes().to_vec(),
        stderr: e.as_bytes().to_vec(),
    };
    let base = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let issued = "FQoGZXIvYXdzEXAMPLESESSIONTOKEN".to_owned();
    let leaks = |allowed| Leaks {
        base: vec![base],
        issued: vec![issued.clone()],
        stdout_may_hold_issued: allowed,
    };
    let caught = |o: &str, e: &str, allowed: bool| {
        std::panic::catch_unwind(|| check("planted", &output(o, e), &leaks(allowed))).is_err()
    };
    assert!(caught("", &format!("DEBUG key={base}"), true));
    assert!(caught(base, "", true));
    assert!(caught("", &format!("token {issued}"), true));
    assert!(caught(&format!("AWS_SESSION_TOKEN={issued}"), "", false));
    // A session issued inside rolehop that the test never saw, by shape alone.
    assert!(caught(
        "",
        "secret=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MEFCQ0RFRkdI",
        true
    ));
    assert!(!caught(&format!("AWS_SESSION_TOKEN={issued}"), "ok", true));
}
