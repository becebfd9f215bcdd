//! The attribution a job writes into its sessions (session tags and SourceIdentity, chosen
//! from `CI_*` variables by whoever holds the base credential) is limited in shape by the
//! rendered trust policies: only rolehop's tag keys, and only a SourceIdentity shaped like one
//! of the environment's projects. Each request here is decided by rolehop's evaluator and by
//! the independent engine (iam-simulate); both must give the expected answer. These requests
//! are `sts:AssumeRole`/`TagSession`/`SetSourceIdentity` from AWS principals, which
//! iam-simulate evaluates fully (its known gap is web-identity condition keys only). moto does
//! not check trust policies, so this is the proof that the legitimate chain still passes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use rolehop_core::Topology;
use rolehop_core::chain::SESSION_TAG_KEYS;
use rolehop_core::topology::{Auth, Environment};
use rolehop_policy::cases::cases_from_value;
use rolehop_render::iam;
use rolehop_testkit::iam_simulate;
use serde_json::{Value, json};

fn example(name: &str) -> Topology {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name);
    let src = std::fs::read_to_string(dir.join("rolehop.toml")).unwrap();
    let mut read = |p: &str| std::fs::read_to_string(dir.join(p)).map_err(|e| e.to_string());
    Topology::parse(name, &src, &mut read).unwrap()
}

/// What a hop carries.
struct Claim<'a> {
    source_identity: Option<&'a str>,
    tag_keys: Option<Vec<&'a str>>,
}

const ALL_KEYS: Option<Vec<&str>> = None;

fn rolehop_keys() -> Option<Vec<&'static str>> {
    Some(SESSION_TAG_KEYS.to_vec())
}

fn context(topo: &Topology, env: &Environment, claim: &Claim<'_>, deploy: bool) -> Value {
    let mut c = json!({});
    if let Some(si) = claim.source_identity {
        c["sts:SourceIdentity"] = json!(si);
    }
    if let Some(keys) = &claim.tag_keys {
        c["aws:TagKeys"] = json!(keys);
    }
    if deploy && let Some(x) = &env.external_id {
        c["sts:ExternalId"] = json!(x);
    }
    let _ = topo;
    c
}

/// What each authorization of a hop should decide: AWS authorizes `sts:AssumeRole`, plus
/// `sts:SetSourceIdentity` when the hop sets one and `sts:TagSession` when it passes tags, and
/// the hop succeeds only if all are allowed.
#[derive(Clone, Copy)]
struct Expect {
    assume: &'static str,
    set_source_identity: &'static str,
    tag_session: &'static str,
}

const ALLOWED: &str = "Allowed";
const DENIED: &str = "ImplicitlyDenied";

const PASSES: Expect = Expect {
    assume: ALLOWED,
    set_source_identity: ALLOWED,
    tag_session: ALLOWED,
};

/// One case per action AWS authorizes for such a hop.
fn hop_cases(
    name: &str,
    topo: &Topology,
    env: &Environment,
    claim: &Claim<'_>,
    deploy: bool,
    expect: Expect,
) -> Vec<Value> {
    let (principal, resource, trust, identity) = if deploy {
        let account = &env.accounts[0];
        (
            format!(
                "arn:aws:sts::{}:assumed-role/{}/gl-42-1001-5005",
                topo.broker.account_id, env.service_role
            ),
            topo.deployment_role_arn(env, account),
            iam::deployment_role_trust(topo, env),
            iam::service_role_policy(topo, env),
        )
    } else {
        (
            topo.broker_user_arn(env),
            topo.service_role_arn(env),
            iam::service_role_trust(topo, env),
            iam::broker_user_policy(topo, env),
        )
    };
    // With access keys the SourceIdentity is set on the service hop and only persists into
    // the deployment hop; with OIDC it is set on the deployment hop.
    let sets_source_identity = !deploy || !matches!(topo.auth, Auth::AccessKeys);
    let mut actions = vec![("sts:AssumeRole", expect.assume)];
    if claim.tag_keys.is_some() {
        actions.push(("sts:TagSession", expect.tag_session));
    }
    if claim.source_identity.is_some() && sets_source_identity {
        actions.push(("sts:SetSourceIdentity", expect.set_source_identity));
    }
    actions
        .into_iter()
        .map(|(action, expected)| {
            json!({
                "name": format!("{name} ({action})"),
                "request": {
                    "principal": principal,
                    "action": action,
                    "resource": resource,
                    "context": context(topo, env, claim, deploy),
                },
                "identityPolicies": [identity],
                "resourcePolicy": trust,
                "expected": {"response": expected},
            })
        })
        .collect()
}

