//! `rolehop simulate` as a user runs it: decisions per case, `--check`, table output, and
//! errors that point into the offending file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::{Value, json};

fn rolehop() -> Command {
    Command::cargo_bin("rolehop").unwrap()
}

/// A same-account AssumeRole that the trust policy allows by naming the user.
fn assume_case(name: &str, expected: &str) -> Value {
    json!({
        "name": name,
        "request": {
            "action": "sts:AssumeRole",
            "resource": {"resource": "arn:aws:iam::111111111111:role/deploy", "accountId": "111111111111"},
            "principal": "arn:aws:iam::111111111111:user/ci",
            "context": {}
        },
        "identityPolicies": [],
        "resourcePolicy": {
            "Version": "2012-10-17",
            "Statement": {"Sid": "TrustCi", "Effect": "Allow", "Action": "sts:AssumeRole",
                          "Principal": {"AWS": "arn:aws:iam::111111111111:user/ci"}}
        },
        "expected": {"response": expected}
    })
}

fn write(dir: &tempfile::TempDir, name: &str, cases: &Value) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, serde_json::to_string_pretty(cases).unwrap()).unwrap();
    path
}

fn lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn prints_one_json_line_per_case_with_expectation_and_pass() {
    let dir = tempfile::tempdir().unwrap();
    let mut no_expectation = assume_case("no expectation", "Allowed");
    no_expectation.as_object_mut().unwrap().remove("expected");
    let file = write(
        &dir,
        "cases.json",
        &json!([assume_case("trusted user", "Allowed"), no_expectation]),
    );
    let out = rolehop().arg("simulate").arg(&file).assert().success();
    let rows = lines(&out.get_output().stdout);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["name"], "trusted user");
    assert_eq!(rows[0]["response"], "Allowed");
    assert_eq!(rows[0]["expected"], "Allowed");
    assert_eq!(rows[0]["pass"], true);
    assert!(rows[0]["explanation"].as_str().unwrap().contains("TrustCi"));
    assert_eq!(rows[1]["response"], "Allowed");
    assert!(rows[1].get("expected").is_none() && rows[1].get("pass").is_none());
}

#[test]
fn check_fails_only_when_a_decision_differs() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = write(
        &dir,
        "wrong.json",
        &json!([
            assume_case("right", "Allowed"),
            assume_case("wrong", "ExplicitlyDenied")
        ]),
    );
    // Without --check a mismatch is reported but is not a failure.
    let out = rolehop().arg("simulate").arg(&wrong).assert().success();
    let rows = lines(&out.get_output().stdout);
    assert_eq!(rows[1]["pass"], false);
    rolehop()
        .args(["simulate", "--check"])
        .arg(&wrong)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("1 case(s) decided differently"));
    let right = write(
        &dir,
        "right.json",
        &json!([assume_case("right", "Allowed")]),
    );
    rolehop()
        .args(["simulate", "--check"])
        .arg(&right)
        .assert()
        .success();
    // A case without an expectation (a typo in `expected`, say) checks nothing: --check fails.
    let mut unstated = assume_case("unstated", "Allowed");
    let expected = unstated
        .as_object_mut()
        .unwrap()
        .remove("expected")
        .unwrap();
    unstated["expeted"] = expected;
    let unstated = write(&dir, "unstated.json", &json!([unstated]));
    rolehop().arg("simulate").arg(&unstated).assert().success();
    rolehop()
        .args(["simulate", "--check"])
        .arg(&unstated)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "1 case(s) state no expected decision",
        ));
}

#[test]
fn table_format_aligns_columns() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "cases.json",
        &json!([
            assume_case("a", "Allowed"),
            assume_case("a much longer name", "ImplicitlyDenied")
        ]),
    );
    let out = rolehop()
        .args(["simulate", "--format", "table"])
        .arg(&file)
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 3);
    assert!(rows[0].starts_with("RESULT"));
    assert!(rows[1].starts_with("pass"));
    assert!(rows[2].starts_with("FAIL"));
    // Every column starts at the same offset on every line.
    let col = rows[0].find("DECISION").unwrap();
    assert_eq!(&rows[1][col..col + 7], "Allowed");
    assert_eq!(&rows[2][col..col + 7], "Allowed");
    let name_col = rows[0].find("NAME").unwrap();
    assert!(rows[2][name_col..].starts_with("a much longer name"));
}

#[test]
fn discovery_mode_cases_are_skipped_and_said_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut sim = assume_case("discovery", "Allowed");
    sim.as_object_mut()
        .unwrap()
        .insert("simulation".into(), json!({"mode": "Discovery"}));
    let file = write(&dir, "sim.json", &json!([sim]));
    let out = rolehop()
        .args(["simulate", "--check"])
        .arg(&file)
        .assert()
        .success()
        .stderr(predicate::str::contains("1 skipped"));
    let rows = lines(&out.get_output().stdout);
    assert_eq!(rows[0]["skipped"], true);
    assert!(rows[0].get("response").is_none());
}

#[test]
fn malformed_policy_names_the_file_and_json_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad = assume_case("bad", "Allowed");
    bad["identityPolicies"] = json!([{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*",
         "Condition": {"StringLikeButWrong": {"aws:username": "x"}}}
    ]}]);
    let file = write(
        &dir,
        "bad.json",
        &json!([assume_case("fine", "Allowed"), bad]),
    );
    rolehop()
        .arg("simulate")
        .arg(&file)
        .assert()
        .code(3)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("bad.json"))
        .stderr(predicate::str::contains(
            "[1].identityPolicies[0].Statement[1].Condition",
        ))
        .stderr(predicate::str::contains("`StringLikeButWrong`"));
}

#[test]
fn unreadable_and_non_json_files_are_errors() {
    rolehop()
        .args(["simulate", "/nonexistent/cases.json"])
        .assert()
        .code(8)
        .stderr(predicate::str::contains("/nonexistent/cases.json"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("text.json");
    std::fs::write(&path, "not json").unwrap();
    rolehop()
        .arg("simulate")
        .arg(&path)
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "invalid JSON: expected ident at line 1 column 2",
        ));
}
