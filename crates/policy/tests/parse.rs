//! Parsing policy documents: every accepted shape, URL-encoded input, and errors that carry a
//! JSON path into the document.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rolehop_policy::ast::Block;
use rolehop_policy::{Effect, Policy};
use serde_json::json;

#[test]
fn accepts_single_values_arrays_and_statement_objects() {
    let p = Policy::parse(
        r#"{"Version":"2012-10-17","Id":"x","Statement":{"Sid":"One","Effect":"Deny",
            "NotAction":["s3:*","iam:Get*"],"NotResource":"arn:aws:s3:::b",
            "NotPrincipal":{"AWS":["111111111111"],"Service":"lambda.amazonaws.com"}}}"#,
    )
    .unwrap();
    assert_eq!(p.statements.len(), 1);
    let s = &p.statements[0];
    assert_eq!(s.sid.as_deref(), Some("One"));
    assert_eq!(s.effect, Effect::Deny);
    assert!(matches!(&s.action, Block::Not(a) if a.len() == 2));
    assert!(matches!(&s.resource, Some(Block::Not(r)) if r.len() == 1));
    assert!(
        matches!(&s.principal, Some(Block::Not(set)) if set.aws == ["111111111111"] && set.service == ["lambda.amazonaws.com"])
    );
    let p = Policy::parse(
        r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Principal":"*"},
                        {"Effect":"Allow","Action":"sts:AssumeRoleWithWebIdentity",
                         "Principal":{"Federated":"arn:aws:iam::1:oidc-provider/gitlab.com",
                                      "CanonicalUser":"abc"},
                         "Condition":{"StringLike":{"gitlab.com:sub":["project_path:g/*"]},
                                      "ForAnyValue:StringEquals":{"k":[1,true,"s"]}}}]}"#,
    )
    .unwrap();
    assert_eq!(p.statements.len(), 2);
    assert_eq!(p.statements[1].index, 1);
    assert_eq!(p.statements[1].conditions.len(), 2);
    assert_eq!(p.statements[1].conditions[1].values[1].raw, "true");
}

#[test]
fn principals_are_listed_in_the_order_written() {
    use rolehop_policy::ast::PrincipalType::{Aws, CanonicalUser, Federated, Service};
    let p = Policy::parse(
        r#"{"Statement":[
            {"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"Service":"ec2.amazonaws.com",
             "AWS":[" 111111111111 ","arn:aws:iam::2:root"],"CanonicalUser":"abc","Federated":"f"}},
            {"Effect":"Allow","Action":"sts:AssumeRole","Principal":"*"},
            {"Effect":"Allow","Action":"sts:AssumeRole","NotPrincipal":"arn:aws:iam::3:root"}]}"#,
    )
    .unwrap();
    let entries = |i: usize| match &p.statements[i].principal {
        Some(Block::Is(set) | Block::Not(set)) => set.entries().collect::<Vec<_>>(),
        None => vec![],
    };
    assert_eq!(
        entries(0),
        [
            (Service, "ec2.amazonaws.com"),
            (Aws, "111111111111"),
            (Aws, "arn:aws:iam::2:root"),
            (CanonicalUser, "abc"),
            (Federated, "f"),
        ]
    );
    // IAM reads a bare `*` or ARN as an `AWS` principal.
    assert_eq!(entries(1), [(Aws, "*")]);
    assert_eq!(entries(2), [(Aws, "arn:aws:iam::3:root")]);
}

#[test]
fn accepts_url_encoded_documents_as_iam_returns_them() {
    let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%22ec2.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D";
    let p = Policy::parse(encoded).unwrap();
    assert_eq!(p.version.as_deref(), Some("2012-10-17"));
    // A JSON string value holding the encoded document works too.
    let p2 = Policy::from_value(&json!(encoded)).unwrap();
    assert_eq!(p, p2);
}

