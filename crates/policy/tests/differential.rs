//! Differential testing: rolehop's evaluator against an independent engine,
//! @cloud-copilot/iam-simulate (run by `rolehop_testkit::iam_simulate`, version pinned in
//! scripts/tools). Policies and requests are generated with proptest strategies from the shapes
//! the broker design uses (`sts:AssumeRole`, `sts:TagSession`, `sts:SetSourceIdentity` on role
//! ARNs across four accounts; users, roles and sessions as callers, account roots as trusted
//! principals; identity and trust policies, permissions boundaries, SCPs at one to three
//! levels, session policies; condition operators with `IfExists` and set qualifiers; policy
//! variables; plus plain S3 and EC2 requests). The seed is fixed, so every run decides the same
//! requests; all of them go to iam-simulate in a few batches (one Node process each).
//!
//! Any disagreement fails the test, after it is minimised (greedy delta debugging, candidates
//! batched per round) and printed as a case ready to commit. A disagreement whose analysis is
//! done is a known difference: a predicate in [`KNOWN`] recognises its shape and, unless the
//! predicate pins the whole cause, the engines must agree once the cause is removed. Its
//! minimised case sits in `tests/corpus/known-differences/differential.json` with the expected
//! decision per AWS's documentation and a note saying which engine is right.
//!
//! Left out: `sts:AssumeRoleWithWebIdentity` with custom OIDC condition keys
//! (`gitlab.example.com:sub`): iam-simulate drops those keys (see the testkit module), so it
//! denies every such request. Web-identity trust is checked by the evaluator's own tests and
//! the in-repo corpus instead (docs/reliability.md, "Differential testing against
//! iam-simulate").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rolehop_policy::cases::cases_from_value;
use rolehop_testkit::iam_simulate;
use serde_json::{Map, Value, json};

/// Generated requests per Node batch, and batches per run: 20,000 requests, one to two
/// minutes of test time on the shared two-core machine (debug build).
const BATCH: usize = 5_000;
const BATCHES: usize = 4;

/// The generator's seed byte: 11, or `ROLEHOP_DIFFERENTIAL_SEED` for an exploratory run over
/// other requests (`ROLEHOP_DIFFERENTIAL_BATCHES` sets their number).
fn seed() -> u8 {
    env_number("ROLEHOP_DIFFERENTIAL_SEED").unwrap_or(11)
}

fn batches() -> usize {
    env_number("ROLEHOP_DIFFERENTIAL_BATCHES").unwrap_or(BATCHES)
}

fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    let v = std::env::var(name).ok()?;
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
    )
}

/// Generated cases iam-simulate may refuse as input, per thousand (the generator writes
/// valid policies; 0 were refused when this was written).
const MAX_INPUT_ERRORS_PER_MILLE: usize = 1;

// ---------------------------------------------------------------------------------------
// The vocabulary: accounts 111111111111 (broker), 222222222222 (prod), 333333333333 (dev),
// 444444444444 (an outsider).

/// Callers. Account roots appear only as trust-policy principals: the root user cannot assume
/// a role ("Roles may not be assumed by root accounts"), has no identity policies or
/// permissions boundary, and the broker design never uses it.
const CALLERS: &[&str] = &[
    "arn:aws:iam::111111111111:user/broker-prod",
    "arn:aws:iam::111111111111:user/broker-dev",
    "arn:aws:iam::111111111111:role/service-prod",
    "arn:aws:sts::111111111111:assumed-role/service-prod/job-42",
    "arn:aws:sts::111111111111:assumed-role/service-dev/job-7",
    "arn:aws:iam::444444444444:user/mallory",
    "arn:aws:sts::444444444444:assumed-role/attacker/x",
];

const ROLES: &[&str] = &[
    "arn:aws:iam::222222222222:role/deploy-prod",
    "arn:aws:iam::333333333333:role/deploy-dev",
    "arn:aws:iam::111111111111:role/service-prod",
    "arn:aws:iam::222222222222:role/ci/deploy-staging",
];

/// Plain requests: (action, resource ARN, owning account).
const PLAIN: &[(&str, &str, &str)] = &[
    (
        "s3:GetObject",
        "arn:aws:s3:::artifacts/prod/app.zip",
        "111111111111",
    ),
    (
        "s3:PutObject",
        "arn:aws:s3:::artifacts/prod/app.zip",
        "222222222222",
    ),
    (
        "ec2:RunInstances",
        "arn:aws:ec2:us-east-1:111111111111:instance/i-0abc",
        "111111111111",
    ),
    (
        "ec2:TerminateInstances",
        "arn:aws:ec2:us-east-1:222222222222:instance/i-0abc",
        "222222222222",
    ),
];

const ACTION_PATTERNS: &[&str] = &[
    "sts:AssumeRole",
    "sts:assumerole",
    "STS:AssumeRole",
    "sts:Assume*",
    "sts:*Role",
    "sts:AssumeRol?",
    "sts:TagSession",
    "sts:tagsession",
    "sts:SetSourceIdentity",
    "sts:*",
    "*",
    "s3:GetObject",
    "s3:*",
    "s3:Get*",
    "s3:?utObject",
    "ec2:RunInstances",
    "ec2:*",
    "iam:*",
];

