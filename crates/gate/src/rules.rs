//! Claim rules per environment: which verified GitLab jobs may use it.
//!
//! Semantics, stated once: every constraint that is set must hold (AND); within one list any
//! entry may match (OR). Patterns are IAM `StringLike` globs, case-sensitive: `*` matches any
//! run of characters **including `/`** (so `acme/*` admits every project in every subgroup of
//! `acme`), `?` one character; a pattern without wildcards is an exact comparison. An empty
//! list sets no constraint, except that a rule set must name its projects (by id or path) and
//! its refs (branches and/or tags): "any project" or "any ref" is not expressible.

use std::fmt;

pub use rolehop_policy::pattern::Glob;
use serde::Deserialize;

use crate::claims::GitlabClaims;
use crate::shown;

/// `pipeline_source` constraints: if `allow` is set the source must be in it; a source in
/// `deny` is always refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipelineSources {
    /// Sources a pipeline must have been started by; empty: any source not denied.
    pub allow: Vec<String>,
    /// Sources always refused, even if `allow` lists them.
    pub deny: Vec<String>,
}

/// Who may use one environment, checked against verified claims.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// `project_id` (immutable: survives renames and transfers; a fork has its own).
    pub project_ids: Vec<String>,
    /// `project_path` globs.
    pub project_paths: Vec<Glob>,
    /// `namespace_id`s (immutable, like project ids) of the groups whose projects are admitted.
    pub namespace_ids: Vec<String>,
    /// `namespace_path` globs of the groups whose projects are admitted.
    pub namespace_paths: Vec<Glob>,
    /// `ref` globs for `ref_type = "branch"`; empty: no branch is admitted.
    pub branches: Vec<Glob>,
    /// `ref` globs for `ref_type = "tag"`; empty: no tag is admitted.
    pub tags: Vec<Glob>,
    /// Require `ref_protected = "true"`.
    pub ref_protected: bool,
    /// GitLab environment name globs; empty: any environment, or none.
    pub environments: Vec<Glob>,
    /// Require `environment_protected = "true"` (which implies the job has an environment).
    pub environment_protected: bool,
    /// `deployment_tier` values (production, staging, testing, development, other).
    pub deployment_tiers: Vec<String>,
    /// Which `pipeline_source`s are admitted or refused.
    pub pipeline_sources: PipelineSources,
    /// `runner_environment` values: `gitlab-hosted`, `self-hosted`.
    pub runner_environments: Vec<String>,
    /// `user_access_level` values (developer, maintainer, owner...).
    pub user_access_levels: Vec<String>,
}

/// A rule that did not hold: which, what it wanted, what the token said. Never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The rule's key in the environment's rule set (`branches`, `project_paths`, ...).
    pub rule: &'static str,
    /// What the rule admits, in words.
    pub expected: String,
    /// What the token's claim said, escaped and shortened.
    pub actual: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rule `{}` refused the job: expected {}, the token says {}",
            self.rule, self.expected, self.actual
        )
    }
}

impl std::error::Error for Refusal {}

/// The gate's verdict on a job's verified claims for one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Every rule that is set holds: the gate may assume the service role.
    Allowed,
    /// The first rule that did not hold; the job gets HTTP 403.
    Refused(Refusal),
}

/// A rule set that cannot be used, with the key it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct RulesError {
    /// The config key that is wrong, e.g. `environments.prod.rules.branches`.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

fn list<T: AsRef<str>>(items: &[T]) -> String {
    let v: Vec<String> = items.iter().map(|i| format!("`{}`", i.as_ref())).collect();
    match v.len() {
        0 => "nothing".into(),
        1 => v.concat(),
        _ => format!("one of {}", v.join(", ")),
    }
}

fn globs(items: &[Glob]) -> String {
    list(&items.iter().map(Glob::as_str).collect::<Vec<_>>())
}

fn opt(v: Option<&str>) -> String {
    v.map_or_else(
        || "nothing (claim absent)".to_owned(),
        |v| format!("`{}`", shown(v)),
    )
}

fn refuse(rule: &'static str, expected: String, actual: String) -> Decision {
    Decision::Refused(Refusal {
        rule,
        expected,
        actual,
    })
}

