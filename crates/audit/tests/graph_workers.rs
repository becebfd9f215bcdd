#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The access graph is the same whether the roles' trust policies are evaluated by one thread
//! or several, and whether the principal indexes were built beside the documents or after
//! them, down to the order of its nodes and edges: reports, baselines and the graph drawings
//! all read that order.

use rolehop_audit::graph::{self, Graph};
use rolehop_audit::{Estate, input};
use rolehop_testkit::workspace_root as root;

/// Every export in `dir` (relative to the audit's fixtures), in name order.
fn estate(dir: &str) -> Estate {
    let dir = root().join("crates/audit/tests/fixtures").join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| !p.ends_with("organizations.json") && !p.ends_with("env-map.json"))
        .collect();
    files.sort();
    let mut e = Estate::default();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        input::gaad::add_export(&mut e, &f.display().to_string(), &text).unwrap();
    }
    e
}

/// Nodes and edges, in order, as text.
fn shape(g: &Graph) -> Vec<String> {
    let nodes = g
        .nodes
        .iter()
        .map(|n| format!("node {} {:?} {:?}", n.id, n.kind, n.account));
    let edges = g.edges.iter().map(|e| {
        format!(
            "edge {} -> {} {} {:?}",
            g.nodes[e.from].id, g.nodes[e.to].id, e.action, e.conditions
        )
    });
    nodes.chain(edges).collect()
}

#[test]
fn one_thread_or_several_build_the_same_graph() {
    for dir in [
        ".",
        "handbuilt/contoso",
        "handbuilt/contoso-crossed",
        "handbuilt/fabrikam",
        "handbuilt/northwind",
        "handbuilt/tailspin",
    ] {
        let e = estate(dir);
        let prep = graph::Prepared::new(&e);
        let admin = vec![false; e.principals.len()];
        let one = shape(&graph::build_with(&prep, &admin, 1));
        assert!(
            one.iter().filter(|l| l.starts_with("edge ")).count() > 2,
            "{dir}: too few edges to compare: {one:?}"
        );
        // More workers than principals leaves some with nothing to do.
        for workers in [2, 3, e.principals.len() + 1] {
            let many = shape(&graph::build_with(&prep, &admin, workers));
            assert_eq!(many, one, "{dir} with {workers} workers");
        }
        let beside = graph::Prepared::new_with(&e, true);
        assert_eq!(beside.by_arn, prep.by_arn, "{dir}");
        assert_eq!(beside.docs.len(), prep.docs.len(), "{dir}");
        assert_eq!(
            shape(&graph::build_with(&beside, &admin, 1)),
            one,
            "{dir}: indexes built on a second thread"
        );
    }
}
