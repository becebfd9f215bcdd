//! Gate mode (`auth.mode = "oidc-gate"`): the IAM documents of each environment's claim gate
//! and the gate's config, shared by the CloudFormation renderer and the auditor.
//!
//! One gate per environment, each with its own execution role: the role may assume only its
//! environment's service role, and that service role trusts only it. A compromised gate (or a
//! bug in its rules) therefore reaches one environment, and the service role's trust repeats
//! what the rules pin as conditions on the session tags the gate sets from signed claims.

use rolehop_core::chain::sanitize_tag_value;
use rolehop_core::topology::{Auth, Environment, GATE_SESSION_TAG_KEYS, GateRules, Topology};
use serde_json::{Map, Value, json};

use crate::iam::{CHAIN_ACTIONS, POLICY_VERSION, chain_trust};

/// The environment variable the gate function reads its config (gate.toml's text) from.
pub const GATE_CONFIG_ENV: &str = "ROLEHOP_GATE_CONFIG";

/// Lambda's limit on all of a function's environment variables together (the config is the
/// only large one).
pub const GATE_CONFIG_MAX_BYTES: usize = 4096 - 64;

/// The gate's rules for `env`: `[environments.<name>.gate]` with its defaults, or the
/// defaults of a protected/unprotected environment outside gate mode (for the audit).
pub fn rules(env: &Environment) -> GateRules {
    env.gate
        .clone()
        .unwrap_or_else(|| GateRules::defaults(env.protected))
}

/// An IAM `StringLike` pattern for the tag value the gate derives from a claim matching
/// `glob`: the literal parts encoded as the gate encodes tag values, the `*` kept.
fn tag_glob(glob: &str) -> String {
    glob.split('*')
        .map(sanitize_tag_value)
        .collect::<Vec<_>>()
        .join("*")
}

/// The conditions on the tags the gate attests, from what the rules pin: AWS enforces them
/// on every AssumeRole into the service role, so a gate whose rules were loosened by mistake
/// (a stale config, a bug) still cannot hand out this environment's role to a job the
/// topology does not admit. They do not bound a compromised gate, which picks its tags.
fn required_tags(env: &Environment) -> (Map<String, Value>, Map<String, Value>) {
    let r = rules(env);
    let mut equals = Map::new();
    let mut like = Map::new();
    let tag = |k: &str| format!("aws:RequestTag/gitlab:{k}");
    if r.ref_protected {
        equals.insert(tag("ref_protected"), json!("true"));
    }
    if r.environment_protected {
        equals.insert(tag("environment_protected"), json!("true"));
    }
    if !r.project_ids.is_empty() {
        equals.insert(tag("project_id"), json!(r.project_ids));
    }
    if !r.deployment_tiers.is_empty() {
        equals.insert(tag("deployment_tier"), json!(r.deployment_tiers));
    }
    let globs = |v: &[String]| -> Vec<String> { v.iter().map(|g| tag_glob(g)).collect() };
    like.insert(tag("project"), json!(globs(&env.gitlab.projects)));
    like.insert(tag("environment"), json!(globs(&env.gitlab.environments)));
    (equals, like)
}

/// The statements of a service role's trust in gate mode: only the environment's gate role;
/// `sts:AssumeRole` only with a SourceIdentity shaped like one of the environment's projects
/// and the tags its rules pin; `sts:TagSession` only with the gate's tag keys (and the same
/// pinned values); `sts:SetSourceIdentity` only with such a shape.
pub fn service_role_trust_statements(topo: &Topology, env: &Environment) -> Vec<Value> {
    let principal = json!({ "AWS": topo.gate_role_arn(env).unwrap_or_default() });
    let (equals, like) = required_tags(env);
    let mut assume = Map::new();
    assume.insert("Null".into(), json!({ "sts:SourceIdentity": "false" }));
    assume.insert("StringEquals".into(), Value::Object(equals.clone()));
    let mut st = chain_trust("OwnGateRoleOnly", &principal, env, assume, true);
    // chain_trust wrote the source identity shapes under `StringLike`; the tag patterns join
    // them there.
    if let Some(Value::Object(l)) = st[0]
        .get_mut("Condition")
        .and_then(|c| c.get_mut("StringLike"))
    {
        l.extend(like.clone());
    }
    admit_gate_tag_keys(&mut st);
    if let Some(Value::Object(c)) = st[2].get_mut("Condition") {
        c.insert("StringEquals".into(), Value::Object(equals));
        c.insert("StringLike".into(), Value::Object(like));
    }
    st
}

/// Replaces the chain's five tag keys with the gate's 13 in `chain_trust`'s statements: the
/// gate's tags are transitive, so the deployment hop carries them too.
pub(crate) fn admit_gate_tag_keys(statements: &mut [Value]) {
    for s in statements {
        if let Some(Value::Object(f)) = s
            .get_mut("Condition")
            .and_then(|c| c.get_mut("ForAllValues:StringEquals"))
        {
            f.insert("aws:TagKeys".into(), json!(GATE_SESSION_TAG_KEYS));
        }
    }
}