impl Rules {
    /// Refuses rule sets that admit too much to be meant, or cannot match anything sensible.
    pub fn validate(&self, at: &str) -> Result<(), Vec<RulesError>> {
        let mut errs = Vec::new();
        let mut err = |key: &str, message: String| {
            errs.push(RulesError {
                key: format!("{at}.{key}"),
                message,
            })
        };
        if self.project_ids.is_empty() && self.project_paths.is_empty() {
            err("project_ids", "name the projects (project_ids and/or project_paths): a gate rule without them admits any project on the GitLab instance, forks included".into());
        }
        if self.branches.is_empty() && self.tags.is_empty() {
            err(
                "branches",
                "name the refs (branches and/or tags) allowed to use this environment".into(),
            );
        }
        for (key, ids) in [
            ("project_ids", &self.project_ids),
            ("namespace_ids", &self.namespace_ids),
        ] {
            for id in ids {
                if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                    err(
                        key,
                        format!("`{}` is not a GitLab id (digits only)", shown(id)),
                    );
                }
            }
        }
        for (key, gs) in [
            ("project_paths", &self.project_paths),
            ("namespace_paths", &self.namespace_paths),
            ("branches", &self.branches),
            ("tags", &self.tags),
            ("environments", &self.environments),
        ] {
            for g in gs {
                if g.as_str().is_empty() {
                    err(key, "an empty pattern matches nothing".into());
                } else if g.as_str().chars().all(|c| c == '*')
                    && matches!(key, "project_paths" | "namespace_paths")
                {
                    err(
                        key,
                        format!(
                            "`{}` admits every {} on the GitLab instance",
                            g.as_str(),
                            &key[..key.len() - 1].replace('_', " ")
                        ),
                    );
                }
            }
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }

    /// Checks verified claims, in a fixed order; the first rule that fails is reported.
    pub fn evaluate(&self, c: &GitlabClaims) -> Decision {
        if !self.project_ids.is_empty() && !self.project_ids.contains(&c.project_id) {
            return refuse(
                "project_ids",
                list(&self.project_ids),
                opt(Some(&c.project_id)),
            );
        }
        if !self.project_paths.is_empty()
            && !self
                .project_paths
                .iter()
                .any(|g| g.matches(&c.project_path))
        {
            return refuse(
                "project_paths",
                globs(&self.project_paths),
                opt(Some(&c.project_path)),
            );
        }
        if !self.namespace_ids.is_empty() && !self.namespace_ids.contains(&c.namespace_id) {
            return refuse(
                "namespace_ids",
                list(&self.namespace_ids),
                opt(Some(&c.namespace_id)),
            );
        }
        if !self.namespace_paths.is_empty()
            && !self
                .namespace_paths
                .iter()
                .any(|g| g.matches(&c.namespace_path))
        {
            return refuse(
                "namespace_paths",
                globs(&self.namespace_paths),
                opt(Some(&c.namespace_path)),
            );
        }
        let src = &c.pipeline_source;
        if self.pipeline_sources.deny.contains(src)
            || (!self.pipeline_sources.allow.is_empty()
                && !self.pipeline_sources.allow.contains(src))
        {
            let mut expected = Vec::new();
            if !self.pipeline_sources.allow.is_empty() {
                expected.push(list(&self.pipeline_sources.allow));
            }
            if !self.pipeline_sources.deny.is_empty() {
                expected.push(format!(
                    "not {}",
                    list(&self.pipeline_sources.deny).replace("one of ", "any of ")
                ));
            }
            return refuse("pipeline_sources", expected.join(" and "), opt(Some(src)));
        }
        let (rule, refs) = match c.ref_type.as_str() {
            "branch" => ("branches", &self.branches),
            "tag" => ("tags", &self.tags),
            _ => {
                return refuse(
                    "ref_type",
                    "`branch` or `tag`".into(),
                    opt(Some(&c.ref_type)),
                );
            }
        };
        if !refs.iter().any(|g| g.matches(&c.ref_name)) {
            let expected = if refs.is_empty() {
                format!("no {} at all", c.ref_type)
            } else {
                format!("a {} matching {}", c.ref_type, globs(refs))
            };
            return refuse(
                rule,
                expected,
                format!("{} {}", c.ref_type, opt(Some(&c.ref_name))),
            );
        }
        if self.ref_protected && !c.ref_protected {
            return refuse(
                "ref_protected",
                "`true` (a protected branch or tag)".into(),
                format!("`false` for {} `{}`", c.ref_type, shown(&c.ref_name)),
            );
        }
        if !self.environments.is_empty()
            && !c
                .environment
                .as_deref()
                .is_some_and(|e| self.environments.iter().any(|g| g.matches(e)))
        {
            return refuse(
                "environments",
                globs(&self.environments),
                opt(c.environment.as_deref()),
            );
        }
        if self.environment_protected && c.environment_protected != Some(true) {
            return refuse(
                "environment_protected",
                "`true` (a protected GitLab environment)".into(),
                opt(c
                    .environment_protected
                    .map(|p| if p { "true" } else { "false" })),
            );
        }
        if !self.deployment_tiers.is_empty()
            && !c
                .deployment_tier
                .as_ref()
                .is_some_and(|t| self.deployment_tiers.contains(t))
        {
            return refuse(
                "deployment_tiers",
                list(&self.deployment_tiers),
                opt(c.deployment_tier.as_deref()),
            );
        }
        if !self.runner_environments.is_empty()
            && !c
                .runner_environment
                .as_ref()
                .is_some_and(|t| self.runner_environments.contains(t))
        {
            return refuse(
                "runner_environments",
                list(&self.runner_environments),
                opt(c.runner_environment.as_deref()),
            );
        }
        if !self.user_access_levels.is_empty()
            && !c
                .user_access_level
                .as_ref()
                .is_some_and(|t| self.user_access_levels.contains(t))
        {
            return refuse(
                "user_access_levels",
                list(&self.user_access_levels),
                opt(c.user_access_level.as_deref()),
            );
        }
        Decision::Allowed
    }
}

