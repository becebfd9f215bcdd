//! Every condition operator, its `IfExists` form and the set qualifiers, table-driven through
//! the public API: a statement allows only when its condition holds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rolehop_policy::{Context, Decision, EvalInput, Policy, Principal, Request, evaluate};
use serde_json::{Value, json};

/// Whether `{op: {key: values}}` holds for `ctx` (key `k`).
fn holds(op: &str, values: Value, ctx: &Context) -> bool {
    holds_key(op, "k", values, ctx)
}

fn holds_key(op: &str, key: &str, values: Value, ctx: &Context) -> bool {
    let doc = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
        "Condition": {op: {key: values}}
    }]});
    let policy = Policy::from_value(&doc).unwrap();
    let request = Request::new(
        Principal::arn("arn:aws:iam::111111111111:user/alice"),
        "s3:GetObject",
        "arn:aws:s3:::b/o",
    )
    .with_context(ctx.clone());
    let input = EvalInput {
        identity: &[&policy],
        ..EvalInput::default()
    };
    evaluate(&request, &input).decision == Decision::Allowed
}

fn one(v: &str) -> Context {
    Context::new().with("k", v)
}

fn many(vs: &[&str]) -> Context {
    Context::new().with_values("k", vs.iter().copied())
}

#[test]
fn string_operators() {
    let none = Context::new();
    let table: &[(&str, Value, Context, bool)] = &[
        ("StringEquals", json!("a"), one("a"), true),
        ("StringEquals", json!("a"), one("A"), false),
        ("StringEquals", json!(["x", "a"]), one("a"), true),
        ("StringEquals", json!("a"), none.clone(), false),
        ("StringNotEquals", json!("a"), one("b"), true),
        ("StringNotEquals", json!("a"), one("a"), false),
        ("StringNotEquals", json!("a"), none.clone(), true),
        ("StringEqualsIgnoreCase", json!("ABC"), one("abc"), true),
        ("StringNotEqualsIgnoreCase", json!("ABC"), one("abc"), false),
        (
            "StringLike",
            json!("project_path:grp/*:ref_type:branch:ref:main"),
            one("project_path:grp/app:ref_type:branch:ref:main"),
            true,
        ),
        ("StringLike", json!("a?c"), one("abc"), true),
        ("StringLike", json!("a?c"), one("abbc"), false),
        ("StringNotLike", json!("a*"), one("abc"), false),
        ("StringNotLike", json!("a*"), one("xbc"), true),
        ("StringEqualsIfExists", json!("a"), none.clone(), true),
        ("StringEqualsIfExists", json!("a"), one("b"), false),
        ("StringLikeIfExists", json!("a*"), one("ab"), true),
        // Numbers and booleans in policies are compared as their text.
        ("StringEquals", json!(42), one("42"), true),
    ];
    for (op, values, ctx, want) in table {
        assert_eq!(
            holds(op, values.clone(), ctx),
            *want,
            "{op} {values} {ctx:?}"
        );
    }
}

#[test]
fn numeric_date_bool_binary_operators() {
    let table: &[(&str, Value, Context, bool)] = &[
        ("NumericEquals", json!("10"), one("10"), true),
        ("NumericEquals", json!(10), one("10.0"), true),
        ("NumericNotEquals", json!("10"), one("11"), true),
        ("NumericLessThan", json!("10"), one("9"), true),
        ("NumericLessThan", json!("10"), one("10"), false),
        ("NumericLessThanEquals", json!("10"), one("10"), true),
        ("NumericGreaterThan", json!("3600"), one("3601"), true),
        (
            "NumericGreaterThanEquals",
            json!("3600"),
            one("3599"),
            false,
        ),
        ("NumericLessThan", json!("10"), one("not a number"), false),
        (
            "DateLessThan",
            json!("2026-01-01T00:00:00Z"),
            one("2025-12-31T23:59:59Z"),
            true,
        ),
        (
            "DateLessThan",
            json!("2026-01-01T00:00:00Z"),
            one("2026-01-01T00:00:00Z"),
            false,
        ),
        (
            "DateLessThanEquals",
            json!("2026-01-01"),
            one("2026-01-01T00:00:00Z"),
            true,
        ),
        (
            "DateGreaterThan",
            json!("2026-01-01T00:00:00Z"),
            one("1767225601"),
            true,
        ),
        (
            "DateGreaterThanEquals",
            json!("2026-01-01T01:00:00+01:00"),
            one("2026-01-01T00:00:00Z"),
            true,
        ),
        (
            "DateEquals",
            json!("2026-01-01T00:00:00.000Z"),
            one("2026-01-01T00:00:00Z"),
            true,
        ),
        (
            "DateNotEquals",
            json!("2026-01-01T00:00:00Z"),
            one("2026-01-02T00:00:00Z"),
            true,
        ),
        ("Bool", json!("true"), one("true"), true),
        ("Bool", json!(true), one("TRUE"), true),
        ("Bool", json!("true"), one("false"), false),
        ("Bool", json!("false"), Context::new(), false),
        ("BoolIfExists", json!("false"), Context::new(), true),
        ("BinaryEquals", json!("QmluYXJ5"), one("QmluYXJ5"), true),
        ("BinaryEquals", json!("QmluYXJ5"), one("QmluYXJ6"), false),
    ];
    for (op, values, ctx, want) in table {
        assert_eq!(
            holds(op, values.clone(), ctx),
            *want,
            "{op} {values} {ctx:?}"
        );
    }
}

