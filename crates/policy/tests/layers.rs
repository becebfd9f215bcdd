//! Each evaluation layer on its own and together: SCP levels, RCPs, resource and trust
//! policies (same and cross account), permissions boundaries, session policies, identity
//! policies, service and federated principals, with explanations naming the statement.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rolehop_policy::{
    Context, Decision, EvalInput, Layer, Policy, Principal, Reason, Request, evaluate,
};
use serde_json::json;

const A: &str = "111111111111";
const B: &str = "222222222222";

fn p(v: serde_json::Value) -> Policy {
    Policy::from_value(&v).unwrap()
}

fn allow(action: &str, resource: &str) -> Policy {
    p(
        json!({"Version":"2012-10-17","Statement":[{"Sid":"Grant","Effect":"Allow","Action":action,"Resource":resource}]}),
    )
}

fn deny(action: &str, resource: &str) -> Policy {
    p(
        json!({"Version":"2012-10-17","Statement":[{"Sid":"Block","Effect":"Deny","Action":action,"Resource":resource}]}),
    )
}

fn trust(principal: serde_json::Value) -> Policy {
    p(
        json!({"Version":"2012-10-17","Statement":[{"Sid":"Trust","Effect":"Allow","Principal":principal,"Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"]}]}),
    )
}

fn user(acct: &str) -> Principal {
    Principal::arn(format!("arn:aws:iam::{acct}:user/ci"))
}

fn assume(principal: Principal, role_acct: &str) -> Request {
    Request::new(
        principal,
        "sts:AssumeRole",
        format!("arn:aws:iam::{role_acct}:role/deploy"),
    )
}

#[test]
fn trust_policy_is_required_even_in_the_same_account() {
    let id = allow("sts:AssumeRole", "*");
    let req = assume(user(A), A);
    let no_trust = evaluate(
        &req,
        &EvalInput {
            identity: &[&id],
            ..EvalInput::default()
        },
    );
    assert_eq!(no_trust.decision, Decision::ImplicitlyDenied);
    assert_eq!(no_trust.explanation.layer, Some(Layer::Resource));
    assert_eq!(no_trust.explanation.reason, Reason::TrustPolicyRefuses);

    // Naming the user directly is enough within one account, without an identity policy.
    let direct = trust(json!({"AWS": format!("arn:aws:iam::{A}:user/ci")}));
    let e = evaluate(
        &req,
        &EvalInput {
            resource: Some(&direct),
            ..EvalInput::default()
        },
    );
    assert_eq!(e.decision, Decision::Allowed);
    assert!(e.explanation.to_string().contains("`Trust`"));

    // Trusting the account delegates to the identity side.
    let root = trust(json!({"AWS": format!("arn:aws:iam::{A}:root")}));
    let only_trust = EvalInput {
        resource: Some(&root),
        ..EvalInput::default()
    };
    assert_eq!(
        evaluate(&req, &only_trust).decision,
        Decision::ImplicitlyDenied
    );
    let both = EvalInput {
        identity: &[&id],
        resource: Some(&root),
        ..EvalInput::default()
    };
    assert_eq!(evaluate(&req, &both).decision, Decision::Allowed);
}

#[test]
fn cross_account_needs_both_sides() {
    let id = allow("sts:AssumeRole", &format!("arn:aws:iam::{B}:role/deploy"));
    let by_account = trust(json!({"AWS": A}));
    let req = assume(user(A), B);
    let cases: [(&[&Policy], Option<&Policy>, Decision); 4] = [
        (&[], None, Decision::ImplicitlyDenied),
        (&[&id], None, Decision::ImplicitlyDenied),
        (&[], Some(&by_account), Decision::ImplicitlyDenied),
        (&[&id], Some(&by_account), Decision::Allowed),
    ];
    for (identity, resource, want) in cases {
        let input = EvalInput {
            identity,
            resource,
            ..EvalInput::default()
        };
        assert_eq!(evaluate(&req, &input).decision, want);
    }
    // Another account's root does not cover this one.
    let other = trust(json!({"AWS": format!("arn:aws:iam::{B}:root")}));
    let input = EvalInput {
        identity: &[&id],
        resource: Some(&other),
        ..EvalInput::default()
    };
    assert_eq!(evaluate(&req, &input).decision, Decision::ImplicitlyDenied);
}