const RESOURCE_PATTERNS: &[&str] = &[
    "*",
    "arn:aws:iam::222222222222:role/deploy-prod",
    "arn:aws:iam::*:role/deploy-*",
    "arn:aws:iam::222222222222:role/*",
    "arn:aws:iam::333333333333:role/deploy-?ev",
    "arn:aws:iam::*:role/ci/*",
    "arn:aws:iam::111111111111:role/Service-Prod",
    "arn:aws:s3:::artifacts/*",
    "arn:aws:s3:::artifacts/prod/*",
    "arn:aws:s3:::*/prod/*",
    "arn:aws:ec2:*:111111111111:instance/*",
    "arn:aws:ec2:us-east-1:*:instance/i-*",
    // Policy variables: resolved from the request context, the statement does not match
    // when the key is missing.
    "arn:aws:iam::*:role/deploy-${aws:PrincipalTag/env}",
    "arn:aws:s3:::artifacts/${aws:PrincipalTag/env}/*",
];

const TRUST_ACTIONS: &[&str] = &[
    "sts:AssumeRole",
    "sts:TagSession",
    "sts:SetSourceIdentity",
    "sts:*",
    "sts:Assume*",
    "STS:TAGSESSION",
];

const PRINCIPAL_ENTRIES: &[&str] = &[
    "111111111111",
    "222222222222",
    "arn:aws:iam::111111111111:root",
    "arn:aws:iam::444444444444:root",
    "arn:aws:iam::111111111111:user/broker-prod",
    "arn:aws:iam::111111111111:role/service-prod",
    "arn:aws:sts::111111111111:assumed-role/service-prod/job-42",
    "*",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Arn,
    Bool,
    Ip,
    /// Multi-valued (`aws:TagKeys`).
    Set,
}

impl Kind {
    fn operators(self) -> &'static [&'static str] {
        match self {
            Kind::Str => &[
                "StringEquals",
                "StringLike",
                "StringNotEquals",
                "StringNotLike",
                "StringEqualsIgnoreCase",
            ],
            Kind::Arn => &["ArnLike", "ArnEquals", "ArnNotLike", "StringLike"],
            Kind::Bool => &["Bool"],
            Kind::Ip => &["IpAddress", "NotIpAddress"],
            Kind::Set => &[
                "ForAllValues:StringEquals",
                "ForAllValues:StringLike",
                "ForAnyValue:StringEquals",
                "ForAnyValue:StringLike",
                "ForAllValues:StringNotEquals",
                "ForAnyValue:StringNotLike",
                "StringEquals",
            ],
        }
    }
}

/// Which request families may carry a context key (iam-simulate drops keys an action does not
/// support; the generator never sends them).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Family {
    AssumeRole,
    TagSession,
    SourceIdentity,
    Plain,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Family::AssumeRole => "sts:AssumeRole",
            Family::TagSession => "sts:TagSession",
            Family::SourceIdentity => "sts:SetSourceIdentity",
            Family::Plain => "s3/ec2",
        }
    }
}

struct Key {
    name: &'static str,
    kind: Kind,
    /// Values policies compare against.
    policy: &'static [&'static str],
    /// Values requests carry (empty: never in a request, only in policies).
    request: &'static [&'static str],
    families: &'static [Family],
}

const ALL: &[Family] = &[
    Family::AssumeRole,
    Family::TagSession,
    Family::SourceIdentity,
    Family::Plain,
];

const KEYS: &[Key] = &[
    Key {
        name: "aws:PrincipalAccount",
        kind: Kind::Str,
        policy: &["111111111111", "222222222222", "4444*"],
        request: &["111111111111", "222222222222", "444444444444"],
        families: ALL,
    },
    Key {
        name: "aws:PrincipalArn",
        kind: Kind::Arn,
        policy: &[
            "arn:aws:iam::111111111111:role/service-*",
            "arn:aws:iam::111111111111:user/broker-prod",
            "arn:aws:iam::*:role/service-prod",
            "arn:aws:iam::444444444444:*",
        ],
        request: &[
            "arn:aws:iam::111111111111:role/service-prod",
            "arn:aws:iam::111111111111:user/broker-prod",
            "arn:aws:iam::444444444444:user/mallory",
        ],
        families: ALL,
    },
    Key {
        name: "aws:PrincipalTag/env",
        kind: Kind::Str,
        policy: &["prod", "dev", "pro?"],
        request: &["prod", "dev", "Prod"],
        families: ALL,
    },
    Key {
        // The same tag key spelled differently: condition key names are case-insensitive.
        name: "aws:PrincipalTag/Env",
        kind: Kind::Str,
        policy: &["prod", "dev"],
        request: &[],
        families: ALL,
    },
    Key {
        name: "aws:SourceIp",
        kind: Kind::Ip,
        policy: &["10.0.0.0/8", "203.0.113.0/24", "192.168.1.7/32"],
        request: &["10.1.2.3", "203.0.113.9", "192.168.1.8"],
        families: ALL,
    },
    Key {
        name: "aws:MultiFactorAuthPresent",
        kind: Kind::Bool,
        policy: &["true", "false"],
        request: &["true", "false"],
        families: ALL,
    },
    Key {
        name: "sts:ExternalId",
        kind: Kind::Str,
        policy: &["ext-prod", "ext-*"],
        request: &["ext-prod", "ext-dev"],
        families: &[Family::AssumeRole],
    },
    Key {
        name: "sts:RoleSessionName",
        kind: Kind::Str,
        policy: &["job-*", "${aws:username}", "${sts:SourceIdentity}"],
        request: &["job-42", "alice", "gitlab-job-42"],
        families: &[Family::AssumeRole],
    },
    Key {
        name: "sts:SourceIdentity",
        kind: Kind::Str,
        policy: &["gitlab-job-*", "alice"],
        request: &["gitlab-job-42", "alice", "Alice"],
        families: &[Family::AssumeRole, Family::SourceIdentity],
    },
    Key {
        name: "aws:TagKeys",
        kind: Kind::Set,
        policy: &[
            "gitlab:project_path",
            "gitlab:environment",
            "gitlab:*",
            "Owner",
        ],
        request: &[
            "gitlab:project_path",
            "gitlab:environment",
            "GitLab:Environment",
            "Owner",
            "cost",
        ],
        families: &[Family::TagSession, Family::Plain],
    },
    Key {
        name: "aws:RequestTag/gitlab:environment",
        kind: Kind::Str,
        policy: &["prod", "staging", "*", "${aws:PrincipalTag/env}"],
        request: &["prod", "staging", "Prod"],
        families: &[Family::TagSession, Family::Plain],
    },
    Key {
        name: "aws:RequestTag/gitlab:project_path",
        kind: Kind::Str,
        policy: &["group/app", "group/*"],
        request: &["group/app", "group/other", "evil/app"],
        families: &[Family::TagSession],
    },
];

