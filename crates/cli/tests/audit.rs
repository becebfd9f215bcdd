#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `rolehop audit` and `rolehop graph` as a CI job runs them: formats, exit codes, errors.

use std::path::PathBuf;

use assert_cmd::Command;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> String {
    root()
        .join("crates/audit/tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

fn example(name: &str) -> String {
    rolehop_testkit::example(name).display().to_string()
}

fn rolehop() -> Command {
    Command::cargo_bin("rolehop").unwrap()
}

/// The planted-defect exports, with the credential report, at a fixed time.
fn defects(extra: &[&str]) -> Command {
    let mut c = rolehop();
    c.args(["audit", "--authz-details"])
        .arg(fixture("broker-111111111111.json"))
        .arg(fixture("prod-222222222222.json"))
        .arg(fixture("nonprod-333333333333.json"))
        .arg("--credential-report")
        .arg(fixture("credential-report.csv"))
        .args(["--now", "2026-11-26T00:00:00Z"])
        .args(extra);
    c
}

fn stdout_json(c: &mut Command) -> Value {
    let out = c.output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn example_topology_json_has_no_findings_and_a_blast_radius() {
    let v = stdout_json(rolehop().args([
        "audit",
        "--config",
        &example("access-keys"),
        "--format",
        "json",
    ]));
    assert_eq!(v["findings"], serde_json::json!([]));
    let br = v["blast_radius"].as_array().unwrap();
    let prod = br
        .iter()
        .find(|b| b["principal"] == "arn:aws:iam::111111111111:user/rolehop-prod")
        .unwrap();
    assert_eq!(
        prod["reaches"],
        serde_json::json!([
            "arn:aws:iam::111111111111:role/rolehop-prod-service",
            "arn:aws:iam::222222222222:role/rolehop-prod-deploy"
        ])
    );
    assert_eq!(prod["admin"], false);
}

#[test]
fn fail_on_turns_findings_into_exit_10() {
    defects(&["--fail-on", "high"]).assert().code(10);
    defects(&["--fail-on", "critical"]).assert().code(10);
    // No finding at all: never fails.
    rolehop()
        .args([
            "audit",
            "--config",
            &example("access-keys"),
            "--fail-on",
            "info",
        ])
        .assert()
        .code(0);
    // The OIDC example's one finding is low (its prod trust rests on GitLab protecting the
    // tags `v*`): it fails `--fail-on low`, not `--fail-on medium`.
    for (threshold, code) in [("low", 10), ("medium", 0)] {
        rolehop()
            .args([
                "audit",
                "--config",
                &example("oidc"),
                "--fail-on",
                threshold,
            ])
            .assert()
            .code(code);
    }
    // Findings, none at the threshold: the workload account's worst is medium (RH014).
    let workloads = fixture("workloads-555555555555.json");
    rolehop()
        .args(["audit", "--authz-details", &workloads, "--fail-on", "high"])
        .assert()
        .code(0);
    rolehop()
        .args([
            "audit",
            "--authz-details",
            &workloads,
            "--fail-on",
            "medium",
        ])
        .assert()
        .code(10);
}

#[test]
fn json_findings_have_the_documented_fields_and_are_sorted() {
    let v = stdout_json(&mut defects(&["--format", "json"]));
    let findings = v["findings"].as_array().unwrap();
    assert!(findings.len() >= 14);
    let order = ["critical", "high", "medium", "low", "info"];
    let mut last = 0;
    for f in findings {
        for k in ["id", "severity", "resource", "title", "detail"] {
            assert!(f[k].is_string(), "{k} missing in {f}");
        }
        let rank = order.iter().position(|s| *s == f["severity"]).unwrap();
        assert!(rank >= last, "not sorted by severity: {f}");
        last = rank;
    }
    assert!(findings.iter().any(|f| f["id"] == "RH002"
        && f["severity"] == "critical"
        && f["resource"] == "arn:aws:iam::222222222222:role/rolehop-prod-deploy"));
}

#[test]
fn sarif_is_2_1_0_with_one_result_per_finding() {
    let json = stdout_json(&mut defects(&["--format", "json"]));
    let v = stdout_json(&mut defects(&["--format", "sarif"]));
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "rolehop");
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), json["findings"].as_array().unwrap().len());
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for r in results {
        assert!(rules.contains(&r["ruleId"].as_str().unwrap()));
        assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap()));
        assert!(r["partialFingerprints"]["rolehopFinding/v1"].is_string());
        assert!(
            r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
                .as_str()
                .unwrap()
                .starts_with("arn:aws:iam::")
        );
    }
}

