//! The IAM documents of a topology, with concrete ARNs: what the broker user may do, whom the
//! service and deployment roles trust and what a service role may assume. The CloudFormation
//! renderer embeds them and the auditor evaluates them, so both see exactly the same policies.

use rolehop_core::RoleArn;
use rolehop_core::chain::{SESSION_TAG_KEYS, source_identity_patterns};
use rolehop_core::topology::{Auth, Environment, Topology};
use serde_json::{Map, Value, json};

/// The policy language version every document uses.
pub const POLICY_VERSION: &str = "2012-10-17";

/// What a principal needs to start a hop that carries session tags and a SourceIdentity.
/// Trust policies must allow the same three actions, or a hop with tags or a source identity
/// is refused.
pub const CHAIN_ACTIONS: [&str; 3] = ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"];

/// The condition key prefix of the GitLab issuer (`gitlab.example.com`), as IAM names the
/// `aud` and `sub` keys of an OIDC provider: the issuer URL without `https://`.
/// `None` in access-keys mode.
pub fn oidc_issuer_key(topo: &Topology) -> Option<String> {
    match &topo.auth {
        Auth::Oidc { issuer, .. } => Some(issuer.trim_start_matches("https://").to_owned()),
        // The gate verifies the token itself: no IAM OIDC provider, no web-identity trust.
        Auth::AccessKeys | Auth::OidcGate { .. } => None,
    }
}

/// IAM's default cap on a role's trust policy, in characters without whitespace (a quota
/// can raise it to 4096; rolehop stays within the default).
pub const TRUST_POLICY_MAX_CHARS: usize = 2048;

/// The `sts:SourceIdentity` patterns jobs of `env` produce: one shape per project
/// (`<group>.<project>@*`), so a session of one environment cannot claim another's project.
pub fn source_identity_shapes(env: &Environment) -> Vec<String> {
    let mut out: Vec<String> = env
        .gitlab
        .projects
        .iter()
        .flat_map(|p| source_identity_patterns(p))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The trust statements of a hop that may carry session tags and a SourceIdentity: one per
/// action, each conditioned only on keys AWS documents for that action (the Service
/// Authorization Reference lists `sts:SourceIdentity` for AssumeRole and SetSourceIdentity,
/// `aws:TagKeys` for AssumeRole and TagSession), so the policy means the same whether AWS
/// evaluates each action with its own keys or with the whole request.
///
/// - `sts:AssumeRole`: `assume` (the hop's own conditions), tag keys limited to rolehop's
///   with `ForAllValues`, which a request without tags satisfies (`--no-tags` keeps
///   working), and the SourceIdentity shaped like one of the environment's projects
///   (`...IfExists` unless `source_identity_required`: then `assume` demands it with `Null`);
/// - `sts:SetSourceIdentity`: only such a shape;
/// - `sts:TagSession`: only rolehop's tag keys.
///
/// These limit shape, not truth: whoever holds the base credential picks the values.
pub(crate) fn chain_trust(
    sid: &str,
    principal: &Value,
    env: &Environment,
    mut assume: Map<String, Value>,
    source_identity_required: bool,
) -> Vec<Value> {
    let shapes = json!({ "sts:SourceIdentity": source_identity_shapes(env) });
    let keys = json!({ "aws:TagKeys": SESSION_TAG_KEYS });
    let like = if source_identity_required {
        "StringLike"
    } else {
        "StringLikeIfExists"
    };
    assume.insert(like.to_owned(), shapes.clone());
    assume.insert("ForAllValues:StringEquals".to_owned(), keys.clone());
    vec![
        json!({
            "Sid": sid,
            "Effect": "Allow",
            "Principal": principal,
            "Action": "sts:AssumeRole",
            "Condition": assume,
        }),
        json!({
            "Sid": "SourceIdentityOfOwnProjects",
            "Effect": "Allow",
            "Principal": principal,
            "Action": "sts:SetSourceIdentity",
            "Condition": { "StringLike": shapes },
        }),
        json!({
            "Sid": "RolehopTagKeysOnly",
            "Effect": "Allow",
            "Principal": principal,
            "Action": "sts:TagSession",
            "Condition": { "ForAllValues:StringEquals": keys },
        }),
    ]
}

/// The identity policy of an environment's broker IAM user (access-keys mode): it may only
/// assume its own environment's service role (with tags and a SourceIdentity).
pub fn broker_user_policy(topo: &Topology, env: &Environment) -> Value {
    json!({
        "Version": POLICY_VERSION,
        "Statement": [{
            "Sid": "AssumeOwnServiceRole",
            "Effect": "Allow",
            "Action": CHAIN_ACTIONS,
            "Resource": topo.service_role_arn(env),
        }]
    })
}

/// The trust policy of an environment's service role in the broker account.
///
/// Access-keys mode: only the environment's broker user. OIDC mode: only GitLab ID tokens
/// for the configured audience whose `sub` matches the environment's projects and refs.
/// Gate mode: only the environment's gate role, with the attested tags its rules pin.
pub fn service_role_trust(topo: &Topology, env: &Environment) -> Value {
    let statements = match &topo.auth {
        // The first hop may go without a SourceIdentity (`--no-source-identity`); the
        // deployment role then refuses the chain.
        Auth::AccessKeys => chain_trust(
            "BrokerUserOnly",
            &json!({ "AWS": topo.broker_user_arn(env) }),
            env,
            Map::new(),
            false,
        ),
        Auth::Oidc { audience, .. } => {
            let key = oidc_issuer_key(topo).unwrap_or_default();
            let provider = topo.oidc_provider_arn().unwrap_or_default();
            vec![json!({
                "Sid": "GitlabIdTokensOnly",
                "Effect": "Allow",
                "Principal": { "Federated": provider },
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": { format!("{key}:aud"): audience },
                    "StringLike": { format!("{key}:sub"): env.gitlab.sub_patterns() },
                },
            })]
        }
        Auth::OidcGate { .. } => crate::gate::service_role_trust_statements(topo, env),
    };
    json!({ "Version": POLICY_VERSION, "Statement": statements })
}