// ---------------------------------------------------------------------------------------
// Strategies.

/// One to three entries of `xs`, written as a string when there is one (both forms are valid).
fn some_of(xs: &'static [&'static str]) -> impl Strategy<Value = Value> {
    (
        prop::sample::subsequence(xs, 1..=3.min(xs.len())),
        any::<bool>(),
    )
        .prop_map(|(v, scalar)| {
            if v.len() == 1 && scalar {
                json!(v[0])
            } else {
                json!(v)
            }
        })
}

/// A `Condition` block: one or two operator/key entries with one to three values.
fn condition() -> impl Strategy<Value = Value> {
    prop::collection::vec(
        (
            any::<Index>(),
            any::<Index>(),
            0u8..12,
            prop::collection::vec(any::<Index>(), 1..=3),
        ),
        1..=2,
    )
    .prop_map(|entries| {
        let mut block = Map::new();
        for (key, op, modifier, picks) in entries {
            let key = key.get(KEYS);
            let (operator, mut values): (String, Vec<&str>) = if modifier == 0 {
                let v = if picks[0].index(2) == 0 {
                    "true"
                } else {
                    "false"
                };
                ("Null".into(), vec![v])
            } else {
                let mut operator = op.get(key.kind.operators()).to_string();
                if modifier <= 2 {
                    operator.push_str("IfExists");
                } else if modifier == 3 && key.kind == Kind::Str {
                    // A set qualifier on a single-valued key: legal, and a classic mistake.
                    operator = format!("ForAnyValue:{operator}");
                } else if modifier == 4 && key.kind == Kind::Str {
                    operator = format!("ForAllValues:{operator}");
                }
                (
                    operator,
                    picks.iter().map(|i| *i.get(key.policy)).collect::<Vec<_>>(),
                )
            };
            values.dedup();
            let values = if values.len() == 1 {
                json!(values[0])
            } else {
                json!(values)
            };
            let entry = block
                .entry(operator)
                .or_insert_with(|| Value::Object(Map::new()));
            entry
                .as_object_mut()
                .unwrap()
                .insert(key.name.to_string(), values);
        }
        Value::Object(block)
    })
}

/// An identity-side statement (identity, boundary, session, SCP): no principal.
fn identity_statement(deny_weight: u8) -> impl Strategy<Value = Value> {
    (
        0u8..10,
        0u8..10,
        some_of(ACTION_PATTERNS),
        0u8..10,
        some_of(RESOURCE_PATTERNS),
        prop::option::weighted(0.5, condition()),
    )
        .prop_map(
            move |(effect, not_action, actions, not_resource, resources, cond)| {
                let mut s = Map::new();
                s.insert(
                    "Effect".into(),
                    json!(if effect < deny_weight {
                        "Deny"
                    } else {
                        "Allow"
                    }),
                );
                s.insert(
                    if not_action < 2 {
                        "NotAction"
                    } else {
                        "Action"
                    }
                    .into(),
                    actions,
                );
                s.insert(
                    if not_resource < 2 {
                        "NotResource"
                    } else {
                        "Resource"
                    }
                    .into(),
                    resources,
                );
                if let Some(c) = cond {
                    s.insert("Condition".into(), c);
                }
                Value::Object(s)
            },
        )
}

/// A resource-side statement: a role's trust policy (no `Resource`) or a bucket policy.
fn resource_statement(trust: bool) -> impl Strategy<Value = Value> {
    (
        0u8..10,
        0u8..10,
        some_of(PRINCIPAL_ENTRIES),
        any::<bool>(),
        if trust {
            some_of(TRUST_ACTIONS).boxed()
        } else {
            some_of(&["s3:GetObject", "s3:PutObject", "s3:*", "*"]).boxed()
        },
        some_of(&[
            "arn:aws:s3:::artifacts/*",
            "arn:aws:s3:::artifacts/prod/*",
            "*",
        ]),
        prop::option::weighted(0.5, condition()),
    )
        .prop_map(
            move |(effect, not_principal, principals, bare_star, actions, resources, cond)| {
                let deny = effect < 2;
                let mut s = Map::new();
                s.insert("Effect".into(), json!(if deny { "Deny" } else { "Allow" }));
                // NotPrincipal only with Deny: the documented (and only sane) use.
                let element = if deny && not_principal < 5 {
                    "NotPrincipal"
                } else {
                    "Principal"
                };
                let principal = if principals == json!("*") && bare_star && element == "Principal" {
                    json!("*")
                } else {
                    json!({ "AWS": principals })
                };
                s.insert(element.into(), principal);
                s.insert("Action".into(), actions);
                if !trust {
                    s.insert("Resource".into(), resources);
                }
                if let Some(c) = cond {
                    s.insert("Condition".into(), c);
                }
                Value::Object(s)
            },
        )
}

