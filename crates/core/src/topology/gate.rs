//! Gate mode (`auth.mode = "oidc-gate"`): the `[auth]` settings of the claim gate and each
//! environment's `[environments.<name>.gate]` claim rules, checked with their spans.
//!
//! The rules complete `[environments.<name>.gitlab]` (projects, branches, tags, GitLab
//! environments), which in gate mode are checked by the gate on signed claims instead of by
//! IAM on `sub`. Values are checked against GitLab's documented claim values, so a typo such as
//! `merge_request` in a deny list is an error instead of a rule that never matches.

use toml::Spanned;

use super::build::*;
use super::raw::*;
use super::*;
use crate::validate;

/// GitLab's `pipeline_source` values (`CI_PIPELINE_SOURCE`).
pub const PIPELINE_SOURCES: [&str; 15] = [
    "api",
    "chat",
    "external",
    "external_pull_request_event",
    "merge_request_event",
    "ondemand_dast_scan",
    "ondemand_dast_validation",
    "parent_pipeline",
    "pipeline",
    "push",
    "schedule",
    "security_orchestration_policy",
    "trigger",
    "web",
    "webide",
];

/// GitLab's `deployment_tier` values.
pub const DEPLOYMENT_TIERS: [&str; 5] =
    ["production", "staging", "testing", "development", "other"];

/// GitLab's `runner_environment` values.
pub const RUNNER_ENVIRONMENTS: [&str; 2] = ["gitlab-hosted", "self-hosted"];

/// GitLab's `user_access_level` values.
pub const USER_ACCESS_LEVELS: [&str; 6] = [
    "guest",
    "planner",
    "reporter",
    "developer",
    "maintainer",
    "owner",
];

/// The session tag keys the gate sets from verified claims (all transitive): the chain's five
/// (`chain::SESSION_TAG_KEYS`) first, then what only signed claims can attest. Gate-mode trust
/// policies admit no other key; `rolehop_gate::AttestedSession` produces exactly these.
pub const GATE_SESSION_TAG_KEYS: [&str; 13] = [
    "gitlab:project",
    "gitlab:ref",
    "gitlab:pipeline",
    "gitlab:job",
    "gitlab:environment",
    "gitlab:project_id",
    "gitlab:namespace_id",
    "gitlab:ref_type",
    "gitlab:ref_protected",
    "gitlab:environment_protected",
    "gitlab:deployment_tier",
    "gitlab:pipeline_source",
    "gitlab:runner_environment",
];

/// `pipeline_source` constraints: with `allow` the source must be listed; a source in `deny`
/// is always refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipelineSourceRules {
    /// When not empty, the only `pipeline_source` values admitted.
    pub allow: Vec<String>,
    /// `pipeline_source` values always refused (e.g. `merge_request_event`).
    pub deny: Vec<String>,
}

/// An environment's claim rules beyond its `gitlab` access, defaults filled in. The whole rule
/// set the gate enforces is these plus `GitlabAccess::{projects, branches, tags,
/// environments}` (as `project_paths`, `branches`, `tags`, `environments`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateRules {
    /// `project_id`s: immutable, unlike paths (a renamed project's old path can be taken).
    pub project_ids: Vec<String>,
    /// `namespace_id`s: the group that owns the project, by its immutable id.
    pub namespace_ids: Vec<String>,
    /// `namespace_path` globs.
    pub namespace_paths: Vec<String>,
    /// Which pipeline sources may reach the environment.
    pub pipeline_sources: PipelineSourceRules,
    /// Require `ref_protected = "true"`; default: the environment's `protected`.
    pub ref_protected: bool,
    /// Whether `ref_protected` was written in the topology (an explicit `false` on a protected
    /// environment is the author's choice, which the audit reports).
    pub ref_protected_explicit: bool,
    /// Require `environment_protected = "true"`: GitLab then limits who may deploy to it.
    pub environment_protected: bool,
    /// Admitted `deployment_tier` values (empty: any).
    pub deployment_tiers: Vec<String>,
    /// Admitted `runner_environment` values (`gitlab-hosted`, `self-hosted`; empty: any).
    pub runner_environments: Vec<String>,
    /// Admitted `user_access_level` values of the user who ran the pipeline (empty: any).
    pub user_access_levels: Vec<String>,
}

impl GateRules {
    /// The defaults of an environment without `[environments.<name>.gate]`.
    pub fn defaults(protected: bool) -> GateRules {
        GateRules {
            project_ids: vec![],
            namespace_ids: vec![],
            namespace_paths: vec![],
            pipeline_sources: PipelineSourceRules::default(),
            ref_protected: protected,
            ref_protected_explicit: false,
            environment_protected: false,
            deployment_tiers: vec![],
            runner_environments: vec![],
            user_access_levels: vec![],
        }
    }
}