#[test]
fn role_sessions_match_their_role_and_session_arns() {
    let session = Principal::arn(format!("arn:aws:sts::{A}:assumed-role/service-dev/job-42"));
    let id = allow("sts:AssumeRole", "*");
    let cases = [
        (
            json!({"AWS": format!("arn:aws:iam::{A}:role/ci/service-dev")}),
            Decision::Allowed,
        ),
        (
            json!({"AWS": format!("arn:aws:sts::{A}:assumed-role/service-dev/job-42")}),
            Decision::Allowed,
        ),
        (
            json!({"AWS": format!("arn:aws:iam::{A}:role/service-prod")}),
            Decision::ImplicitlyDenied,
        ),
        (json!({"AWS": "*"}), Decision::Allowed),
    ];
    for (principal, want) in cases {
        let t = trust(principal.clone());
        let input = EvalInput {
            identity: &[&id],
            resource: Some(&t),
            ..EvalInput::default()
        };
        assert_eq!(
            evaluate(&assume(session.clone(), B), &input).decision,
            want,
            "{principal}"
        );
    }
}

#[test]
fn explicit_deny_in_any_layer_wins() {
    let req = assume(user(A), A);
    let ok_id = allow("sts:AssumeRole", "*");
    let ok_trust = trust(json!({"AWS": A}));
    let blocked = deny("sts:*", "*");
    let scp_ok = allow("*", "*");
    let deny_trust = p(
        json!({"Statement":[{"Sid":"NoCi","Effect":"Deny","Principal":{"AWS":A},"Action":"sts:AssumeRole"}, {"Effect":"Allow","Principal":{"AWS":A},"Action":"sts:AssumeRole"}]}),
    );
    let rcp_deny = p(
        json!({"Statement":[{"Effect":"Deny","Principal":"*","Action":"sts:AssumeRole","Resource":"*"}]}),
    );

    let id_ok = [&ok_id];
    let id_blocked = [&ok_id, &blocked];
    let b_blocked = [&blocked];
    let scp_levels = vec![vec![&scp_ok, &blocked]];
    let rcp_levels = vec![vec![&rcp_deny]];
    let layers: Vec<(Layer, EvalInput<'_>)> = vec![
        (
            Layer::Identity,
            EvalInput {
                identity: &id_blocked,
                resource: Some(&ok_trust),
                ..EvalInput::default()
            },
        ),
        (
            Layer::Resource,
            EvalInput {
                identity: &id_ok,
                resource: Some(&deny_trust),
                ..EvalInput::default()
            },
        ),
        (
            Layer::Boundary,
            EvalInput {
                identity: &id_ok,
                resource: Some(&ok_trust),
                boundaries: &b_blocked,
                ..EvalInput::default()
            },
        ),
        (
            Layer::Scp,
            EvalInput {
                identity: &id_ok,
                resource: Some(&ok_trust),
                scps: &scp_levels,
                ..EvalInput::default()
            },
        ),
        (
            Layer::Rcp,
            EvalInput {
                identity: &id_ok,
                resource: Some(&ok_trust),
                rcps: &rcp_levels,
                ..EvalInput::default()
            },
        ),
        (
            Layer::Session,
            EvalInput {
                identity: &id_ok,
                resource: Some(&ok_trust),
                session: Some(&blocked),
                ..EvalInput::default()
            },
        ),
    ];
    for (layer, input) in layers {
        let e = evaluate(&req, &input);
        assert_eq!(e.decision, Decision::ExplicitlyDenied, "{layer}");
        assert_eq!(e.explanation.layer, Some(layer));
        assert_eq!(e.explanation.statements[0].layer, layer);
    }
}

