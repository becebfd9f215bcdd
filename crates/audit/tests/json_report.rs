#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The JSON report is serialized straight from the report (at 200,000 roles a
//! `serde_json::Value` tree of it was a tenth of the audit's CPU). Baselines (`--baseline`)
//! and dashboards read yesterday's reports, so the text must stay what the tree gave: this
//! builds the tree the way the report used to be built and compares the bytes, with every
//! section filled (findings, blast radius, per-job reach, edges with conditions, a waived
//! finding, a delta).

use rolehop_audit::{audit, input, output, waivers::Waived};
use rolehop_testkit::{oidc_shared_subject, workspace_root as root};
use serde_json::{Value, json};

const NOW: i64 = 1_795_651_200;

/// The report as a `Value` tree, built as `output::json` built it before it streamed.
fn as_tree(r: &rolehop_audit::Report) -> Value {
    let g = &r.graph;
    let mut edges: Vec<(&str, &str, &rolehop_audit::graph::Edge)> = g
        .edges
        .iter()
        .map(|e| (g.nodes[e.from].id.as_str(), g.nodes[e.to].id.as_str(), e))
        .collect();
    edges.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let edges: Vec<Value> = edges
        .into_iter()
        .map(|(from, to, e)| {
            json!({"from": from, "to": to, "action": e.action, "conditions": e.conditions})
        })
        .collect();
    json!({
        "findings": r.findings,
        "blast_radius": r.blast_radius,
        "job_blast_radius": r.job_blast_radius.iter().map(|j| {
            let mut v = json!(j);
            v["summary"] = json!(j.sentence());
            v
        }).collect::<Vec<_>>(),
        "project_blast_radius": r.project_blast_radius.iter().map(|p| {
            let mut v = json!(p);
            v["summary"] = json!(p.sentence());
            v
        }).collect::<Vec<_>>(),
        "edges": edges,
        "waived": r.waived,
    })
}

#[test]
fn streamed_json_report_is_byte_equal_to_the_value_tree() {
    // One token reaching two environments: per-job reach has entries; edges carry conditions.
    let (_, topo) = oidc_shared_subject();
    let mut r = audit(&input::topology::estate_of(&topo), NOW);
    assert!(!r.findings.is_empty() && !r.job_blast_radius.is_empty());
    assert!(r.graph.edges.iter().any(|e| !e.conditions.is_empty()));
    let finding = r.findings.remove(0);
    r.waived.push(Waived {
        finding,
        reason: "accepted for the test".to_owned(),
        expires: "2099-01-01".to_owned(),
    });

    let tree = as_tree(&r);
    assert_eq!(
        serde_json::to_string_pretty(&output::json_report(&r, None)).unwrap(),
        serde_json::to_string_pretty(&tree).unwrap()
    );
    assert_eq!(output::json(&r), tree);

    // `--baseline` appends its delta last, as `v["delta"] = ...` on the tree did.
    let delta = json!({"new_findings": [], "new_edges": [{"from": "a", "to": "b"}]});
    let mut with_delta = tree;
    with_delta["delta"] = delta.clone();
    assert_eq!(
        serde_json::to_string_pretty(&output::json_report(&r, Some(delta))).unwrap(),
        serde_json::to_string_pretty(&with_delta).unwrap()
    );
}

#[test]
fn streamed_json_report_keeps_the_per_project_reach_with_its_summary() {
    let root = root().join("examples/session-policies");
    let src = std::fs::read_to_string(root.join("rolehop.toml")).unwrap();
    let mut read = |p: &str| std::fs::read_to_string(root.join(p)).map_err(|e| e.to_string());
    let topo =
        rolehop_core::Topology::parse("examples/session-policies/rolehop.toml", &src, &mut read)
            .unwrap();
    let r = audit(&input::topology::estate_of(&topo), NOW);
    assert!(!r.project_blast_radius.is_empty());
    let tree = as_tree(&r);
    assert!(tree["project_blast_radius"][0]["summary"].is_string());
    assert_eq!(
        serde_json::to_string_pretty(&output::json_report(&r, None)).unwrap(),
        serde_json::to_string_pretty(&tree).unwrap()
    );
}
