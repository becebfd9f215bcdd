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
mod schema;
mod session;

pub use build::ReadFile;
pub use session::{
    JobIdentity, SESSION_POLICY_ARNS_MAX, SESSION_POLICY_MAX_CHARS, SESSION_TAGS_MAX,
    SessionChoice, SessionPolicyDoc, SessionPolicyRule, TAG_KEY_MAX, Unmatched,
};

use crate::ids::{AccountId, Partition, Region, RoleArn};
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
    /// The broker account: where every job enters AWS, holding nothing but IAM.
    pub broker: Broker,
    /// How jobs prove who they are to the broker: access keys or GitLab ID tokens.
    pub auth: Auth,
    /// Where `rotate` writes broker keys (access-keys mode); `None` when keys are managed by hand.
    pub gitlab: Option<GitlabSettings>,
    /// How `rollout` deploys the target accounts' roles (`[rollout]`).
    pub rollout: Rollout,
    /// How the rendered pipeline gets rolehop into its jobs (`[pipeline]`).
    pub pipeline: Pipeline,
    /// Every environment, in file order: each its own service role, accounts and GitLab access.
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
    /// The image every deploy job runs in (the component's `image` input).
    pub image: String,
    /// The release the component installs.
    pub rolehop_version: String,
    /// Lower-case hex, 64 characters.
    pub rolehop_sha256: String,
    /// Where the component downloads the release from (https, or loopback for tests).
    pub package_registry: String,
    /// The command the deploy job runs with credentials in its environment.
    pub deploy_script: String,
}

/// The broker account's identity and where its IAM stack lives.
#[derive(Debug, Clone, PartialEq)]
pub struct Broker {
    /// The broker account; no target account may be it.
    pub account_id: AccountId,
    /// The region of the broker stack, StackSets and the default STS endpoint.
    pub region: Region,
    /// The partition every rendered ARN uses.
    pub partition: Partition,
    /// The CloudFormation stack holding the broker's IAM.
    pub stack_name: String,
}

/// How jobs authenticate to the broker account (`[auth]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// One IAM user per environment, its keys in masked, protected GitLab variables.
    AccessKeys,
    /// GitLab ID tokens exchanged with AssumeRoleWithWebIdentity.
    Oidc {
        /// The GitLab URL, exactly as its ID tokens' `iss` claim.
        issuer: String,
        /// The `aud` the deploy jobs request (`id_tokens:`) and the trust policy requires.
        audience: String,
    },
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
    /// The GitLab instance; the rotation token is sent nowhere else.
    pub url: Option<String>,
    /// The project or group whose variables hold the keys.
    pub target: VariableTarget,
    /// The variable holding the access key id, as the jobs' SDK reads it.
    pub access_key_var: String,
    /// The variable holding the secret access key.
    pub secret_key_var: String,
}

/// Whose CI/CD variables hold the broker keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VariableTarget {
    /// A project (id or full path): only its pipelines see the keys.
    Project(String),
    /// A group: every project below it sees the keys, so scope the variables by environment.
    Group(String),
}

/// `[rollout]`: how target roles reach the accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    /// StackSets are named `<prefix>-<environment>`.
    pub stack_set_prefix: String,
    /// Who administers the StackSets.
    pub permission_model: PermissionModel,
}

/// CloudFormation StackSets' permission model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermissionModel {
    /// StackSets with the standard administration and execution roles.
    SelfManaged {
        /// The administration role in the broker account; default `AWSCloudFormationStackSetAdministrationRole` there.
        administration_role_arn: Option<RoleArn>,
        /// The role CloudFormation assumes in each target account.
        execution_role_name: String,
    },
    /// AWS Organizations-managed StackSets targeting organizational units.
    /// The organization's side of the call: whose StackSets these are.
    ServiceManaged {
        /// Whose StackSets: the delegated administrator's or the management account's.
        call_as: CallAs,
    },
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

/// GitLab's deployment tier of an environment, written into the rendered deploy job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(missing_docs)] // GitLab's five tiers, named as GitLab names them.
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

/// The kind of Git ref a job runs on: trust policies tell `ref_type:branch` from `ref_type:tag`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RefType {
    /// `CI_COMMIT_BRANCH` is set.
    Branch,
    /// `CI_COMMIT_TAG` is set.
    Tag,
}

impl RefType {
    /// The `ref_type` value of GitLab's ID token `sub`.
    pub fn as_str(self) -> &'static str {
        match self {
            RefType::Branch => "branch",
            RefType::Tag => "tag",
        }
    }
}

