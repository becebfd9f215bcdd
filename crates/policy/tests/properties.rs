//! Properties of the decision, checked on generated policies and requests: an explicit deny
//! always wins, adding an Allow never turns Allowed into a denial, and the order of
//! statements and of values never matters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use rolehop_policy::{Context, Decision, EvalInput, Policy, Principal, Request, evaluate};
use serde_json::{Value, json};

const ACTIONS: &[&str] = &[
    "s3:GetObject",
    "s3:PutObject",
    "sts:AssumeRole",
    "ec2:RunInstances",
];
const ACTION_PATTERNS: &[&str] = &[
    "s3:GetObject",
    "s3:*",
    "*",
    "s3:get*",
    "sts:Assume?ole",
    "ec2:*",
    "iam:*",
];
const RESOURCES: &[&str] = &[
    "arn:aws:s3:::b/k",
    "arn:aws:iam::111111111111:role/r",
    "arn:aws:ec2:us-east-1:111111111111:instance/i-1",
];
const RESOURCE_PATTERNS: &[&str] = &[
    "*",
    "arn:aws:s3:::b/*",
    "arn:aws:iam::*:role/*",
    "arn:aws:s3:::other/*",
    "arn:aws:ec2:*:111111111111:instance/*",
];
const PRINCIPALS: &[&str] = &[
    "arn:aws:iam::111111111111:user/u",
    "arn:aws:iam::222222222222:user/u",
    "arn:aws:sts::111111111111:assumed-role/r/s",
];
const PRINCIPAL_ENTRIES: &[&str] = &[
    "111111111111",
    "arn:aws:iam::222222222222:root",
    "arn:aws:iam::111111111111:user/u",
    "arn:aws:iam::111111111111:role/r",
    "*",
];

fn pick(xs: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop::sample::subsequence(xs, 1..=3.min(xs.len())).prop_map(|v| json!(v))
}

/// A statement; `with_principal` for resource policies.
fn statement(with_principal: bool) -> impl Strategy<Value = Value> {
    (
        any::<bool>(),
        any::<bool>(),
        pick(ACTION_PATTERNS),
        any::<bool>(),
        pick(RESOURCE_PATTERNS),
        pick(PRINCIPAL_ENTRIES),
        prop::option::of(prop::sample::subsequence(vec!["a", "b", "c"], 1..=2)),
    )
        .prop_map(
            move |(allow, not_action, actions, not_resource, resources, principals, cond)| {
                let mut s = serde_json::Map::new();
                s.insert("Effect".into(), json!(if allow { "Allow" } else { "Deny" }));
                s.insert(
                    if not_action { "NotAction" } else { "Action" }.into(),
                    actions,
                );
                s.insert(
                    if not_resource {
                        "NotResource"
                    } else {
                        "Resource"
                    }
                    .into(),
                    resources,
                );
                if with_principal {
                    s.insert("Principal".into(), json!({"AWS": principals}));
                }
                if let Some(values) = cond {
                    s.insert("Condition".into(), json!({"StringEquals": {"k": values}}));
                }
                Value::Object(s)
            },
        )
}

fn document(with_principal: bool) -> impl Strategy<Value = Value> {
    prop::collection::vec(statement(with_principal), 0..4)
        .prop_map(|stmts| json!({"Version": "2012-10-17", "Statement": stmts}))
}

/// Raw documents for every layer, and the request.
#[derive(Debug, Clone)]
struct World {
    identity: Vec<Value>,
    resource: Option<Value>,
    boundary: Option<Value>,
    scp: Option<Value>,
    session: Option<Value>,
    action: &'static str,
    resource_arn: &'static str,
    principal: &'static str,
    context: Vec<&'static str>,
}

fn world() -> impl Strategy<Value = World> {
    (
        prop::collection::vec(document(false), 0..3),
        prop::option::of(document(true)),
        prop::option::of(document(false)),
        prop::option::of(document(false)),
        prop::option::of(document(false)),
        prop::sample::select(ACTIONS),
        prop::sample::select(RESOURCES),
        prop::sample::select(PRINCIPALS),
        prop::sample::subsequence(vec!["a", "b", "c"], 0..=2),
    )
        .prop_map(
            |(
                identity,
                resource,
                boundary,
                scp,
                session,
                action,
                resource_arn,
                principal,
                context,
            )| World {
                identity,
                resource,
                boundary,
                scp,
                session,
                action,
                resource_arn,
                principal,
                context,
            },
        )
}