/// The documented TOML/JSON shape of a rule set (every key optional, unknown keys refused):
///
/// ```toml
/// project_ids = ["42"]              # and/or
/// project_paths = ["acme/shop"]
/// namespace_ids = ["7"]
/// namespace_paths = ["acme"]
/// branches = ["main", "release/*"]
/// tags = ["v*"]
/// ref_protected = true              # default true
/// environments = ["production"]
/// environment_protected = true      # default false
/// deployment_tiers = ["production"]
/// pipeline_sources = { allow = ["push", "web"], deny = ["merge_request_event"] }
/// runner_environments = ["gitlab-hosted"]
/// user_access_levels = ["maintainer", "owner"]
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesSpec {
    /// `project_id`s admitted, as strings of digits.
    #[serde(default)]
    pub project_ids: Vec<String>,
    /// `project_path` globs admitted.
    #[serde(default)]
    pub project_paths: Vec<String>,
    /// `namespace_id`s admitted.
    #[serde(default)]
    pub namespace_ids: Vec<String>,
    /// `namespace_path` globs admitted.
    #[serde(default)]
    pub namespace_paths: Vec<String>,
    /// Branch name globs admitted.
    #[serde(default)]
    pub branches: Vec<String>,
    /// Tag name globs admitted.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Protected refs only unless said otherwise: the safe default for a deploy gate.
    pub ref_protected: Option<bool>,
    /// GitLab environment name globs admitted.
    #[serde(default)]
    pub environments: Vec<String>,
    /// Whether the job's GitLab environment must be protected.
    #[serde(default)]
    pub environment_protected: bool,
    /// `deployment_tier`s admitted.
    #[serde(default)]
    pub deployment_tiers: Vec<String>,
    /// The `pipeline_source` allow and deny lists.
    #[serde(default)]
    pub pipeline_sources: PipelineSourcesSpec,
    /// `runner_environment`s admitted.
    #[serde(default)]
    pub runner_environments: Vec<String>,
    /// `user_access_level`s admitted.
    #[serde(default)]
    pub user_access_levels: Vec<String>,
}

/// The `pipeline_sources` table of the config, before validation into [`PipelineSources`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSourcesSpec {
    /// Pipeline sources admitted; empty: any not denied.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Pipeline sources always refused.
    #[serde(default)]
    pub deny: Vec<String>,
}

impl RulesSpec {
    /// Compiles and validates; `at` names the table in messages (`environments.prod.rules`).
    pub fn into_rules(self, at: &str) -> Result<Rules, Vec<RulesError>> {
        let g = |v: Vec<String>| v.iter().map(|p| Glob::new(p, false)).collect();
        let rules = Rules {
            project_ids: self.project_ids,
            project_paths: g(self.project_paths),
            namespace_ids: self.namespace_ids,
            namespace_paths: g(self.namespace_paths),
            branches: g(self.branches),
            tags: g(self.tags),
            ref_protected: self.ref_protected.unwrap_or(true),
            environments: g(self.environments),
            environment_protected: self.environment_protected,
            deployment_tiers: self.deployment_tiers,
            pipeline_sources: PipelineSources {
                allow: self.pipeline_sources.allow,
                deny: self.pipeline_sources.deny,
            },
            runner_environments: self.runner_environments,
            user_access_levels: self.user_access_levels,
        };
        rules.validate(at)?;
        Ok(rules)
    }
}

impl Rules {
    /// A rule set from its JSON shape (see [`RulesSpec`]).
    pub fn from_json(text: &str) -> Result<Rules, Vec<RulesError>> {
        let spec: RulesSpec = serde_json::from_str(text).map_err(|e| {
            vec![RulesError {
                key: "rules".into(),
                message: e.to_string(),
            }]
        })?;
        spec.into_rules("rules")
    }
}
