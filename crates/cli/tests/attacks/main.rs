//! The attack suite: every threat of docs/threat-model.md, performed against the IAM documents
//! `rolehop render` produces (for both examples and for topologies written to tempt mistakes),
//! and decided by two IAM engines that share no code: rolehop's evaluator and
//! `@cloud-copilot/iam-simulate`. Where iam-simulate cannot judge (GitLab's `sub`/`aud` keys on
//! `sts:AssumeRoleWithWebIdentity`), a `StringLike` matcher written in this suite judges the
//! trust policy instead; where moto enforces something (identity policies), the attack also
//! runs against moto through the real binary or the aws CLI.
//!
//! Read it as a list: each test is named after a threat, its doc comment says the threat, the
//! attack and who refuses it. Every attack comes with the legitimate request next to it, which
//! must be allowed, so no refusal is vacuous; an attack AWS lets through is asserted to get
//! through (`admitted`), and the threat model says what, if anything, stops it.
//! `the_threat_table_in_the_docs_is_this_suites` keeps docs/threat-model.md's table equal to
//! what the suite measures (`ROLEHOP_UPDATE_THREAT_TABLE=1` rewrites it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;
mod engines;
mod gate;
mod local;
mod moto;
mod suite;
mod world;

use assert_cmd::Command;
use serde_json::Value;
use suite::{Probe, Threat, verify};
use world::{Ask, Role, Token, World, assume, session_of};

// ---------------------------------------------------------------------------------------------
// Worlds: the examples and the tempting topologies.

fn access_keys() -> World {
    World::example("access-keys")
}

fn oidc() -> World {
    World::example("oidc")
}

/// A protected environment whose projects are a group glob: `acme/*` admits every project of
/// every subgroup of `acme` (IAM's `*` matches `/`), acknowledged as the topology must.
fn group_glob() -> World {
    World::tempting(
        "tempting/group-glob.toml",
        r#"[broker]
account_id = "111111111111"
region = "eu-west-1"

[auth]
mode = "oidc"
issuer = "https://gitlab.example.com"
audience = "https://aws.rolehop.example.com"

[environments.prod]
protected = true

[environments.prod.gitlab]
projects = ["acme/*"]
accept_project_globs = ["acme/*"]
branches = ["main"]
environments = ["production"]

[environments.prod.accounts]
prod-eu = "222222222222"
"#,
    )
}

// ---------------------------------------------------------------------------------------------
// Small builders the threats share.

/// A request of the session-policies example's prod deployment session (its role's own
/// inline policy as identity), with acme/shop's session policy when `narrowed`.
fn session_probe(label: &str, action: &str, resource: &str, narrowed: bool) -> Probe {
    let w = World::example("session-policies");
    let e = w.env("prod");
    let role = w.topo.deployment_role_arn(e, &e.accounts[0]).to_string();
    let identity: Vec<Value> = e
        .permissions
        .inline_policies
        .iter()
        .map(|p| p.document.clone())
        .collect();
    let mut case = serde_json::json!({
        "name": label,
        // S3 ARNs name no account: the bucket is the target account's own, said explicitly
        // (otherwise both engines read the request as cross-account).
        "request": {"principal": session_of(&role, "gl-42-1001-5005"), "action": action, "resource": {"resource": resource, "accountId": e.accounts[0].id.as_str()}, "context": {}},
        "identityPolicies": identity,
    });
    if narrowed {
        let rule = e
            .session_policies
            .iter()
            .find(|r| r.project.as_deref() == Some("acme/shop"))
            .unwrap();
        case["sessionPolicy"] = rule.policy.as_ref().unwrap().document.clone();
    }
    Probe::hop(label, vec![case])
}

/// The legitimate first hop of an environment (access-keys mode).
fn broker_hop(w: &World, from: &str, to: &str, ask: &Ask) -> Vec<Value> {
    assume(&w.broker_user(from), &w.service_role(to), ask)
}

/// `prod` with access keys, as the legitimate job does it.
fn legit_ak_first(w: &World) -> Probe {
    to_prod_service(
        w,
        w.broker_user("prod"),
        "prod broker user -> prod service role (the job)",
        |a| a,
    )
}

/// `who` calls AssumeRole on the prod deployment role in `prod-eu` with what the prod job
/// asks on that hop (its SourceIdentity, tags, external id), changed by `ask`.
fn to_prod_deploy(w: &World, who: world::Who, label: &str, ask: impl FnOnce(Ask) -> Ask) -> Probe {
    let asked = ask(w.deploy_ask("prod", "prod-eu"));
    Probe::hop(
        label,
        assume(&who, &w.deploy_role("prod", "prod-eu"), &asked),
    )
}

/// `who` calls AssumeRole on the prod service role with what the prod job asks on its first
/// hop (access keys), changed by `ask`.
fn to_prod_service(w: &World, who: world::Who, label: &str, ask: impl FnOnce(Ask) -> Ask) -> Probe {
    Probe::hop(
        label,
        assume(&who, &w.service_role("prod"), &ask(w.first_ask("prod"))),
    )
}

/// The legitimate deployment hop to `prod-eu`.
fn legit_deploy(w: &World) -> Probe {
    to_prod_deploy(
        w,
        w.service_session("prod"),
        &format!(
            "{}: prod service session -> prod deployment role (the job)",
            w.name
        ),
        |a| a,
    )
}

/// The sub of a GitLab ID token with the default claim components.
fn sub(project: &str, ref_type: &str, name: &str) -> String {
    format!("project_path:{project}:ref_type:{ref_type}:ref:{name}")
}

fn web(w: &World, label: &str, token: &Token, env: &str) -> Probe {
    Probe::web(w, label, token, &w.service_role(env))
}

fn prod_main_token(w: &World) -> Probe {
    web(
        w,
        "ID token of acme/shop branch main -> prod service role (the job)",
        &w.token(&sub("acme/shop", "branch", "main")),
        "prod",
    )
}

// ---------------------------------------------------------------------------------------------
// The catalogue: every threat of docs/threat-model.md, in the order of its table.