#[test]
fn ip_arn_and_null_operators() {
    let table: &[(&str, Value, Context, bool)] = &[
        ("IpAddress", json!("10.0.0.0/8"), one("10.1.2.3"), true),
        ("IpAddress", json!("10.0.0.0/8"), one("11.1.2.3"), false),
        (
            "IpAddress",
            json!(["192.0.2.0/24", "203.0.113.7"]),
            one("203.0.113.7"),
            true,
        ),
        (
            "IpAddress",
            json!("2001:db8::/32"),
            one("2001:db8:1::5"),
            true,
        ),
        (
            "IpAddress",
            json!("2001:db8::/32"),
            one("2001:db9::5"),
            false,
        ),
        ("IpAddress", json!("0.0.0.0/0"), one("198.51.100.1"), true),
        ("IpAddress", json!("10.0.0.0/8"), one("not-an-ip"), false),
        ("NotIpAddress", json!("10.0.0.0/8"), one("11.1.2.3"), true),
        ("NotIpAddress", json!("10.0.0.0/8"), one("10.1.2.3"), false),
        (
            "ArnLike",
            json!("arn:aws:iam::*:role/deploy-*"),
            one("arn:aws:iam::111111111111:role/deploy-dev"),
            true,
        ),
        (
            "ArnLike",
            json!("arn:aws:iam::*:role/deploy-*"),
            one("arn:aws:iam::111111111111:user/deploy-dev"),
            false,
        ),
        // Wildcards stay inside their segment.
        (
            "ArnLike",
            json!("arn:aws:iam::1*:role/x"),
            one("arn:aws:iam::1:2:role/x"),
            false,
        ),
        (
            "ArnEquals",
            json!("arn:aws:iam::111111111111:role/x"),
            one("arn:aws:iam::111111111111:role/x"),
            true,
        ),
        (
            "ArnNotEquals",
            json!("arn:aws:iam::111111111111:role/x"),
            one("arn:aws:iam::111111111111:role/y"),
            true,
        ),
        (
            "ArnNotLike",
            json!("arn:aws:iam::*:role/x"),
            one("arn:aws:iam::111111111111:role/x"),
            false,
        ),
        ("Null", json!("true"), Context::new(), true),
        ("Null", json!("true"), one("v"), false),
        ("Null", json!("false"), one("v"), true),
        ("Null", json!("false"), Context::new(), false),
    ];
    for (op, values, ctx, want) in table {
        assert_eq!(
            holds(op, values.clone(), ctx),
            *want,
            "{op} {values} {ctx:?}"
        );
    }
}

