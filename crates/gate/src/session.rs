//! The identity the gate stamps on the service-role session, derived only from verified claims
//! (never from `CI_*` variables the job author controls): the same session name and
//! SourceIdentity shapes as the access-key chain (`gl-<project>-<pipeline>-<job>`,
//! `<group>.<project>@<pipeline>`), plus transitive session tags a trust policy can require,
//! such as `aws:RequestTag/gitlab:ref_protected = "true"`.

use rolehop_core::chain::{self, Tag};
use rolehop_core::gitlab_ctx::JobContext;

use crate::claims::GitlabClaims;

/// The service-role session the gate asks STS for on a verified job's behalf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestedSession {
    /// The role session name, `gl-<project>-<pipeline>-<job>`, as the access-key chain names it.
    pub session_name: String,
    /// The SourceIdentity, `<group>.<project>@<pipeline>`, which no later hop can change.
    pub source_identity: String,
    /// Transitive: they persist into the deployment-role session.
    pub tags: Vec<Tag>,
}

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

impl AttestedSession {
    /// Derives the session from verified claims only, so a job cannot choose its own identity.
    pub fn from_claims(c: &GitlabClaims) -> AttestedSession {
        let job = JobContext {
            project_path: Some(c.project_path.clone()),
            project_id: Some(c.project_id.clone()),
            pipeline_id: Some(c.pipeline_id.clone()),
            job_id: Some(c.job_id.clone()),
            ref_name: Some(c.ref_name.clone()),
            ref_protected: c.ref_protected,
            environment: c.environment.clone(),
            ..JobContext::default()
        };
        // The chain's five tags first (so policies written for the access-key chain keep
        // working), then what only signed claims can attest.
        let mut tags = chain::session_tags(&job);
        let mut add = |key: &str, value: Option<&str>| {
            if let Some(v) = value {
                tags.push(Tag {
                    key: key.to_owned(),
                    value: chain::sanitize_tag_value(v),
                });
            }
        };
        add("gitlab:project_id", Some(&c.project_id));
        add("gitlab:namespace_id", Some(&c.namespace_id));
        add("gitlab:ref_type", Some(&c.ref_type));
        add("gitlab:ref_protected", Some(bool_str(c.ref_protected)));
        add(
            "gitlab:environment_protected",
            c.environment_protected.map(bool_str),
        );
        add("gitlab:deployment_tier", c.deployment_tier.as_deref());
        add("gitlab:pipeline_source", Some(&c.pipeline_source));
        add("gitlab:runner_environment", c.runner_environment.as_deref());
        AttestedSession {
            session_name: chain::session_name(&job),
            source_identity: chain::source_identity(&job),
            tags,
        }
    }

    /// The tag keys, all transitive.
    pub fn transitive_keys(&self) -> Vec<String> {
        self.tags.iter().map(|t| t.key.clone()).collect()
    }
}