pub fn catalogue() -> Vec<Threat> {
    let ak = access_keys();
    let oi = oidc();
    vec![
        // --- a non-prod credential reaching for prod, at each hop
        Threat::new(
            "nonprod_broker_key_cannot_assume_the_prod_service_role",
            "a non-prod pipeline (or its leaked key) reaches prod",
            "nonprod broker user calls AssumeRole on the prod service role, with the job's tags and SourceIdentity",
            "AWS: the broker user's identity policy names only its own service role; the prod service role trusts only the prod broker user",
        )
        .control(legit_ak_first(&ak))
        .refused(to_prod_service(
            &ak,
            ak.broker_user("nonprod"),
            "nonprod broker user -> prod service role",
            |a| a,
        ))
        .with_moto(moto_nonprod_key_to_prod),
        Threat::new(
            "nonprod_service_session_cannot_assume_a_prod_deployment_role",
            "a non-prod service-role session reaches prod",
            "nonprod service role session (access keys or OIDC) calls AssumeRole on the prod deployment role, with SourceIdentity, tags and prod's external id",
            "AWS: the service role's policy names only its environment's deployment roles; the prod deployment role trusts only the prod service role",
        )
        .control(legit_deploy(&ak))
        .control(legit_deploy(&oi))
        .refused(to_prod_deploy(
            &ak,
            ak.service_session("nonprod"),
            "access keys: nonprod service session -> prod deployment role",
            |a| a,
        ))
        .refused(to_prod_deploy(
            &oi,
            oi.service_session("nonprod"),
            "oidc: nonprod service session -> prod deployment role",
            |a| a,
        ))
        .with_moto(moto_nonprod_service_to_prod_deploy),
        Threat::new(
            "nonprod_deployment_session_cannot_assume_a_prod_deployment_role",
            "a non-prod deploy script reaches prod",
            "nonprod deployment role session, whose own policy allows everything, calls AssumeRole on the prod deployment role",
            "AWS: the prod deployment role's trust policy names only the prod service role",
        )
        .control(legit_deploy(&ak))
        .refused(Probe::hop(
            "access keys: nonprod deployment session (Allow *) -> prod deployment role",
            assume(
                &ak.deploy_session("nonprod", "staging"),
                &ak.deploy_role("prod", "prod-eu"),
                &ak.deploy_ask("prod", "prod-eu"),
            ),
        ))
        .refused(Probe::hop(
            "oidc: nonprod deployment session (Allow *) -> prod deployment role",
            assume(
                &oi.deploy_session("nonprod", "dev"),
                &oi.deploy_role("prod", "prod-eu"),
                &oi.deploy_ask("prod", "prod-eu"),
            ),
        ))
        .refused(Probe::hop(
            "access keys: nonprod deployment session (Allow *) -> prod service role",
            assume(
                &ak.deploy_session("nonprod", "staging"),
                &ak.service_role("prod"),
                &ak.first_ask("prod"),
            ),
        )),
        // --- a leaked broker key
        Threat::new(
            "a_leaked_broker_key_reaches_nothing_but_its_own_service_role",
            "a leaked broker key is used for anything else",
            "prod broker user skips the service role (AssumeRole on the prod deployment role), assumes the nonprod service role, or mints itself a new access key",
            "AWS: the broker user's only permission is sts:AssumeRole (+TagSession, SetSourceIdentity) on its own service role; the deployment role trusts only the service role",
        )
        .control(legit_ak_first(&ak))
        .refused(to_prod_deploy(
            &ak,
            ak.broker_user("prod"),
            "prod broker user -> prod deployment role directly",
            |a| a,
        ))
        .refused(Probe::hop(
            "prod broker user -> nonprod service role",
            broker_hop(&ak, "prod", "nonprod", &ak.first_ask("prod")),
        ))
        .refused(Probe::hop(
            "prod broker user -> iam:CreateAccessKey for itself",
            vec![world::case(
                "prod broker user iam:CreateAccessKey",
                &ak.broker_user("prod").arn,
                "iam:CreateAccessKey",
                &ak.broker_user("prod").arn,
                &serde_json::json!({}),
                &ak.broker_user("prod").identity,
                &Value::Null,
            )],
        ))
        .with_moto(moto_leaked_key_beyond_its_policy),
        Threat::new(
            "a_leaked_prod_broker_key_used_outside_any_job_reaches_prod",
            "a leaked prod broker key is used from a laptop, outside any job",
            "prod broker user -> prod service role -> prod deployment role with a made-up but well-shaped SourceIdentity (`acme.shop@1`) and rolehop's tag keys",
            "**nobody in AWS**: nothing in a trust policy tells a job from a laptop. Limits: GitLab keeps the key in a masked, protected, environment-scoped variable; `rolehop rotate` shortens its life; deactivating it cuts every account at once; the deployment role's permissions bound the damage",
        )
        .admitted(to_prod_service(
            &ak,
            ak.broker_user("prod"),
            "prod broker key from a laptop -> prod service role",
            |a| a.source_identity(Some("acme.shop@1")),
        ))
        .admitted(to_prod_deploy(
            &ak,
            ak.service_session("prod"),
            "its service session -> prod deployment role",
            |a| a.source_identity(Some("acme.shop@1")),
        ))
        .control(legit_deploy(&ak))
        .with_moto(moto_leaked_prod_key_outside_a_job),
        // --- principals that are not rolehop's
        Threat::new(
            "principals_other_than_the_environments_own_are_not_trusted",
            "a lookalike in another account, or an administrator of the broker account, assumes a rolehop role",
            "`arn:aws:iam::999999999999:user/rolehop-prod` and a session of `999999999999:role/rolehop-prod-service` (both allowed everything by their own account), and a broker-account admin allowed everything",
            "AWS: trust policies name exact principal ARNs in the broker account; a role's trust policy must allow even within its own account",
        )
        .control(legit_ak_first(&ak))
        .control(legit_deploy(&ak))
        .refused(Probe::hop(
            "999999999999 user/rolehop-prod -> prod service role",
            assume(
                &outsider("arn:aws:iam::999999999999:user/rolehop-prod"),
                &ak.service_role("prod"),
                &ak.first_ask("prod"),
            ),
        ))
        .refused(Probe::hop(
            "999999999999 rolehop-prod-service session -> prod deployment role",
            assume(
                &outsider(&session_of(
                    "arn:aws:iam::999999999999:role/rolehop-prod-service",
                    "x",
                )),
                &ak.deploy_role("prod", "prod-eu"),
                &ak.deploy_ask("prod", "prod-eu"),
            ),
        ))
        .refused(Probe::hop(
            "broker-account admin (Allow *) -> prod service role",
            assume(
                &outsider("arn:aws:iam::111111111111:user/admin"),
                &ak.service_role("prod"),
                &ak.first_ask("prod"),
            ),
        ))
        .refused(to_prod_deploy(
            &ak,
            outsider("arn:aws:iam::111111111111:user/admin"),
            "broker-account admin (Allow *) -> prod deployment role",
            |a| a,
        )),
        // --- SourceIdentity, tags, external id
        Threat::new(
            "a_deployment_hop_without_source_identity_is_refused",
            "a deployment session nobody can attribute in CloudTrail",
            "prod service session calls AssumeRole on the prod deployment role without a SourceIdentity (access keys: none set on the first hop; OIDC: none on the second)",
            "AWS: the deployment role's trust policy requires `sts:SourceIdentity` (Null: false)",
        )
        .control(legit_deploy(&ak))
        .control(legit_deploy(&oi))
        .refused(to_prod_deploy(
            &ak,
            ak.service_session("prod"),
            "access keys: no SourceIdentity -> prod deployment role",
            |a| a.source_identity(None),
        ))
        .refused(to_prod_deploy(
            &oi,
            oi.service_session("prod"),
            "oidc: no SourceIdentity -> prod deployment role",
            |a| a.source_identity(None),
        )),
        Threat::new(
            "a_source_identity_of_the_wrong_shape_is_refused",
            "a session claims a SourceIdentity that is not rolehop's `<group>.<project>@<pipeline>`",
            "SourceIdentity `alice` on the access-keys first hop and on the OIDC deployment hop",
            "AWS: the trust policies accept only SourceIdentities shaped like rolehop's (a well-shaped forgery still passes: see `claimed_attribution_is_a_hint_that_opens_nothing`)",
        )
        .control(legit_ak_first(&ak))
        .control(legit_deploy(&oi))
        .refused(to_prod_service(
            &ak,
            ak.broker_user("prod"),
            "access keys: SourceIdentity `alice` -> prod service role",
            |a| a.source_identity(Some("alice"),
        )),
        )
        .refused(to_prod_deploy(
            &oi,
            oi.service_session("prod"),
            "oidc: SourceIdentity `alice` -> prod deployment role",
            |a| a.source_identity(Some("alice"),
        )),
        ),
        Threat::new(
            "a_session_tag_key_outside_rolehops_set_is_refused",
            "a session carries tags other than rolehop's, for a policy that trusts tags",
            "tag `team=admins` added on the access-keys first hop, the access-keys deployment hop and the OIDC deployment hop",
            "AWS: the trust policies allow only rolehop's tag keys (`aws:TagKeys`)",
        )
        .control(legit_ak_first(&ak))
        .control(legit_deploy(&ak))
        .control(legit_deploy(&oi))
        .refused(to_prod_service(
            &ak,
            ak.broker_user("prod"),
            "access keys: tag team=admins -> prod service role",
            |a| a.tag("team", "admins",
        )),
        )
        .refused(to_prod_deploy(
            &ak,
            ak.service_session("prod"),
            "access keys: tag team=admins added on the deployment hop",
            |a| a.tag("team", "admins",
        )),
        )
        .refused(to_prod_deploy(
            &oi,
            oi.service_session("prod"),
            "oidc: tag team=admins -> prod deployment role",
            |a| a.tag("team", "admins",
        )),
        ),
        Threat::new(
            "claimed_attribution_is_a_hint_that_opens_nothing",
            "a non-prod job claims to be prod's `main` in its session tags",
            "nonprod broker key tags its session `gitlab:ref=main`, `gitlab:environment=production` (admitted: tags are hints whoever holds the base credential sets), then that session and an OIDC nonprod session reach for the prod deployment role",
            "AWS: no rolehop policy grants on a tag; the prod deployment role trusts only the prod service role. The claim itself is **not** refused",
        )
        .control(legit_deploy(&ak))
        .admitted(Probe::hop(
            "nonprod broker user claiming gitlab:ref=main -> nonprod service role",
            broker_hop(
                &ak,
                "nonprod",
                "nonprod",
                &ak.first_ask("nonprod")
                    .tag("gitlab:ref", "main")
                    .tag("gitlab:environment", "production"),
            ),
        ))
        .refused(to_prod_deploy(
            &ak,
            ak.service_session("nonprod"),
            "access keys: that session (gitlab:ref=main) -> prod deployment role",
            |a| a,
        ))
        .refused(to_prod_deploy(
            &oi,
            oi.service_session("nonprod"),
            "oidc: nonprod session tagging gitlab:ref=main -> prod deployment role",
            |a| a.tag("gitlab:ref", "main"),
        )),
        Threat::new(
            "a_missing_or_wrong_external_id_is_refused",
            "a deployment hop without the environment's external id",
            "prod service session calls AssumeRole on the prod deployment role with no external id, and with another environment's",
            "AWS: the deployment role's trust policy requires `sts:ExternalId` when the topology sets one (not a secret from the job author: it is in the topology)",
        )
        .control(legit_deploy(&ak))
        .refused(to_prod_deploy(
            &ak,
            ak.service_session("prod"),
            "no external id -> prod deployment role",
            |a| a.external_id(None),
        ))
        .refused(to_prod_deploy(
            &ak,
            ak.service_session("prod"),
            "external id `acme-shop-staging` -> prod deployment role",
            |a| a.external_id(Some("acme-shop-staging")),
        )),
        // --- OIDC: which tokens the prod service role accepts
        Threat::new(
            "an_unprotected_branch_named_like_a_protected_tag_pattern_is_refused",
            "a developer pushes a branch named like prod's tag pattern and runs their own job",
            "ID token of branch `v-pwn` (prod admits tags `v*`) -> prod service role",
            "AWS: prod's `sub` patterns pair tag globs with `ref_type:tag` only",
        )
        .control(prod_main_token(&oi))
        .control(web(
            &oi,
            "ID token of tag v1.2.0 -> prod service role (a release)",
            &oi.token(&sub("acme/shop", "tag", "v1.2.0")),
            "prod",
        ))
        .refused(web(
                &oi,
                "ID token of branch v-pwn -> prod service role",
                &oi.token(&sub("acme/shop", "branch", "v-pwn")),
                "prod",
            ),
        ),
        Threat::new(
            "a_tag_named_like_a_protected_branch_is_refused",
            "a developer pushes a tag named `main` (tags are not protected like the branch)",
            "ID token of tag `main` -> prod service role",
            "AWS: prod's `sub` patterns pair branch names with `ref_type:branch` only",
        )
        .control(prod_main_token(&oi))
        .refused(web(
                &oi,
                "ID token of tag main -> prod service role",
                &oi.token(&sub("acme/shop", "tag", "main")),
                "prod",
            ),
        ),
        Threat::new(
            "a_tag_matching_prods_tag_glob_rests_on_gitlabs_tag_protection",
            "a developer pushes a tag matching prod's tag glob",
            "ID token of tag `v-pwn` -> prod service role",
            "**GitLab**, not AWS: only protected tags `v*` (maintainers) can be created; the topology must say so (`protected_ref_globs`) and `rolehop audit` reports what it rests on",
        )
        .control(prod_main_token(&oi))
        .admitted(web(
            &oi,
            "ID token of tag v-pwn -> prod service role",
            &oi.token(&sub("acme/shop", "tag", "v-pwn")),
            "prod",
        ))
        .with_cli(
            "rolehop render (validation), rolehop audit",
            cli_tag_glob_needs_acknowledgement,
        ),
        Threat::new(
            "a_sibling_or_subgroup_project_is_refused",
            "another project of the group, named like the deploying one, gets prod",
            "ID tokens of `acme/shop-evil` (sibling) and `acme/shop/evil` (subgroup project), branch main -> prod service role",
            "AWS: a project path without a glob matches exactly (the `:` after it ends the match)",
        )
        .control(prod_main_token(&oi))
        .refused(web(
            &oi,
            "ID token of acme/shop-evil main -> prod service role",
            &oi.token(&sub("acme/shop-evil", "branch", "main")),
            "prod",
        ))
        .refused(web(
            &oi,
            "ID token of acme/shop/evil main -> prod service role",
            &oi.token(&sub("acme/shop/evil", "branch", "main")),
            "prod",
        )),
        {
            let g = group_glob();
            let t = Threat::new(
                "a_group_glob_admits_every_subgroup_project_and_must_be_acknowledged",
                "whoever may create a project anywhere under `acme/` owns its `main`",
                "ID token of `acme/sub/x` branch main -> prod service role of a topology with `projects = [\"acme/*\"]`",
                "rolehop's validation: a protected environment with a project glob is refused unless acknowledged (`accept_project_globs`); then the audit reports it. AWS admits it: IAM's `*` matches `/`",
            )
            .control(prod_main_token(&g))
            .admitted(web(
                &g,
                "ID token of acme/sub/x main -> prod service role",
                &g.token(&sub("acme/sub/x", "branch", "main")),
                "prod",
            ));
            t.with_cli(
                "rolehop render (validation), rolehop audit",
                cli_group_glob_needs_acknowledgement,
            )
        },
        Threat::new(
            "another_tools_audience_is_refused",
            "a token GitLab minted for another tool is replayed to AWS",
            "ID token of acme/shop main with `aud` `sts.amazonaws.com`, `https://gitlab.example.com` (GitLab's default) or `https://vault.example.com` -> prod service role",
            "AWS: the trust policy requires rolehop's audience (StringEquals on `aud`)",
        )
        .control(prod_main_token(&oi))
        .refused(web(
            &oi,
            "aud sts.amazonaws.com",
            &Token {
                aud: "sts.amazonaws.com".into(),
                ..oi.token(&sub("acme/shop", "branch", "main"))
            },
            "prod",
        ))
        .refused(web(
            &oi,
            "aud https://gitlab.example.com",
            &Token {
                aud: "https://gitlab.example.com".into(),
                ..oi.token(&sub("acme/shop", "branch", "main"))
            },
            "prod",
        ))
        .refused(web(
            &oi,
            "aud https://vault.example.com",
            &Token {
                aud: "https://vault.example.com".into(),
                ..oi.token(&sub("acme/shop", "branch", "main"))
            },
            "prod",
        )),
        Threat::new(
            "another_gitlab_instances_token_is_refused",
            "a GitLab instance the attacker runs mints a token with the right `sub` and `aud`",
            "ID token from `https://gitlab.evil.example` for acme/shop main -> prod service role; also judged with the conditions stripped, so iam-simulate decides the principal match",
            "AWS: the trust policy names the one OIDC provider of the configured issuer (STS also refuses a token with no provider in the account)",
        )
        .control(prod_main_token(&oi))
        .control(Probe::web(
            &oi,
            "conditions stripped: the job's provider -> prod service role",
            &oi.token(&sub("acme/shop", "branch", "main")),
            &without_conditions(&oi.service_role("prod")),
        ))
        .refused(web(
            &oi,
            "token of gitlab.evil.example -> prod service role",
            &evil_issuer(&oi),
            "prod",
        ))
        .refused(Probe::web(
            &oi,
            "conditions stripped: gitlab.evil.example's provider -> prod service role",
            &evil_issuer(&oi),
            &without_conditions(&oi.service_role("prod")),
        )),
        Threat::new(
            "a_customised_sub_claim_fails_closed",
            "a maintainer changes the project's `sub` claim components",
            "ID tokens with `sub` `project_path:acme/shop:ref:main` and `project_path:acme/shop:ref_type:branch` -> prod service role",
            "AWS: rolehop's patterns need the default components; other shapes match nothing (the deploy breaks, it does not open)",
        )
        .control(prod_main_token(&oi))
        .refused(web(
            &oi,
            "sub project_path,ref",
            &oi.token("project_path:acme/shop:ref:main"),
            "prod",
        ))
        .refused(web(
            &oi,
            "sub project_path,ref_type",
            &oi.token("project_path:acme/shop:ref_type:branch"),
            "prod",
        )),
        Threat::new(
            "a_nonprod_or_foreign_id_token_cannot_assume_the_prod_service_role",
            "a feature branch, or any project on the instance, asks for prod",
            "ID tokens of acme/shop branch `feature-x` and of `evil/app` main -> prod service role; prod's own token straight to the prod deployment role",
            "AWS: prod's `sub` patterns name its project and refs; deployment roles trust no OIDC provider",
        )
        .control(prod_main_token(&oi))
        .control(web(
            &oi,
            "ID token of acme/shop feature-x -> nonprod service role",
            &oi.token(&sub("acme/shop", "branch", "feature-x")),
            "nonprod",
        ))
        .refused(web(
            &oi,
            "ID token of acme/shop feature-x -> prod service role",
            &oi.token(&sub("acme/shop", "branch", "feature-x")),
            "prod",
        ))
        .refused(web(
            &oi,
            "ID token of evil/app main -> prod service role",
            &oi.token(&sub("evil/app", "branch", "main")),
            "prod",
        ))
        .refused(web(
            &oi,
            "ID token of evil/app main -> nonprod service role",
            &oi.token(&sub("evil/app", "branch", "main")),
            "nonprod",
        ))
        .refused(Probe::web(
            &oi,
            "ID token of acme/shop main -> prod deployment role directly",
            &oi.token(&sub("acme/shop", "branch", "main")),
            &oi.deploy_role("prod", "prod-eu"),
        )),
        // --- rolehop's own checks: defence in depth, never against the job's author
        Threat::new(
            "the_protected_ref_check_is_spoofable_by_the_job_author",
            "a feature-branch job of the project deploys to a protected environment",
            "a job on a ref GitLab does not protect, holding the prod broker key, sets `variables: {CI_COMMIT_REF_PROTECTED: \"true\"}`",
            "**GitLab**: protected, environment-scoped variables never give the prod key to an unprotected ref. rolehop's check refuses an honest job (exit 4) but reads CI_* variables the author controls; AWS admits the key from any ref",
        )
        .control(legit_ak_first(&ak))
        .admitted(Probe::hop(
            "prod broker key in a feature-x job -> prod service role",
            broker_hop(&ak, "prod", "prod", &feature_branch_ask(&ak)),
        ))
        .with_cli("rolehop assume (own check)", cli_protected_ref_spoof),
        {
            let t = Threat::new(
                "rolehops_job_check_is_defence_in_depth_only",
                "a job of another project, ref or environment uses the prod broker key",
                "job of `acme/other` (or ref `feature-x`, environment `review`) holding the prod key runs `rolehop assume --env prod`, then sets the CI_* variables to prod's",
                "**GitLab** (environment-scoped protected variables). rolehop compares CI_* variables with the topology before STS (exit 4): it catches mistakes, not the job's author",
            )
            .control(legit_ak_first(&ak))
            .admitted(to_prod_service(
                &ak,
                ak.broker_user("prod"),
                "prod broker key in a job of acme/other -> prod service role",
                |a| a.tag("gitlab:project", "acme/other"),
            ));
            t.with_cli("rolehop assume (own check)", cli_job_outside_the_topology)
        },
        Threat::new(
            "an_expired_id_token_is_refused",
            "a token copied from an old job log is replayed",
            "`rolehop assume --base oidc` with a token that expired a minute ago",
            "AWS STS refuses expired tokens (not emulated: moto accepts any token); rolehop refuses it before calling STS (exit 5)",
        )
        .with_cli("rolehop assume (own check)", cli_expired_token),
        Threat::new(
            "yaml_injected_through_topology_strings_is_refused",
            "a topology value adds resources to broker.yaml that `rolehop audit --config` never sees",
            "the audience, an inline policy's path, a GitLab environment name and the topology's file name carrying a line break (`\\n`, U+2028, U+0085) and a YAML resource",
            "rolehop's validation and renderer: such strings are refused or escaped",
        )
        .with_cli("rolehop render", cli_yaml_injection),
        // --- least privilege per project inside an environment (session policies)
        Threat::new(
            "a_projects_deploy_step_stays_within_its_session_policy",
            "a project's deploy step (or a tool inside it) uses the environment's shared deployment role beyond its own project's part",
            "acme/shop's deployment session (session policy `session-shop-web.json`, as rolehop passes it) writes acme/shop-api's table and deletes web assets, both allowed by the role",
            "AWS: the session policy rolehop passes on the deployment hop caps the session (rolehop chooses it job-side, from the ID token's claims in OIDC mode)",
        )
        .control(session_probe("acme/shop session -> s3:PutObject on its web bucket", "s3:PutObject", "arn:aws:s3:::acme-shop-web/index.html", true))
        .refused(session_probe("acme/shop session -> dynamodb:PutItem on acme/shop-api's table", "dynamodb:PutItem", "arn:aws:dynamodb:eu-west-1:222222222222:table/shop-orders", true))
        .refused(session_probe("acme/shop session -> s3:DeleteObject on its web bucket", "s3:DeleteObject", "arn:aws:s3:::acme-shop-web/index.html", true)),
        Threat::new(
            "a_job_author_who_skips_rolehop_gets_the_whole_deployment_role",
            "a job's author assumes the deployment role without the session policy",
            "acme/shop's job calls AssumeRole on the deployment role itself, with no `Policy`, then writes acme/shop-api's table",
            "**nobody in AWS**: no condition key can require a session policy, so it is least privilege for honest jobs, not a defence against the author. Limits: the environment boundary (trust policies, the claim gate); separate environments, or ABAC on `aws:PrincipalTag/gitlab:project` in the role's own policies",
        )
        .admitted(session_probe("acme/shop session without a session policy -> dynamodb:PutItem on acme/shop-api's table", "dynamodb:PutItem", "arn:aws:dynamodb:eu-west-1:222222222222:table/shop-orders", false))
        .control(session_probe("acme/shop session -> s3:PutObject on its web bucket", "s3:PutObject", "arn:aws:s3:::acme-shop-web/index.html", true)),
    ]
    .into_iter()
    .chain(gate::threats())
    .chain(local::threats())
    .collect()
}

