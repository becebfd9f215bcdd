//! The topology as written: serde's view of the TOML, every value with its span.

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

pub(super) type S<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTopology {
    pub(super) broker: S<RawBroker>,
    pub(super) auth: S<RawAuth>,
    pub(super) gitlab: Option<S<RawGitlab>>,
    pub(super) rollout: Option<S<RawRollout>>,
    pub(super) pipeline: Option<S<RawPipeline>>,
    #[serde(default)]
    pub(super) environments: IndexMap<S<String>, S<RawEnv>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPipeline {
    pub(super) component: Option<S<String>>,
    pub(super) image: Option<S<String>>,
    pub(super) rolehop_version: Option<S<String>>,
    pub(super) rolehop_sha256: Option<S<String>>,
    pub(super) package_registry: Option<S<String>>,
    pub(super) deploy_script: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBroker {
    pub(super) account_id: S<String>,
    pub(super) region: S<String>,
    pub(super) partition: Option<S<String>>,
    pub(super) stack_name: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    pub(super) mode: S<String>,
    pub(super) issuer: Option<S<String>>,
    pub(super) audience: Option<S<String>>,
    pub(super) gate_url: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGitlab {
    pub(super) url: Option<S<String>>,
    pub(super) project: Option<S<String>>,
    pub(super) group: Option<S<String>>,
    pub(super) access_key_var: Option<S<String>>,
    pub(super) secret_key_var: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRollout {
    pub(super) stack_set_prefix: Option<S<String>>,
    pub(super) permission_model: Option<S<String>>,
    pub(super) administration_role_arn: Option<S<String>>,
    pub(super) execution_role_name: Option<S<String>>,
    pub(super) call_as: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEnv {
    #[serde(default)]
    pub(super) protected: bool,
    pub(super) tier: Option<S<String>>,
    pub(super) service_role: Option<S<String>>,
    pub(super) deployment_role: Option<S<String>>,
    pub(super) broker_user: Option<S<String>>,
    pub(super) max_session: Option<S<RawDuration>>,
    pub(super) external_id: Option<S<String>>,
    pub(super) gitlab: S<RawAccess>,
    #[serde(default)]
    pub(super) accounts: IndexMap<S<String>, S<String>>,
    #[serde(default)]
    pub(super) permissions: Option<S<RawPermissions>>,
    #[serde(default)]
    pub(super) organizational_units: Vec<S<String>>,
    pub(super) gate: Option<S<RawGateRules>>,
    #[serde(default)]
    pub(super) session_policies: Vec<S<RawSessionPolicy>>,
    pub(super) session_policy_default: Option<S<String>>,
    #[serde(default)]
    pub(super) session_tags: IndexMap<S<String>, S<String>>,
}

/// `[[environments.<name>.session_policies]]`: which jobs, and the policy they get.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSessionPolicy {
    pub(super) project: Option<S<String>>,
    pub(super) project_id: Option<S<String>>,
    #[serde(rename = "ref")]
    pub(super) ref_name: Option<S<String>>,
    pub(super) ref_type: Option<S<String>>,
    pub(super) policy_file: Option<S<String>>,
    #[serde(default)]
    pub(super) managed: Vec<S<String>>,
}

/// `[environments.<name>.gate]`: claim rules beyond `[environments.<name>.gitlab]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGateRules {
    #[serde(default)]
    pub(super) project_ids: Vec<S<String>>,
    #[serde(default)]
    pub(super) namespace_ids: Vec<S<String>>,
    #[serde(default)]
    pub(super) namespace_paths: Vec<S<String>>,
    pub(super) pipeline_sources: Option<S<RawPipelineSources>>,
    pub(super) ref_protected: Option<S<bool>>,
    pub(super) environment_protected: Option<S<bool>>,
    #[serde(default)]
    pub(super) deployment_tiers: Vec<S<String>>,
    #[serde(default)]
    pub(super) runner_environments: Vec<S<String>>,
    #[serde(default)]
    pub(super) user_access_levels: Vec<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPipelineSources {
    #[serde(default)]
    pub(super) allow: Vec<S<String>>,
    #[serde(default)]
    pub(super) deny: Vec<S<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawDuration {
    Secs(i64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccess {
    pub(super) projects: Vec<S<String>>,
    #[serde(default)]
    pub(super) branches: Vec<S<String>>,
    #[serde(default)]
    pub(super) tags: Vec<S<String>>,
    #[serde(default)]
    pub(super) protected_ref_globs: Vec<S<String>>,
    #[serde(default)]
    pub(super) accept_project_globs: Vec<S<String>>,
    #[serde(default)]
    pub(super) environments: Vec<S<String>>,
    /// Replaced by `branches`/`tags`; read only to tell how to rewrite them.
    pub(super) refs: Option<S<toml::Value>>,
    pub(super) ref_types: Option<S<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPermissions {
    #[serde(default)]
    pub(super) managed_policies: Vec<S<String>>,
    #[serde(default)]
    pub(super) inline_policies: Vec<S<String>>,
    pub(super) boundary: Option<S<String>>,
}
