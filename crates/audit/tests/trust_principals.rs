#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Each way a trust policy can name who may assume a role is resolved to the right node: a
//! principal's ARN, its unique id (how IAM shows a principal that was deleted), a role
//! session's ARN (which omits the role's path), and an ARN outside the estate. The indexes
//! behind the unique id and the session are built on first use; these nodes and edges are
//! what prove they are built, and built right.

use rolehop_audit::graph::{self, Graph, NodeKind};
use rolehop_audit::{Estate, input};

const A: &str = "arn:aws:iam::111111111111";

fn role(name: &str, path: &str, id: &str, trusted: &str) -> serde_json::Value {
    serde_json::json!({
        "Path": path,
        "RoleName": name,
        "RoleId": id,
        "Arn": format!("{A}:role{path}{name}"),
        "AssumeRolePolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"AWS": trusted},
                "Action": "sts:AssumeRole"
            }]
        },
        "RolePolicyList": [{
            "PolicyName": "hop",
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]
            }
        }],
        "AttachedManagedPolicies": [],
        "Tags": []
    })
}

/// Four roles in one account; `ci` sits under a path, so its session ARN is not its ARN.
fn estate() -> Estate {
    let export = serde_json::json!({
        "UserDetailList": [],
        "GroupDetailList": [],
        "Policies": [],
        "RoleDetailList": [
            role("ci", "/pipelines/", "AROACI0000000000000001", &format!("{A}:root")),
            role("by-id", "/", "AROABYID00000000000002", "AROACI0000000000000001"),
            role(
                "by-session",
                "/",
                "AROABYSESSION000000003",
                "arn:aws:sts::111111111111:assumed-role/ci/job-42",
            ),
            role(
                "by-outsider",
                "/",
                "AROAOUTSIDE00000000004",
                "arn:aws:iam::999999999999:role/vendor",
            ),
        ]
    });
    let mut e = Estate::default();
    input::gaad::add_export(&mut e, "export.json", &export.to_string()).unwrap();
    e
}

/// The ids of the nodes with an edge into `to`.
fn sources(g: &Graph, to: &str) -> Vec<String> {
    let to = g.find(to).unwrap();
    let mut from: Vec<String> = g.inbound[to]
        .iter()
        .map(|&e| g.nodes[g.edges[e].from].id.clone())
        .collect();
    from.sort();
    from
}

#[test]
fn every_form_of_trusted_principal_resolves_to_its_node() {
    let e = estate();
    // With and without the ARN index built on a second thread.
    for threaded in [false, true] {
        let prep = graph::Prepared::new_with(&e, threaded);
        let g = graph::build(&prep, &vec![false; e.principals.len()]);
        let ci = format!("{A}:role/pipelines/ci");
        // A unique id is what IAM shows once the principal it named is gone: the estate's
        // principal of that id is found (no outsider node is made for it), and the
        // evaluator, which matches sessions by ARN, gives it no edge, as AWS would not.
        assert!(sources(&g, &format!("{A}:role/by-id")).is_empty());
        assert!(g.find("AROACI0000000000000001").is_none());
        assert_eq!(sources(&g, &format!("{A}:role/by-session")), [ci.as_str()]);
        let vendor = "arn:aws:iam::999999999999:role/vendor";
        assert_eq!(sources(&g, &format!("{A}:role/by-outsider")), [vendor]);
        let v = &g.nodes[g.find(vendor).unwrap()];
        assert_eq!(v.kind, NodeKind::External);
        assert_eq!(v.account.as_deref(), Some("999999999999"));
        // An ARN of the estate is no unique id, and a unique id no ARN.
        assert_eq!(prep.by_id().get("AROACI0000000000000001"), Some(&0));
        assert_eq!(prep.by_id().get(ci.as_str()), None);
        assert_eq!(prep.by_role_name().get(&("111111111111", "ci")), Some(&0));
        assert_eq!(prep.by_arn.get(ci.as_str()), Some(&0));
    }
}