#[test]
fn every_scp_level_must_allow() {
    let req = Request::new(user(A), "s3:GetObject", "arn:aws:s3:::b/k");
    let id = allow("s3:*", "*");
    let full = allow("*", "*");
    let s3_only = allow("s3:*", "*");
    let ec2_only = allow("ec2:*", "*");
    let cases: Vec<(Vec<Vec<&Policy>>, Decision)> = vec![
        (vec![], Decision::Allowed),
        (vec![vec![&full], vec![&s3_only]], Decision::Allowed),
        (
            vec![vec![&full], vec![&ec2_only]],
            Decision::ImplicitlyDenied,
        ),
        (vec![vec![&full], vec![]], Decision::ImplicitlyDenied),
    ];
    for (scps, want) in cases {
        let input = EvalInput {
            identity: &[&id],
            scps: &scps,
            ..EvalInput::default()
        };
        let e = evaluate(&req, &input);
        assert_eq!(e.decision, want);
        if want == Decision::ImplicitlyDenied {
            assert_eq!(e.explanation.layer, Some(Layer::Scp));
        }
    }
    // SCPs never restrict service principals.
    let svc = Request::new(
        Principal::service("lambda.amazonaws.com"),
        "sts:AssumeRole",
        format!("arn:aws:iam::{A}:role/fn"),
    );
    let t = trust(json!({"Service": "lambda.amazonaws.com"}));
    let levels = vec![vec![&ec2_only]];
    let input = EvalInput {
        resource: Some(&t),
        scps: &levels,
        ..EvalInput::default()
    };
    assert_eq!(evaluate(&svc, &input).decision, Decision::Allowed);
}

#[test]
fn boundary_and_session_policy_cap_identity_grants() {
    let session = Principal::arn(format!("arn:aws:sts::{A}:assumed-role/deploy/job"));
    let req = Request::new(session, "s3:PutObject", "arn:aws:s3:::b/k");
    let id = allow("s3:*", "*");
    let only_get = allow("s3:GetObject", "*");
    let all = allow("*", "*");
    let all_s = [&all];
    let get_s = [&only_get];
    type Row<'a> = (
        &'a [&'a Policy],
        Option<&'a Policy>,
        Decision,
        Option<Layer>,
    );
    let table: Vec<Row<'_>> = vec![
        (&all_s, None, Decision::Allowed, None),
        (
            &get_s,
            None,
            Decision::ImplicitlyDenied,
            Some(Layer::Boundary),
        ),
        (
            &[],
            Some(&only_get),
            Decision::ImplicitlyDenied,
            Some(Layer::Session),
        ),
        (&all_s, Some(&all), Decision::Allowed, None),
    ];
    for (boundaries, sess, want, layer) in table {
        let input = EvalInput {
            identity: &[&id],
            boundaries,
            session: sess,
            ..EvalInput::default()
        };
        let e = evaluate(&req, &input);
        assert_eq!(e.decision, want);
        if layer.is_some() {
            assert_eq!(e.explanation.layer, layer);
        }
    }
}

#[test]
fn gitlab_oidc_web_identity_is_decided_by_the_trust_policy_alone() {
    let provider = format!("arn:aws:iam::{A}:oidc-provider/gitlab.com");
    let t = p(
        json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Principal":{"Federated": provider},
        "Action":"sts:AssumeRoleWithWebIdentity",
        "Condition":{"StringEquals":{"gitlab.com:aud":"https://gitlab.com"},
                     "StringLike":{"gitlab.com:sub":"project_path:infra/app:ref_type:branch:ref:main"}}}]}),
    );
    let req = |sub: &str| {
        Request::new(
            Principal::from_string(&provider),
            "sts:AssumeRoleWithWebIdentity",
            format!("arn:aws:iam::{A}:role/service-dev"),
        )
        .with_context(
            Context::new()
                .with("gitlab.com:aud", "https://gitlab.com")
                .with("gitlab.com:sub", sub),
        )
    };
    let input = EvalInput {
        resource: Some(&t),
        ..EvalInput::default()
    };
    assert_eq!(
        evaluate(
            &req("project_path:infra/app:ref_type:branch:ref:main"),
            &input
        )
        .decision,
        Decision::Allowed
    );
    assert_eq!(
        evaluate(
            &req("project_path:infra/app:ref_type:branch:ref:feature"),
            &input
        )
        .decision,
        Decision::ImplicitlyDenied
    );
}