/// One `[environments.<name>]`: a service role, its target accounts and who may use them.
#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    /// The environment's name, as `--env` and StackSet names use it.
    pub name: String,
    /// The line of the environment's `[environments.<name>]` header (1-based).
    pub line: usize,
    /// Refuse unprotected refs before any AWS request (and require protected-ref globs).
    pub protected: bool,
    /// The GitLab deployment tier of its deploy jobs.
    pub tier: Tier,
    /// The service role's name in the broker account.
    pub service_role: String,
    /// The deployment role's name in every target account.
    pub deployment_role: String,
    /// The broker IAM user (access-keys mode).
    pub broker_user: String,
    /// The longest deployment session this environment hands out (900..=3600 s).
    pub max_session_secs: u64,
    /// An ExternalId the deployment role's trust requires, when set.
    pub external_id: Option<String>,
    /// Which GitLab projects, refs and environments may use it.
    pub gitlab: GitlabAccess,
    /// The target accounts, in file order.
    pub accounts: Vec<TargetAccount>,
    /// What the deployment role may do.
    pub permissions: Permissions,
    /// Service-managed StackSets: the OUs to deploy the target template to.
    pub organizational_units: Vec<String>,
    /// Gate mode (`auth.mode = "oidc-gate"`): the claim rules beyond `gitlab`
    /// (`[environments.<name>.gate]`, defaults filled in); `None` in the other modes.
    pub gate: Option<GateRules>,
    /// Per-project session policies for the deployment hop, first match wins
    /// (`[[environments.<name>.session_policies]]`).
    pub session_policies: Vec<SessionPolicyRule>,
    /// What a job matching no rule gets when there are rules (`session_policy_default`).
    pub session_policy_default: Unmatched,
    /// Extra session tags for the deployment hop (`[environments.<name>.session_tags]`):
    /// optional, dropped (with a warning) when STS finds the packed session too large.
    pub session_tags: Vec<crate::chain::Tag>,
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
    /// GitLab environment names; the first is the one the rendered deploy job uses and the
    /// `environment_scope` rotate writes the broker key under; all of them (later ones may be
    /// globs) are what the job check of assume/exec/doctor accepts as `CI_ENVIRONMENT_NAME`.
    /// No IAM policy carries them.
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

/// A target account: a name jobs pick with `--account` and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetAccount {
    /// The name jobs and GitLab job names use.
    pub name: String,
    /// The account.
    pub id: AccountId,
    /// The line of `name = "id"` in the topology file (1-based): where reports point.
    pub line: usize,
}

/// The deployment role's permissions.
#[derive(Debug, Clone, PartialEq)]
pub struct Permissions {
    /// AWS managed policies, or customer managed ones of the target account itself:
    /// `arn:aws:iam::${AWS::AccountId}:policy/<name>` names the policy `<name>` of each account.
    pub managed_policies: Vec<String>,
    /// Inline policies, parsed when the topology was read.
    pub inline_policies: Vec<InlinePolicy>,
    /// A permissions boundary capping everything the role's policies grant.
    pub boundary: Option<String>,
}

impl Permissions {
    /// The managed policy ARNs as attached in target account `account_id`:
    /// `${AWS::AccountId}` (the policy of that name in each account) resolved.
    pub fn managed_policies_in(&self, account_id: &str) -> Vec<String> {
        self.managed_policies
            .iter()
            .map(|a| a.replace(crate::validate::ACCOUNT_ID_VAR, account_id))
            .collect()
    }

    /// The boundary as attached in target account `account_id`.
    pub fn boundary_in(&self, account_id: &str) -> Option<String> {
        self.boundary
            .as_ref()
            .map(|b| b.replace(crate::validate::ACCOUNT_ID_VAR, account_id))
    }
}

/// An inline policy file of the deployment role.
#[derive(Debug, Clone, PartialEq)]
pub struct InlinePolicy {
    /// Policy name (the file stem).
    pub name: String,
    /// The path as written in the topology.
    pub path: String,
    /// The document, already accepted by rolehop's policy parser.
    pub document: serde_json::Value,
}

impl Topology {
    /// The environment called `name`.
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

    /// The service role of `env` in the broker account.
    pub fn service_role_arn(&self, env: &Environment) -> RoleArn {
        RoleArn::from_checked_parts(
            self.broker.partition,
            &self.broker.account_id,
            &env.service_role,
        )
    }

    /// The deployment role of `env` in `account`.
    pub fn deployment_role_arn(&self, env: &Environment, account: &TargetAccount) -> RoleArn {
        RoleArn::from_checked_parts(self.broker.partition, &account.id, &env.deployment_role)
    }

    /// The broker IAM user of `env` (access-keys mode).
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

    /// The ARN of [`Topology::gate_role_name`] in the broker account: the only principal the
    /// environment's service role trusts in gate mode.
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
    /// The target account called `name`.
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
