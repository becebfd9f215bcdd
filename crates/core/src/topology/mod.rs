//! `rolehop.toml`, the one declarative input of render, rollout, audit, rotate and
//! `assume --config`. Parsed once into validated types; every rule broken is reported with
//! the file, line and column of the offending value.

/// AWS caps any session reached by role chaining at one hour.
pub const CHAINED_SESSION_MAX_SECS: u64 = 3600;
/// STS's minimum session, and the least that keeps SDKs from refreshing before every call.
pub const SESSION_MIN_SECS: u64 = 900;

mod build;
mod checks;
mod env;
mod error;
mod gate;
mod raw;

pub use build::ReadFile;
pub use error::{Diagnostic, TopologyError};
pub use gate::{
    DEPLOYMENT_TIERS, GATE_SESSION_TAG_KEYS, GateRules, PIPELINE_SOURCES, PipelineSourceRules,
    RUNNER_ENVIRONMENTS, USER_ACCESS_LEVELS,
};

// ---------------------------------------------------------------------------------------------
// Validated model
// ---------------------------------------------------------------------------------------------

/// A validated topology.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    /// Where it was read from, for messages.
    pub origin: String,
    pub broker: Broker,
    pub auth: Auth,
    pub gitlab: Option<GitlabSettings>,
    pub rollout: Rollout,
    /// How the rendered pipeline gets rolehop into its jobs (`[pipeline]`).
    pub pipeline: Pipeline,
    pub environments: Vec<Environment>,
}

/// How rendered deploy jobs run rolehop.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Pipeline {
    /// The inline `.rolehop` template: `rolehop` must be on the runner's PATH.
    #[default]
    Inline,
    /// Each deploy job comes from rolehop's CI/CD component (templates/deploy.yml), which
    /// installs the pinned release and checks its SHA-256 before running it.
    Component(ComponentSettings),
}

/// The component's address and the inputs every deploy job shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentSettings {
    /// `<host>/<project path>/deploy@<version>`; GitLab's `$CI_SERVER_FQDN`-style variables allowed.
    pub component: String,
    pub image: String,
    pub rolehop_version: String,
    /// Lower-case hex, 64 characters.
    pub rolehop_sha256: String,
    pub package_registry: String,
    pub deploy_script: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Broker {
    pub account_id: String,
    pub region: String,
    pub partition: String,
    /// The CloudFormation stack holding the broker's IAM.
    pub stack_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// One IAM user per environment, its keys in masked, protected GitLab variables.
    AccessKeys,
    /// GitLab ID tokens exchanged with AssumeRoleWithWebIdentity.
    Oidc { issuer: String, audience: String },
    /// GitLab ID tokens posted to rolehop's claim gate, which verifies them, checks each
    /// environment's [`GateRules`] on the signed claims and assumes the service role with
    /// session tags and SourceIdentity taken from those claims (see docs/gate.md).
    OidcGate {
        /// The exact `iss` of the ID tokens.
        issuer: String,
        /// The `aud` of the job's ID token for the gate.
        audience: String,
        /// Where jobs reach the gate; jobs may override it (`--gate-url`, `ROLEHOP_GATE_URL`).
        gate_url: Option<String>,
    },
}

impl Auth {
    /// The GitLab issuer, in both OIDC modes.
    pub fn issuer(&self) -> Option<&str> {
        match self {
            Auth::Oidc { issuer, .. } | Auth::OidcGate { issuer, .. } => Some(issuer),
            Auth::AccessKeys => None,
        }
    }
}