#[test]
fn codequality_issues_use_gitlab_severities_and_unique_fingerprints() {
    let v = stdout_json(&mut defects(&["--format", "codequality"]));
    let issues = v.as_array().unwrap();
    let mut prints = std::collections::BTreeSet::new();
    for i in issues {
        assert!(i["description"].is_string() && i["check_name"].is_string());
        assert!(
            ["info", "minor", "major", "critical", "blocker"]
                .contains(&i["severity"].as_str().unwrap())
        );
        assert!(i["location"]["path"].as_str().unwrap().ends_with(".json"));
        assert_eq!(i["location"]["lines"]["begin"], 1);
        assert!(prints.insert(i["fingerprint"].as_str().unwrap().to_owned()));
    }
    assert!(issues.iter().any(|i| i["severity"] == "blocker"));
}

#[test]
fn markdown_has_findings_and_a_mermaid_graph() {
    let out = defects(&["--format", "markdown"]).output().unwrap();
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(md.contains("| critical | RH002 |"), "{md}");
    assert!(md.contains("```mermaid\nflowchart LR\n"));
    assert!(md.contains("classDef prod"));
}

#[test]
fn table_is_deterministic() {
    let a = defects(&[]).output().unwrap();
    let b = defects(&[]).output().unwrap();
    assert_eq!(a.stdout, b.stdout);
    let t = String::from_utf8(a.stdout).unwrap();
    assert!(t.starts_with("SEVERITY  ID     RESOURCE"));
    assert!(t.contains("BLAST RADIUS"));
}

#[test]
fn key_age_findings_follow_now() {
    let old = stdout_json(&mut defects(&["--format", "json"]));
    assert!(
        old["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "RH010")
    );
    let mut c = rolehop();
    c.args(["audit", "--authz-details"])
        .arg(fixture("broker-111111111111.json"))
        .arg("--credential-report")
        .arg(fixture("credential-report.csv"))
        .args(["--now", "2026-02-01T00:00:00Z", "--format", "json"]);
    let young = stdout_json(&mut c);
    assert!(
        !young["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "RH010")
    );
}

#[test]
fn input_errors_map_to_exit_codes() {
    // Missing file: I/O.
    rolehop()
        .args(["audit", "--authz-details", "/nonexistent/gaad.json"])
        .assert()
        .code(8)
        .stderr(predicates::str::contains(
            "cannot read `/nonexistent/gaad.json`",
        ));
    // Not JSON: input.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"UserDetailList\": [").unwrap();
    rolehop()
        .args(["audit", "--authz-details"])
        .arg(&bad)
        .assert()
        .code(3)
        .stderr(predicates::str::contains("invalid JSON"));
    // Both sources: usage.
    rolehop()
        .args(["audit", "--config", &example("oidc"), "--authz-details"])
        .arg(&bad)
        .assert()
        .code(2);
    // A broken topology: input, with the file and rule.
    let topo = dir.path().join("rolehop.toml");
    std::fs::write(
        &topo,
        "[broker]\naccount_id = \"12\"\nregion = \"eu-west-1\"\n[auth]\nmode = \"oidc\"\n",
    )
    .unwrap();
    rolehop()
        .args(["audit", "--config"])
        .arg(&topo)
        .assert()
        .code(3)
        .stderr(predicates::str::contains("rolehop.toml:2:"));
    // Unknown severity: usage.
    rolehop()
        .args(["audit", "--config", &example("oidc"), "--fail-on", "severe"])
        .assert()
        .code(2);
}

#[test]
fn graph_mermaid_and_dot_mark_production() {
    let out = rolehop()
        .args(["graph", "--config", &example("oidc"), "--format", "mermaid"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let m = String::from_utf8(out.stdout).unwrap();
    assert!(m.starts_with("flowchart LR\n"));
    assert!(m.contains("OIDC gitlab.example.com:project_path:acme/shop:ref_type:branch:ref:main"));
    assert!(m.contains("role rolehop-prod-deploy @222222222222 [prod]"));
    assert!(m.contains("account 222222222222"));
    assert!(m.contains("linkStyle"));
    // Red links are exactly the edges into production: every non-prod edge stays plain.
    let prod: Vec<&str> = m
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("class ")
                .and_then(|c| c.strip_suffix(" prod"))
        })
        .unwrap()
        .split(',')
        .collect();
    let edges: Vec<&str> = m
        .lines()
        .filter(|l| l.contains("-->") || l.contains("-.->"))
        .collect();
    let red: Vec<usize> = m
        .lines()
        .filter(|l| l.contains("#c00") && l.trim().starts_with("linkStyle "))
        .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect();
    let into_prod: Vec<usize> = edges
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            let words: Vec<&str> = e.split_whitespace().collect();
            // An edge into a prod node, or a prod deployment role's link to its account.
            prod.contains(words.last().unwrap()) || (e.contains("-.->") && prod.contains(&words[0]))
        })
        .map(|(i, _)| i)
        .collect();
    assert!(
        !into_prod.is_empty() && into_prod.len() < edges.len(),
        "{m}"
    );
    assert_eq!(red, into_prod, "{m}");

    let out = rolehop()
        .args([
            "graph",
            "--config",
            &example("access-keys"),
            "--format",
            "dot",
        ])
        .output()
        .unwrap();
    let d = String::from_utf8(out.stdout).unwrap();
    assert!(d.starts_with("digraph rolehop {"));
    assert!(d.contains(
        "\"arn:aws:iam::111111111111:role/rolehop-prod-service\" -> \"arn:aws:iam::222222222222:role/rolehop-prod-deploy\" [label=\"Null sts:SourceIdentity = false; StringEquals sts:ExternalId = acme-shop-prod; StringLike sts:SourceIdentity = acme.shop@*; ForAllValues:StringEquals aws:TagKeys in [gitlab:project, gitlab:ref, gitlab:pipeline, gitlab:job, gitlab:environment]\", color=red, penwidth=2];"
    ), "{d}");
    // Non-prod nodes and every edge into them are not red.
    let nonprod: Vec<&str> = d.lines().filter(|l| l.contains("nonprod")).collect();
    assert!(nonprod.len() >= 6, "{d}");
    for line in nonprod {
        let target = line.split("->").last().unwrap();
        if target.contains("nonprod") || !line.contains("->") {
            assert!(!line.contains("red"), "a non-prod element is red: {line}");
        }
    }
}