/// The identity policy of an environment's gate role: it may assume only that environment's
/// service role, with tags and a SourceIdentity.
pub fn gate_role_policy(topo: &Topology, env: &Environment) -> Value {
    json!({
        "Version": POLICY_VERSION,
        "Statement": [{
            "Sid": "AssumeOwnServiceRoleOnly",
            "Effect": "Allow",
            "Action": CHAIN_ACTIONS,
            "Resource": topo.service_role_arn(env),
        }]
    })
}

/// The trust policy of a gate role: the Lambda service. Only a function of this account can
/// be given the role (creating one with it needs `iam:PassRole` here), and rolehop's template
/// gives it to the environment's gate function alone.
pub fn gate_role_trust() -> Value {
    json!({
        "Version": POLICY_VERSION,
        "Statement": [{
            "Sid": "LambdaOnly",
            "Effect": "Allow",
            "Principal": { "Service": "lambda.amazonaws.com" },
            "Action": "sts:AssumeRole",
        }]
    })
}

/// The gate function of `env` (named like its role).
pub fn gate_function_name(env: &Environment) -> String {
    rolehop_core::topology::gate_role_name(&env.name)
}

/// The ARN of the environment's gate function, for the rollout and the audit.
pub fn gate_function_arn(topo: &Topology, env: &Environment) -> String {
    format!(
        "arn:{}:lambda:{}:{}:function:{}",
        topo.broker.partition,
        topo.broker.region,
        topo.broker.account_id,
        gate_function_name(env)
    )
}

fn toml_str(s: &str) -> String {
    // A TOML basic string is JSON's string syntax for every character rolehop lets through.
    Value::String(s.to_owned()).to_string()
}

fn toml_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| toml_str(s)).collect();
    format!("[{}]", items.join(", "))
}

/// The gate's config for one environment, in the shape `rolehop_gate::GateConfig::from_toml`
/// reads. One file per environment, because one gate serves one environment: a gate holding
/// every environment's rules would need an identity that can assume every service role.
/// `None` outside gate mode.
pub fn gate_config(topo: &Topology, env: &Environment) -> Option<String> {
    let Auth::OidcGate {
        issuer, audience, ..
    } = &topo.auth
    else {
        return None;
    };
    let r = rules(env);
    let mut out = String::new();
    let line = |out: &mut String, k: &str, v: String| {
        out.push_str(k);
        out.push_str(" = ");
        out.push_str(&v);
        out.push('\n');
    };
    out.push_str(&format!(
        "# rolehop's claim gate for environment `{}`, generated by `rolehop render`.\n\
         # Do not edit: change the topology and render again.\n",
        env.name
    ));
    line(&mut out, "issuer", toml_str(issuer));
    line(&mut out, "audience", toml_str(audience));
    line(&mut out, "region", toml_str(&topo.broker.region));
    out.push_str(&format!("\n[environments.{}]\n", env.name));
    line(
        &mut out,
        "service_role_arn",
        toml_str(&topo.service_role_arn(env)),
    );
    out.push_str(&format!("\n[environments.{}.rules]\n", env.name));
    let mut list = |k: &str, v: &[String]| {
        if !v.is_empty() {
            line(&mut out, k, toml_list(v));
        }
    };
    list("project_ids", &r.project_ids);
    list("project_paths", &env.gitlab.projects);
    list("namespace_ids", &r.namespace_ids);
    list("namespace_paths", &r.namespace_paths);
    list("branches", &env.gitlab.branches);
    list("tags", &env.gitlab.tags);
    list("environments", &env.gitlab.environments);
    list("deployment_tiers", &r.deployment_tiers);
    list("runner_environments", &r.runner_environments);
    list("user_access_levels", &r.user_access_levels);
    line(&mut out, "ref_protected", r.ref_protected.to_string());
    line(
        &mut out,
        "environment_protected",
        r.environment_protected.to_string(),
    );
    let ps = &r.pipeline_sources;
    if !ps.allow.is_empty() || !ps.deny.is_empty() {
        let mut parts = Vec::new();
        if !ps.allow.is_empty() {
            parts.push(format!("allow = {}", toml_list(&ps.allow)));
        }
        if !ps.deny.is_empty() {
            parts.push(format!("deny = {}", toml_list(&ps.deny)));
        }
        line(
            &mut out,
            "pipeline_sources",
            format!("{{ {} }}", parts.join(", ")),
        );
    }
    Some(out)
}

/// The gate config's file name for an environment.
pub fn gate_config_file(env: &str) -> String {
    format!("gate-{env}.toml")
}