/// Where rotation writes broker keys, and which variables jobs read them from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitlabSettings {
    pub url: Option<String>,
    pub target: VariableTarget,
    pub access_key_var: String,
    pub secret_key_var: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VariableTarget {
    Project(String),
    Group(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    pub stack_set_prefix: String,
    pub permission_model: PermissionModel,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermissionModel {
    /// StackSets with the standard administration and execution roles.
    SelfManaged {
        administration_role_arn: Option<String>,
        execution_role_name: String,
    },
    /// AWS Organizations-managed StackSets targeting organizational units.
    ServiceManaged { call_as: CallAs },
}

/// Whose StackSets these are, for service-managed StackSets (CloudFormation's `CallAs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallAs {
    /// The broker account is registered as a delegated administrator for StackSets: the
    /// default, since the design keeps the broker account apart from the management account.
    DelegatedAdmin,
    /// Rollout runs in the organization's management account (which is then the broker).
    Management,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    Production,
    Staging,
    Testing,
    Development,
    Other,
}

impl Tier {
    /// GitLab's `environment:deployment_tier` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Production => "production",
            Tier::Staging => "staging",
            Tier::Testing => "testing",
            Tier::Development => "development",
            Tier::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RefType {
    Branch,
    Tag,
}

impl RefType {
    pub fn as_str(self) -> &'static str {
        match self {
            RefType::Branch => "branch",
            RefType::Tag => "tag",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    pub name: String,
    /// The line of the environment's `[environments.<name>]` header (1-based).
    pub line: usize,
    pub protected: bool,
    pub tier: Tier,
    pub service_role: String,
    pub deployment_role: String,
    /// The broker IAM user (access-keys mode).
    pub broker_user: String,
    /// The longest deployment session this environment hands out (900..=3600 s).
    pub max_session_secs: u64,
    pub external_id: Option<String>,
    pub gitlab: GitlabAccess,
    pub accounts: Vec<TargetAccount>,
    pub permissions: Permissions,
    /// Service-managed StackSets: the OUs to deploy the target template to.
    pub organizational_units: Vec<String>,
    /// Gate mode (`auth.mode = "oidc-gate"`): the claim rules beyond `gitlab`
    /// (`[environments.<name>.gate]`, defaults filled in); `None` in the other modes.
    pub gate: Option<GateRules>,
}

/// The GitLab side allowed to use an environment.
///
/// In OIDC mode every field but `environments` becomes the service role's trust: IAM's
/// `StringLike` reads `*` as any run of characters, `/` included, so `acme/*` admits every
/// project in `acme` and in every subgroup below it, and `v*` every ref starting with `v`.
/// Protected environments must acknowledge each such glob (`protected_ref_globs`,
/// `accept_project_globs`): the trust then rests on GitLab settings rolehop cannot check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitlabAccess {
    /// Project paths; `*` globs only below the top-level group (`acme/shop-*`).
    pub projects: Vec<String>,
    /// Branch names or `*` globs: trusted only as `ref_type:branch`.
    pub branches: Vec<String>,
    /// Tag names or `*` globs: trusted only as `ref_type:tag`.
    pub tags: Vec<String>,
    /// The branch/tag globs the topology asserts GitLab protects (every matching ref).
    pub protected_ref_globs: Vec<String>,
    /// The project globs accepted although whoever can create a matching project reaches
    /// the environment.
    pub accept_project_globs: Vec<String>,
    /// GitLab environment names; the first is the one the rendered deploy job uses.
    pub environments: Vec<String>,
}

/// `true` when IAM's `StringLike` reads `s` as a pattern rather than one value (topology
/// names admit only `*` as a wildcard; `?` is refused where they are checked).
pub fn is_glob(s: &str) -> bool {
    s.contains('*') || s.contains('?')
}

impl GitlabAccess {
    /// Every declared ref with the only ref type it is trusted as: branches first, then tags.
    pub fn refs(&self) -> impl Iterator<Item = (RefType, &str)> {
        let branches = self.branches.iter().map(|b| (RefType::Branch, b.as_str()));
        let tags = self.tags.iter().map(|t| (RefType::Tag, t.as_str()));
        branches.chain(tags)
    }

    /// The ID token `sub` patterns (for `StringLike`) this access admits:
    /// `project_path:{group}/{project}:ref_type:{branch|tag}:ref:{name}`, each branch paired
    /// only with `ref_type:branch` and each tag only with `ref_type:tag`.
    pub fn sub_patterns(&self) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.projects {
            for (t, r) in self.refs() {
                out.push(format!("project_path:{p}:ref_type:{}:ref:{r}", t.as_str()));
            }
        }
        out
    }

    /// The GitLab environment the rendered deploy job targets.
    pub fn primary_environment(&self) -> &str {
        self.environments.first().map_or("", String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetAccount {
    pub name: String,
    pub id: String,
    /// The line of `name = "id"` in the topology file (1-based): where reports point.
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Permissions {
    pub managed_policies: Vec<String>,
    pub inline_policies: Vec<InlinePolicy>,
    pub boundary: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InlinePolicy {
    /// Policy name (the file stem).
    pub name: String,
    /// The path as written in the topology.
    pub path: String,
    pub document: serde_json::Value,
}

impl Topology {
    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == name)
    }

    /// `environment(name)` or an error listing the known ones.
    pub fn require_environment(&self, name: &str) -> Result<&Environment, String> {
        self.environment(name).ok_or_else(|| {
            let known: Vec<&str> = self.environments.iter().map(|e| e.name.as_str()).collect();
            format!(
                "unknown environment `{name}` in {}; known: {}",
                self.origin,
                known.join(", ")
            )
        })
    }

    pub fn service_role_arn(&self, env: &Environment) -> String {
        format!(
            "arn:{}:iam::{}:role/{}",
            self.broker.partition, self.broker.account_id, env.service_role
        )
    }

    pub fn deployment_role_arn(&self, env: &Environment, account: &TargetAccount) -> String {
        format!(
            "arn:{}:iam::{}:role/{}",
            self.broker.partition, account.id, env.deployment_role
        )
    }

    pub fn broker_user_arn(&self, env: &Environment) -> String {
        format!(
            "arn:{}:iam::{}:user/{}",
            self.broker.partition, self.broker.account_id, env.broker_user
        )
    }

    /// The IAM OIDC provider ARN for the GitLab issuer (OIDC mode).
    pub fn oidc_provider_arn(&self) -> Option<String> {
        match &self.auth {
            Auth::Oidc { issuer, .. } => Some(format!(
                "arn:{}:iam::{}:oidc-provider/{}",
                self.broker.partition,
                self.broker.account_id,
                issuer.trim_start_matches("https://")
            )),
            Auth::AccessKeys | Auth::OidcGate { .. } => None,
        }
    }

    /// The gate's execution role in gate mode: one per environment, so a compromised gate
    /// reaches that environment only.
    pub fn gate_role_name(&self, env: &Environment) -> Option<String> {
        matches!(self.auth, Auth::OidcGate { .. }).then(|| gate_role_name(&env.name))
    }

    pub fn gate_role_arn(&self, env: &Environment) -> Option<String> {
        self.gate_role_name(env).map(|n| {
            format!(
                "arn:{}:iam::{}:role/{n}",
                self.broker.partition, self.broker.account_id
            )
        })
    }
}

/// `rolehop-<environment>-gate`: environment names are at most 32 characters, so this always
/// fits IAM's 64 (and Lambda's function-name limit of 64).
pub fn gate_role_name(environment: &str) -> String {
    format!("rolehop-{environment}-gate")
}

impl Environment {
    pub fn account(&self, name: &str) -> Option<&TargetAccount> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// `account(name)` or an error listing the known ones.
    pub fn require_account(&self, name: &str) -> Result<&TargetAccount, String> {
        self.account(name).ok_or_else(|| {
            let known: Vec<&str> = self.accounts.iter().map(|a| a.name.as_str()).collect();
            format!(
                "environment `{}` has no target account `{name}`; known: {}",
                self.name,
                known.join(", ")
            )
        })
    }
}