/// The `[auth]` of gate mode.
pub(super) fn build_gate_auth(c: &mut Checker<'_>, auth_span: Range, ra: RawAuth) -> Auth {
    let issuer = match ra.issuer {
        Some(i) => {
            c.check(&i, "oidc-issuer", validate::gate_issuer_url);
            i.into_inner()
        }
        None => {
            c.report(auth_span.clone(), "oidc-issuer", "`mode = \"oidc-gate\"` needs `issuer` (the GitLab URL, e.g. `https://gitlab.com`): the exact `iss` of the ID tokens the gate verifies");
            String::new()
        }
    };
    let audience = match ra.audience {
        Some(a) => {
            c.check(&a, "oidc-audience", |s| {
                if s.trim().is_empty() {
                    return Err("the audience must not be empty".into());
                }
                if s.contains('$') {
                    return Err(format!("audience `{s}` contains `$`: GitLab expands variables in `id_tokens:aud`, so the ID token's `aud` would not be the audience the gate checks"));
                }
                validate::no_dynamic_reference(s)
            });
            a.into_inner()
        }
        None => {
            // Defaulting to the issuer (as `oidc` does) would let a token meant for another
            // relying party on the same default be spent at the gate.
            c.report(auth_span, "oidc-audience", "`mode = \"oidc-gate\"` needs `audience`: the `aud` the jobs' `id_tokens:` request for the gate (e.g. the gate's URL), used for nothing else");
            String::new()
        }
    };
    let gate_url = ra.gate_url.map(|u| {
        c.check(&u, "gate-url", |s| {
            let http = s.starts_with("https://") || s.starts_with("http://");
            if !http || s.len() <= "https://".len() || !s.chars().all(|ch| ch.is_ascii_graphic())
            {
                Err(format!("`{s}` is not an http(s) URL"))
            } else if let Some(host) = crate::endpoint::cleartext_off_machine(s) {
                Err(format!("`{s}` is plain http to `{host}`: jobs would send their ID token in clear text; use https (plain http only on loopback)"))
            } else {
                validate::no_dynamic_reference(s)
            }
        });
        u.into_inner()
    });
    Auth::OidcGate {
        issuer,
        audience,
        gate_url,
    }
}

type Range = std::ops::Range<usize>;

/// `[environments.<name>.gate]`: refused outside gate mode; in gate mode the rules with their
/// defaults (also when the table is absent).
pub(super) fn build_gate_rules(
    c: &mut Checker<'_>,
    env: &str,
    protected: bool,
    gate_mode: bool,
    raw: Option<S<RawGateRules>>,
) -> Option<GateRules> {
    if !gate_mode {
        if let Some(r) = raw {
            c.report(r.span(), "gate-mode", format!("`[environments.{env}.gate]` holds claim rules for rolehop's claim gate: it applies only to `[auth] mode = \"oidc-gate\"`"));
        }
        return None;
    }
    let Some(raw) = raw else {
        return Some(GateRules::defaults(protected));
    };
    let r = raw.into_inner();
    let ids = |c: &mut Checker<'_>, v: Vec<S<String>>, what: &str| -> Vec<String> {
        v.into_iter()
            .map(|id| {
                c.check(&id, "gate-id", |s| {
                    if !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) {
                        Ok(())
                    } else {
                        Err(format!("`{s}` is not a GitLab {what} id (digits only): ids are compared as GitLab signs them, as decimal strings"))
                    }
                });
                id.into_inner()
            })
            .collect()
    };
    let project_ids = ids(c, r.project_ids, "project");
    let namespace_ids = ids(c, r.namespace_ids, "namespace");
    let namespace_paths = r
        .namespace_paths
        .into_iter()
        .map(|p| {
            c.check(&p, "gate-namespace", |s| {
                let top = s.split('/').next().unwrap_or("");
                if s.is_empty()
                    || !s.chars().all(super::checks::is_glob_char)
                    || s.split('/').any(str::is_empty)
                {
                    Err(format!("`{s}` is not a GitLab namespace path (`group`, `group/subgroup`; `*` globs only below the top-level group)"))
                } else if top.contains('*') {
                    Err(format!("`{s}` has a wildcard in the top-level group, so it admits namespaces anyone on the GitLab instance may create; name the top-level group exactly"))
                } else {
                    Ok(())
                }
            });
            p.into_inner()
        })
        .collect();
    let values = |c: &mut Checker<'_>,
                  v: Vec<S<String>>,
                  rule: &'static str,
                  claim: &str,
                  known: &[&str]|
     -> Vec<String> {
        v.into_iter()
            .map(|x| {
                c.check(&x, rule, |s| {
                    if known.contains(&s) {
                        Ok(())
                    } else {
                        Err(format!(
                            "`{s}` is not a GitLab `{claim}` value ({})",
                            known.join(", ")
                        ))
                    }
                });
                x.into_inner()
            })
            .collect()
    };
    let pipeline_sources = match r.pipeline_sources {
        None => PipelineSourceRules::default(),
        Some(p) => {
            let span = p.span();
            let p = p.into_inner();
            let allow = values(
                c,
                p.allow,
                "gate-pipeline-source",
                "pipeline_source",
                &PIPELINE_SOURCES,
            );
            let deny = values(
                c,
                p.deny,
                "gate-pipeline-source",
                "pipeline_source",
                &PIPELINE_SOURCES,
            );
            if let Some(both) = allow.iter().find(|a| deny.contains(a)) {
                c.report(
                    span,
                    "gate-pipeline-source",
                    format!("`{both}` is both allowed and denied: say which"),
                );
            }
            PipelineSourceRules { allow, deny }
        }
    };
    let deployment_tiers = values(
        c,
        r.deployment_tiers,
        "gate-deployment-tier",
        "deployment_tier",
        &DEPLOYMENT_TIERS,
    );
    let runner_environments = values(
        c,
        r.runner_environments,
        "gate-runner-environment",
        "runner_environment",
        &RUNNER_ENVIRONMENTS,
    );
    let user_access_levels = values(
        c,
        r.user_access_levels,
        "gate-user-access-level",
        "user_access_level",
        &USER_ACCESS_LEVELS,
    );
    Some(GateRules {
        project_ids,
        namespace_ids,
        namespace_paths,
        pipeline_sources,
        ref_protected: r.ref_protected.as_ref().map_or(protected, |b| *b.get_ref()),
        ref_protected_explicit: r.ref_protected.is_some(),
        environment_protected: r
            .environment_protected
            .map(Spanned::into_inner)
            .unwrap_or(false),
        deployment_tiers,
        runner_environments,
        user_access_levels,
    })
}
