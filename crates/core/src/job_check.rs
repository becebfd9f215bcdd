//! Whether the GitLab job rolehop runs in is one the topology lets use an environment: its
//! project, its ref (and whether that ref is a branch or a tag) and its GitLab environment,
//! matched with IAM's `StringLike` semantics (`*` matches any run of characters, `/`
//! included), the semantics the OIDC trust policy applies to the ID token's `sub`.
//!
//! Defence in depth, not a boundary: every value comes from `CI_*` variables, which whoever
//! writes the job can set. It catches setups where GitLab hands the broker's credentials to
//! a job the topology does not name (group-level or `*`-scoped variables, a sibling
//! project, a tag named like a branch) before any request reaches AWS, and says why. The
//! defences against the job's author are GitLab's protected, environment-scoped variables
//! and protected environments (access keys) and the trust policy (OIDC).

use std::fmt;

use rolehop_policy::pattern::Glob;

use crate::gitlab_ctx::JobContext;
use crate::span::printable;
use crate::topology::{Environment, GitlabAccess, RefType};

/// IAM `StringLike`: `*` any run of characters (`/` included), `?` one; case-sensitive.
pub fn string_like(pattern: &str, value: &str) -> bool {
    Glob::new(pattern, false).matches(value)
}

/// One way the job is not what the topology allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// `CI_PROJECT_PATH` is missing or matches none of `allowed`.
    Project {
        /// The job's project path, if set.
        found: Option<String>,
        /// The environment's `projects`.
        allowed: Vec<String>,
    },
    /// The ref is a branch or tag none of `allowed` (of that type) matches.
    Ref {
        /// Branch or tag, as the job's variables say.
        ref_type: RefType,
        /// The branch or tag name.
        name: String,
        /// The environment's `branches` or `tags`, whichever `ref_type` is checked against.
        allowed: Vec<String>,
    },
    /// Whether the ref is a branch or a tag cannot be told from the job's variables.
    UnknownRef {
        /// Which variables were missing or contradicted each other.
        reason: String,
    },
    /// `CI_ENVIRONMENT_NAME` is missing or matches none of `allowed`.
    Environment {
        /// The job's GitLab environment, if it has one.
        found: Option<String>,
        /// The environment's `environments`.
        allowed: Vec<String>,
    },
}

impl Mismatch {
    /// `project`, `ref` or `environment`: which part of the job did not match.
    pub fn part(&self) -> &'static str {
        match self {
            Mismatch::Project { .. } => "project",
            Mismatch::Ref { .. } | Mismatch::UnknownRef { .. } => "ref",
            Mismatch::Environment { .. } => "environment",
        }
    }
}

/// `a`, `b` (globs marked), or `none`.
fn list(allowed: &[String]) -> String {
    if allowed.is_empty() {
        return "none".to_owned();
    }
    let items: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
    let mut s = items.join(", ");
    if allowed.iter().any(|a| a.contains(['*', '?'])) {
        s.push_str(" (globs: `*` matches any characters, `/` included)");
    }
    s
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Project {
                found: None,
                allowed,
            } => write!(
                f,
                "project: CI_PROJECT_PATH is not set; allowed projects: {}",
                list(allowed)
            ),
            Mismatch::Project {
                found: Some(p),
                allowed,
            } => write!(
                f,
                "project: `{p}` (CI_PROJECT_PATH) is not allowed; allowed projects: {}",
                list(allowed)
            ),
            Mismatch::Ref {
                ref_type,
                name,
                allowed,
            } => {
                let (var, kind) = match ref_type {
                    RefType::Branch => ("CI_COMMIT_BRANCH", "branches"),
                    RefType::Tag => ("CI_COMMIT_TAG", "tags"),
                };
                write!(
                    f,
                    "ref: {} `{name}` ({var}) is not allowed; allowed {kind}: {}",
                    ref_type.as_str(),
                    list(allowed)
                )
            }
            Mismatch::UnknownRef { reason } => write!(f, "ref: {reason}"),
            Mismatch::Environment {
                found: None,
                allowed,
            } => write!(
                f,
                "environment: the job has no GitLab environment (CI_ENVIRONMENT_NAME is not set: give the job `environment: name:`); allowed environments: {}",
                list(allowed)
            ),
            Mismatch::Environment {
                found: Some(e),
                allowed,
            } => write!(
                f,
                "environment: `{e}` (CI_ENVIRONMENT_NAME) is not allowed; allowed environments: {}",
                list(allowed)
            ),
        }
    }
}