/// A principal outside the topology, allowed everything by its own account.
fn outsider(arn: &str) -> world::Who {
    world::Who {
        arn: arn.to_owned(),
        identity: vec![world::allow_everything()],
    }
}

/// The first hop a feature-branch job of acme/shop would ask for.
fn feature_branch_ask(w: &World) -> Ask {
    w.first_ask("prod").tag("gitlab:ref", "feature-x")
}

fn evil_issuer(w: &World) -> Token {
    Token {
        issuer: "https://gitlab.evil.example".into(),
        ..w.token(&sub("acme/shop", "branch", "main"))
    }
}

/// The role with its trust policy's conditions removed: what is left is the principal match,
/// which iam-simulate can judge for web identities too.
fn without_conditions(role: &Role) -> Role {
    let mut trust = role.trust.clone();
    if let Some(statements) = trust["Statement"].as_array_mut() {
        for s in statements {
            if let Some(o) = s.as_object_mut() {
                o.remove("Condition");
            }
        }
    }
    Role {
        arn: role.arn.clone(),
        trust,
    }
}

// ---------------------------------------------------------------------------------------------
// The tests: one per threat.

/// Threat: a non-prod pipeline (or its leaked key) reaches prod. Attack: the nonprod broker user
/// calls AssumeRole on the prod service role. Refused by AWS (the user's identity policy and the
/// role's trust policy); also refused by moto through `rolehop assume`.
#[test]
fn nonprod_broker_key_cannot_assume_the_prod_service_role() {
    verify("nonprod_broker_key_cannot_assume_the_prod_service_role");
}