fn decide(w: &World) -> Decision {
    let parse = |v: &Value| Policy::from_value(v).unwrap();
    let identity: Vec<Policy> = w.identity.iter().map(parse).collect();
    let identity_refs: Vec<&Policy> = identity.iter().collect();
    let resource = w.resource.as_ref().map(parse);
    let boundary = w.boundary.as_ref().map(parse);
    let boundaries: Vec<&Policy> = boundary.iter().collect();
    let scp = w.scp.as_ref().map(parse);
    let scps: Vec<Vec<&Policy>> = scp.iter().map(|p| vec![p]).collect();
    let session = w.session.as_ref().map(parse);
    let request = Request::new(Principal::arn(w.principal), w.action, w.resource_arn)
        .with_context(Context::new().with_values("k", w.context.iter().copied()));
    let input = EvalInput {
        identity: &identity_refs,
        resource: resource.as_ref(),
        boundaries: &boundaries,
        scps: &scps,
        session: session.as_ref(),
        ..EvalInput::default()
    };
    evaluate(&request, &input).decision
}

/// Appends a statement to one of the world's documents (creating it when absent).
fn add_statement(w: &mut World, layer: usize, stmt: Value) {
    let push = |doc: &mut Value| doc["Statement"].as_array_mut().unwrap().push(stmt.clone());
    let fresh = || json!({"Version": "2012-10-17", "Statement": []});
    match layer % 5 {
        0 => {
            if w.identity.is_empty() {
                w.identity.push(fresh());
            }
            push(&mut w.identity[0]);
        }
        1 => push(w.resource.get_or_insert_with(fresh)),
        2 => push(w.boundary.get_or_insert_with(fresh)),
        3 => push(w.scp.get_or_insert_with(fresh)),
        _ => push(w.session.get_or_insert_with(fresh)),
    }
}

/// A deterministic permutation driven by `seed` (a small LCG, enough to reorder short lists).
fn permute<T>(items: &mut [T], seed: &mut u64) {
    for i in (1..items.len()).rev() {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = ((*seed >> 33) % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// Reorders every array in a document: statements and the values inside them.
fn shuffle(v: &mut Value, seed: &mut u64) {
    match v {
        Value::Array(items) => {
            permute(items, seed);
            for item in items {
                shuffle(item, seed);
            }
        }
        Value::Object(map) => {
            for (_, item) in map.iter_mut() {
                shuffle(item, seed);
            }
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, max_global_rejects: 20_000, ..ProptestConfig::default() })]

    #[test]
    fn an_explicit_deny_always_wins(mut w in world(), layer in 0usize..5) {
        let deny = if layer % 5 == 1 {
            json!({"Effect": "Deny", "Action": w.action, "Resource": "*", "Principal": "*"})
        } else {
            json!({"Effect": "Deny", "Action": w.action, "Resource": "*"})
        };
        add_statement(&mut w, layer, deny);
        prop_assert_eq!(decide(&w), Decision::ExplicitlyDenied);
    }

    #[test]
    fn adding_an_allow_never_turns_allowed_into_denied(
        mut w in world(),
        layer in 0usize..5,
        extra in statement(true),
    ) {
        // Bias towards allowed worlds: drop Denies and grant the request on the identity side
        // and, for other accounts, on the resource side; then keep only what is Allowed.
        for doc in w
            .identity
            .iter_mut()
            .chain(w.resource.iter_mut())
            .chain(w.boundary.iter_mut())
            .chain(w.scp.iter_mut())
            .chain(w.session.iter_mut())
        {
            doc["Statement"].as_array_mut().unwrap().retain(|s| s["Effect"] == "Allow");
        }
        let (action, resource_arn, principal) = (w.action, w.resource_arn, w.principal);
        add_statement(&mut w, 0, json!({"Effect": "Allow", "Action": action, "Resource": resource_arn}));
        add_statement(&mut w, 1, json!({"Effect": "Allow", "Action": action, "Resource": "*", "Principal": {"AWS": principal}}));
        prop_assume!(decide(&w) == Decision::Allowed);
        let mut allow = extra;
        allow["Effect"] = json!("Allow");
        if layer % 5 != 1 {
            allow.as_object_mut().unwrap().remove("Principal");
        }
        // Creating a boundary, SCP level or session policy where there was none adds a cap,
        // not an Allow: only extend those layers when they exist.
        let exists = match layer % 5 {
            2 => w.boundary.is_some(),
            3 => w.scp.is_some(),
            4 => w.session.is_some(),
            _ => true,
        };
        prop_assume!(exists);
        add_statement(&mut w, layer, allow);
        prop_assert_eq!(decide(&w), Decision::Allowed);
    }

    #[test]
    fn order_of_statements_and_values_never_matters(w in world(), seed in any::<u64>()) {
        let before = decide(&w);
        let mut s = seed;
        let mut shuffled = w.clone();
        for doc in shuffled
            .identity
            .iter_mut()
            .chain(shuffled.resource.iter_mut())
            .chain(shuffled.boundary.iter_mut())
            .chain(shuffled.scp.iter_mut())
            .chain(shuffled.session.iter_mut())
        {
            shuffle(doc, &mut s);
        }
        permute(&mut shuffled.identity, &mut s);
        permute(&mut shuffled.context, &mut s);
        prop_assert_eq!(decide(&shuffled), before);
    }

    #[test]
    fn parsing_arbitrary_json_never_panics(doc in arbitrary_json()) {
        let _ = Policy::from_value(&doc);
        let _ = Policy::from_value(&json!({"Statement": doc}));
        let _ = Policy::from_value(&json!({"Statement": {"Effect": "Allow", "Action": "*", "Condition": doc}}));
    }

    #[test]
    fn parsing_arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = Policy::parse(&text);
        let _ = Policy::parse(&format!("%7B{text}"));
    }
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        prop::sample::select(vec![
            "*",
            "Allow",
            "Deny",
            "s3:*",
            "StringLike",
            "Version",
            "2012-10-17",
            "${aws:username}",
            "10.0.0.0/8",
            "arn:aws:iam::1:root",
            "",
        ])
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "Statement",
                        "Effect",
                        "Action",
                        "NotAction",
                        "Resource",
                        "Principal",
                        "NotPrincipal",
                        "Condition",
                        "AWS",
                        "StringEquals",
                        "ForAnyValue:StringLike",
                        "IpAddress",
                        "Null",
                        "k",
                    ]),
                    inner
                ),
                0..4
            )
            .prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

