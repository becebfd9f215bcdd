//! The GitLab job a command runs in, read from GitLab's predefined CI/CD variables through an
//! injected environment (so tests never touch the process environment).

use std::collections::BTreeMap;

/// A source of environment variables: the process environment in `main`, a map in tests.
pub trait Env {
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

/// What rolehop knows about the GitLab job it runs in. Outside a job every field is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobContext {
    pub project_path: Option<String>,
    pub project_id: Option<String>,
    pub pipeline_id: Option<String>,
    pub job_id: Option<String>,
    pub job_url: Option<String>,
    pub ref_name: Option<String>,
    /// `CI_COMMIT_BRANCH`: set by GitLab in branch pipelines only.
    pub commit_branch: Option<String>,
    /// `CI_COMMIT_TAG`: set by GitLab in tag pipelines only.
    pub commit_tag: Option<String>,
    /// `CI_COMMIT_REF_PROTECTED`: only the literal `true` counts as protected.
    pub ref_protected: bool,
    pub commit_sha: Option<String>,
    pub environment: Option<String>,
    pub user_login: Option<String>,
    pub server_url: Option<String>,
}

impl JobContext {
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