/// The inline policy of an environment's service role: it may only assume the deployment
/// roles of its own environment's target accounts.
pub fn service_role_policy(topo: &Topology, env: &Environment) -> Value {
    // Sorted so the rendered policy does not change when accounts are reordered.
    let mut targets: Vec<RoleArn> = env
        .accounts
        .iter()
        .map(|a| topo.deployment_role_arn(env, a))
        .collect();
    targets.sort();
    targets.dedup();
    json!({
        "Version": POLICY_VERSION,
        "Statement": [{
            "Sid": "AssumeOwnDeploymentRoles",
            "Effect": "Allow",
            "Action": CHAIN_ACTIONS,
            "Resource": targets,
        }]
    })
}

/// The trust policy of an environment's deployment role (the same in every target account):
/// only the environment's service role, only with a SourceIdentity, and only with the
/// environment's ExternalId when one is configured.
///
/// `sts:SourceIdentity` is in the request whether the caller sets the source identity on
/// this hop (OIDC mode) or it was set on the first hop and persists through the chain
/// (access-keys mode), so one `Null` condition covers both.
pub fn deployment_role_trust(topo: &Topology, env: &Environment) -> Value {
    let mut assume = Map::new();
    assume.insert("Null".to_owned(), json!({ "sts:SourceIdentity": "false" }));
    if let Some(x) = &env.external_id {
        assume.insert("StringEquals".to_owned(), json!({ "sts:ExternalId": x }));
    }
    let mut statements = chain_trust(
        "OwnServiceRoleWithSourceIdentity",
        &json!({ "AWS": topo.service_role_arn(env) }),
        env,
        assume,
        true,
    );
    if matches!(topo.auth, Auth::OidcGate { .. }) {
        crate::gate::admit_gate_tag_keys(&mut statements);
    }
    admit_extra_tag_keys(&mut statements, env);
    json!({ "Version": POLICY_VERSION, "Statement": statements })
}