/// rolehop refuses a job the topology does not allow to use the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRefusal {
    /// The topology environment the job asked for.
    pub environment: String,
    /// Every part that did not match, in the order project, ref, environment.
    pub mismatches: Vec<Mismatch>,
}

impl fmt::Display for JobRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The mismatches quote CI_* values, which the job's author chooses.
        let parts: Vec<&str> = self.mismatches.iter().map(Mismatch::part).collect();
        write!(
            f,
            "refusing to hand out credentials for environment `{}`: this job's {} not what the topology allows",
            self.environment,
            match parts.as_slice() {
                [one] => format!("{one} is"),
                many => format!("{} are", many.join(", ")),
            }
        )?;
        for m in &self.mismatches {
            write!(f, "\n  - {}", printable(&m.to_string()))?;
        }
        write!(
            f,
            "\nNo AWS request was made. This is defence in depth: it reads CI_* variables, which whoever writes the job controls; \
             what keeps other jobs from the credentials is GitLab's protected, environment-scoped variables and protected \
             environments (access keys) and the trust policy (OIDC). Run the job from a project, ref and environment the \
             topology's `[environments.{}.gitlab]` names, or add them there",
            self.environment
        )
    }
}

impl std::error::Error for JobRefusal {}

impl crate::exit::HasExit for JobRefusal {
    /// rolehop itself refuses, on purpose, before any AWS request.
    fn exit(&self) -> crate::exit::Exit {
        crate::exit::Exit::Refused
    }
}

/// The ref patterns of `ref_type` that `access` admits: a branch is matched only against
/// `branches`, a tag only against `tags`, as the trust policy's `ref_type` does.
fn allowed_refs(access: &GitlabAccess, ref_type: RefType) -> Vec<String> {
    match ref_type {
        RefType::Branch => access.branches.clone(),
        RefType::Tag => access.tags.clone(),
    }
}

/// The job's ref and its type, from `CI_COMMIT_BRANCH` / `CI_COMMIT_TAG` (GitLab sets exactly
/// one of them in branch and tag pipelines) checked against `CI_COMMIT_REF_NAME`.
pub fn job_ref(job: &JobContext) -> Result<(RefType, &str), String> {
    let (t, name) = match (&job.commit_branch, &job.commit_tag) {
        (Some(b), None) => (RefType::Branch, b.as_str()),
        (None, Some(t)) => (RefType::Tag, t.as_str()),
        (Some(b), Some(t)) => {
            return Err(format!(
                "both CI_COMMIT_BRANCH (`{b}`) and CI_COMMIT_TAG (`{t}`) are set: cannot tell a branch from a tag"
            ));
        }
        (None, None) => {
            return Err(format!(
                "neither CI_COMMIT_BRANCH nor CI_COMMIT_TAG is set (ref `{}`): only branch and tag pipelines may deploy, not merge request pipelines",
                job.ref_name.as_deref().unwrap_or("?")
            ));
        }
    };
    match &job.ref_name {
        Some(r) if r != name => Err(format!(
            "CI_COMMIT_REF_NAME `{r}` is not the {} `{name}`: the job's ref variables disagree",
            t.as_str()
        )),
        _ => Ok((t, name)),
    }
}

