//! The GitLab job a command runs in, read from GitLab's predefined CI/CD variables through an
//! injected environment (so tests never touch the process environment).

use std::collections::BTreeMap;

/// A source of environment variables: the process environment in `main`, a map in tests.
pub trait Env {
    /// The value of `key`, with empty treated as unset (GitLab sets unused variables to `""`).
    fn var(&self, key: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.is_empty())
    }
}

/// A fixed environment, for tests.
impl Env for BTreeMap<String, String> {
    fn var(&self, key: &str) -> Option<String> {
        self.get(key).filter(|v| !v.is_empty()).cloned()
    }
}

/// The fixed environment of `pairs`, for this crate's tests.
#[cfg(test)]
pub(crate) fn fixed_env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// What rolehop knows about the GitLab job it runs in. Outside a job every field is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobContext {
    /// `CI_PROJECT_PATH`: checked against the environment's `projects`, part of SourceIdentity.
    pub project_path: Option<String>,
    /// `CI_PROJECT_ID`: part of the role session name.
    pub project_id: Option<String>,
    /// `CI_PIPELINE_ID`: part of the session name and SourceIdentity.
    pub pipeline_id: Option<String>,
    /// `CI_JOB_ID`: part of the session name.
    pub job_id: Option<String>,
    /// `CI_JOB_URL`; no decision depends on it.
    pub job_url: Option<String>,
    /// `CI_COMMIT_REF_NAME`: the `gitlab:ref` session tag.
    pub ref_name: Option<String>,
    /// `CI_COMMIT_BRANCH`: set by GitLab in branch pipelines only.
    pub commit_branch: Option<String>,
    /// `CI_COMMIT_TAG`: set by GitLab in tag pipelines only.
    pub commit_tag: Option<String>,
    /// `CI_COMMIT_REF_PROTECTED`: only the literal `true` counts as protected.
    pub ref_protected: bool,
    /// `CI_COMMIT_SHA`; no decision depends on it.
    pub commit_sha: Option<String>,
    /// `CI_ENVIRONMENT_NAME`: checked against the environment's `environments`.
    pub environment: Option<String>,
    /// `GITLAB_USER_LOGIN`: whoever started the job; never trusted for access.
    pub user_login: Option<String>,
    /// `CI_SERVER_URL`: the GitLab instance the job runs on.
    pub server_url: Option<String>,
}

impl JobContext {
    /// Reads the job's predefined variables from `env`.
    pub fn from_env(env: &dyn Env) -> Self {
        Self {
            project_path: env.var("CI_PROJECT_PATH"),
            project_id: env.var("CI_PROJECT_ID"),
            pipeline_id: env.var("CI_PIPELINE_ID"),
            job_id: env.var("CI_JOB_ID"),
            job_url: env.var("CI_JOB_URL"),
            ref_name: env.var("CI_COMMIT_REF_NAME"),
            commit_branch: env.var("CI_COMMIT_BRANCH"),
            commit_tag: env.var("CI_COMMIT_TAG"),
            ref_protected: env.var("CI_COMMIT_REF_PROTECTED").as_deref() == Some("true"),
            commit_sha: env.var("CI_COMMIT_SHA"),
            environment: env.var("CI_ENVIRONMENT_NAME"),
            user_login: env.var("GITLAB_USER_LOGIN"),
            server_url: env.var("CI_SERVER_URL"),
        }
    }

    /// True inside a GitLab job (GitLab always sets the job id).
    pub fn in_job(&self) -> bool {
        self.job_id.is_some()
    }
}