/// Decides `cases` with both engines and checks each against its expectation.
fn both_engines_agree(cases: &[Value]) {
    let value = Value::Array(cases.to_vec());
    let parsed = cases_from_value(&value).unwrap();
    let independent = iam_simulate::decide(&value);
    let mut wrong = Vec::new();
    for ((raw, case), other) in cases.iter().zip(&parsed).zip(&independent) {
        let expected = raw["expected"]["response"].as_str().unwrap();
        let ours = format!("{:?}", case.evaluate().decision);
        let theirs = other
            .decision
            .clone()
            .unwrap_or_else(|| format!("error: {:?}", other.error));
        if ours != expected || theirs != expected {
            wrong.push(format!(
                "{}: expected {expected}, rolehop {ours}, iam-simulate {theirs} (ignored {:?})",
                case.name, other.ignored_context_keys
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn attribution_cases(topo: &Topology, cases: &mut Vec<Value>) {
    let keys_mode = matches!(topo.auth, Auth::AccessKeys);
    for env in &topo.environments {
        let own = format!("{}@1001", env.gitlab.projects[0].replace('/', "."));
        let n = |what: &str| format!("{}/{}: {what}", topo.origin, env.name);
        // The hops that carry attribution: the service role's with access keys (OIDC's first
        // hop is AssumeRoleWithWebIdentity, which takes neither) and the deployment role's.
        let hops: &[bool] = if keys_mode { &[false, true] } else { &[true] };
        for &deploy in hops {
            let hop = if deploy {
                "deployment hop"
            } else {
                "service hop"
            };
            let legit = Claim {
                source_identity: Some(&own),
                tag_keys: rolehop_keys(),
            };
            cases.extend(hop_cases(
                &n(&format!("{hop}, the chain as planned")),
                topo,
                env,
                &legit,
                deploy,
                PASSES,
            ));
            let no_tags = Claim {
                source_identity: Some(&own),
                tag_keys: ALL_KEYS,
            };
            cases.extend(hop_cases(
                &n(&format!("{hop}, --no-tags")),
                topo,
                env,
                &no_tags,
                deploy,
                PASSES,
            ));
            let mut forged_keys = SESSION_TAG_KEYS.to_vec();
            forged_keys.push("gitlab:protected");
            let forged = Claim {
                source_identity: Some(&own),
                tag_keys: Some(forged_keys),
            };
            let refused_tags = Expect {
                assume: DENIED,
                tag_session: DENIED,
                ..PASSES
            };
            cases.extend(hop_cases(
                &n(&format!("{hop}, a tag key rolehop never sets")),
                topo,
                env,
                &forged,
                deploy,
                refused_tags,
            ));
            let foreign = Claim {
                source_identity: Some("evil.tools@1001"),
                tag_keys: rolehop_keys(),
            };
            let refused_identity = Expect {
                assume: DENIED,
                set_source_identity: DENIED,
                ..PASSES
            };
            cases.extend(hop_cases(
                &n(&format!(
                    "{hop}, a SourceIdentity of a project outside the environment"
                )),
                topo,
                env,
                &foreign,
                deploy,
                refused_identity,
            ));
        }
        let missing = Claim {
            source_identity: None,
            tag_keys: rolehop_keys(),
        };
        let refused = Expect {
            assume: DENIED,
            ..PASSES
        };
        cases.extend(hop_cases(
            &n("deployment hop without a SourceIdentity"),
            topo,
            env,
            &missing,
            true,
            refused,
        ));
        if keys_mode {
            // `--no-source-identity` still reaches the service role; the deployment role
            // then refuses (the case above).
            cases.extend(hop_cases(
                &n("service hop, --no-source-identity"),
                topo,
                env,
                &missing,
                false,
                PASSES,
            ));
        }
    }
}

#[test]
fn rendered_trust_admits_the_chain_and_refuses_forged_attribution() {
    let mut cases = Vec::new();
    for ex in ["access-keys", "oidc"] {
        attribution_cases(&example(ex), &mut cases);
    }
    // A prod session claiming to be a nonprod-only project, and the other way round.
    let topo = example("oidc");
    let prod = topo.environment("prod").unwrap();
    let nonprod = topo.environment("nonprod").unwrap();
    let claim = |si| Claim {
        source_identity: Some(si),
        tag_keys: rolehop_keys(),
    };
    let refused = Expect {
        assume: DENIED,
        set_source_identity: DENIED,
        ..PASSES
    };
    cases.extend(hop_cases(
        "oidc/prod: a nonprod-only project's SourceIdentity",
        &topo,
        prod,
        &claim("acme.shop-api@7"),
        true,
        refused,
    ));
    cases.extend(hop_cases(
        "oidc/nonprod: a glob project's SourceIdentity",
        &topo,
        nonprod,
        &claim("acme.shop-api.x@7"),
        true,
        PASSES,
    ));
    cases.extend(hop_cases(
        "oidc/nonprod: a project next to the glob",
        &topo,
        nonprod,
        &claim("acme.shopping@7"),
        true,
        refused,
    ));
    assert!(cases.len() > 40, "{}", cases.len());
    both_engines_agree(&cases);
}