/// Threat: a non-prod service-role session reaches prod. Attack: AssumeRole on the prod
/// deployment role from a nonprod service session, in both modes. Refused by AWS (the service
/// role's policy and the deployment role's trust); also refused by moto.
#[test]
fn nonprod_service_session_cannot_assume_a_prod_deployment_role() {
    verify("nonprod_service_session_cannot_assume_a_prod_deployment_role");
}

/// Threat: a non-prod deploy script reaches prod. Attack: a nonprod deployment session allowed
/// everything by its own policy assumes the prod deployment or service role. Refused by AWS
/// (trust policies name only the prod service role / broker user).
#[test]
fn nonprod_deployment_session_cannot_assume_a_prod_deployment_role() {
    verify("nonprod_deployment_session_cannot_assume_a_prod_deployment_role");
}

/// Threat: a leaked broker key is used for more than its one hop. Attack: skip the service role,
/// take another environment's, mint a new key. Refused by AWS (identity policy, trust); also by
/// moto with the aws CLI.
#[test]
fn a_leaked_broker_key_reaches_nothing_but_its_own_service_role() {
    verify("a_leaked_broker_key_reaches_nothing_but_its_own_service_role");
}

/// Threat: a leaked prod broker key used from outside any job. Attack: the full chain with a
/// well-shaped made-up SourceIdentity. NOT refused by AWS (asserted admitted, here and in moto):
/// only GitLab's variable protection, rotation and deactivation limit it.
#[test]
fn a_leaked_prod_broker_key_used_outside_any_job_reaches_prod() {
    verify("a_leaked_prod_broker_key_used_outside_any_job_reaches_prod");
}