/// Checks the job's project, ref and GitLab environment against `env`'s `[gitlab]` section;
/// every mismatch is reported, not only the first. Outside a GitLab job (no `CI_JOB_ID`)
/// there is no job to compare and nothing is refused here: a protected environment is still
/// refused by the protected-ref check (`chain::check_protected`) unless overridden for local use.
pub fn check_job(env: &Environment, job: &JobContext) -> Result<(), JobRefusal> {
    if !job.in_job() {
        return Ok(());
    }
    let access = &env.gitlab;
    let mut mismatches = Vec::new();
    let any = |patterns: &[String], v: &str| patterns.iter().any(|p| string_like(p, v));

    if !job
        .project_path
        .as_deref()
        .is_some_and(|p| any(&access.projects, p))
    {
        mismatches.push(Mismatch::Project {
            found: job.project_path.clone(),
            allowed: access.projects.clone(),
        });
    }
    match job_ref(job) {
        Ok((ref_type, name)) => {
            let allowed = allowed_refs(access, ref_type);
            if !any(&allowed, name) {
                mismatches.push(Mismatch::Ref {
                    ref_type,
                    name: name.to_owned(),
                    allowed,
                });
            }
        }
        Err(reason) => mismatches.push(Mismatch::UnknownRef { reason }),
    }
    if !job
        .environment
        .as_deref()
        .is_some_and(|e| any(&access.environments, e))
    {
        mismatches.push(Mismatch::Environment {
            found: job.environment.clone(),
            allowed: access.environments.clone(),
        });
    }
    if mismatches.is_empty() {
        Ok(())
    } else {
        Err(JobRefusal {
            environment: env.name.clone(),
            mismatches,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::Topology;

    const TOPO: &str = r#"
[broker]
account_id = "111111111111"
region = "eu-west-1"
[auth]
mode = "access-keys"
[environments.prod]
protected = true
[environments.prod.gitlab]
projects = ["acme/shop", "acme/tools/*"]
accept_project_globs = ["acme/tools/*"]
branches = ["main"]
environments = ["production"]
[environments.prod.accounts]
prod-eu = "222222222222"
[environments.rel]
[environments.rel.gitlab]
projects = ["acme/shop"]
tags = ["v*"]
environments = ["release"]
[environments.rel.accounts]
rel = "333333333333"
"#;

    fn topo() -> Topology {
        Topology::parse("t.toml", TOPO, &mut |_| Err("no files".into())).unwrap()
    }

    fn legit() -> JobContext {
        JobContext {
            project_path: Some("acme/shop".into()),
            job_id: Some("5005".into()),
            ref_name: Some("main".into()),
            commit_branch: Some("main".into()),
            ref_protected: true,
            environment: Some("production".into()),
            ..JobContext::default()
        }
    }

    fn refused(env: &str, job: &JobContext) -> JobRefusal {
        let t = topo();
        check_job(t.environment(env).unwrap(), job).unwrap_err()
    }

    fn parts(r: &JobRefusal) -> Vec<&'static str> {
        r.mismatches.iter().map(Mismatch::part).collect()
    }

    #[test]
    fn the_job_the_topology_names_passes() {
        let t = topo();
        assert_eq!(check_job(t.environment("prod").unwrap(), &legit()), Ok(()));
        // A glob admits a project below it.
        let mut j = legit();
        j.project_path = Some("acme/tools/deployer".into());
        assert_eq!(check_job(t.environment("prod").unwrap(), &j), Ok(()));
        // A tag pipeline for a tag environment.
        let j = JobContext {
            ref_name: Some("v1.2".into()),
            commit_branch: None,
            commit_tag: Some("v1.2".into()),
            environment: Some("release".into()),
            ..legit()
        };
        assert_eq!(check_job(t.environment("rel").unwrap(), &j), Ok(()));
    }

    #[test]
    fn another_project_is_refused_with_the_allowed_ones() {
        for p in ["acme/shop-fork", "acme/other", "evil/shop"] {
            let mut j = legit();
            j.project_path = Some(p.into());
            let r = refused("prod", &j);
            assert_eq!(parts(&r), ["project"], "{p}");
            let msg = r.to_string();
            assert!(
                msg.contains(&format!("project: `{p}` (CI_PROJECT_PATH) is not allowed; allowed projects: `acme/shop`, `acme/tools/*`")),
                "{msg}"
            );
            assert!(msg.contains("No AWS request was made"), "{msg}");
            assert!(msg.contains("defence in depth"), "{msg}");
        }
        let mut j = legit();
        j.project_path = None;
        assert_eq!(parts(&refused("prod", &j)), ["project"]);
    }

    #[test]
    fn outside_a_job_there_is_nothing_to_compare() {
        let t = topo();
        let local = JobContext::default();
        assert_eq!(check_job(t.environment("prod").unwrap(), &local), Ok(()));
    }

    #[test]
    fn a_glob_admits_subgroups_as_iam_does_and_nothing_beside_them() {
        // IAM's StringLike `*` matches `/`: `acme/tools/*` admits a project in a subgroup of
        // `acme/tools`, exactly as the OIDC trust policy would; not `acme/toolsx/app`.
        let t = topo();
        let mut j = legit();
        j.project_path = Some("acme/tools/sub/group/app".into());
        assert_eq!(check_job(t.environment("prod").unwrap(), &j), Ok(()));
        j.project_path = Some("acme/toolsx/app".into());
        assert_eq!(parts(&refused("prod", &j)), ["project"]);
        // And a subgroup project is not the literal project it sits beside.
        j.project_path = Some("acme/shop/sub".into());
        assert_eq!(parts(&refused("prod", &j)), ["project"]);
    }

    #[test]
    fn a_tag_named_like_the_allowed_branch_is_refused() {
        let j = JobContext {
            commit_branch: None,
            commit_tag: Some("main".into()),
            ..legit()
        };
        let r = refused("prod", &j);
        assert_eq!(parts(&r), ["ref"]);
        assert!(
            r.to_string()
                .contains("ref: tag `main` (CI_COMMIT_TAG) is not allowed; allowed tags: none"),
            "{r}"
        );
        // And a branch named like an allowed tag.
        let j = JobContext {
            ref_name: Some("v-pwn".into()),
            commit_branch: Some("v-pwn".into()),
            environment: Some("release".into()),
            ..legit()
        };
        let r = refused("rel", &j);
        assert!(
            r.to_string().contains(
                "ref: branch `v-pwn` (CI_COMMIT_BRANCH) is not allowed; allowed branches: none"
            ),
            "{r}"
        );
    }

    #[test]
    fn another_branch_and_unknowable_refs_are_refused() {
        let j = JobContext {
            ref_name: Some("feature".into()),
            commit_branch: Some("feature".into()),
            ..legit()
        };
        assert!(refused("prod", &j).to_string().contains(
            "branch `feature` (CI_COMMIT_BRANCH) is not allowed; allowed branches: `main`"
        ));
        // A merge request pipeline sets neither variable.
        let j = JobContext {
            commit_branch: None,
            ..legit()
        };
        assert!(
            refused("prod", &j)
                .to_string()
                .contains("neither CI_COMMIT_BRANCH nor CI_COMMIT_TAG is set")
        );
        let j = JobContext {
            commit_tag: Some("main".into()),
            ..legit()
        };
        assert!(
            refused("prod", &j)
                .to_string()
                .contains("both CI_COMMIT_BRANCH")
        );
        let j = JobContext {
            ref_name: Some("feature".into()),
            ..legit()
        };
        assert!(refused("prod", &j).to_string().contains("disagree"));
    }

    #[test]
    fn another_or_no_environment_is_refused_and_all_mismatches_are_named() {
        let mut j = legit();
        j.environment = Some("staging".into());
        let r = refused("prod", &j);
        assert_eq!(parts(&r), ["environment"]);
        assert!(
            r.to_string()
                .contains("environment: `staging` (CI_ENVIRONMENT_NAME) is not allowed; allowed environments: `production`"),
            "{r}"
        );
        j.environment = None;
        assert!(
            refused("prod", &j)
                .to_string()
                .contains("CI_ENVIRONMENT_NAME is not set")
        );

        let j = JobContext {
            project_path: Some("acme/other".into()),
            ref_name: Some("dev".into()),
            commit_branch: Some("dev".into()),
            environment: Some("dev".into()),
            ..legit()
        };
        let r = refused("prod", &j);
        assert_eq!(parts(&r), ["project", "ref", "environment"]);
        assert!(
            r.to_string()
                .starts_with("refusing to hand out credentials for environment `prod`: this job's project, ref, environment are not what the topology allows"),
            "{r}"
        );
    }
}