fn policy(statement: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
    prop::collection::vec(statement, 1..=3)
        .prop_map(|s| json!({ "Version": "2012-10-17", "Statement": s }))
}

fn full_access() -> Value {
    json!({ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": "*", "Resource": "*" }] })
}

/// SCP levels: each usually carries FullAWSAccess, sometimes a narrower Allow instead, and
/// sometimes a policy of its own (mostly Deny statements).
fn scp_levels() -> impl Strategy<Value = Value> {
    prop::collection::vec(
        (
            0u8..10,
            policy(identity_statement(0)),
            prop::option::weighted(0.5, policy(identity_statement(8))),
        ),
        1..=3,
    )
    .prop_map(|levels| {
        let levels: Vec<Value> = levels
            .into_iter()
            .map(|(full, allow, extra)| {
                let mut policies = vec![if full < 8 { full_access() } else { allow }];
                policies.extend(extra);
                json!({ "policies": policies })
            })
            .collect();
        json!(levels)
    })
}

/// The request context: each applicable key is missing (about 40%), single-valued, or for
/// `aws:TagKeys` a list of zero to three values.
fn context() -> impl Strategy<Value = Vec<(u8, Vec<Index>)>> {
    prop::collection::vec(
        (0u8..10, prop::collection::vec(any::<Index>(), 0..=3)),
        KEYS.len(),
    )
}

fn build_context(family: Family, seeds: &[(u8, Vec<Index>)]) -> Value {
    let mut ctx = Map::new();
    for (key, (presence, picks)) in KEYS.iter().zip(seeds) {
        if key.request.is_empty() || !key.families.contains(&family) || *presence < 4 {
            continue;
        }
        let value = if key.kind == Kind::Set {
            let mut vs: Vec<&str> = picks.iter().map(|i| *i.get(key.request)).collect();
            vs.sort_unstable();
            vs.dedup();
            json!(vs)
        } else {
            let i = picks.first().map_or(0, |i| i.index(key.request.len()));
            json!(key.request[i])
        };
        ctx.insert(key.name.to_string(), value);
    }
    Value::Object(ctx)
}

/// One generated case in rolehop's case-file format.
fn case() -> impl Strategy<Value = (Family, Value)> {
    (
        0u8..20,
        any::<Index>(),
        any::<Index>(),
        prop::collection::vec(policy(identity_statement(3)), 0..=2),
        prop::option::weighted(0.85, policy(resource_statement(true))),
        prop::option::weighted(0.3, policy(resource_statement(false))),
        prop::option::weighted(0.3, policy(identity_statement(2))),
        prop::option::weighted(0.4, scp_levels()),
        prop::option::weighted(0.4, policy(identity_statement(2))),
        context(),
    )
        .prop_map(
            |(family, caller, target, identity, trust, bucket, boundary, scps, session, ctx)| {
                let family = match family {
                    0..=7 => Family::AssumeRole,
                    8..=11 => Family::TagSession,
                    12..=14 => Family::SourceIdentity,
                    _ => Family::Plain,
                };
                let principal = *caller.get(CALLERS);
                let (action, resource, resource_policy) = match family {
                    Family::Plain => {
                        let (action, arn, account) = *target.get(PLAIN);
                        let policy = if action.starts_with("s3:") {
                            bucket
                        } else {
                            None
                        };
                        (
                            action,
                            json!({ "resource": arn, "accountId": account }),
                            policy,
                        )
                    }
                    _ => (family.name(), json!(target.get(ROLES)), trust),
                };
                let mut c = Map::new();
                c.insert(
                    "request".into(),
                    json!({
                        "principal": principal,
                        "action": action,
                        "resource": resource,
                        "context": build_context(family, &ctx),
                    }),
                );
                if !identity.is_empty() {
                    c.insert("identityPolicies".into(), json!(identity));
                }
                if let Some(p) = resource_policy {
                    c.insert("resourcePolicy".into(), p);
                }
                if let Some(p) = boundary {
                    c.insert("permissionBoundaries".into(), json!([p]));
                }
                if let Some(levels) = scps {
                    c.insert("serviceControlPolicies".into(), levels);
                }
                // Session policies exist only for role sessions.
                if principal.contains(":assumed-role/")
                    && let Some(p) = session
                {
                    c.insert("sessionPolicy".into(), p);
                }
                (family, Value::Object(c))
            },
        )
}

// ---------------------------------------------------------------------------------------
// Deciding with both engines.

/// What one engine said: a decision, or why it refused the input.
type Outcome = Result<String, String>;

/// A case the engines decided differently, with (rolehop's, iam-simulate's) decision.
type Disagreement = (Value, (String, String));

fn rolehop_decide(case: &Value) -> Outcome {
    let cases = cases_from_value(&json!([case])).map_err(|e| e.to_string())?;
    Ok(cases[0].evaluate().decision.as_str().to_string())
}

fn simulate(cases: &[Value]) -> Vec<Outcome> {
    if cases.is_empty() {
        return Vec::new();
    }
    iam_simulate::decide(&Value::Array(cases.to_vec()))
        .into_iter()
        .map(|d| {
            assert!(
                d.ignored_context_keys.is_empty(),
                "iam-simulate ignored context keys {:?}: the generator must only send keys the \
                 action supports",
                d.ignored_context_keys
            );
            match (d.decision, d.error) {
                (Some(decision), _) => Ok(decision),
                (None, error) => Err(error.unwrap_or_else(|| "no decision".into())),
            }
        })
        .collect()
}

/// Both engines decided, differently.
fn disagree(rolehop: &Outcome, sim: &Outcome) -> Option<(String, String)> {
    match (rolehop, sim) {
        (Ok(r), Ok(s)) if r != s => Some((r.clone(), s.clone())),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Minimisation.

/// Keys whose removal keeps a case well formed: optional policy layers, conditions, their
/// operators and keys, context keys, statement ids. Required elements (Effect, Action,
/// Resource, Principal, request fields) are never removed; their arrays only lose entries.
fn removable(parent: Option<&str>, grandparent: Option<&str>, key: &str) -> bool {
    matches!(
        key,
        "identityPolicies"
            | "resourcePolicy"
            | "permissionBoundaries"
            | "serviceControlPolicies"
            | "sessionPolicy"
            | "Condition"
            | "Sid"
    ) || matches!(parent, Some("Condition" | "context"))
        || grandparent == Some("Condition")
}

/// Every case one step smaller than `v` (whose key in its parent object is `parent`): one
/// array entry dropped (arrays keep at least one, except `aws:TagKeys` in a request) or one
/// removable key dropped.
fn shrink_candidates(
    v: &Value,
    parent: Option<&str>,
    grandparent: Option<&str>,
    out: &mut Vec<Value>,
) {
    match v {
        Value::Array(items) => {
            if items.len() > 1 || (parent == Some("aws:TagKeys") && grandparent == Some("context"))
            {
                for i in 0..items.len() {
                    let mut smaller = items.clone();
                    smaller.remove(i);
                    out.push(Value::Array(smaller));
                }
            }
            for (i, item) in items.iter().enumerate() {
                let mut inner = Vec::new();
                shrink_candidates(item, parent, grandparent, &mut inner);
                for replacement in inner {
                    let mut copy = items.clone();
                    copy[i] = replacement;
                    out.push(Value::Array(copy));
                }
            }
        }
        Value::Object(map) => {
            for key in map.keys() {
                if removable(parent, grandparent, key) {
                    let mut smaller = map.clone();
                    smaller.remove(key);
                    out.push(Value::Object(smaller));
                }
            }
            for (key, item) in map {
                let mut inner = Vec::new();
                shrink_candidates(item, Some(key), parent, &mut inner);
                for replacement in inner {
                    let mut copy = map.clone();
                    copy.insert(key.clone(), replacement);
                    out.push(Value::Object(copy));
                }
            }
        }
        _ => {}
    }
}

/// Shrinks every disagreeing case while the two engines still give the same two decisions
/// and the case stays outside every known difference's shape. One iam-simulate batch per
/// round covers the candidates of all cases.
fn minimise(cases: Vec<Disagreement>) -> Vec<Disagreement> {
    minimise_with(cases, true)
}

/// [`minimise`]; `avoid_known` false lets the minimiser's own test shrink a known difference.
fn minimise_with(mut cases: Vec<Disagreement>, avoid_known: bool) -> Vec<Disagreement> {
    let mut active: Vec<bool> = vec![true; cases.len()];
    while active.iter().any(|a| *a) {
        let mut batch = Vec::new();
        let mut owner = Vec::new();
        for (i, (case, _)) in cases.iter().enumerate() {
            if !active[i] {
                continue;
            }
            let mut candidates = Vec::new();
            shrink_candidates(case, None, None, &mut candidates);
            for c in candidates {
                owner.push(i);
                batch.push(c);
            }
        }
        let sim = simulate(&batch);
        let mut progressed = vec![false; cases.len()];
        for ((candidate, i), s) in batch.into_iter().zip(owner).zip(sim) {
            if progressed[i] {
                continue;
            }
            let (r, sim) = &cases[i].1;
            // Never shrink into a known difference's shape: that would hide the new cause.
            let known_shape = avoid_known && KNOWN.iter().any(|k| (k.matches)(&candidate, r, sim));
            if !known_shape
                && disagree(&rolehop_decide(&candidate), &s).as_ref() == Some(&cases[i].1)
            {
                cases[i].0 = candidate;
                progressed[i] = true;
            }
        }
        for (a, p) in active.iter_mut().zip(progressed) {
            *a = *a && p;
        }
    }
    cases
}

// ---------------------------------------------------------------------------------------
// Known differences: analysed disagreements, each recognised by a predicate over the case
// and the two decisions. A predicate must be as narrow as the analysis: it names the
// engines' decisions and the shape that causes them, so a new disagreement still fails.

struct Known {
    /// The `name` of its minimised case in known-differences/differential.json.
    name: &'static str,
    /// (case, rolehop's decision, iam-simulate's decision) -> whether the case has the shape.
    matches: fn(&Value, &str, &str) -> bool,
    /// Removes the cause from a case of that shape: the engines must then agree, or the
    /// disagreement has another cause and stays unexplained. `None` when `matches` already
    /// pins the whole cause.
    neutralise: Option<fn(&Value) -> Value>,
}

const KNOWN: &[Known] = &[
    Known {
        name: "role without a trust policy",
        matches: role_without_trust_policy,
        neutralise: None,
    },
    Known {
        // Its committed case is a `Null` one; the predicate covers any condition on the list.
        name: "Null on an empty multi-valued key",
        matches: condition_on_empty_list,
        neutralise: Some(drop_empty_lists),
    },
    Known {
        name: "NotResource with an unresolvable variable",
        matches: not_resource_with_unresolvable_variable,
        neutralise: Some(fill_not_resource_variables),
    },
    Known {
        name: "operator without a set qualifier on a multi-valued key",
        matches: unqualified_operator_on_list,
        neutralise: Some(qualify_operators_on_lists),
    },
];

/// Every `(operator, condition key)` pair in the case's policies.
fn conditions(v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            for (k, item) in map {
                if k == "Condition"
                    && let Value::Object(ops) = item
                {
                    for (op, keys) in ops {
                        if let Value::Object(keys) = keys {
                            out.extend(keys.keys().map(|key| (op.clone(), key.clone())));
                        }
                    }
                } else {
                    conditions(item, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| conditions(i, out)),
        _ => {}
    }
}

/// The context keys named by policy variables in `NotResource` elements that the request
/// does not carry.
fn unresolved_not_resource_keys(case: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, item) in map {
                    if k == "NotResource" {
                        let patterns = match item {
                            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                            other => other.as_str().into_iter().collect::<Vec<_>>(),
                        };
                        for p in patterns {
                            for var in p.split("${").skip(1) {
                                let name = var.split(['}', ',']).next().unwrap_or("").trim();
                                out.push(name.to_string());
                            }
                        }
                    } else {
                        walk(item, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut keys = Vec::new();
    walk(case, &mut keys);
    let ctx = case["request"]["context"].as_object();
    keys.retain(|k| !ctx.is_some_and(|c| c.keys().any(|ck| ck.eq_ignore_ascii_case(k))));
    keys
}

/// A `NotResource` pattern with a policy variable the request cannot fill
/// (`arn:aws:s3:::artifacts/${aws:PrincipalTag/env}/*`, no such tag). AWS documents that an
/// unresolvable variable can make the whole statement invalid; rolehop reads it so (the
/// statement never applies). iam-simulate first compares the pattern's partition, service,
/// region and account with the request and lets the statement apply when they already differ
/// (an S3 pattern against a role ARN); only when they match does the variable make the
/// statement not apply. The neutraliser gives the request the missing keys.
fn not_resource_with_unresolvable_variable(case: &Value, _rolehop: &str, _sim: &str) -> bool {
    !unresolved_not_resource_keys(case).is_empty()
}

fn fill_not_resource_variables(case: &Value) -> Value {
    let keys = unresolved_not_resource_keys(case);
    let mut c = case.clone();
    if let Some(ctx) = c["request"]["context"].as_object_mut() {
        for k in keys {
            ctx.insert(k, json!("unset"));
        }
    }
    c
}

/// Request context keys whose value is a list, with the list's length.
fn list_keys(case: &Value) -> Vec<(String, usize)> {
    case["request"]["context"]
        .as_object()
        .map(|ctx| {
            ctx.iter()
                .filter_map(|(k, v)| v.as_array().map(|a| (k.clone(), a.len())))
                .collect()
        })
        .unwrap_or_default()
}

/// A condition on a key the request carries as an empty list (`"aws:TagKeys": []`): rolehop
/// reads the empty list as an absent key (so `Null` is true and `...IfExists` holds), as AWS's
/// set-operator documentation treats an empty value as a "null data set"; iam-simulate reads
/// it as present. A real request leaves out a key it has no values for, so AWS never sees
/// this shape. The neutraliser drops the empty lists.
fn condition_on_empty_list(case: &Value, _rolehop: &str, _sim: &str) -> bool {
    let mut conds = Vec::new();
    conditions(case, &mut conds);
    list_keys(case)
        .iter()
        .any(|(key, len)| *len == 0 && conds.iter().any(|(_, k)| k.eq_ignore_ascii_case(key)))
}

/// A condition operator without `ForAllValues:`/`ForAnyValue:` on a key the request carries
/// as a non-empty list: AWS documents only that multi-valued keys require a set qualifier.
/// rolehop matches when any value matches (a negated operator when none does); iam-simulate
/// never matches a list with an unqualified operator.
fn unqualified_operator_on_list(case: &Value, _rolehop: &str, _sim: &str) -> bool {
    let mut conds = Vec::new();
    conditions(case, &mut conds);
    list_keys(case).iter().any(|(key, len)| {
        *len > 0
            && conds.iter().any(|(op, k)| {
                k.eq_ignore_ascii_case(key) && !op.contains(':') && !op.eq_ignore_ascii_case("Null")
            })
    })
}

/// A trust action (`sts:AssumeRole`, `sts:TagSession`, `sts:SetSourceIdentity`) on a role, with
/// no trust policy in the case: iam-simulate treats the missing trust policy like a missing
/// resource policy and lets a same-account identity policy grant alone (Allowed); rolehop
/// requires the trust policy (ImplicitlyDenied), as AWS does: every role has one (CreateRole
/// requires it) and only it can let a principal assume the role.
fn role_without_trust_policy(case: &Value, rolehop: &str, sim: &str) -> bool {
    let request = &case["request"];
    let action = request["action"].as_str().unwrap_or("");
    let resource = request["resource"].as_str().unwrap_or("");
    rolehop == "ImplicitlyDenied"
        && sim == "Allowed"
        && case.get("resourcePolicy").is_none_or(Value::is_null)
        && ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]
            .iter()
            .any(|a| a.eq_ignore_ascii_case(action))
        && resource
            .split(':')
            .nth(5)
            .is_some_and(|r| r.starts_with("role/"))
}

/// The request context without its empty lists (absent instead).
fn drop_empty_lists(case: &Value) -> Value {
    let mut c = case.clone();
    if let Some(ctx) = c["request"]["context"].as_object_mut() {
        ctx.retain(|_, v| v.as_array().is_none_or(|a| !a.is_empty()));
    }
    c
}

/// Rewrites unqualified operators on list keys the way rolehop reads them: a positive
/// operator as `ForAnyValue:`, a negated one as `ForAllValues:`.
fn qualify_operators_on_lists(case: &Value) -> Value {
    let lists: Vec<String> = list_keys(case).into_iter().map(|(k, _)| k).collect();
    let mut c = case.clone();
    qualify(&mut c, &lists);
    c
}

fn qualify(v: &mut Value, lists: &[String]) {
    match v {
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                if k == "Condition"
                    && let Value::Object(ops) = item
                {
                    let mut moved: Vec<(String, String, Value)> = Vec::new();
                    for (op, keys) in ops.iter_mut() {
                        if op.contains(':') || op.eq_ignore_ascii_case("Null") {
                            continue;
                        }
                        let Value::Object(keys) = keys else { continue };
                        let on_lists: Vec<String> = keys
                            .keys()
                            .filter(|key| lists.iter().any(|l| l.eq_ignore_ascii_case(key)))
                            .cloned()
                            .collect();
                        for key in on_lists {
                            let values = keys.remove(&key).unwrap();
                            let negated = op.contains("Not");
                            let set = if negated {
                                "ForAllValues"
                            } else {
                                "ForAnyValue"
                            };
                            moved.push((format!("{set}:{op}"), key, values));
                        }
                    }
                    ops.retain(|_, keys| keys.as_object().is_none_or(|k| !k.is_empty()));
                    for (op, key, values) in moved {
                        ops.entry(op)
                            .or_insert_with(|| Value::Object(Map::new()))
                            .as_object_mut()
                            .unwrap()
                            .insert(key, values);
                    }
                } else {
                    qualify(item, lists);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| qualify(i, lists)),
        _ => {}
    }
}

/// Sorts disagreements into known differences (by name) and unexplained ones. A case is
/// known when a predicate without a neutraliser matches it, or when predicates with
/// neutralisers match and the engines agree once all of their causes are removed (checked in
/// one iam-simulate batch); it is counted under the first matching name.
fn classify(disagreements: Vec<Disagreement>) -> (Vec<(&'static str, Value)>, Vec<Disagreement>) {
    let mut candidates = Vec::new();
    let mut checks = Vec::new();
    let mut unexplained = Vec::new();
    for (case, (r, s)) in disagreements {
        let matching: Vec<&Known> = KNOWN
            .iter()
            .filter(|k| (k.matches)(&case, &r, &s))
            .collect();
        let Some(first) = matching.first() else {
            unexplained.push((case, (r, s)));
            continue;
        };
        if matching.iter().any(|k| k.neutralise.is_none()) {
            checks.push(Value::Null);
        } else {
            let neutralised = matching
                .iter()
                .filter_map(|k| k.neutralise)
                .fold(case.clone(), |c, neutralise| neutralise(&c));
            checks.push(neutralised);
        }
        candidates.push((first.name, case, (r, s)));
    }
    let to_simulate: Vec<Value> = checks.iter().filter(|c| !c.is_null()).cloned().collect();
    let mut sim = simulate(&to_simulate).into_iter();
    let mut known = Vec::new();
    for ((name, case, decisions), check) in candidates.into_iter().zip(checks) {
        let explained = check.is_null() || {
            let s = sim.next().unwrap();
            rolehop_decide(&check).is_ok_and(|r| s.is_ok_and(|s| s == r))
        };
        if explained {
            known.push((name, case));
        } else {
            unexplained.push((case, decisions));
        }
    }
    (known, unexplained)
}

fn known_differences_file() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus/known-differences/differential.json")
}

// ---------------------------------------------------------------------------------------
// The tests.

#[test]
fn generated_requests_are_decided_alike_by_rolehop_and_iam_simulate() {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[seed(); 32]),
    );
    let strategy = case();
    let mut compared: BTreeMap<&str, usize> = BTreeMap::new();
    let mut agreed = 0usize;
    let mut input_errors = Vec::new();
    let mut known_hits: BTreeMap<&str, usize> = BTreeMap::new();
    let mut disagreements = Vec::new();
    let requests = BATCH * batches();
    for _ in 0..batches() {
        let generated: Vec<(Family, Value)> = (0..BATCH)
            .map(|_| strategy.new_tree(&mut runner).unwrap().current())
            .collect();
        let cases: Vec<Value> = generated.iter().map(|(_, c)| c.clone()).collect();
        let sim = simulate(&cases);
        for ((family, case), s) in generated.into_iter().zip(sim) {
            let r = rolehop_decide(&case);
            let r = match r {
                Ok(r) => r,
                Err(e) => panic!(
                    "rolehop refused a generated case ({e}):\n{}",
                    serde_json::to_string_pretty(&case).unwrap()
                ),
            };
            let s = match s {
                Ok(s) => s,
                Err(e) => {
                    input_errors.push((e, case));
                    continue;
                }
            };
            *compared.entry(family.name()).or_default() += 1;
            if r == s {
                agreed += 1;
            } else {
                disagreements.push((case, (r, s)));
            }
        }
    }
    let (known, unexplained) = classify(disagreements);
    for (name, _) in &known {
        *known_hits.entry(*name).or_default() += 1;
    }
    let total: usize = compared.values().sum();
    let known_total: usize = known_hits.values().sum();
    eprintln!(
        "differential: {total} generated requests compared {compared:?}; {agreed} agreed; \
         known differences {known_hits:?}; {} unexplained; {} refused by iam-simulate",
        unexplained.len(),
        input_errors.len()
    );
    for (e, case) in input_errors.iter().take(3) {
        eprintln!(
            "iam-simulate refused ({e}):\n{}",
            serde_json::to_string_pretty(case).unwrap()
        );
    }
    let ceiling = requests * MAX_INPUT_ERRORS_PER_MILLE / 1_000;
    assert!(
        input_errors.len() <= ceiling,
        "iam-simulate refused {} generated cases (ceiling {ceiling})",
        input_errors.len()
    );
    if !unexplained.is_empty() {
        let count = unexplained.len();
        let mut minimised = minimise(unexplained);
        minimised.sort_by_key(|(c, _)| c.to_string().len());
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for (case, (r, s)) in minimised {
            if !seen.insert(case.to_string()) {
                continue;
            }
            let mut c = case.as_object().unwrap().clone();
            c.insert(
                "name".into(),
                json!(format!("differential: rolehop {r}, iam-simulate {s}")),
            );
            c.insert(
                "note".into(),
                json!("TODO: analyse against AWS's documented evaluation logic"),
            );
            out.push(Value::Object(c));
        }
        panic!(
            "{count} disagreements between rolehop and iam-simulate, {} distinct once \
             minimised:\n{}",
            out.len(),
            serde_json::to_string_pretty(&out).unwrap()
        );
    }
    assert_eq!(total + input_errors.len(), requests);
    assert!(
        agreed >= total - known_total,
        "{agreed} agreements of {total}"
    );
}

/// Every committed known difference still is one: the engines disagree on it, its predicate
/// recognises it, and rolehop gives the decision the case expects whenever the note says
/// rolehop is right (checked through `expected`).
#[test]
fn committed_known_differences_still_reproduce() {
    let path = known_differences_file();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(
        cases.len(),
        KNOWN.len(),
        "one committed case per known difference"
    );
    let sim = simulate(&cases);
    let mut disagreements = Vec::new();
    for (case, s) in cases.iter().zip(sim) {
        let name = case["name"].as_str().unwrap();
        let r = rolehop_decide(case).unwrap();
        let s = s.unwrap();
        assert_ne!(
            r, s,
            "{name}: the engines agree now; drop the known difference"
        );
        disagreements.push((case.clone(), (r, s)));
    }
    let (known, unexplained) = classify(disagreements);
    assert!(
        unexplained.is_empty(),
        "committed cases not recognised: {unexplained:?}"
    );
    for (case, (name, recognised)) in cases.iter().zip(&known) {
        assert_eq!(
            case["name"].as_str(),
            Some(*name),
            "{recognised}: recognised as another known difference"
        );
        let r = rolehop_decide(case).unwrap();
        assert_eq!(
            case["expected"]["response"].as_str(),
            Some(r.as_str()),
            "{name}: rolehop must give the documented decision"
        );
        assert!(case["note"].as_str().is_some_and(|n| !n.is_empty()));
    }
}

/// The minimiser finds the committed minimal case again inside a padded copy of it: extra
/// policy layers, statements, conditions and context keys that do not change the two
/// decisions are all dropped, and nothing required is.
#[test]
fn the_minimiser_shrinks_a_padded_disagreement_back_to_its_core() {
    let text = std::fs::read_to_string(known_differences_file()).unwrap();
    let committed: Vec<Value> = serde_json::from_str(&text).unwrap();
    let core = committed
        .iter()
        .find(|c| c["name"] == "operator without a set qualifier on a multi-valued key")
        .unwrap();
    let mut want = core.clone();
    for k in ["name", "note", "expected"] {
        want.as_object_mut().unwrap().remove(k);
    }
    let mut padded = want.clone();
    let ctx = padded["request"]["context"].as_object_mut().unwrap();
    ctx.insert("aws:SourceIp".into(), json!("10.1.2.3"));
    ctx.insert("aws:PrincipalTag/env".into(), json!("prod"));
    let trust = padded["resourcePolicy"]["Statement"]
        .as_array_mut()
        .unwrap();
    trust[0]["Condition"]
        .as_object_mut()
        .unwrap()
        .insert("IpAddress".into(), json!({ "aws:SourceIp": "10.0.0.0/8" }));
    trust.push(json!({
        "Effect": "Deny", "Principal": { "AWS": "arn:aws:iam::444444444444:root" },
        "Action": "sts:TagSession"
    }));
    let p = padded.as_object_mut().unwrap();
    p.insert(
        "identityPolicies".into(),
        json!([{ "Version": "2012-10-17", "Statement": [
            { "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*" },
            { "Effect": "Deny", "Action": "ec2:*", "Resource": "*",
              "Condition": { "StringEquals": { "aws:PrincipalTag/env": "prod" } } }
        ] }]),
    );
    p.insert(
        "serviceControlPolicies".into(),
        json!([{ "policies": [full_access()] }, { "policies": [full_access()] }]),
    );
    let decisions = (
        rolehop_decide(&padded).unwrap(),
        simulate(std::slice::from_ref(&padded)).remove(0).unwrap(),
    );
    assert_ne!(decisions.0, decisions.1, "the padded case still disagrees");
    let minimised = minimise_with(vec![(padded, decisions)], false);
    assert_eq!(minimised[0].0, want);
}