/// Threat: a project's deploy step uses the shared deployment role beyond its project's part.
/// Attack: acme/shop's narrowed session writes acme/shop-api's table. Refused by AWS (the
/// session policy rolehop passes caps the session), judged by both engines.
#[test]
fn a_projects_deploy_step_stays_within_its_session_policy() {
    verify("a_projects_deploy_step_stays_within_its_session_policy");
}

/// Threat: a job's author skips rolehop and assumes the deployment role without the session
/// policy. NOT refused by AWS (asserted admitted): a session policy is least privilege for
/// honest jobs, not a defence against the author.
#[test]
fn a_job_author_who_skips_rolehop_gets_the_whole_deployment_role() {
    verify("a_job_author_who_skips_rolehop_gets_the_whole_deployment_role");
}

/// Threat: a lookalike principal in another account, or a broker-account administrator, assumes
/// a rolehop role. Refused by AWS: trust policies name exact ARNs and must allow even within
/// the broker account.
#[test]
fn principals_other_than_the_environments_own_are_not_trusted() {
    verify("principals_other_than_the_environments_own_are_not_trusted");
}

/// Threat: a deployment session without attribution. Attack: the deployment hop without a
/// SourceIdentity, both modes. Refused by AWS (deployment trust: `sts:SourceIdentity` not null).
#[test]
fn a_deployment_hop_without_source_identity_is_refused() {
    verify("a_deployment_hop_without_source_identity_is_refused");
}

/// Threat: a session claims a SourceIdentity not shaped like rolehop's. Attack: `alice` on the
/// hop that sets it, both modes. Refused by AWS (trust policies constrain its shape).
#[test]
fn a_source_identity_of_the_wrong_shape_is_refused() {
    verify("a_source_identity_of_the_wrong_shape_is_refused");
}

/// Threat: a session carries tags outside rolehop's set. Attack: `team=admins` on the hop that
/// tags, both modes. Refused by AWS (`aws:TagKeys` limited in the trust policies).
#[test]
fn a_session_tag_key_outside_rolehops_set_is_refused() {
    verify("a_session_tag_key_outside_rolehops_set_is_refused");
}

/// Threat: a non-prod job claims `gitlab:ref=main` to pass for prod. Attack: the claim is
/// accepted into the nonprod session (tags are hints), then used against prod. The claim is
/// admitted; reaching prod with it is refused by AWS (no policy grants on tags).
#[test]
fn claimed_attribution_is_a_hint_that_opens_nothing() {
    verify("claimed_attribution_is_a_hint_that_opens_nothing");
}

/// Threat: the deployment hop without the environment's external id. Refused by AWS (trust
/// policy `sts:ExternalId`).
#[test]
fn a_missing_or_wrong_external_id_is_refused() {
    verify("a_missing_or_wrong_external_id_is_refused");
}

/// Threat: a developer's branch `v-pwn` matches prod's `v*`. Attack: its ID token on the prod
/// service role. Refused by AWS once branches and tags are declared apart (`sub` patterns).
#[test]
fn an_unprotected_branch_named_like_a_protected_tag_pattern_is_refused() {
    verify("an_unprotected_branch_named_like_a_protected_tag_pattern_is_refused");
}

/// Threat: a developer's tag `main`. Attack: its ID token on the prod service role. Refused by
/// AWS once branches and tags are declared apart.
#[test]
fn a_tag_named_like_a_protected_branch_is_refused() {
    verify("a_tag_named_like_a_protected_branch_is_refused");
}

/// Threat: a developer pushes tag `v-pwn`, matching prod's tag glob. AWS admits its token (and
/// the suite asserts so); GitLab's protected tags are what refuse the push.
#[test]
fn a_tag_matching_prods_tag_glob_rests_on_gitlabs_tag_protection() {
    verify("a_tag_matching_prods_tag_glob_rests_on_gitlabs_tag_protection");
}