#[test]
fn same_account_resource_policy_can_grant_alone() {
    let req = Request::new(user(A), "s3:GetObject", "arn:aws:s3:::b/k").with_resource_account(A);
    let named = p(
        json!({"Statement":[{"Effect":"Allow","Principal":{"AWS":format!("arn:aws:iam::{A}:user/ci")},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}),
    );
    let account = p(
        json!({"Statement":[{"Effect":"Allow","Principal":{"AWS":A},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}),
    );
    let none = allow("ec2:*", "*");
    assert_eq!(
        evaluate(
            &req,
            &EvalInput {
                resource: Some(&named),
                ..EvalInput::default()
            }
        )
        .decision,
        Decision::Allowed
    );
    // Not capped by the boundary when the user is named directly.
    assert_eq!(
        evaluate(
            &req,
            &EvalInput {
                resource: Some(&named),
                boundaries: &[&none],
                ..EvalInput::default()
            }
        )
        .decision,
        Decision::Allowed
    );
    assert_eq!(
        evaluate(
            &req,
            &EvalInput {
                resource: Some(&account),
                ..EvalInput::default()
            }
        )
        .decision,
        Decision::ImplicitlyDenied
    );
}

#[test]
fn get_caller_identity_is_always_allowed() {
    let req = Request::new(user(A), "sts:GetCallerIdentity", "*");
    let blocked = deny("*", "*");
    let input = EvalInput {
        identity: &[&blocked],
        ..EvalInput::default()
    };
    assert_eq!(evaluate(&req, &input).decision, Decision::Allowed);
}

#[test]
fn discovery_mode_reports_the_conditions_access_depends_on() {
    use rolehop_policy::{Effect, EvalOptions, evaluate_with};
    let provider = format!("arn:aws:iam::{A}:oidc-provider/gitlab.com");
    let t = p(json!({"Version":"2012-10-17","Statement":[
        {"Sid":"Gitlab","Effect":"Allow","Principal":{"Federated": provider},
         "Action":"sts:AssumeRoleWithWebIdentity",
         "Condition":{"StringLike":{"gitlab.com:sub":"project_path:infra/*"}}},
        {"Sid":"NotFromForks","Effect":"Deny","Principal":"*","Action":"*",
         "Condition":{"StringEquals":{"gitlab.com:project_visibility":"public"}}}]}));
    let req = Request::new(
        Principal::from_string(&provider),
        "sts:AssumeRoleWithWebIdentity",
        format!("arn:aws:iam::{A}:role/service-dev"),
    );
    let input = EvalInput {
        resource: Some(&t),
        ..EvalInput::default()
    };
    // Strictly, absent keys make the Allow fail.
    assert_eq!(evaluate(&req, &input).decision, Decision::ImplicitlyDenied);
    let e = evaluate_with(&req, &input, EvalOptions { discovery: true });
    assert_eq!(e.decision, Decision::Allowed);
    let texts: Vec<String> = e.assumed.iter().map(ToString::to_string).collect();
    assert_eq!(e.assumed.len(), 2, "{texts:?}");
    assert_eq!(e.assumed[0].effect, Effect::Allow);
    assert_eq!(e.assumed[0].key, "gitlab.com:sub");
    assert!(texts[0].starts_with("if `StringLike` `gitlab.com:sub` [`project_path:infra/*`]"));
    assert!(texts[0].contains("`Gitlab`"));
    assert_eq!(e.assumed[1].effect, Effect::Deny);
    assert!(texts[1].starts_with("unless `StringEquals` `gitlab.com:project_visibility`"));
    // Known keys are decided strictly even in discovery mode.
    let known = req
        .clone()
        .with_context(Context::new().with("gitlab.com:sub", "project_path:other/app"));
    let e = evaluate_with(&known, &input, EvalOptions { discovery: true });
    assert_eq!(e.decision, Decision::ImplicitlyDenied);
    assert!(e.assumed.is_empty());
    // A role ARN stands for any of its sessions.
    let named_session = p(
        json!({"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*",
        "Principal":{"AWS":format!("arn:aws:sts::{A}:assumed-role/deploy/job-1")}}]}),
    );
    let role = Request::new(
        Principal::arn(format!("arn:aws:iam::{A}:role/deploy")),
        "s3:GetObject",
        "arn:aws:s3:::b/k",
    );
    let input = EvalInput {
        resource: Some(&named_session),
        ..EvalInput::default()
    };
    assert_eq!(evaluate(&role, &input).decision, Decision::ImplicitlyDenied);
    assert_eq!(
        evaluate_with(&role, &input, EvalOptions { discovery: true }).decision,
        Decision::Allowed
    );
}

/// Regression: discovery mode used to drop the trust policy's assumed conditions whenever the
/// identity side granted unconditionally, so a cross-account AssumeRole looked unconditional.
#[test]
fn discovery_keeps_trust_conditions_when_identity_grants_unconditionally() {
    use rolehop_policy::{Effect, EvalOptions, evaluate_with};
    let id = allow("sts:AssumeRole", &format!("arn:aws:iam::{B}:role/deploy"));
    let t = p(json!({"Version":"2012-10-17","Statement":[
        {"Sid":"FromBroker","Effect":"Allow","Principal":{"AWS":format!("arn:aws:iam::{A}:root")},
         "Action":["sts:AssumeRole","sts:SetSourceIdentity"],
         "Condition":{"StringLike":{"aws:SourceIdentity":"gitlab-*","gitlab.com:sub":"project_path:infra/*"}}}]}));
    let req = assume(user(A), B);
    let input = EvalInput {
        identity: &[&id],
        resource: Some(&t),
        ..EvalInput::default()
    };
    let e = evaluate_with(&req, &input, EvalOptions { discovery: true });
    assert_eq!(e.decision, Decision::Allowed);
    let keys: Vec<&str> = e.assumed.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.contains(&"aws:SourceIdentity"), "{keys:?}");
    assert!(keys.contains(&"gitlab.com:sub"), "{keys:?}");
    assert!(
        e.assumed
            .iter()
            .all(|a| a.effect == Effect::Allow && a.statement.layer == Layer::Resource)
    );
    assert_eq!(e.assumed[0].statement.sid.as_deref(), Some("FromBroker"));

    // An unconditional grant inside the same layer still makes a sibling's conditions moot.
    let t_open = p(json!({"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Principal":{"AWS":format!("arn:aws:iam::{A}:root")},
         "Action":"sts:AssumeRole",
         "Condition":{"StringLike":{"aws:SourceIdentity":"gitlab-*"}}},
        {"Effect":"Allow","Principal":{"AWS":format!("arn:aws:iam::{A}:root")},
         "Action":"sts:AssumeRole"}]}));
    let input = EvalInput {
        identity: &[&id],
        resource: Some(&t_open),
        ..EvalInput::default()
    };
    let e = evaluate_with(&req, &input, EvalOptions { discovery: true });
    assert_eq!(e.decision, Decision::Allowed);
    assert!(e.assumed.is_empty(), "{:?}", e.assumed);
}

