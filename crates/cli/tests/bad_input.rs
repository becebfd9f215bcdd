//! The bad-input corpus (`tests/bad-input/<kind>/`): malformed topologies, case files,
//! authorization-details exports, SCP files, credential reports, ID tokens and STS answers,
//! each run through the real binary. Each input has a sidecar `<input>.expect`: the exit code
//! on its first line, then the whole output (stderr, then stdout) as a user reads it. rolehop
//! runs in the corpus folder with relative paths, so what it prints is the same on every
//! machine; the scratch folder, loopback ports and an expired token's age are written as
//! `<scratch>`, `127.0.0.1:<port>` and `<n>`. Whole messages, not fragments: a hint
//! that disappears or a second copy of a message fails the test. No input may panic or print
//! a stack trace. `ROLEHOP_UPDATE_BAD_INPUT=1` rewrites the sidecars from what rolehop prints
//! (review the diff).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use rolehop_testkit::{CannedServer, free_port};

mod common;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-input")
}

/// A fixture of the audit crate, relative to the corpus (rolehop runs there, so the paths it
/// prints, and the table widths that follow them, are the same on every machine).
fn fixture(name: &str) -> PathBuf {
    // From crates/cli/tests/bad-input, three `..` reach crates/: still inside the clone.
    let p = Path::new("../../../audit/tests/fixtures").join(name); // check-paths: stays in crates/
    assert!(corpus().join(&p).is_file(), "{}", p.display());
    p
}

/// A rolehop with a clean environment: a GitLab job's variables, a region, and backtraces on
/// so a panic could not hide.
fn rolehop() -> Command {
    let mut c = Command::cargo_bin("rolehop").unwrap();
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("HOME", "/nonexistent")
        .env("RUST_BACKTRACE", "1")
        .env("AWS_REGION", "eu-west-1");
    common::job_env(&mut c);
    c
}

/// How each kind of input is fed to rolehop.
fn command(kind: &str, input: &Path, scratch: &Path) -> (Command, Option<CannedServer>) {
    let mut c = rolehop();
    c.current_dir(corpus());
    let input = input.strip_prefix(corpus()).unwrap_or(input);
    let mut server = None;
    match kind {
        "topology" => {
            c.args(["render", "--out"])
                .arg(scratch)
                .arg("--config")
                .arg(input);
        }
        "cases" => {
            c.arg("simulate").arg(input);
        }
        "gaad" => {
            // The reader is tolerant: what it cannot read inside an export becomes an RH090
            // finding, so a bad entry shows up as findings (exit 10), not as silence.
            c.args([
                "audit",
                "--now",
                "2026-11-26T00:00:00Z",
                "--fail-on",
                "medium",
            ])
            .arg("--authz-details")
            .arg(input);
        }
        "scp" => {
            c.args(["audit", "--authz-details"])
                .arg(fixture("broker-111111111111.json"))
                .arg("--scp")
                .arg(input);
        }
        "credential-report" => {
            c.args(["audit", "--authz-details"])
                .arg(fixture("broker-111111111111.json"))
                .arg("--credential-report")
                .arg(input);
        }
        "id-token" => {
            // Nothing listens there: a bad token must be refused before any request.
            c.args(["assume", "--base", "oidc", "--id-token-file"])
                .arg(input)
                .env(
                    "AWS_ENDPOINT_URL",
                    format!("http://127.0.0.1:{}", free_port()),
                )
                .env(
                    "ROLEHOP_SERVICE_ROLE_ARN",
                    "arn:aws:iam::111111111111:role/service",
                )
                .env(
                    "ROLEHOP_DEPLOY_ROLE_ARN",
                    "arn:aws:iam::222222222222:role/deploy",
                );
        }
        "sts" => {
            let s = CannedServer::start(std::fs::read(corpus().join(input)).unwrap());
            c.args(["assume", "--base", "access-keys"])
                .env("AWS_ENDPOINT_URL", s.url())
                .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
                .env(
                    "AWS_SECRET_ACCESS_KEY",
                    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                )
                .env(
                    "ROLEHOP_SERVICE_ROLE_ARN",
                    "arn:aws:iam::111111111111:role/service",
                )
                .env(
                    "ROLEHOP_DEPLOY_ROLE_ARN",
                    "arn:aws:iam::222222222222:role/deploy",
                );
            server = Some(s);
        }
        other => panic!("unknown bad-input kind `{other}`"),
    }
    (c, server)
}