/// Threat: `acme/shop-evil` or `acme/shop/evil` passes for `acme/shop`. Refused by AWS: exact
/// project paths end at the `:` of the `sub` claim.
#[test]
fn a_sibling_or_subgroup_project_is_refused() {
    verify("a_sibling_or_subgroup_project_is_refused");
}

/// Threat: a group glob admits a project in any subgroup. AWS admits it (asserted); rolehop's
/// validation refuses such a protected environment unless the topology acknowledges the glob.
#[test]
fn a_group_glob_admits_every_subgroup_project_and_must_be_acknowledged() {
    verify("a_group_glob_admits_every_subgroup_project_and_must_be_acknowledged");
}

/// Threat: a token minted for another tool's audience. Refused by AWS (StringEquals on `aud`).
#[test]
fn another_tools_audience_is_refused() {
    verify("another_tools_audience_is_refused");
}

/// Threat: a token from another GitLab instance. Refused by AWS (the Federated principal).
#[test]
fn another_gitlab_instances_token_is_refused() {
    verify("another_gitlab_instances_token_is_refused");
}

/// Threat: a changed `sub` claim shape slips past the patterns. Refused by AWS: it fails closed.
#[test]
fn a_customised_sub_claim_fails_closed() {
    verify("a_customised_sub_claim_fails_closed");
}

/// Threat: a feature branch or a foreign project asks for prod with its ID token. Refused by
/// AWS (`sub` patterns).
#[test]
fn a_nonprod_or_foreign_id_token_cannot_assume_the_prod_service_role() {
    verify("a_nonprod_or_foreign_id_token_cannot_assume_the_prod_service_role");
}

/// Threat: a feature-branch job spoofs `CI_COMMIT_REF_PROTECTED`. rolehop's check refuses the
/// honest job (exit 4) and lets the spoofing one through (asserted); AWS admits the key from any
/// ref (asserted): GitLab's protected variables are the defence.
#[test]
fn the_protected_ref_check_is_spoofable_by_the_job_author() {
    verify("the_protected_ref_check_is_spoofable_by_the_job_author");
}

/// Threat: a job outside the topology's projects/refs/environments holds the prod key. rolehop
/// refuses it before STS (exit 4) unless the job's author rewrites CI_* variables; GitLab's
/// environment-scoped protected variables are the defence.
#[test]
fn rolehops_job_check_is_defence_in_depth_only() {
    verify("rolehops_job_check_is_defence_in_depth_only");
}

/// Threat: an expired ID token replayed. rolehop refuses it before STS (exit 5); STS would too.
#[test]
fn an_expired_id_token_is_refused() {
    verify("an_expired_id_token_is_refused");
}

/// Threat: YAML injected through topology strings into broker.yaml. Refused or escaped by
/// rolehop's validation and renderer.
#[test]
fn yaml_injected_through_topology_strings_is_refused() {
    verify("yaml_injected_through_topology_strings_is_refused");
}

/// The documents the attacks are made against are the ones `rolehop render` writes: every
/// trust and identity policy the builders give appears, unchanged, in the rendered templates.
#[test]
fn the_attacked_documents_are_the_rendered_ones() {
    for w in [access_keys(), oidc(), group_glob()] {
        let rendered = w.rendered_documents();
        for (what, doc) in w.attacked_documents() {
            assert!(
                rendered.contains(&doc),
                "{}: the {what} attacked here is not in the rendered templates: {doc}",
                w.name
            );
        }
    }
}

/// Every attack moto can enforce, against the rendered access-keys example rolled out into one
/// moto server with auth on (one rollout for all: each takes seconds).
#[test]
fn moto_refuses_what_identity_policies_refuse() {
    let d = moto::Deployed::start();
    let mut ran = 0;
    for t in catalogue() {
        if let Some(f) = t.moto {
            eprintln!("moto: {}", t.id);
            f(&d);
            ran += 1;
        }
    }
    assert!(ran >= 4, "only {ran} attacks ran against moto");
}

/// The suite fails if the two engines disagree on any request it makes (each threat's test
/// checks its own; this one checks them all at once, so a filtered run still sees every one).
#[test]
fn the_engines_agree_on_every_request() {
    let mut requests = 0;
    for j in suite::JUDGED.iter() {
        suite::check(j);
        requests += j.threat.probes.iter().map(|p| p.cases.len()).sum::<usize>();
    }
    eprintln!("{requests} requests judged");
    assert!(requests > 60, "{requests}");
}

