//! The claim gate in the audit (gate mode, `--config` only: an account export cannot see a
//! function's config): each gate's claim set as a credential holder with a blast radius, and
//! findings for rules that admit too much.
//!
//! - RH093 (high): a protected environment whose gate admits unprotected refs
//!   (`ref_protected = false` written in `[environments.<name>.gate]`).
//! - RH094 (high in production, else medium): project paths with a glob and no `project_ids`:
//!   whoever can create a project whose path matches reaches the environment.
//! - RH095 (low): projects named by path only: a renamed or transferred project's old path
//!   can be taken by a new project, which the gate would then admit.

use rolehop_core::topology::{Environment, GateRules, is_glob};

use crate::findings::{Finding, Severity, f};
use crate::model::Estate;

fn list(v: &[String]) -> String {
    v.join(", ")
}

/// The claim set a gate admits, in words: the graph node's id, `gate:<environment>: ...`
/// (e.g. `gate:prod: protected refs (branches main; tags v*) of acme/shop (project id 42)
/// with environment production (protected), tier production, not merge_request_event`).
pub fn claim_set(env: &Environment, r: &GateRules) -> String {
    let a = &env.gitlab;
    let mut refs = Vec::new();
    if !a.branches.is_empty() {
        refs.push(format!("branches {}", list(&a.branches)));
    }
    if !a.tags.is_empty() {
        refs.push(format!("tags {}", list(&a.tags)));
    }
    let protection = if r.ref_protected {
        "protected refs"
    } else {
        "any refs"
    };
    let mut s = format!(
        "gate:{}: {protection} ({}) of {}",
        env.name,
        refs.join("; "),
        list(&a.projects)
    );
    if !r.project_ids.is_empty() {
        s.push_str(&format!(" (project id {})", list(&r.project_ids)));
    }
    if !r.namespace_ids.is_empty() {
        s.push_str(&format!(" in namespace id {}", list(&r.namespace_ids)));
    }
    if !r.namespace_paths.is_empty() {
        s.push_str(&format!(" in namespace {}", list(&r.namespace_paths)));
    }
    s.push_str(&format!(" with environment {}", list(&a.environments)));
    if r.environment_protected {
        s.push_str(" (protected)");
    }
    if !r.deployment_tiers.is_empty() {
        s.push_str(&format!(", tier {}", list(&r.deployment_tiers)));
    }
    if !r.pipeline_sources.allow.is_empty() {
        s.push_str(&format!(", from {}", list(&r.pipeline_sources.allow)));
    }
    if !r.pipeline_sources.deny.is_empty() {
        s.push_str(&format!(", not {}", list(&r.pipeline_sources.deny)));
    }
    if !r.runner_environments.is_empty() {
        s.push_str(&format!(", on {} runners", list(&r.runner_environments)));
    }
    if !r.user_access_levels.is_empty() {
        s.push_str(&format!(", by {}", list(&r.user_access_levels)));
    }
    s
}

/// Adds RH093-RH095 for each claim gate of the estate whose rules admit more jobs than they should
/// (see the module's list).
pub fn findings(estate: &Estate, out: &mut Vec<Finding>) {
    for g in &estate.gates {
        let env = &g.env.name;
        let r = &g.rules;
        if g.protected && !r.ref_protected {
            out.push(f(
                "RH093",
                Severity::High,
                &g.gate_role_arn,
                format!("the claim gate of protected environment `{env}` admits unprotected refs"),
                format!(
                    "`ref_protected = false` in `[environments.{env}.gate]`: any branch or tag named like {} reaches `{env}`, pushed by anyone with Developer access; remove it (protected refs only is the default)",
                    list(&g.access.branches.iter().chain(&g.access.tags).cloned().collect::<Vec<_>>())
                ),
            ));
        }
        let globs: Vec<&String> = g.access.projects.iter().filter(|p| is_glob(p)).collect();
        if r.project_ids.is_empty() && !globs.is_empty() {
            out.push(f(
                "RH094",
                if g.env.prod {
                    Severity::High
                } else {
                    Severity::Medium
                },
                &g.gate_role_arn,
                format!(
                    "the claim gate of `{env}` admits every project matching {}",
                    globs
                        .iter()
                        .map(|p| format!("`{p}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                format!(
                    "no `project_ids` in `[environments.{env}.gate]`: whoever can create a project whose path matches (in that group or any subgroup: `*` matches `/`) reaches `{env}`{}; pin the projects by id",
                    if r.namespace_ids.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " (limited to namespace id {})",
                            list(&r.namespace_ids)
                        )
                    }
                ),
            ));
        } else if r.project_ids.is_empty() {
            out.push(f(
                "RH095",
                Severity::Low,
                &g.gate_role_arn,
                format!("the claim gate of `{env}` identifies projects by path only"),
                format!(
                    "{}: a path is freed when its project is renamed or transferred, and a new project there would pass; add `project_ids` to `[environments.{env}.gate]` (the id survives renames, a fork has its own)",
                    list(&g.access.projects)
                ),
            ));
        }
    }
}