#[test]
fn every_bad_input_gets_its_exit_code_and_a_clear_message() {
    let mut kinds: Vec<_> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    kinds.sort();
    let mut failures = Vec::new();
    let mut count = 0;
    for dir in kinds {
        let kind = dir.file_name().unwrap().to_str().unwrap().to_owned();
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_none_or(|e| e != "expect"))
            .collect();
        inputs.sort();
        for input in inputs {
            count += 1;
            let name = format!("{kind}/{}", input.file_name().unwrap().to_str().unwrap());
            let scratch = tempfile::tempdir().unwrap();
            let (mut c, _server) = command(&kind, &input, scratch.path());
            let out = c.output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            let all = format!("{err}{}", String::from_utf8_lossy(&out.stdout));
            let code = out.status.code();
            let summary = all
                .lines()
                .filter(|l| !l.contains("WARN") && !l.trim().is_empty())
                .collect::<Vec<_>>()
                .join(" | ");
            if err.contains("panicked") || err.contains("stack backtrace") {
                failures.push(format!("{name}: panicked:\n{err}"));
                continue;
            }
            let expect_path = PathBuf::from(format!("{}.expect", input.display()));
            let observed = format!(
                "{}\n{}",
                code.map_or_else(|| "signal".to_owned(), |c| c.to_string()),
                normalize(&all, scratch.path())
            );
            if std::env::var_os("ROLEHOP_UPDATE_BAD_INPUT").is_some() {
                std::fs::write(&expect_path, &observed).unwrap();
            }
            let Ok(expect) = std::fs::read_to_string(&expect_path) else {
                failures.push(format!(
                    "{name}: no .expect; observed exit {code:?}: {summary}"
                ));
                continue;
            };
            if expect != observed {
                failures.push(format!(
                    "{name}: output differs from {}\n--- expected\n{expect}\n--- observed\n{observed}",
                    expect_path.display()
                ));
            }
            if !matches!(code, Some(0 | 1 | 10)) && !err.contains("rolehop: error:") {
                failures.push(format!("{name}: no `rolehop: error:` line: {summary}"));
            }
            if !out.stdout.is_empty() && kind == "sts" {
                failures.push(format!("{name}: printed credentials from a broken answer"));
            }
        }
    }
    eprintln!("bad-input: {count} inputs");
    assert!(count >= 50, "the corpus has only {count} inputs");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The output with what differs between machines and runs replaced by placeholders.
fn normalize(out: &str, scratch: &Path) -> String {
    let mut s = out
        .replace(&corpus().display().to_string(), "<corpus>")
        .replace(&scratch.display().to_string(), "<scratch>");
    // Loopback ports of the canned servers and of the dead endpoints.
    let mut rest = s.as_str();
    let mut norm = String::with_capacity(s.len());
    while let Some(at) = rest.find("127.0.0.1:") {
        let (head, tail) = rest.split_at(at + "127.0.0.1:".len());
        norm.push_str(head);
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            norm.push_str("<port>");
        }
        rest = &tail[digits..];
    }
    norm.push_str(rest);
    s = norm;
    // The expired token's age grows with the clock.
    if let Some(at) = s.find("the ID token expired ")
        && let Some(len) = s[at + 21..].find("s ago")
    {
        s.replace_range(at + 21..at + 21 + len, "<n>");
    }
    s
}