#[test]
fn set_qualifiers() {
    let table: &[(&str, Value, Context, bool)] = &[
        (
            "ForAllValues:StringEquals",
            json!(["a", "b"]),
            many(&["a", "b"]),
            true,
        ),
        (
            "ForAllValues:StringEquals",
            json!(["a", "b"]),
            many(&["a", "c"]),
            false,
        ),
        // Vacuous truth: an absent or empty key satisfies ForAllValues.
        (
            "ForAllValues:StringEquals",
            json!(["a"]),
            Context::new(),
            true,
        ),
        ("ForAllValues:StringEquals", json!(["a"]), many(&[]), true),
        (
            "ForAnyValue:StringEquals",
            json!(["a"]),
            many(&["x", "a"]),
            true,
        ),
        (
            "ForAnyValue:StringEquals",
            json!(["a"]),
            many(&["x", "y"]),
            false,
        ),
        (
            "ForAnyValue:StringEquals",
            json!(["a"]),
            Context::new(),
            false,
        ),
        (
            "ForAnyValue:StringLike",
            json!(["team-*"]),
            many(&["x", "team-a"]),
            true,
        ),
        (
            "ForAllValues:StringNotEquals",
            json!(["admin"]),
            many(&["a", "b"]),
            true,
        ),
        (
            "ForAllValues:StringNotEquals",
            json!(["admin"]),
            many(&["a", "admin"]),
            false,
        ),
        (
            "ForAnyValue:StringNotEquals",
            json!(["admin"]),
            many(&["admin", "b"]),
            true,
        ),
        (
            "ForAnyValue:StringNotEquals",
            json!(["admin"]),
            many(&["admin"]),
            false,
        ),
        // `IfExists` does not rescue ForAnyValue on an absent or empty key: AWS applies it
        // per value inside the loop (found by the differential run against iam-simulate).
        (
            "ForAnyValue:StringEqualsIfExists",
            json!(["a"]),
            Context::new(),
            false,
        ),
        (
            "ForAnyValue:StringNotLikeIfExists",
            json!(["a*"]),
            many(&[]),
            false,
        ),
        (
            "ForAnyValue:StringLikeIfExists",
            json!(["a*"]),
            many(&["x", "ab"]),
            true,
        ),
        (
            "ForAllValues:StringEqualsIfExists",
            json!(["a"]),
            Context::new(),
            true,
        ),
        // Without a qualifier a multi-valued key matches when any value matches.
        ("StringEquals", json!("a"), many(&["x", "a"]), true),
        ("StringNotEquals", json!("a"), many(&["x", "a"]), false),
        (
            "ForAllValues:StringEquals",
            json!(["a", "b"]),
            one("a"),
            true,
        ),
    ];
    for (op, values, ctx, want) in table {
        assert_eq!(
            holds(op, values.clone(), ctx),
            *want,
            "{op} {values} {ctx:?}"
        );
    }
}

#[test]
fn condition_keys_are_case_insensitive_and_values_are_not() {
    let ctx = Context::new().with("aws:PrincipalTag/Team", "Ops");
    assert!(holds_key(
        "StringEquals",
        "AWS:principaltag/team",
        json!("Ops"),
        &ctx
    ));
    assert!(!holds_key(
        "StringEquals",
        "aws:PrincipalTag/Team",
        json!("ops"),
        &ctx
    ));
}

#[test]
fn policy_variables_in_conditions() {
    let ctx = Context::new()
        .with("aws:username", "alice")
        .with("k", "home/alice/x");
    assert!(holds("StringLike", json!("home/${aws:username}/*"), &ctx));
    assert!(!holds(
        "StringLike",
        json!("home/${aws:username}/*"),
        &one("home/bob/x")
    ));
    let ctx = one("team-none");
    assert!(holds(
        "StringEquals",
        json!("team-${aws:PrincipalTag/team, 'none'}"),
        &ctx
    ));
    // `${*}` is a literal star, not a wildcard.
    assert!(holds("StringLike", json!("a${*}"), &one("a*")));
    assert!(!holds("StringLike", json!("a${*}"), &one("ab")));
    assert!(holds("StringEquals", json!("${$}{x}"), &one("${x}")));
    // A negated operator whose variable the request cannot fill does not hold (as
    // iam-simulate; found by the differential run): the statement does not apply, so an
    // Allow does not grant and a Deny does not deny. A positive one just matches nothing.
    assert!(!holds(
        "StringNotEquals",
        json!("${aws:username}"),
        &one("x")
    ));
    assert!(!holds(
        "StringNotLike",
        json!(["${aws:username}", "y*"]),
        &one("x")
    ));
    assert!(!holds(
        "ForAllValues:StringNotEquals",
        json!("${aws:username}"),
        &many(&["x"])
    ));
    assert!(holds(
        "StringNotEquals",
        json!("${aws:username}"),
        &Context::new()
    ));
    assert!(holds(
        "StringLike",
        json!(["${aws:username}", "x"]),
        &one("x")
    ));
}

#[test]
fn variables_are_literal_before_version_2012() {
    let doc = json!({"Version": "2008-10-17", "Statement": [{
        "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/${aws:username}"
    }]});
    let policy = Policy::from_value(&doc).unwrap();
    let run = |resource: &str| {
        let request = Request::new(
            Principal::arn("arn:aws:iam::111111111111:user/alice"),
            "s3:GetObject",
            resource,
        )
        .with_context(Context::new().with("aws:username", "alice"));
        evaluate(
            &request,
            &EvalInput {
                identity: &[&policy],
                ..EvalInput::default()
            },
        )
        .decision
    };
    assert_eq!(run("arn:aws:s3:::b/alice"), Decision::ImplicitlyDenied);
    assert_eq!(run("arn:aws:s3:::b/${aws:username}"), Decision::Allowed);
}