/// A NotResource whose policy variable the request cannot fill makes its statement not apply
/// (AWS: the statement is invalid), rather than "every resource but nothing": an Allow grants
/// nothing and a Deny denies nothing. Found by the differential run against iam-simulate.
#[test]
fn not_resource_with_an_unresolvable_variable_applies_to_nothing() {
    let request = |ctx: Context| {
        Request::new(
            user(A),
            "s3:GetObject",
            "arn:aws:s3:::artifacts/prod/app.zip",
        )
        .with_resource_account(A)
        .with_context(ctx)
    };
    let stmt = |effect: &str| {
        p(
            json!({"Version":"2012-10-17","Statement":[{"Effect":effect,"Action":"s3:*",
            "NotResource":"arn:aws:s3:::artifacts/${aws:PrincipalTag/env}/*"}]}),
        )
    };
    let grant = stmt("Allow");
    let block = stmt("Deny");
    let everything = allow("*", "*");
    let decide = |identity: &[&Policy], ctx: Context| {
        let input = EvalInput {
            identity,
            ..EvalInput::default()
        };
        evaluate(&request(ctx), &input).decision
    };
    let untagged = Context::new();
    let dev = Context::new().with("aws:PrincipalTag/env", "dev");
    let prod = Context::new().with("aws:PrincipalTag/env", "prod");
    assert_eq!(
        decide(&[&grant], untagged.clone()),
        Decision::ImplicitlyDenied
    );
    assert_eq!(decide(&[&grant], dev.clone()), Decision::Allowed);
    assert_eq!(decide(&[&grant], prod.clone()), Decision::ImplicitlyDenied);
    assert_eq!(decide(&[&everything, &block], untagged), Decision::Allowed);
    assert_eq!(
        decide(&[&everything, &block], dev),
        Decision::ExplicitlyDenied
    );
    assert_eq!(decide(&[&everything, &block], prod), Decision::Allowed);
}