#[test]
fn accepts_an_empty_statement_list() {
    assert!(
        Policy::parse(r#"{"Version":"2012-10-17","Statement":[]}"#)
            .unwrap()
            .statements
            .is_empty()
    );
}

#[test]
fn errors_point_at_the_offending_element() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"*"},{"Effect":"Allow","Action":"*"},{"Effect":"Allow","Action":"*","Condition":{"StringLike":{"k":{"a":1}}}}]}"#,
            "Statement[2].Condition.StringLike.k",
            "expected a string, number or boolean",
        ),
        (
            r#"{"Statement":{"Effect":"Permit","Action":"*"}}"#,
            "Statement.Effect",
            "unknown effect `Permit`",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow"}]}"#,
            "Statement[0]",
            "missing `Action` or `NotAction`",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"*","NotAction":"*"}]}"#,
            "Statement[0]",
            "both `Action` and `NotAction`",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":[]}]}"#,
            "Statement[0].Action",
            "at least one value",
        ),
        // Found by the bad-input corpus: IAM refuses an action without a service prefix.
        (
            r#"{"Statement":[{"Effect":"Allow","Action":["sts:AssumeRole","assumerole"]}]}"#,
            "Statement[0].Action",
            "action `assumerole` must be `*` or `service:action`",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","NotAction":":AssumeRole"}]}"#,
            "Statement[0].NotAction",
            "must be `*` or `service:action`",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":[1]}]}"#,
            "Statement[0].Action[0]",
            "expected a string",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Principal":{"Users":"x"}}]}"#,
            "Statement[0].Principal",
            "unknown principal type `Users`",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Condition":{"StringFoo":{"k":"v"}}}]}"#,
            "Statement[0].Condition",
            "unknown condition operator `StringFoo`",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Condition":{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","300.1.1.1"]}}}]}"#,
            "Statement[0].Condition.IpAddress.aws:SourceIp[1]",
            "`300.1.1.1` is not an IPv4 or IPv6",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"tomorrow"}}}]}"#,
            "Statement[0].Condition.DateLessThan.aws:CurrentTime",
            "not an ISO 8601 date",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Extra":1}]}"#,
            "Statement[0]",
            "unknown statement element `Extra`",
        ),
        (
            r#"{"Version":"2020-01-01","Statement":[]}"#,
            "Version",
            "unknown version",
        ),
        (
            r#"{"Statement":"x"}"#,
            "Statement",
            "expected an object or an array",
        ),
        (r#"{"Version":"2012-10-17"}"#, "", "missing `Statement`"),
        (r#"[1,2]"#, "", "must be a JSON object"),
        (r#"{"Statement":"#, "", "invalid JSON"),
    ];
    for (doc, path, msg) in cases {
        let err = Policy::parse(doc).unwrap_err();
        assert_eq!(err.path, *path, "{doc}");
        let message = err.kind.to_string();
        assert!(message.contains(msg), "{doc}: {message}");
        if !path.is_empty() {
            assert!(err.to_string().starts_with(&format!("at `{path}`: ")));
        }
    }
}

#[test]
fn document_value_decodes_what_the_iam_api_returns() {
    use rolehop_policy::parse::document_value;
    let encoded = serde_json::Value::String(
        "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D".into(),
    );
    assert_eq!(document_value(encoded).unwrap()["Version"], "2012-10-17");
    let object = json!({"Statement": []});
    assert_eq!(document_value(object.clone()).unwrap(), object);
    let err = document_value(json!(3)).unwrap_err();
    assert_eq!(err.to_string(), "expected a policy object, found a number");
}

#[test]
fn errors_carry_a_kind_callers_can_match() {
    use rolehop_policy::PolicyErrorKind;
    let e =
        Policy::parse(r#"{"Statement":[{"Effect":"Allow","Action":"assumerole"}]}"#).unwrap_err();
    assert_eq!(e.kind, PolicyErrorKind::BadAction("assumerole".into()));
    let e = Policy::parse(r#"{"Statement":[{"Effect":"Allow","Action":[]}]}"#).unwrap_err();
    assert_eq!(e.kind, PolicyErrorKind::Empty("value"));
    assert_eq!(
        e.to_string(),
        "at `Statement[0].Action`: expected at least one value"
    );
}
