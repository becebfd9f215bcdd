#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The claim gate in the audit (gate mode): each gate's claim set is a credential holder whose
//! blast radius is its own environment, and rules that admit unprotected refs or any project
//! are findings RH093-RH095.

use rolehop_audit::{Report, Severity, audit, input};
use rolehop_testkit::{topology, topology_src};

const NOW: i64 = 1_795_651_200;

fn gate_topology(prod_gate: &str, prod_projects: &str) -> String {
    format!(
        r#"[broker]
account_id = "111111111111"
region = "eu-west-1"

[auth]
mode = "oidc-gate"
issuer = "https://gitlab.example.com"
audience = "https://gate.example.com"

[environments.prod]
protected = true

[environments.prod.gitlab]
projects = {prod_projects}
branches = ["main"]
environments = ["production"]

[environments.prod.gate]
{prod_gate}

[environments.prod.accounts]
prod-eu = "222222222222"
"#
    )
}

fn report(src: &str) -> Report {
    audit(
        &input::topology::estate_of(&topology_src("tempting/gate.toml", src)),
        NOW,
    )
}

fn ids(r: &Report) -> Vec<(&str, Severity)> {
    r.findings.iter().map(|f| (f.id, f.severity)).collect()
}

#[test]
fn each_claim_set_reaches_only_its_environment() {
    let topo = topology("examples/oidc-gate/rolehop.toml");
    let r = audit(&input::topology::estate_of(&topo), NOW);
    assert!(
        r.findings.iter().all(|f| f.severity < Severity::High),
        "{:#?}",
        r.findings
    );
    let prod = r
        .blast_radius
        .iter()
        .find(|b| b.principal.starts_with("gate:prod:"))
        .unwrap();
    assert_eq!(
        prod.principal,
        "gate:prod: protected refs (branches main; tags v*) of acme/shop (project id 42) in namespace id 7 with environment production (protected), tier production, not merge_request_event"
    );
    assert_eq!(
        prod.reaches,
        [
            "arn:aws:iam::111111111111:role/rolehop-prod-gate",
            "arn:aws:iam::111111111111:role/rolehop-prod-service",
            "arn:aws:iam::222222222222:role/rolehop-prod-deploy",
        ]
    );
    let nonprod = r
        .blast_radius
        .iter()
        .find(|b| b.principal.starts_with("gate:nonprod:"))
        .unwrap();
    assert!(nonprod.principal.contains("any refs (branches *)"));
    assert!(
        nonprod.reaches.iter().all(|a| a.contains("nonprod")),
        "{nonprod:?}"
    );
    // nonprod's `acme/shop-*` without project ids is reported, bounded by its namespace id.
    let f = r.findings.iter().find(|f| f.id == "RH094").unwrap();
    assert_eq!(f.severity, Severity::Medium);
    assert_eq!(
        f.resource,
        "arn:aws:iam::111111111111:role/rolehop-nonprod-gate"
    );
    assert!(
        f.detail.contains("limited to namespace id 7"),
        "{}",
        f.detail
    );
    // The graph draws the claim sets as entries.
    let mermaid = rolehop_audit::output::mermaid(&r.graph);
    assert!(
        mermaid.contains("GitLab jobs prod: protected refs"),
        "{mermaid}"
    );
}

#[test]
fn a_protected_environment_whose_gate_admits_unprotected_refs_is_high() {
    let r = report(&gate_topology(
        "project_ids = [\"42\"]\nref_protected = false",
        "[\"acme/shop\"]",
    ));
    assert_eq!(ids(&r), [("RH093", Severity::High)], "{:#?}", r.findings);
    assert!(r.findings[0].detail.contains("ref_protected = false"));
    let b = &r.blast_radius[0];
    assert!(
        b.principal.starts_with("gate:prod: any refs"),
        "{}",
        b.principal
    );
}

#[test]
fn gates_that_admit_any_matching_project_or_name_projects_by_path_are_reported() {
    let r = report(&gate_topology(
        "namespace_ids = [\"7\"]",
        "[\"acme/*\"]\naccept_project_globs = [\"acme/*\"]",
    ));
    assert_eq!(ids(&r), [("RH094", Severity::High)], "{:#?}", r.findings);
    let r = report(&gate_topology("namespace_ids = [\"7\"]", "[\"acme/shop\"]"));
    assert_eq!(ids(&r), [("RH095", Severity::Low)], "{:#?}", r.findings);
    let r = report(&gate_topology("project_ids = [\"42\"]", "[\"acme/shop\"]"));
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
}
