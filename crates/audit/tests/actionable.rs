#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Findings a reader can act on (issue 17): every finding carries its fix in every format,
//! SARIF carries its help inline and points at the topology line of the resource, the blast
//! radius is also given per job identity, and graph edges say what they require.

use rolehop_audit::{Estate, audit, input, output};
use rolehop_testkit::{oidc_shared_subject, topology, workspace_root as root};

const NOW: i64 = 1_795_651_200;

fn fixtures() -> Estate {
    let dir = root().join("crates/audit/tests/fixtures");
    let mut e = Estate::default();
    for f in [
        "broker-111111111111.json",
        "prod-222222222222.json",
        "nonprod-333333333333.json",
    ] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        input::gaad::add_export(&mut e, f, &text).unwrap();
    }
    e
}

#[test]
fn every_finding_carries_its_fix_in_every_format() {
    let r = audit(&fixtures(), NOW);
    assert!(r.findings.len() >= 5, "{:#?}", r.findings);
    let n = r.findings.len();

    let json = output::json(&r);
    for f in json["findings"].as_array().unwrap() {
        assert!(
            f["fix"].as_str().is_some_and(|s| s.len() > 20),
            "no fix: {f}"
        );
    }
    let table = output::table(&r);
    assert_eq!(
        table.matches("\n                 fix: ").count(),
        n,
        "{table}"
    );
    let md = output::markdown(&r);
    assert_eq!(md.matches("<br>**fix:** ").count(), n, "{md}");
    let cq = output::codequality(&r);
    for issue in cq.as_array().unwrap() {
        assert!(
            issue["description"].as_str().unwrap().contains("; fix: "),
            "{issue}"
        );
        assert!(
            issue["content"]["body"]
                .as_str()
                .unwrap()
                .contains("**Fix:** "),
            "{issue}"
        );
    }
    let sarif = output::sarif(&r);
    let text = sarif.to_string();
    assert!(!text.contains("example.invalid"), "a placeholder URL");
    let run = &sarif["runs"][0];
    for rule in run["tool"]["driver"]["rules"].as_array().unwrap() {
        assert!(
            rule["help"]["text"].as_str().unwrap().contains("\n\nFix: "),
            "{rule}"
        );
        assert!(rule.get("helpUri").is_none(), "{rule}");
    }
    for res in run["results"].as_array().unwrap() {
        assert!(
            res["message"]["text"].as_str().unwrap().contains("\nfix: "),
            "{res}"
        );
    }
}

#[test]
fn the_fix_of_a_finding_is_the_one_its_rule_names() {
    let r = audit(&fixtures(), NOW);
    let f = r.findings.iter().find(|f| f.id == "RH012").unwrap();
    assert_eq!(
        f.fix,
        "replace `\"AWS\": \"*\"` in the trust policy by the exact principal ARNs that must assume the role"
    );
}

#[test]
fn one_token_matching_two_environments_is_shown_per_job() {
    let topo = topology("examples/oidc/rolehop.toml");
    let r = audit(&input::topology::estate_of(&topo), NOW);
    let jobs: Vec<String> = r.job_blast_radius.iter().map(|j| j.sentence()).collect();
    assert_eq!(
        jobs,
        [
            "a token of acme/shop on any branch reaches nonprod (3 role(s))",
            "a token of acme/shop on branch main reaches nonprod and prod (5 role(s))",
            "a token of acme/shop on any tag matching v* reaches prod (2 role(s))",
            "a token of any project matching acme/shop-* on any branch reaches nonprod (3 role(s))",
            "a token of any project matching acme/shop-* on branch main reaches nonprod (3 role(s))",
        ]
    );
    let table = output::table(&r);
    assert!(
        table.contains("\nBLAST RADIUS PER JOB (one token can match the patterns of several environments)\na token of acme/shop on any branch reaches nonprod (3 role(s))\n"),
        "{table}"
    );
    let json = output::json(&r);
    assert_eq!(
        json["job_blast_radius"][1]["summary"],
        "a token of acme/shop on branch main reaches nonprod and prod (5 role(s))"
    );
    assert_eq!(
        json["job_blast_radius"][1]["environments"],
        serde_json::json!(["nonprod", "prod"])
    );
}

#[test]
fn a_finding_about_a_subject_points_at_the_topology_line_of_its_role() {
    let (src, topo) = oidc_shared_subject();
    let r = audit(&input::topology::estate_of(&topo), NOW);
    let f = r
        .findings
        .iter()
        .find(|f| f.id == "RH002" && f.resource.starts_with("oidc:"))
        .unwrap_or_else(|| panic!("{:#?}", r.findings));
    let prod_line = src
        .lines()
        .position(|l| l == "[environments.prod]")
        .unwrap()
        + 1;
    assert_eq!(
        r.origin_of(&f.resource),
        ("examples/oidc/rolehop.toml", prod_line)
    );
    let sarif = output::sarif(&r);
    let lines: Vec<u64> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|res| {
            res["locations"][0]["physicalLocation"]["region"]["startLine"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(!lines.contains(&1), "a finding at line 1: {lines:?}");
    let cq = output::codequality(&r);
    for issue in cq.as_array().unwrap() {
        assert_ne!(issue["location"]["lines"]["begin"], 1, "{issue}");
    }
}

#[test]
fn graph_edges_say_what_they_require() {
    let topo = topology("examples/oidc/rolehop.toml");
    let r = audit(&input::topology::estate_of(&topo), NOW);
    let m = output::mermaid(&r.graph);
    assert!(!m.contains("-->|if|"), "{m}");
    assert!(
        m.contains("-->|\"aud = https://aws.rolehop.example.com\"|"),
        "{m}"
    );
    assert!(
        m.contains("-->|\"SourceIdentity like acme.shop@*, TagKeys in [gitlab:project +4]\"|"),
        "{m}"
    );
}