/// docs/threat-model.md carries the table this suite measures, verbatim.
#[test]
fn the_threat_table_in_the_docs_is_this_suites() {
    for j in suite::JUDGED.iter() {
        suite::check(j);
    }
    let table = suite::table();
    println!("{table}");
    let path = rolehop_testkit::workspace_root().join("docs/threat-model.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let (begin, end) = ("<!-- attack-table:begin -->\n", "<!-- attack-table:end -->");
    let start = doc
        .find(begin)
        .expect("docs/threat-model.md lacks the table markers")
        + begin.len();
    let stop = doc[start..].find(end).unwrap() + start;
    if doc[start..stop] != table {
        if std::env::var_os("ROLEHOP_UPDATE_THREAT_TABLE").is_some() {
            std::fs::write(&path, format!("{}{table}{}", &doc[..start], &doc[stop..])).unwrap();
        } else {
            panic!(
                "docs/threat-model.md's table differs from what the suite measures; rerun with \
                 ROLEHOP_UPDATE_THREAT_TABLE=1 and review the diff. Measured:\n{table}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The attacks against moto.

fn moto_nonprod_key_to_prod(d: &moto::Deployed) {
    let out = d.job(&d.nonprod).output().unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", moto::stderr(&out));
    assert!(moto::stdout(&out).is_empty());
    assert!(
        moto::stderr(&out).contains("service role hop failed"),
        "{}",
        moto::stderr(&out)
    );
}

fn moto_nonprod_service_to_prod_deploy(d: &moto::Deployed) {
    let mut c = d.rolehop(&d.nonprod);
    common::job_env(&mut c);
    let out = c
        .args([
            "assume",
            "--service-role-arn",
            moto::NONPROD_SERVICE,
            "--deploy-role-arn",
            moto::PROD_DEPLOY,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", moto::stderr(&out));
    let e = moto::stderr(&out);
    assert!(e.contains("deployment role hop failed"), "{e}");
}

fn moto_leaked_key_beyond_its_policy(d: &moto::Deployed) {
    let calls: [&[&str]; 3] = [
        &["iam", "create-access-key", "--user-name", "rolehop-prod"],
        &["iam", "list-users"],
        &[
            "sts",
            "assume-role",
            "--role-arn",
            moto::PROD_DEPLOY,
            "--role-session-name",
            "laptop",
        ],
    ];
    for args in calls {
        let e = moto::aws_json(d.aws(&d.prod, None), args).expect_err("must be refused");
        assert!(e.contains("AccessDenied"), "{args:?}: {e}");
    }
    let e = moto::aws_json(
        d.aws(&d.prod, None),
        &[
            "sts",
            "assume-role",
            "--role-arn",
            moto::NONPROD_SERVICE,
            "--role-session-name",
            "laptop",
        ],
    )
    .expect_err("must be refused");
    assert!(e.contains("AccessDenied"), "{e}");
}

fn moto_leaked_prod_key_outside_a_job(d: &moto::Deployed) {
    // The aws CLI from a laptop: no job, no rolehop, no CI_* variable.
    let service = moto::aws_json(
        d.aws(&d.prod, None),
        &[
            "sts",
            "assume-role",
            "--role-arn",
            moto::PROD_SERVICE,
            "--role-session-name",
            "laptop",
            "--source-identity",
            "acme.shop@1",
        ],
    )
    .expect("the leaked key reaches the prod service role: not defended by AWS");
    let c = &service["Credentials"];
    let keys = (
        c["AccessKeyId"].as_str().unwrap().to_owned(),
        c["SecretAccessKey"].as_str().unwrap().to_owned(),
    );
    let deploy = moto::aws_json(
        d.aws(&keys, c["SessionToken"].as_str()),
        &[
            "sts",
            "assume-role",
            "--role-arn",
            moto::PROD_DEPLOY,
            "--role-session-name",
            "laptop",
            "--external-id",
            "acme-shop-prod",
        ],
    )
    .expect("and the prod deployment role");
    assert!(
        deploy["AssumedRoleUser"]["Arn"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:sts::222222222222:assumed-role/rolehop-prod-deploy/"),
        "{deploy}"
    );
}

// ---------------------------------------------------------------------------------------------
// The attacks through the rolehop binary.

/// `rolehop assume --env prod` against a protected prod topology matching `seed_chain`, in a
/// job whose CI_* variables are `vars` on top of a protected `main` pipeline's.
fn assume_in_job(vars: &[(&str, &str)]) -> std::process::Output {
    let moto = rolehop_testkit::Moto::start();
    let seed = rolehop_testkit::seed_chain(&moto, common::BROKER, common::TARGET);
    let dir = tempfile::tempdir().unwrap();
    let topo = common::seeded_topology(dir.path(), false);
    let mut c = common::rolehop(&moto, &seed);
    c.args(["assume", "--env", "prod", "--config"])
        .arg(&topo)
        .env_remove("ROLEHOP_SERVICE_ROLE_ARN")
        .env_remove("ROLEHOP_DEPLOY_ROLE_ARN");
    for (k, v) in vars {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// `main` is not protected in GitLab (or the job runs elsewhere): rolehop refuses the honest
/// job; the job's author sets `CI_COMMIT_REF_PROTECTED: "true"` and rolehop cannot tell.
fn cli_protected_ref_spoof() {
    let honest = assume_in_job(&[("CI_COMMIT_REF_PROTECTED", "false")]);
    assert_eq!(honest.status.code(), Some(4), "{}", common::stderr(&honest));
    assert!(
        common::stderr(&honest).contains("unprotected ref"),
        "{}",
        common::stderr(&honest)
    );
    assert!(honest.stdout.is_empty());
    let spoofed = assume_in_job(&[("CI_COMMIT_REF_PROTECTED", "true")]);
    assert!(
        spoofed.status.success(),
        "the spoofed job got through rolehop's check: {}",
        common::stderr(&spoofed)
    );
}

/// Jobs the topology does not name are refused before STS (exit 4); the same job with its
/// variables rewritten by its author (`variables:` in .gitlab-ci.yml) passes.
fn cli_job_outside_the_topology() {
    let cases: [&[(&str, &str)]; 3] = [
        &[("CI_PROJECT_PATH", "acme/other")],
        &[
            ("CI_COMMIT_BRANCH", "feature-x"),
            ("CI_COMMIT_REF_NAME", "feature-x"),
        ],
        &[("CI_ENVIRONMENT_NAME", "review")],
    ];
    for vars in cases {
        let out = assume_in_job(vars);
        assert_eq!(
            out.status.code(),
            Some(4),
            "{vars:?}: {}",
            common::stderr(&out)
        );
        assert!(
            common::stderr(&out).contains("is not allowed"),
            "{}",
            common::stderr(&out)
        );
        assert!(out.stdout.is_empty());
    }
    // A feature-x job of acme/other in `review` whose author overrides the variables.
    let spoofed = assume_in_job(&[
        ("CI_PROJECT_PATH", "acme/shop"),
        ("CI_COMMIT_BRANCH", "main"),
        ("CI_COMMIT_REF_NAME", "main"),
        ("CI_ENVIRONMENT_NAME", "production"),
        ("CI_COMMIT_REF_PROTECTED", "true"),
    ]);
    assert!(spoofed.status.success(), "{}", common::stderr(&spoofed));
}

fn cli_expired_token() {
    let moto = rolehop_testkit::Moto::start();
    let seed = rolehop_testkit::seed_chain(&moto, common::BROKER, common::TARGET);
    let expired = common::id_token(
        &sub("acme/shop", "branch", "main"),
        "https://aws.example",
        -60,
    );
    let out = common::rolehop(&moto, &seed)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("ROLEHOP_ID_TOKEN", &expired)
        .args(["assume", "--base", "oidc"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", common::stderr(&out));
    assert!(
        common::stderr(&out).contains("ID token expired"),
        "{}",
        common::stderr(&out)
    );
    assert!(out.stdout.is_empty());
}

/// `rolehop render` (`Some(exit code)`) and, when it renders, `rolehop audit --config`'s report
/// of the oidc example with `edit` applied.
fn render_and_audit_oidc(edit: impl Fn(String) -> String) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let example = rolehop_testkit::workspace_root().join("examples/oidc");
    let src = edit(std::fs::read_to_string(example.join("rolehop.toml")).unwrap());
    std::fs::write(dir.path().join("rolehop.toml"), src).unwrap();
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    for f in std::fs::read_dir(example.join("policies")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), dir.path().join("policies").join(f.file_name())).unwrap();
    }
    let run = |args: &[&str]| {
        Command::cargo_bin("rolehop")
            .unwrap()
            .args(args)
            .arg("--config")
            .arg(dir.path().join("rolehop.toml"))
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let render = run(&["render", "--out", "out"]);
    let code = render.status.code();
    if code != Some(0) {
        assert!(
            !dir.path().join("out/broker.yaml").exists(),
            "a refused topology left files"
        );
        return (code, common::stderr(&render), String::new());
    }
    let audit = run(&["audit"]);
    assert!(audit.status.success(), "{}", common::stderr(&audit));
    (code, common::stderr(&render), common::stdout(&audit))
}

/// A protected environment with a group glob is refused until acknowledged; then the audit
/// says whoever can create a project under it reaches the role.
fn cli_group_glob_needs_acknowledgement() {
    let glob = |s: String| s.replacen("projects = [\"acme/shop\"]", "projects = [\"acme/*\"]", 1);
    let (code, err, _) = render_and_audit_oidc(glob);
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("acme/*") && err.contains("[project-glob]"),
        "{err}"
    );
    let (code, err, audit) = render_and_audit_oidc(|s| {
        glob(s).replacen(
            "projects = [\"acme/*\"]",
            "projects = [\"acme/*\"]\naccept_project_globs = [\"acme/*\"]",
            1,
        )
    });
    assert_eq!(code, Some(0), "{err}");
    assert!(
        audit.contains("RH016") && audit.contains("acme/*"),
        "{audit}"
    );
}

/// The example's `v*` tags render only because the topology says GitLab protects them, and
/// the audit names what the prod trust rests on; without the acknowledgement render refuses.
fn cli_tag_glob_needs_acknowledgement() {
    let (code, err, audit) = render_and_audit_oidc(|s| s);
    assert_eq!(code, Some(0), "{err}");
    assert!(audit.contains("RH015") && audit.contains("v*"), "{audit}");
    let (code, err, _) = render_and_audit_oidc(|s| {
        s.lines()
            .filter(|l| !l.starts_with("protected_ref_globs"))
            .collect::<Vec<_>>()
            .join("\n")
    });
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("[protected-ref-glob]"), "{err}");
}

/// Payloads that would end a YAML scalar or comment and add a resource.
const INJECTIONS: [&str; 3] = [
    "\nEvil:\n  Type: AWS::IAM::User\n# ",
    "\u{2028}Evil: {Type: AWS::IAM::User}",
    "\u{85}Evil: {Type: AWS::IAM::User}",
];

/// The top-level keys of a rendered file and, for a template, its resources' names, read by
/// PyYAML (CloudFormation's `!Sub`-style tags read as nothing).
fn yaml_keys(path: &std::path::Path) -> Value {
    let script = "import sys, json, yaml\n\
        class L(yaml.SafeLoader): pass\n\
        L.add_multi_constructor('!', lambda l, s, n: None)\n\
        d = yaml.load(open(sys.argv[1], encoding='utf-8'), Loader=L)\n\
        r = d.get('Resources') or {}\n\
        print(json.dumps([sorted(d.keys()), sorted(r.keys())]))";
    let out = std::process::Command::new(rolehop_testkit::venv_tool("python"))
        .args(["-c", script])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        path.display(),
        common::stderr(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Renders `src` (policy files copied next to it) into `dir/out`; the exit code.
fn render_into(dir: &std::path::Path, name: &str, src: &str, policy_name: &str) -> Option<i32> {
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    let policy = rolehop_testkit::workspace_root().join("examples/oidc/policies/deploy-app.json");
    std::fs::copy(policy, dir.join("policies").join(policy_name)).unwrap();
    std::fs::write(dir.join(name), src).unwrap();
    let out = Command::cargo_bin("rolehop")
        .unwrap()
        .args(["render", "--config"])
        .arg(dir.join(name))
        .arg("--out")
        .arg(dir.join("out"))
        .output()
        .unwrap();
    if !out.status.success() {
        assert!(
            !dir.join("out/broker.yaml").exists(),
            "a refused topology left files"
        );
    }
    out.status.code()
}

/// Every string that reaches a template (the audience, an inline policy's path, a GitLab
/// environment name, the topology's own file name) carries a payload: render either refuses
/// the topology or writes files that parse to exactly the clean topology's resources and keys.
fn cli_yaml_injection() {
    let example = std::fs::read_to_string(
        rolehop_testkit::workspace_root().join("examples/oidc/rolehop.toml"),
    )
    .unwrap();
    let clean = tempfile::tempdir().unwrap();
    assert_eq!(
        render_into(clean.path(), "rolehop.toml", &example, "deploy-app.json"),
        Some(0)
    );
    let files = [
        "broker.yaml",
        "target-prod.yaml",
        "target-nonprod.yaml",
        "gitlab-ci.yml",
    ];
    let expected: Vec<Value> = files
        .iter()
        .map(|f| yaml_keys(&clean.path().join("out").join(f)))
        .collect();
    let toml_str = |s: &str| serde_json::to_string(s).unwrap();
    let (mut refused, mut escaped) = (0, 0);
    for payload in INJECTIONS {
        let variants: Vec<(String, String, String)> = vec![
            (
                "audience".into(),
                example.replace(
                    "audience = \"https://aws.rolehop.example.com\"",
                    &format!(
                        "audience = {}",
                        toml_str(&format!("https://aws.rolehop.example.com{payload}"))
                    ),
                ),
                "deploy-app.json".into(),
            ),
            (
                "inline policy path".into(),
                example.replace(
                    "\"policies/deploy-app.json\"",
                    &toml_str(&format!("policies/deploy{payload}.json")),
                ),
                format!("deploy{payload}.json"),
            ),
            (
                "GitLab environment".into(),
                example.replace(
                    "environments = [\"production\"]",
                    &format!(
                        "environments = [{}]",
                        toml_str(&format!("production{payload}"))
                    ),
                ),
                "deploy-app.json".into(),
            ),
        ];
        for (field, src, policy_name) in variants {
            for name in ["rolehop.toml".to_owned(), format!("rolehop{payload}.toml")] {
                let dir = tempfile::tempdir().unwrap();
                match render_into(dir.path(), &name, &src, &policy_name) {
                    Some(0) => {
                        escaped += 1;
                        for (f, want) in files.iter().zip(&expected) {
                            assert_eq!(
                                &yaml_keys(&dir.path().join("out").join(f)),
                                want,
                                "{field} {payload:?} in {name:?}: {f} gained or lost keys"
                            );
                        }
                    }
                    Some(3) => refused += 1,
                    other => panic!("{field} {payload:?}: render exited {other:?}"),
                }
            }
        }
    }
    eprintln!(
        "yaml injection: {refused} topologies refused, {escaped} rendered with the payload escaped"
    );
}

/// Threat: a compromised gate, or anything else in the broker account, reaches another
/// environment. Refused by AWS: one gate identity per environment (examples/oidc-gate).
#[test]
fn only_the_environments_gate_role_can_assume_its_service_role() {
    verify("only_the_environments_gate_role_can_assume_its_service_role");
}

/// Threat: a gate with loosened rules hands prod to a job the topology does not admit.
/// Refused by AWS: the service role's trust requires the attested tags and a SourceIdentity.
#[test]
fn a_gate_request_without_the_attested_tags_is_refused() {
    verify("a_gate_request_without_the_attested_tags_is_refused");
}

/// Threat: an unprotected branch, a merge request or a fork posts its token to the prod gate.
/// Refused by rolehop's gate on signed claims, with the rendered config.
#[test]
fn an_unprotected_branch_is_refused_by_the_gate_whatever_its_sub() {
    verify("an_unprotected_branch_is_refused_by_the_gate_whatever_its_sub");
}

// ---------------------------------------------------------------------------------------------
// Credentials kept on the runner (attacks/local.rs): the refresh endpoint and the cache.

#[test]
fn the_refresh_endpoint_refuses_a_request_without_the_token() {
    verify("the_refresh_endpoint_refuses_a_request_without_the_token");
}

#[test]
fn the_refresh_endpoint_refuses_a_wrong_token() {
    verify("the_refresh_endpoint_refuses_a_wrong_token");
}

#[test]
fn the_refresh_endpoint_serves_only_get() {
    verify("the_refresh_endpoint_serves_only_get");
}

#[test]
fn the_refresh_endpoint_is_loopback_only() {
    verify("the_refresh_endpoint_is_loopback_only");
}

#[test]
fn the_refresh_endpoint_refuses_a_foreign_host_header() {
    verify("the_refresh_endpoint_refuses_a_foreign_host_header");
}

#[test]
fn the_refresh_endpoint_is_gone_after_exec_exits() {
    verify("the_refresh_endpoint_is_gone_after_exec_exits");
}

#[test]
fn another_user_cannot_read_the_credential_cache() {
    verify("another_user_cannot_read_the_credential_cache");
}

#[test]
fn another_job_never_gets_this_jobs_cached_credentials() {
    verify("another_job_never_gets_this_jobs_cached_credentials");
}

#[test]
fn a_planted_cache_entry_is_never_served() {
    verify("a_planted_cache_entry_is_never_served");
}

#[test]
fn a_symlink_in_the_credential_cache_is_not_followed() {
    verify("a_symlink_in_the_credential_cache_is_not_followed");
}

#[test]
fn a_cache_directory_made_by_another_user_is_not_used() {
    verify("a_cache_directory_made_by_another_user_is_not_used");
}
