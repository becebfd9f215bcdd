//! The bad-input corpus (`tests/bad-input/<kind>/`): malformed topologies, case files,
//! authorization-details exports, SCP files, credential reports, ID tokens and STS answers,
//! each run through the real binary. Each input has a sidecar `<input>.expect`: the exit code
//! on its first line, then the whole output (stderr, then stdout: the diagnostic with its
//! location, rule and caret, or the findings for exports), so a diagnostic that loses its
//! location, hint or wording fails here rather than still containing a fragment. Paths of the
//! run and loopback ports are written as `[CORPUS]`, `[SCRATCH]` and `[PORT]`.
//! `ROLEHOP_UPDATE_BAD_INPUT=1` rewrites the sidecars from what the binary prints (review the
//! diff). No input may panic or print a stack trace.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use rolehop_testkit::{CannedServer, free_port, workspace_root};

mod common;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-input")
}

fn fixture(name: &str) -> PathBuf {
    workspace_root()
        .join("crates/audit/tests/fixtures")
        .join(name)
}

/// The output with what changes from run to run (temporary and checkout paths, loopback
/// ports) replaced by placeholders; trailing spaces dropped so sidecars survive editors.
fn normalize(out: &str, scratch: &Path) -> String {
    let mut out = out
        .replace(&scratch.display().to_string(), "[SCRATCH]")
        .replace(&corpus().display().to_string(), "[CORPUS]");
    // Loopback ports, and the age of an expired token (measured against the real clock).
    for (before, after, mask) in [
        ("127.0.0.1:", "", "[PORT]"),
        ("localhost:", "", "[PORT]"),
        ("expired ", "s ago", "[AGE]"),
    ] {
        out = mask_digits(&out, before, after, mask);
    }
    out.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` with each run of digits between `before` and `after` replaced by `mask`.
fn mask_digits(text: &str, before: &str, after: &str, mask: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(before) {
        let tail = &rest[i + before.len()..];
        let n = tail.len() - tail.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        out.push_str(&rest[..i + before.len()]);
        if n > 0 && tail[n..].starts_with(after) {
            out.push_str(mask);
        } else {
            out.push_str(&tail[..n]);
        }
        rest = &tail[n..];
    }
    out.push_str(rest);
    out
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
            let s = CannedServer::start(std::fs::read(input).unwrap());
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
            let observed = normalize(&all, scratch.path());
            if std::env::var_os("ROLEHOP_UPDATE_BAD_INPUT").is_some() {
                let code = code.map_or_else(|| "signal".to_owned(), |c| c.to_string());
                std::fs::write(&expect_path, format!("{code}\n{observed}\n")).unwrap();
            }
            let Ok(expect) = std::fs::read_to_string(&expect_path) else {
                failures.push(format!(
                    "{name}: no .expect (ROLEHOP_UPDATE_BAD_INPUT=1 writes it); observed exit {code:?}: {summary}"
                ));
                continue;
            };
            let (first, want_out) = expect.split_once('\n').unwrap_or((&expect, ""));
            let want: i32 = first.trim().parse().unwrap();
            if code != Some(want) {
                failures.push(format!("{name}: exit {code:?}, expected {want}: {summary}"));
            }
            if observed != want_out.trim_end_matches('\n') {
                failures.push(format!(
                    "{name}: output differs from {} (ROLEHOP_UPDATE_BAD_INPUT=1 rewrites it)\n--- expected\n{}\n--- observed\n{observed}",
                    expect_path.display(),
                    want_out.trim_end_matches('\n')
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
