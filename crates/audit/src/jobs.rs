//! Blast radius per concrete job identity: one GitLab ID token can match the `sub` patterns of
//! several environments (`acme/shop` on `main` matches prod's `main` and dev's `*`), so the
//! per-pattern blast radius understates what one job reaches. Each project and ref the
//! patterns name is taken as a job (a glob stands for every job it matches) and given the
//! union of what every pattern covering it reaches.

use std::collections::{BTreeMap, BTreeSet};

use rolehop_policy::pattern::Glob;
use serde::Serialize;

use crate::graph::{Graph, NodeKind};

/// More candidates than this (projects x refs) would only happen with exports of thousands of
/// OIDC trusts; the per-pattern blast radius still covers them.
const MAX_CANDIDATES: usize = 5000;

/// What a token of one project on one ref reaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobReach {
    /// The OIDC provider host (the GitLab instance).
    pub provider: String,
    /// A project path, or a glob standing for every project it matches.
    pub project: String,
    /// `branch` or `tag`.
    pub ref_type: String,
    /// A ref name, or a glob standing for every ref it matches.
    pub ref_name: String,
    /// Environments of the roles reached, sorted.
    pub environments: Vec<String>,
    /// Role ARNs reached, sorted.
    pub reaches: Vec<String>,
    /// A role reached is admin-equivalent.
    pub admin: bool,
}

impl JobReach {
    /// "a token of acme/shop on branch main reaches prod and dev (4 roles)".
    pub fn sentence(&self) -> String {
        let project = if self.project.contains('*') {
            format!("any project matching {}", self.project)
        } else {
            self.project.clone()
        };
        let reff = if self.ref_name == "*" {
            format!("any {}", self.ref_type)
        } else if self.ref_name.contains('*') {
            format!("any {} matching {}", self.ref_type, self.ref_name)
        } else {
            format!("{} {}", self.ref_type, self.ref_name)
        };
        let what = if self.environments.is_empty() {
            format!("{} role(s)", self.reaches.len())
        } else {
            format!(
                "{} ({} role(s))",
                join_and(&self.environments),
                self.reaches.len()
            )
        };
        format!(
            "a token of {project} on {reff} reaches {what}{}",
            if self.admin { " [ADMIN]" } else { "" }
        )
    }
}

fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// `project_path:{p}:ref_type:{t}:ref:{r}` split, if the pattern has GitLab's default form.
fn parts(sub: &str) -> Option<(&str, &str, &str)> {
    let rest = sub.strip_prefix("project_path:")?;
    let (project, rest) = rest.split_once(":ref_type:")?;
    let (ref_type, name) = rest.split_once(":ref:")?;
    Some((project, ref_type, name))
}

/// Every job identity the OIDC subject patterns name, with what it reaches.
pub fn job_reach(g: &Graph) -> Vec<JobReach> {
    // provider -> [(subject pattern, node)]
    let mut by_provider: BTreeMap<&str, Vec<(&str, usize)>> = BTreeMap::new();
    for (i, n) in g.nodes.iter().enumerate() {
        if n.kind != NodeKind::OidcSubject {
            continue;
        }
        let Some(rest) = n.id.strip_prefix("oidc:") else {
            continue;
        };
        let (provider, sub) = match rest.find(":project_path:") {
            Some(at) => (&rest[..at], &rest[at + 1..]),
            None => match rest.rsplit_once(':') {
                Some((p, s)) => (p, s),
                None => continue,
            },
        };
        by_provider.entry(provider).or_default().push((sub, i));
    }
    let mut out = Vec::new();
    for (provider, subjects) in by_provider {
        let mut projects = BTreeSet::new();
        let mut refs = BTreeSet::new();
        for (sub, _) in &subjects {
            if let Some((p, t, r)) = parts(sub)
                && matches!(t, "branch" | "tag")
            {
                projects.insert(p);
                refs.insert((t, r));
            }
        }
        if projects.len() * refs.len() > MAX_CANDIDATES {
            continue;
        }
        let globs: Vec<(Glob, usize)> = subjects
            .iter()
            .map(|(s, i)| (Glob::new(s, false), *i))
            .collect();
        for p in &projects {
            for (t, r) in &refs {
                let candidate = Glob::new(&format!("project_path:{p}:ref_type:{t}:ref:{r}"), false);
                let mut roles = BTreeSet::new();
                let mut envs = BTreeSet::new();
                let mut admin = false;
                for (glob, i) in &globs {
                    if !glob.covers(&candidate) {
                        continue;
                    }
                    admin |= g.nodes[*i].admin;
                    for (to, _) in g.reach(*i) {
                        let n = &g.nodes[to];
                        if n.kind == NodeKind::Role {
                            roles.insert(n.id.clone());
                            admin |= n.admin;
                            if let Some(e) = &n.env {
                                envs.insert(e.name.clone());
                            }
                        }
                    }
                }
                if roles.is_empty() {
                    continue;
                }
                out.push(JobReach {
                    provider: provider.to_owned(),
                    project: (*p).to_owned(),
                    ref_type: (*t).to_owned(),
                    ref_name: (*r).to_owned(),
                    environments: envs.into_iter().collect(),
                    reaches: roles.into_iter().collect(),
                    admin,
                });
            }
        }
    }
    out
}
