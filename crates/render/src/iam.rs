//! The IAM documents of a topology, with concrete ARNs: what the broker user may do, whom the
//! service and deployment roles trust and what a service role may assume. The CloudFormation
//! renderer embeds them and the auditor evaluates them, so both see exactly the same policies.

use rolehop_core::topology::{Auth, Environment, Topology};
use serde_json::{Value, json};

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
        Auth::AccessKeys => None,
    }
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
pub fn service_role_trust(topo: &Topology, env: &Environment) -> Value {
    let statement = match &topo.auth {
        Auth::AccessKeys => json!({
            "Sid": "BrokerUserOnly",
            "Effect": "Allow",
            "Principal": { "AWS": topo.broker_user_arn(env) },
            "Action": CHAIN_ACTIONS,
        }),
        Auth::Oidc { audience, .. } => {
            let key = oidc_issuer_key(topo).unwrap_or_default();
            let provider = topo.oidc_provider_arn().unwrap_or_default();
            json!({
                "Sid": "GitlabIdTokensOnly",
                "Effect": "Allow",
                "Principal": { "Federated": provider },
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": { format!("{key}:aud"): audience },
                    "StringLike": { format!("{key}:sub"): env.gitlab.sub_patterns() },
                },
            })
        }
    };
    json!({ "Version": POLICY_VERSION, "Statement": [statement] })
}

/// The inline policy of an environment's service role: it may only assume the deployment
/// roles of its own environment's target accounts.
pub fn service_role_policy(topo: &Topology, env: &Environment) -> Value {
    // Sorted so the rendered policy does not change when accounts are reordered.
    let mut targets: Vec<String> = env
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
    let mut condition = json!({ "Null": { "sts:SourceIdentity": "false" } });
    if let Some(x) = &env.external_id {
        condition["StringEquals"] = json!({ "sts:ExternalId": x });
    }
    json!({
        "Version": POLICY_VERSION,
        "Statement": [{
            "Sid": "OwnServiceRoleWithSourceIdentity",
            "Effect": "Allow",
            "Principal": { "AWS": topo.service_role_arn(env) },
            "Action": CHAIN_ACTIONS,
            "Condition": condition,
        }]
    })
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
        assert!(t["Statement"][0].get("Condition").is_none());
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
                "project_path:acme/shop:ref_type:branch:ref:v*",
                "project_path:acme/shop:ref_type:tag:ref:main",
                "project_path:acme/shop:ref_type:tag:ref:v*",
            ])
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
        assert_eq!(s["Condition"]["Null"]["sts:SourceIdentity"], "false");
        assert_eq!(
            s["Condition"]["StringEquals"]["sts:ExternalId"],
            "acme-shop-prod"
        );

        let nonprod = topo.environment("nonprod").unwrap();
        let t = deployment_role_trust(&topo, nonprod);
        assert!(t["Statement"][0]["Condition"].get("StringEquals").is_none());
    }
}