const TRUST_ENTRIES: &[&str] = &[
    r#"{"AWS":"111111111111"}"#,
    r#"{"AWS":"arn:aws:iam::111111111111:root"}"#,
    r#"{"AWS":"arn:aws:iam::222222222222:root"}"#,
    r#"{"AWS":"arn:aws:iam::111111111111:user/u"}"#,
    r#"{"AWS":"arn:aws:iam::111111111111:role/path/r"}"#,
    r#"{"AWS":"arn:aws:sts::111111111111:assumed-role/r/s"}"#,
    r#"{"AWS":"*"}"#,
    r#""*""#,
    r#"{"Service":"lambda.amazonaws.com"}"#,
    r#"{"Federated":"arn:aws:iam::111111111111:oidc-provider/gitlab.com"}"#,
];

const CALLERS: &[&str] = &[
    "arn:aws:iam::111111111111:user/u",
    "arn:aws:iam::222222222222:user/u",
    "arn:aws:sts::111111111111:assumed-role/r/s",
    "arn:aws:sts::111111111111:assumed-role/other/s",
    "arn:aws:iam::111111111111:role/path/r",
    "lambda.amazonaws.com",
    "arn:aws:iam::111111111111:oidc-provider/gitlab.com",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The index may over-approximate but never misses a role whose trust policy allows the
    /// caller (even in discovery mode, where conditions are assumed).
    #[test]
    fn trust_index_never_misses_an_allowed_role(
        roles in prop::collection::vec(
            (prop::sample::select(TRUST_ENTRIES), any::<bool>(), prop::sample::select(vec![
                "sts:AssumeRole", "sts:*", "*", "sts:AssumeRoleWith*", "s3:GetObject",
            ])),
            1..12,
        ),
        caller in prop::sample::select(CALLERS),
    ) {
        let policies: Vec<Policy> = roles
            .iter()
            .map(|(principal, not, action)| {
                let key = if *not { "NotPrincipal" } else { "Principal" };
                Policy::parse(&format!(
                    r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","{key}":{principal},"Action":"{action}","Condition":{{"StringLike":{{"k":"v*"}}}}}}]}}"#
                ))
                .unwrap()
            })
            .collect();
        let arns: Vec<String> = (0..policies.len())
            .map(|i| format!("arn:aws:iam::111111111111:role/target-{i}"))
            .collect();
        let index = rolehop_policy::TrustIndex::build(arns.iter().map(String::as_str).zip(&policies));
        let principal = Principal::from_string(caller);
        let candidates: Vec<&str> = index.candidates(&principal).collect();
        let anything = Policy::parse(r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#).unwrap();
        for (arn, trust) in arns.iter().zip(&policies) {
            for action in ["sts:AssumeRole", "sts:AssumeRoleWithWebIdentity"] {
                let request = Request::new(principal.clone(), action, arn.as_str());
                let input = EvalInput {
                    identity: &[&anything],
                    resource: Some(trust),
                    ..EvalInput::default()
                };
                let e = rolehop_policy::evaluate_with(
                    &request,
                    &input,
                    rolehop_policy::EvalOptions { discovery: true },
                );
                if e.decision == Decision::Allowed {
                    prop_assert!(
                        candidates.contains(&arn.as_str()),
                        "{caller} may assume {arn} ({action}) but the index missed it"
                    );
                }
            }
        }
    }
}