/// The environment's extra `session_tags` are passed on the deployment hop only, so only the
/// deployment role's trust admits their keys besides rolehop's own.
fn admit_extra_tag_keys(statements: &mut [Value], env: &Environment) {
    if env.session_tags.is_empty() {
        return;
    }
    for s in statements {
        if let Some(Value::Array(keys)) = s
            .get_mut("Condition")
            .and_then(|c| c.get_mut("ForAllValues:StringEquals"))
            .and_then(|f| f.get_mut("aws:TagKeys"))
        {
            keys.extend(env.session_tags.iter().map(|t| json!(t.key)));
        }
    }
}

/// The size IAM counts for a policy document: its JSON without whitespace.
pub fn policy_chars(doc: &Value) -> usize {
    doc.to_string().chars().count()
}

/// The trust policies of `topo` over IAM's default size limit, one message each, located at
/// the environment's header (`file:line: ... [trust-size]`). Such a template would fail to
/// deploy, so render and rollout refuse the topology.
pub fn oversized_trust_policies(topo: &Topology) -> Vec<String> {
    let mut out = Vec::new();
    for env in &topo.environments {
        let docs = [
            ("service role", service_role_trust(topo, env)),
            ("deployment role", deployment_role_trust(topo, env)),
        ];
        for (what, doc) in docs {
            let n = policy_chars(&doc);
            if n > TRUST_POLICY_MAX_CHARS {
                out.push(format!(
                    "{}:{}: the {what} trust policy of environment `{}` would be {n} characters, over IAM's limit of {TRUST_POLICY_MAX_CHARS}: list fewer projects, branches or tags [trust-size]",
                    topo.origin, env.line, env.name
                ));
            }
        }
        if let Some(config) = crate::gate::gate_config(topo, env)
            && config.len() > crate::gate::GATE_CONFIG_MAX_BYTES
        {
            out.push(format!(
                "{}:{}: the claim gate's config of environment `{}` would be {} bytes, over Lambda's limit of {} for environment variables: list fewer projects, refs or rules [gate-config-size]",
                topo.origin,
                env.line,
                env.name,
                config.len(),
                crate::gate::GATE_CONFIG_MAX_BYTES
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::test_support::example;

    #[test]
    fn broker_user_reaches_only_its_own_service_role() {
        let topo = example("access-keys");
        let prod = topo.environment("prod").unwrap();
        let p = broker_user_policy(&topo, prod);
        assert_eq!(
            p["Statement"][0]["Resource"],
            "arn:aws:iam::111111111111:role/rolehop-prod-service"
        );
        assert_eq!(p["Statement"].as_array().unwrap().len(), 1);
        assert_eq!(p["Statement"][0]["Action"], json!(CHAIN_ACTIONS));
    }

    #[test]
    fn access_keys_service_role_trusts_only_the_broker_user() {
        let topo = example("access-keys");
        let nonprod = topo.environment("nonprod").unwrap();
        let t = service_role_trust(&topo, nonprod);
        assert_eq!(
            t["Statement"][0]["Principal"],
            json!({"AWS": "arn:aws:iam::111111111111:user/rolehop-nonprod"})
        );
        // Only the broker user, and only with rolehop's tag keys and a project's shape; one
        // statement per action, each conditioned on keys AWS documents for that action.
        let st = t["Statement"].as_array().unwrap();
        let actions: Vec<&Value> = st.iter().map(|s| &s["Action"]).collect();
        assert_eq!(
            actions,
            ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"]
        );
        assert!(st.iter().all(|s| s["Principal"] == st[0]["Principal"]));
        assert_eq!(
            st[0]["Condition"],
            json!({
                "StringLikeIfExists": {"sts:SourceIdentity": ["acme.shop@*"]},
                "ForAllValues:StringEquals": {"aws:TagKeys": SESSION_TAG_KEYS},
            })
        );
        assert_eq!(
            st[1]["Condition"],
            json!({"StringLike": {"sts:SourceIdentity": ["acme.shop@*"]}})
        );
        assert_eq!(
            st[2]["Condition"],
            json!({"ForAllValues:StringEquals": {"aws:TagKeys": SESSION_TAG_KEYS}})
        );
    }

    #[test]
    fn oidc_service_role_trusts_id_tokens_of_the_environment() {
        let topo = example("oidc");
        let prod = topo.environment("prod").unwrap();
        let t = service_role_trust(&topo, prod);
        let s = &t["Statement"][0];
        assert_eq!(
            s["Principal"]["Federated"],
            "arn:aws:iam::111111111111:oidc-provider/gitlab.example.com"
        );
        assert_eq!(s["Action"], "sts:AssumeRoleWithWebIdentity");
        assert_eq!(
            s["Condition"]["StringEquals"]["gitlab.example.com:aud"],
            "https://aws.rolehop.example.com"
        );
        assert_eq!(
            s["Condition"]["StringLike"]["gitlab.example.com:sub"],
            json!([
                "project_path:acme/shop:ref_type:branch:ref:main",
                "project_path:acme/shop:ref_type:tag:ref:v*",
            ])
        );
    }

    #[test]
    fn trust_policies_stay_within_the_default_size() {
        for ex in ["access-keys", "oidc"] {
            assert!(oversized_trust_policies(&example(ex)).is_empty(), "{ex}");
        }
        // Twelve projects with three refs each (36 `sub` patterns) still fit the service role;
        // the deployment role holds one SourceIdentity shape per project.
        let mut topo = example("oidc");
        let prod = &mut topo.environments[0];
        prod.gitlab.projects = (0..12).map(|i| format!("acme/service-{i:02}")).collect();
        prod.gitlab.branches = vec!["main".into(), "hotfix".into()];
        let deploy = policy_chars(&deployment_role_trust(&topo, &topo.environments[0]));
        assert!(deploy <= TRUST_POLICY_MAX_CHARS, "{deploy}");
        // Far too many is refused with the environment's line and what to do.
        topo.environments[0].gitlab.projects =
            (0..40).map(|i| format!("acme/service-{i:02}")).collect();
        let msgs = oversized_trust_policies(&topo);
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(
            msgs[0].starts_with(
                "examples/oidc/rolehop.toml:14: the service role trust policy of environment `prod`"
            ),
            "{msgs:?}"
        );
        assert!(msgs[0].ends_with("[trust-size]"), "{msgs:?}");
        assert!(
            msgs[1].contains("the deployment role trust policy"),
            "{msgs:?}"
        );
    }

    #[test]
    fn service_role_reaches_only_its_environments_deployment_roles() {
        let topo = example("access-keys");
        let nonprod = topo.environment("nonprod").unwrap();
        let p = service_role_policy(&topo, nonprod);
        assert_eq!(
            p["Statement"][0]["Resource"],
            json!([
                "arn:aws:iam::333333333333:role/rolehop-nonprod-deploy",
                "arn:aws:iam::444444444444:role/rolehop-nonprod-deploy",
            ])
        );
    }

    #[test]
    fn deployment_role_needs_source_identity_and_external_id_when_set() {
        let topo = example("access-keys");
        let prod = topo.environment("prod").unwrap();
        let t = deployment_role_trust(&topo, prod);
        let s = &t["Statement"][0];
        assert_eq!(
            s["Principal"],
            json!({"AWS": "arn:aws:iam::111111111111:role/rolehop-prod-service"})
        );
        assert_eq!(s["Action"], "sts:AssumeRole");
        assert_eq!(s["Condition"]["Null"]["sts:SourceIdentity"], "false");
        assert_eq!(
            s["Condition"]["StringLike"]["sts:SourceIdentity"],
            json!(["acme.shop@*"])
        );
        assert_eq!(
            s["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"],
            json!(SESSION_TAG_KEYS)
        );
        assert_eq!(
            s["Condition"]["StringEquals"]["sts:ExternalId"],
            "acme-shop-prod"
        );
        assert_eq!(t["Statement"].as_array().unwrap().len(), 3);

        let nonprod = topo.environment("nonprod").unwrap();
        let t = deployment_role_trust(&topo, nonprod);
        assert!(t["Statement"][0]["Condition"].get("StringEquals").is_none());
    }
}