/// A hand-built estate's exports (crates/audit/tests/fixtures/handbuilt/<estate>/).
fn handbuilt(estate: &str, files: &[&str]) -> Command {
    let dir = root()
        .join("crates/audit/tests/fixtures/handbuilt")
        .join(estate);
    let mut c = rolehop();
    c.args(["audit", "--authz-details"]);
    for f in files {
        c.arg(dir.join(f));
    }
    c
}

#[test]
fn env_map_and_org_accounts_label_a_hand_built_estate() {
    let dir = root().join("crates/audit/tests/fixtures/handbuilt");
    let tailspin = [
        "tooling-520000000001.json",
        "live-520000000002.json",
        "qa-520000000003.json",
    ];
    // With the map, the signer shared by qa and live is critical: exit 10.
    let out = handbuilt("tailspin", &tailspin)
        .arg("--env-map")
        .arg(dir.join("tailspin/env-map.json"))
        .args(["--format", "json", "--fail-on", "critical"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(10));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let shared = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "RH030")
        .unwrap();
    assert_eq!(shared["severity"], "critical");
    assert_eq!(
        shared["resource"],
        "arn:aws:iam::520000000001:role/artifact-signer"
    );
    // Without it nothing says which account is live: no RH030.
    let v = stdout_json(handbuilt("tailspin", &tailspin).args(["--format", "json"]));
    assert!(
        !v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "RH030"),
        "{v}"
    );
    // The clean estate labelled by its Organizations export passes the strictest gate.
    handbuilt(
        "northwind",
        &[
            "ci-hub-410000000001.json",
            "production-410000000002.json",
            "staging-410000000003.json",
        ],
    )
    .arg("--org-accounts")
    .arg(dir.join("northwind/organizations.json"))
    .args(["--fail-on", "info"])
    .assert()
    .code(0);
    // `graph` takes the same labels: live's role, unnamed as such, shows as production.
    let out = rolehop()
        .args(["graph", "--authz-details"])
        .args(tailspin.iter().map(|f| dir.join("tailspin").join(f)))
        .arg("--env-map")
        .arg(dir.join("tailspin/env-map.json"))
        .output()
        .unwrap();
    let m = String::from_utf8(out.stdout).unwrap();
    assert!(m.contains("role release-hand @520000000002 [prod]"), "{m}");
    // A map it cannot read: input error, naming the file and the entry.
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("envs.json");
    std::fs::write(&bad, r#"{"live": "prod"}"#).unwrap();
    handbuilt("tailspin", &tailspin)
        .arg("--env-map")
        .arg(&bad)
        .assert()
        .code(3)
        .stderr(predicates::str::contains("envs.json: `live` is neither"));
}

/// The JSON report is written as it is serialized, so a reader that goes away (`| head -c`)
/// meets the writer mid-report. That is the reader's choice, not an error: no message, and
/// the exit code the findings decide (here 10, from `--fail-on`), not an I/O failure.
#[test]
fn a_reader_that_closes_early_is_not_an_error() {
    for format in ["json", "sarif", "table"] {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("rolehop"))
            .args(defects(&["--format", format, "--fail-on", "high"]).get_args())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Closed before rolehop has read its inputs: its first write finds no reader.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(10), "{format}: {stderr}");
        assert!(stderr.is_empty(), "{format}: {stderr}");
    }
}
