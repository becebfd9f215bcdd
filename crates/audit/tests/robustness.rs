#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Whatever an export contains, the auditor answers (an error or a report) and never panics:
//! exports are input from outside.

use proptest::prelude::*;
use rolehop_audit::{Estate, Severity, audit, input};
use serde_json::{Value, json};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        prop_oneof![
            Just("*".to_owned()),
            Just("Allow".to_owned()),
            Just("Deny".to_owned()),
            Just("sts:AssumeRole".to_owned()),
            Just("arn:aws:iam::111111111111:root".to_owned()),
            Just("arn:aws:iam::111111111111:role/r".to_owned()),
            Just("%7B%22Statement%22%3A%5B%5D%7D".to_owned()),
            ".{0,12}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("Statement".to_owned()),
                    Just("Effect".to_owned()),
                    Just("Action".to_owned()),
                    Just("Resource".to_owned()),
                    Just("Principal".to_owned()),
                    Just("Condition".to_owned()),
                    Just("AWS".to_owned()),
                    Just("Arn".to_owned()),
                    "[A-Za-z]{1,6}",
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn odd_exports_never_panic(trust in arb_json(), inline in arb_json(), managed in arb_json()) {
        let export = json!({
            "RoleDetailList": [{
                "Arn": "arn:aws:iam::111111111111:role/r",
                "AssumeRolePolicyDocument": trust,
                "RolePolicyList": [{"PolicyName": "p", "PolicyDocument": inline}],
                "AttachedManagedPolicies": [{"PolicyArn": "arn:aws:iam::111111111111:policy/m"}],
            }],
            "UserDetailList": [{"Arn": "arn:aws:iam::111111111111:user/u", "UserPolicyList": [
                {"PolicyName": "q", "PolicyDocument": {"Statement": {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}}}]}],
            "Policies": [{"Arn": "arn:aws:iam::111111111111:policy/m", "DefaultVersionId": "v1",
                "PolicyVersionList": [{"VersionId": "v1", "IsDefaultVersion": true, "Document": managed}]}],
        });
        let mut e = Estate::default();
        input::gaad::add_export(&mut e, "x.json", &export.to_string()).unwrap();
        let report = audit(&e, 0);
        // A document the auditor could not read is a finding, never silence.
        let readable = rolehop_policy::parse::document_value(trust.clone())
            .map_err(|e| e.to_string())
            .and_then(|d| rolehop_audit::eval::Doc::parse(&d))
            .is_ok();
        if !readable {
            prop_assert!(report.findings.iter().any(|f| f.id == "RH092" && f.severity == Severity::High));
        }
    }
}
