//! `rolehop.toml`, the one declarative input of render, rollout, audit, rotate and
//! `assume --config`. Parsed once into validated types; every rule broken is reported with
//! the file, line and column of the offending value.

use std::fmt;
use std::ops::Range;

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

use crate::duration::{format_secs, parse_duration_secs};
use crate::span::{Location, caret, printable};
use crate::validate;

/// AWS caps any session reached by role chaining at one hour.
pub const CHAINED_SESSION_MAX_SECS: u64 = 3600;
/// STS's minimum session, and the least that keeps SDKs from refreshing before every call.
pub const SESSION_MIN_SECS: u64 = 900;

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
            Auth::AccessKeys => None,
        }
    }
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

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// One broken rule, located in the user's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub location: Location,
    /// A short stable name of the rule (`account-id`, `role-name`, `shared-account`, ...).
    pub rule: &'static str,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} [{}]{}",
            printable(&self.location.to_string()),
            printable(&self.message),
            self.rule,
            caret(&self.location)
        )
    }
}

/// Everything wrong with a topology file (all rules are checked, not just the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyError {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.diagnostics.len();
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        if n > 1 {
            write!(f, "\n{n} problems in the topology")?;
        }
        Ok(())
    }
}

impl std::error::Error for TopologyError {}

// ---------------------------------------------------------------------------------------------
// Raw, as written
// ---------------------------------------------------------------------------------------------

type S<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopology {
    broker: S<RawBroker>,
    auth: S<RawAuth>,
    gitlab: Option<S<RawGitlab>>,
    rollout: Option<S<RawRollout>>,
    pipeline: Option<S<RawPipeline>>,
    #[serde(default)]
    environments: IndexMap<S<String>, S<RawEnv>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    component: Option<S<String>>,
    image: Option<S<String>>,
    rolehop_version: Option<S<String>>,
    rolehop_sha256: Option<S<String>>,
    package_registry: Option<S<String>>,
    deploy_script: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBroker {
    account_id: S<String>,
    region: S<String>,
    partition: Option<S<String>>,
    stack_name: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    mode: S<String>,
    issuer: Option<S<String>>,
    audience: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGitlab {
    url: Option<S<String>>,
    project: Option<S<String>>,
    group: Option<S<String>>,
    access_key_var: Option<S<String>>,
    secret_key_var: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRollout {
    stack_set_prefix: Option<S<String>>,
    permission_model: Option<S<String>>,
    administration_role_arn: Option<S<String>>,
    execution_role_name: Option<S<String>>,
    call_as: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnv {
    #[serde(default)]
    protected: bool,
    tier: Option<S<String>>,
    service_role: Option<S<String>>,
    deployment_role: Option<S<String>>,
    broker_user: Option<S<String>>,
    max_session: Option<S<RawDuration>>,
    external_id: Option<S<String>>,
    gitlab: S<RawAccess>,
    #[serde(default)]
    accounts: IndexMap<S<String>, S<String>>,
    #[serde(default)]
    permissions: Option<S<RawPermissions>>,
    #[serde(default)]
    organizational_units: Vec<S<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawDuration {
    Secs(i64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccess {
    projects: Vec<S<String>>,
    #[serde(default)]
    branches: Vec<S<String>>,
    #[serde(default)]
    tags: Vec<S<String>>,
    #[serde(default)]
    protected_ref_globs: Vec<S<String>>,
    #[serde(default)]
    accept_project_globs: Vec<S<String>>,
    #[serde(default)]
    environments: Vec<S<String>>,
    /// Replaced by `branches`/`tags`; read only to tell how to rewrite them.
    refs: Option<S<toml::Value>>,
    ref_types: Option<S<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPermissions {
    #[serde(default)]
    managed_policies: Vec<S<String>>,
    #[serde(default)]
    inline_policies: Vec<S<String>>,
    boundary: Option<S<String>>,
}

// ---------------------------------------------------------------------------------------------
// Parsing and validation
// ---------------------------------------------------------------------------------------------

/// Reads an inline policy file named in the topology (relative paths are the caller's concern).
pub type ReadFile<'a> = dyn FnMut(&str) -> Result<String, String> + 'a;

struct Checker<'a> {
    file: &'a str,
    src: &'a str,
    diagnostics: Vec<Diagnostic>,
}

impl Checker<'_> {
    /// The 1-based line of `span` in the file.
    fn line(&self, span: Range<usize>) -> usize {
        Location::from_span(self.file, self.src, span).line
    }

    fn report(&mut self, span: Range<usize>, rule: &'static str, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic {
            location: Location::from_span(self.file, self.src, span),
            rule,
            message: message.into(),
        });
    }

    fn check(
        &mut self,
        v: &S<String>,
        rule: &'static str,
        f: impl FnOnce(&str) -> Result<(), String>,
    ) {
        if let Err(m) = f(v.get_ref()) {
            self.report(v.span(), rule, m);
        }
    }
}

impl Topology {
    /// Parses and validates `src`; `file` names it in messages and `read` loads inline policy
    /// files named in it.
    pub fn parse(
        file: &str,
        src: &str,
        read: &mut ReadFile<'_>,
    ) -> Result<Topology, TopologyError> {
        let raw: RawTopology = toml::from_str(src).map_err(|e| TopologyError {
            diagnostics: vec![Diagnostic {
                location: e.span().map_or_else(
                    || Location::file_only(file),
                    |s| Location::from_span(file, src, s),
                ),
                rule: "syntax",
                message: e.message().trim().to_owned(),
            }],
        })?;
        let mut c = Checker {
            file,
            src,
            diagnostics: Vec::new(),
        };
        let topo = build(&mut c, raw, read);
        if c.diagnostics.is_empty() {
            Ok(topo)
        } else {
            Err(TopologyError {
                diagnostics: c.diagnostics,
            })
        }
    }
}

fn build(c: &mut Checker<'_>, raw: RawTopology, read: &mut ReadFile<'_>) -> Topology {
    let rb = raw.broker.into_inner();
    c.check(&rb.account_id, "account-id", validate::account_id);
    c.check(&rb.region, "region", validate::region);
    let partition = rb.partition.map_or_else(
        || "aws".to_owned(),
        |p| {
            if !matches!(p.get_ref().as_str(), "aws" | "aws-cn" | "aws-us-gov") {
                c.report(
                    p.span(),
                    "partition",
                    format!(
                        "unknown partition `{}` (aws, aws-cn, aws-us-gov)",
                        p.get_ref()
                    ),
                );
            }
            p.into_inner()
        },
    );
    if let Some(n) = &rb.stack_name {
        c.check(n, "stack-name", |s| {
            validate::stack_name("stack name", s, 128)
        });
    }
    let stack_name = opt_string(rb.stack_name, "rolehop-broker");
    let broker = Broker {
        account_id: rb.account_id.into_inner(),
        region: rb.region.into_inner(),
        partition,
        stack_name,
    };

    let auth_span = raw.auth.span();
    let ra = raw.auth.into_inner();
    let auth = match ra.mode.get_ref().as_str() {
        "access-keys" => {
            for extra in [&ra.issuer, &ra.audience].into_iter().flatten() {
                c.report(
                    extra.span(),
                    "auth-mode",
                    "`issuer` and `audience` only apply to `mode = \"oidc\"`",
                );
            }
            Auth::AccessKeys
        }
        "oidc" => {
            match ra.issuer {
                Some(issuer) => {
                    c.check(&issuer, "oidc-issuer", validate::issuer_url);
                    let audience = match ra.audience {
                        Some(a) if a.get_ref().trim().is_empty() => {
                            c.report(a.span(), "oidc-audience", "the audience must not be empty");
                            String::new()
                        }
                        Some(a) => {
                            // The OIDC provider's client id list takes 1 to 255 characters.
                            c.check(&a, "oidc-audience", |s| {
                                if s.chars().count() > 255 {
                                    return Err(format!(
                                        "the audience has {} characters; AWS allows at most 255",
                                        s.chars().count()
                                    ));
                                }
                                if s.contains('$') {
                                    return Err(format!("audience `{s}` contains `$`: GitLab expands variables in `id_tokens:aud` (since 16.1), so the ID token's `aud` would not be the audience the trust policy names"));
                                }
                                validate::no_dynamic_reference(s)
                            });
                            a.into_inner()
                        }
                        None => issuer.get_ref().clone(),
                    };
                    Auth::Oidc {
                        issuer: issuer.into_inner(),
                        audience,
                    }
                }
                None => {
                    c.report(auth_span, "oidc-issuer", "`mode = \"oidc\"` needs `issuer` (the GitLab URL, e.g. `https://gitlab.com`)");
                    Auth::Oidc {
                        issuer: String::new(),
                        audience: String::new(),
                    }
                }
            }
        }
        other => {
            c.report(
                ra.mode.span(),
                "auth-mode",
                format!("unknown auth mode `{other}`: use `access-keys` or `oidc`"),
            );
            Auth::AccessKeys
        }
    };

    let gitlab = raw.gitlab.map(|g| {
        let span = g.span();
        let g = g.into_inner();
        if let Some(u) = &g.url
            && !((u.get_ref().starts_with("https://") || u.get_ref().starts_with("http://"))
                && u.get_ref().chars().all(|ch| ch.is_ascii_graphic())) {
                c.report(u.span(), "gitlab-url", format!("`{}` is not an http(s) URL", u.get_ref()));
            }
        for t in [&g.project, &g.group].into_iter().flatten() {
            let ok = !t.get_ref().is_empty() && t.get_ref().chars().all(|ch| is_glob_char(ch) && ch != '*');
            if !ok {
                c.report(t.span(), "gitlab-target", format!("`{}` is not a GitLab project or group path (letters, digits, `_`, `.`, `-`, `/`)", t.get_ref()));
            }
        }
        let target = match (g.project, g.group) {
            (Some(p), None) => VariableTarget::Project(p.into_inner()),
            (None, Some(gr)) => VariableTarget::Group(gr.into_inner()),
            (Some(p), Some(_)) => {
                c.report(p.span(), "gitlab-target", "set either `project` or `group`, not both");
                VariableTarget::Project(p.into_inner())
            }
            (None, None) => {
                c.report(span, "gitlab-target", "`[gitlab]` needs `project` or `group`: where rotate writes the broker keys");
                VariableTarget::Project(String::new())
            }
        };
        let var = |c: &mut Checker<'_>, v: Option<S<String>>, default: &str| {
            v.map_or_else(|| default.to_owned(), |v| {
                let ok = !v.get_ref().is_empty()
                    && v.get_ref().len() <= 255
                    && v.get_ref().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !ok {
                    c.report(v.span(), "gitlab-variable", format!("`{}` is not a GitLab variable key (letters, digits and `_`, at most 255)", v.get_ref()));
                }
                v.into_inner()
            })
        };
        GitlabSettings {
            url: g.url.map(Spanned::into_inner),
            target,
            access_key_var: var(c, g.access_key_var, "AWS_ACCESS_KEY_ID"),
            secret_key_var: var(c, g.secret_key_var, "AWS_SECRET_ACCESS_KEY"),
        }
    });

    let rollout = match raw.rollout {
        None => Rollout {
            stack_set_prefix: "rolehop".into(),
            permission_model: PermissionModel::SelfManaged {
                administration_role_arn: None,
                execution_role_name: "AWSCloudFormationStackSetExecutionRole".into(),
            },
        },
        Some(r) => {
            let r = r.into_inner();
            if let Some(p) = &r.stack_set_prefix {
                // StackSets are named `<prefix>-<environment>`, environments up to 32 characters.
                c.check(p, "stack-set-prefix", |s| {
                    validate::stack_name("StackSet prefix", s, 128 - 33)
                });
            }
            let prefix = opt_string(r.stack_set_prefix, "rolehop");
            let model = match r.permission_model.as_ref().map(|m| m.get_ref().as_str()) {
                None | Some("self-managed") => {
                    if let Some(a) = &r.call_as {
                        c.report(a.span(), "call-as", "`call_as` applies to service-managed StackSets only: self-managed StackSets belong to the account rollout runs in");
                    }
                    if let Some(a) = &r.administration_role_arn {
                        c.check(a, "role-arn", |s| validate::role_arn(s).map(|_| ()));
                    }
                    let exec = r.execution_role_name.map_or_else(
                        || "AWSCloudFormationStackSetExecutionRole".to_owned(),
                        |e| {
                            c.check(&e, "role-name", |s| {
                                validate::iam_name("execution role name", s)
                            });
                            e.into_inner()
                        },
                    );
                    PermissionModel::SelfManaged {
                        administration_role_arn: r.administration_role_arn.map(Spanned::into_inner),
                        execution_role_name: exec,
                    }
                }
                Some("service-managed") => {
                    let call_as = match r.call_as.as_ref().map(|a| a.get_ref().as_str()) {
                        None | Some("delegated-admin") => CallAs::DelegatedAdmin,
                        Some("management-account") => CallAs::Management,
                        Some(other) => {
                            if let Some(a) = &r.call_as {
                                c.report(a.span(), "call-as", format!("unknown `call_as` `{other}`: use `delegated-admin` (the broker account is a delegated StackSets administrator) or `management-account`"));
                            }
                            CallAs::DelegatedAdmin
                        }
                    };
                    PermissionModel::ServiceManaged { call_as }
                }
                Some(other) => {
                    if let Some(m) = &r.permission_model {
                        c.report(m.span(), "permission-model", format!("unknown permission model `{other}`: use `self-managed` or `service-managed`"));
                    }
                    PermissionModel::ServiceManaged {
                        call_as: CallAs::DelegatedAdmin,
                    }
                }
            };
            Rollout {
                stack_set_prefix: prefix,
                permission_model: model,
            }
        }
    };

    let mut environments = Vec::new();
    if raw.environments.is_empty() {
        c.report(
            0..0,
            "no-environments",
            "the topology defines no environment: add `[environments.<name>]`",
        );
    }
    // account id -> (environment, account name, span) of its first use
    let mut account_owner: IndexMap<String, (String, String)> = IndexMap::new();
    let mut role_owner: IndexMap<String, String> = IndexMap::new();
    let mut user_owner: IndexMap<String, String> = IndexMap::new();
    for (name, env) in raw.environments {
        let env_span = env.span();
        let e = build_env(
            c,
            &broker,
            &name,
            env.into_inner(),
            read,
            &mut account_owner,
            &rollout.permission_model,
        );
        if matches!(
            rollout.permission_model,
            PermissionModel::ServiceManaged { .. }
        ) && e.organizational_units.is_empty()
        {
            c.report(
                env_span.clone(),
                "organizational-unit",
                format!(
                    "environment `{}` lists no `organizational_units`: service-managed StackSets (`[rollout] permission_model = \"service-managed\"`) deploy only to organizational units",
                    e.name
                ),
            );
        }
        if let Some(prev) = role_owner.insert(e.service_role.clone(), e.name.clone()) {
            c.report(env_span.clone(), "shared-service-role", format!("environments `{prev}` and `{}` share the service role `{}`: each environment needs its own, or one could reach the other's accounts", e.name, e.service_role));
        }
        if matches!(broker_auth(&auth), AuthKind::Keys)
            && let Some(prev) = user_owner.insert(e.broker_user.clone(), e.name.clone())
        {
            c.report(
                env_span,
                "shared-broker-user",
                format!(
                    "environments `{prev}` and `{}` share the broker user `{}`",
                    e.name, e.broker_user
                ),
            );
        }
        environments.push(e);
    }
    if let (Some(g), AuthKind::Keys) = (&gitlab, broker_auth(&auth)) {
        // Rotation writes one variable pair per environment scope; two environments with the
        // same scope would overwrite each other's keys.
        let mut seen: IndexMap<&str, &str> = IndexMap::new();
        for e in &environments {
            if let Some(prev) = seen.insert(e.gitlab.primary_environment(), &e.name) {
                c.report(0..0, "variable-scope", format!("environments `{prev}` and `{}` both use GitLab environment `{}`: their `{}` variables would overwrite each other", e.name, e.gitlab.primary_environment(), g.access_key_var));
            }
        }
    }

    let pipeline = raw
        .pipeline
        .map_or(Pipeline::Inline, |p| build_pipeline(c, p));

    Topology {
        origin: c.file.to_owned(),
        broker,
        auth,
        gitlab,
        rollout,
        pipeline,
        environments,
    }
}

/// `[pipeline]`: with `component`, every input the component requires must be given, each in
/// the shape the component's install step checks, so a render never ships a job that fails at
/// its first line.
fn build_pipeline(c: &mut Checker<'_>, p: S<RawPipeline>) -> Pipeline {
    let span = p.span();
    let p = p.into_inner();
    let Some(component) = p.component else {
        if let Some(other) = [
            &p.image,
            &p.rolehop_version,
            &p.rolehop_sha256,
            &p.package_registry,
            &p.deploy_script,
        ]
        .into_iter()
        .flatten()
        .next()
        {
            c.report(other.span(), "pipeline-component", "these `[pipeline]` settings are inputs of rolehop's CI/CD component: set `component` too, or remove them");
        }
        return Pipeline::Inline;
    };
    c.check(&component, "pipeline-component", |s| {
        let (path, version) = s.rsplit_once('@').ok_or_else(|| {
            format!("`{s}` is not a component address: `<host>/<group>/<project>/deploy@<version>`")
        })?;
        let ok_path = path.split('/').count() >= 3
            && path.ends_with("/deploy")
            && path.chars().all(|ch| {
                ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.' | '/' | '$' | ':')
            });
        let ok_version = !version.is_empty()
            && version
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.' | '$' | '~'));
        if ok_path && ok_version {
            Ok(())
        } else {
            Err(format!(
                "`{s}` is not a component address: `<host>/<group>/<project>/deploy@<version>`"
            ))
        }
    });
    let need = |c: &mut Checker<'_>,
                v: Option<S<String>>,
                key: &str,
                check: fn(&str) -> Result<(), String>|
     -> String {
        match v {
            Some(v) => {
                c.check(&v, "pipeline-component", check);
                v.into_inner()
            }
            None => {
                c.report(span.clone(), "pipeline-component", format!("`[pipeline]` with `component` needs `{key}`: the component refuses to run without it"));
                String::new()
            }
        }
    };
    let one_line = |s: &str| -> Result<(), String> {
        if s.is_empty() || s.chars().any(char::is_control) {
            Err(format!("`{s}` must be one non-empty line"))
        } else {
            Ok(())
        }
    };
    let image = need(c, p.image, "image", one_line);
    let rolehop_version = need(c, p.rolehop_version, "rolehop_version", |s| {
        if !s.is_empty()
            && s.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | '+'))
        {
            Ok(())
        } else {
            Err(format!("`{s}` is not a release version (e.g. `0.1.0`)"))
        }
    });
    let rolehop_sha256 = need(c, p.rolehop_sha256, "rolehop_sha256", |s| {
        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) { Ok(()) } else { Err(format!("`{s}` is not a SHA-256 (64 hex digits): pin the checksum published with the release")) }
    }).to_ascii_lowercase();
    let package_registry = need(c, p.package_registry, "package_registry", |s| {
        let http = s.starts_with("https://") || s.starts_with("http://");
        if !http || !s.chars().all(|ch| ch.is_ascii_graphic()) {
            Err(format!("`{s}` is not an http(s) URL"))
        } else if crate::endpoint::cleartext_off_machine(s).is_some() {
            Err(format!(
                "`{s}` is plain http off this machine: the install refuses it (https only, or loopback)"
            ))
        } else {
            Ok(())
        }
    });
    let deploy_script = need(c, p.deploy_script, "deploy_script", one_line);
    Pipeline::Component(ComponentSettings {
        component: component.into_inner(),
        image,
        rolehop_version,
        rolehop_sha256,
        package_registry: package_registry.trim_end_matches('/').to_owned(),
        deploy_script,
    })
}

enum AuthKind {
    Keys,
    Oidc,
}

fn broker_auth(a: &Auth) -> AuthKind {
    match a {
        Auth::AccessKeys => AuthKind::Keys,
        Auth::Oidc { .. } => AuthKind::Oidc,
    }
}

/// CloudFormation's pattern for OU and root ids in DeploymentTargets:
/// `ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}` or `r-[a-z0-9]{4,32}`.
fn organizational_unit_id_ok(id: &str) -> bool {
    let part = |s: &str, min: usize, max: usize| {
        (min..=max).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    if let Some(rest) = id.strip_prefix("ou-") {
        rest.split_once('-')
            .is_some_and(|(root, ou)| part(root, 4, 32) && part(ou, 8, 32))
    } else if let Some(root) = id.strip_prefix("r-") {
        part(root, 4, 32)
    } else {
        false
    }
}

/// The first key or string of a JSON document CloudFormation would resolve at deploy time.
fn dynamic_reference_in(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => validate::no_dynamic_reference(s).err(),
        serde_json::Value::Array(a) => a.iter().find_map(dynamic_reference_in),
        serde_json::Value::Object(m) => m.iter().find_map(|(k, v)| {
            validate::no_dynamic_reference(k)
                .err()
                .or_else(|| dynamic_reference_in(v))
        }),
        _ => None,
    }
}

/// Why IAM would not take `doc` as a role's inline (identity) policy, if it would not: what
/// rolehop's policy parser refuses (with the JSON path), or a `Principal`, which identity
/// policies must not have.
fn inline_policy_problem(doc: &serde_json::Value) -> Option<String> {
    if doc.get("Statement").is_none() {
        return Some("has no `Statement`".to_owned());
    }
    match rolehop_policy::Policy::from_value(doc) {
        Err(e) => Some(format!("is not a policy IAM accepts: {e}")),
        Ok(p) => p.statements.iter().find(|st| st.principal.is_some()).map(|st| {
            format!(
                "is an identity policy and must not name a principal: `Statement[{}]` has `Principal`/`NotPrincipal` (IAM refuses it)",
                st.index
            )
        }),
    }
}

fn opt_string(v: Option<S<String>>, default: &str) -> String {
    v.map_or_else(|| default.to_owned(), Spanned::into_inner)
}

fn is_glob_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '*')
}

/// What IAM's `StringLike` makes of a project glob, for messages.
fn project_glob_admits(glob: &str) -> String {
    format!(
        "`{glob}` admits every project whose path matches it, in that group and in every subgroup below it (IAM's `*` matches any characters, `/` included)"
    )
}

/// A character git refuses in ref names or IAM would read as a pattern or policy variable.
fn bad_ref_char(c: char) -> bool {
    c.is_whitespace() || c.is_control() || matches!(c, ':' | '?' | '[' | '\\' | '~' | '^' | '$')
}

/// The `[environments.<name>.gitlab]` table: projects, branches, tags and what a protected
/// environment must acknowledge about their globs.
fn build_access(
    c: &mut Checker<'_>,
    env: &str,
    protected: bool,
    raw: S<RawAccess>,
) -> GitlabAccess {
    let access_span = raw.span();
    let ra = raw.into_inner();
    let migrated = refs_split(c, env, &ra);

    if ra.projects.is_empty() {
        c.report(
            access_span.clone(),
            "gitlab-projects",
            "`projects` must name at least one GitLab project path (`group/project`)",
        );
    }
    for p in &ra.projects {
        let s = p.get_ref();
        let top = s.split('/').next().unwrap_or("");
        if top.contains('*') {
            c.report(p.span(), "gitlab-project", format!("`{s}` has a wildcard in the top-level group, so it admits projects of any namespace whose name matches (anyone on the GitLab instance may create one); name the top-level group exactly"));
        } else if s.is_empty()
            || !s.contains('/')
            || !s.chars().all(is_glob_char)
            || s.split('/').any(str::is_empty)
        {
            c.report(
                p.span(),
                "gitlab-project",
                format!("`{s}` is not a GitLab project path (`group/project`, `group/subgroup/project`; `*` globs only below the top-level group)"),
            );
        } else if protected
            && is_glob(s)
            && !ra.accept_project_globs.iter().any(|a| a.get_ref() == s)
        {
            c.report(
                p.span(),
                "project-glob",
                format!(
                    "{} in protected environment `{env}`: whoever can create such a project reaches `{env}`; name the projects exactly, or accept it with `accept_project_globs = [\"{s}\"]`",
                    project_glob_admits(s)
                ),
            );
        }
    }
    for a in &ra.accept_project_globs {
        let s = a.get_ref();
        if !is_glob(s) || !ra.projects.iter().any(|p| p.get_ref() == s) {
            c.report(a.span(), "project-glob", format!("`{s}` in `accept_project_globs` is not a project glob listed in `projects`: list only the globs of `projects` you accept"));
        }
    }

    if ra.branches.is_empty() && ra.tags.is_empty() && !migrated {
        c.report(
            access_span,
            "gitlab-refs",
            "list the refs that may use this environment: `branches = [...]` and/or `tags = [...]` (names or `*` globs)",
        );
    }
    for (kind, plural, list) in [
        ("branch", "branches", &ra.branches),
        ("tag", "tags", &ra.tags),
    ] {
        for r in list {
            let s = r.get_ref();
            if s.is_empty() || s.chars().any(bad_ref_char) {
                c.report(
                    r.span(),
                    "gitlab-ref",
                    format!("`{s}` is not a {kind} name or glob (`*` is the only wildcard; no spaces, `:`, `?`, `[`, `\\`, `~`, `^` or `$`)"),
                );
            } else if protected
                && s.contains('*')
                && !ra.protected_ref_globs.iter().any(|g| g.get_ref() == s)
            {
                let what = if s == "*" {
                    format!("every {kind}")
                } else {
                    format!("every {kind} whose name matches `{s}`")
                };
                c.report(
                    r.span(),
                    "protected-ref-glob",
                    format!(
                        "{kind} glob `{s}` of protected environment `{env}` admits {what} (IAM's `*` matches any characters, `/` included), so anyone who can push such a {kind} reaches `{env}`; name exact {plural}, or protect every matching {kind} in GitLab and say so with `protected_ref_globs = [\"{s}\"]`"
                    ),
                );
            }
        }
    }
    for g in &ra.protected_ref_globs {
        let s = g.get_ref();
        let listed = ra.branches.iter().chain(&ra.tags).any(|r| r.get_ref() == s);
        if !s.contains('*') || !listed {
            c.report(g.span(), "protected-ref-glob", format!("`{s}` in `protected_ref_globs` is not a glob listed in `branches` or `tags`: list only the globs GitLab protects (exact names need no entry)"));
        }
    }

    for (i, ge) in ra.environments.iter().enumerate() {
        c.check(ge, "gitlab-environment", |s| {
            validate::gitlab_environment(s, i == 0)
        });
    }
    let strings = |v: Vec<S<String>>| v.into_iter().map(Spanned::into_inner).collect::<Vec<_>>();
    let mut environments = strings(ra.environments);
    if environments.is_empty() {
        environments.push(env.to_owned());
    }
    GitlabAccess {
        projects: strings(ra.projects),
        branches: strings(ra.branches),
        tags: strings(ra.tags),
        protected_ref_globs: strings(ra.protected_ref_globs),
        accept_project_globs: strings(ra.accept_project_globs),
        environments,
    }
}

/// Refuses the old `refs`/`ref_types` keys, which paired every ref with every ref type (so
/// `refs = ["main", "v*"]` trusted any *branch* `v...` too), telling how to rewrite them.
/// Returns whether they were present.
fn refs_split(c: &mut Checker<'_>, env: &str, ra: &RawAccess) -> bool {
    let list = |v: &Option<S<toml::Value>>| -> Vec<String> {
        v.as_ref()
            .and_then(|v| v.get_ref().as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|x| x.as_str().map(|s| format!("\"{s}\"")))
            .collect()
    };
    let refs = list(&ra.refs).join(", ");
    let types = list(&ra.ref_types);
    let has = |t: &str| types.iter().any(|x| x == &format!("\"{t}\""));
    let rewrite = match (has("branch"), has("tag")) {
        // Without `ref_types` the old schema meant branches.
        (_, false) => format!("`branches = [{refs}]`"),
        (false, true) => format!("`tags = [{refs}]`"),
        (true, true) => format!(
            "`branches = [...]` for the branch names and `tags = [...]` for the tag names among [{refs}] (for example `branches = [\"main\"]`, `tags = [\"v*\"]`)"
        ),
    };
    let why = "`refs` and `ref_types` were replaced by `branches` and `tags`: pairing every ref with every ref type trusted branches named like tags (a pushed branch `v-pwn` matched `v*`) and tags named like branches";
    let mut old: Vec<&S<toml::Value>> = [&ra.refs, &ra.ref_types].into_iter().flatten().collect();
    // In file order, as every other diagnostic.
    old.sort_by_key(|v| v.span().start);
    let any = !old.is_empty();
    for v in old {
        c.report(
            v.span(),
            "refs-split",
            format!("{why}; in `[environments.{env}.gitlab]` write {rewrite}"),
        );
    }
    any
}

fn build_env(
    c: &mut Checker<'_>,
    broker: &Broker,
    name: &S<String>,
    e: RawEnv,
    read: &mut ReadFile<'_>,
    account_owner: &mut IndexMap<String, (String, String)>,
    permission_model: &PermissionModel,
) -> Environment {
    let n = name.get_ref().clone();
    let name_ok = !n.is_empty()
        && n.len() <= 32
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !n.starts_with('-');
    if !name_ok {
        c.report(name.span(), "environment-name", format!("environment name `{n}` must be 1 to 32 of `a-z`, `0-9` and `-` (it becomes part of role, user and stack names)"));
    }
    let tier = match e.tier.as_ref().map(|t| t.get_ref().as_str()) {
        None => {
            if e.protected {
                Tier::Production
            } else {
                Tier::Development
            }
        }
        Some("production") => Tier::Production,
        Some("staging") => Tier::Staging,
        Some("testing") => Tier::Testing,
        Some("development") => Tier::Development,
        Some("other") => Tier::Other,
        Some(other) => {
            if let Some(t) = &e.tier {
                c.report(t.span(), "tier", format!("unknown deployment tier `{other}` (production, staging, testing, development, other)"));
            }
            Tier::Other
        }
    };
    let role = |c: &mut Checker<'_>, v: Option<S<String>>, kind: &str, default: String| match v {
        Some(v) => {
            c.check(&v, "role-name", |s| validate::iam_name(kind, s));
            v.into_inner()
        }
        None => {
            if name_ok && validate::iam_name(kind, &default).is_err() {
                c.report(
                    name.span(),
                    "role-name",
                    format!("the default {kind} `{default}` is too long; set it explicitly"),
                );
            }
            default
        }
    };
    let service_role = role(
        c,
        e.service_role,
        "service role name",
        format!("rolehop-{n}-service"),
    );
    let deployment_role = role(
        c,
        e.deployment_role,
        "deployment role name",
        format!("rolehop-{n}-deploy"),
    );
    let broker_user = role(c, e.broker_user, "broker user name", format!("rolehop-{n}"));

    let max_session_secs = match e.max_session {
        None => CHAINED_SESSION_MAX_SECS,
        Some(d) => {
            let span = d.span();
            let secs = match d.into_inner() {
                RawDuration::Secs(s) => u64::try_from(s).map_err(|_| format!("`{s}` is negative")),
                RawDuration::Text(t) => parse_duration_secs(&t),
            };
            match secs {
                Ok(s) if (SESSION_MIN_SECS..=CHAINED_SESSION_MAX_SECS).contains(&s) => s,
                Ok(s) => {
                    c.report(span, "session-duration", format!(
                        "max_session {} is outside {}..{}: deployment sessions are reached by role chaining, which AWS caps at 1h, and STS refuses less than 15m",
                        format_secs(s), format_secs(SESSION_MIN_SECS), format_secs(CHAINED_SESSION_MAX_SECS)));
                    CHAINED_SESSION_MAX_SECS
                }
                Err(m) => {
                    c.report(span, "session-duration", m);
                    CHAINED_SESSION_MAX_SECS
                }
            }
        }
    };
    if let Some(x) = &e.external_id {
        c.check(x, "external-id", validate::external_id);
    }

    let gitlab = build_access(c, &n, e.protected, e.gitlab);

    if e.accounts.is_empty() {
        c.report(name.span(), "no-accounts", format!("environment `{n}` has no target account: add `[environments.{n}.accounts]` with `name = \"123456789012\"`"));
    }
    let mut accounts = Vec::new();
    for (an, id) in e.accounts {
        let an_s = an.get_ref();
        // Account names are part of GitLab job names, which GitLab caps at 255 characters.
        if an_s.is_empty()
            || an_s.len() > 64
            || !an_s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            c.report(
                an.span(),
                "account-name",
                format!("account name `{an_s}` may only use letters, digits, `-` and `_`, at most 64 characters"),
            );
        }
        c.check(&id, "account-id", validate::account_id);
        if id.get_ref() == &broker.account_id {
            c.report(id.span(), "broker-as-target", format!("target `{an_s}` is the broker account `{}`: the broker holds nothing but IAM, deploy to other accounts", broker.account_id));
        }
        if let Some((prev_env, prev_name)) = account_owner.get(id.get_ref()) {
            if prev_env == &n {
                c.report(
                    id.span(),
                    "duplicate-account",
                    format!(
                        "account `{}` is listed twice in `{n}` (as `{prev_name}` and `{an_s}`)",
                        id.get_ref()
                    ),
                );
            } else {
                c.report(id.span(), "shared-account", format!("account `{}` is a target of both `{prev_env}` (as `{prev_name}`) and `{n}` (as `{an_s}`): environments must not share target accounts, or one environment's credentials reach the other's", id.get_ref()));
            }
        } else {
            account_owner.insert(id.get_ref().clone(), (n.clone(), an_s.clone()));
        }
        accounts.push(TargetAccount {
            line: c.line(an.span()),
            name: an.into_inner(),
            id: id.into_inner(),
        });
    }

    let permissions = match e.permissions {
        None => Permissions {
            managed_policies: vec![],
            inline_policies: vec![],
            boundary: None,
        },
        Some(p) => {
            let p = p.into_inner();
            for a in &p.managed_policies {
                c.check(a, "policy-arn", validate::managed_policy_arn);
            }
            if p.managed_policies.len() > 20 {
                c.report(
                    p.managed_policies[20].span(),
                    "too-many-policies",
                    "a role can have at most 20 managed policies attached (IAM's hard quota)",
                );
            }
            if let Some(b) = &p.boundary {
                c.check(b, "policy-arn", validate::managed_policy_arn);
            }
            let mut inline = Vec::new();
            for path in &p.inline_policies {
                let stem = path
                    .get_ref()
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .trim_end_matches(".json")
                    .to_owned();
                if validate::iam_name("policy name", &stem).is_err() || stem.chars().count() > 128 {
                    c.report(path.span(), "policy-name", format!("inline policy file `{}` must have a name of letters, digits and `+=,.@_-` (it becomes the policy name)", path.get_ref()));
                }
                match read(path.get_ref()) {
                    Err(m) => c.report(
                        path.span(),
                        "policy-file",
                        format!("cannot read inline policy `{}`: {m}", path.get_ref()),
                    ),
                    Ok(text) => match serde_json::from_str::<serde_json::Value>(&text) {
                        Ok(doc) if let Some(m) = dynamic_reference_in(&doc) => {
                            c.report(
                                path.span(),
                                "policy-file",
                                format!("inline policy `{}`: {m}", path.get_ref()),
                            );
                        }
                        // Parsed with the evaluator's own parser: a document it refuses would
                        // be refused by IAM at deploy time, or silently grant nothing, and the
                        // audit could not evaluate it.
                        Ok(doc) => match inline_policy_problem(&doc) {
                            None => inline.push(InlinePolicy {
                                name: stem,
                                path: path.get_ref().clone(),
                                document: doc,
                            }),
                            Some(m) => c.report(
                                path.span(),
                                "policy-file",
                                format!("inline policy `{}` {m}", path.get_ref()),
                            ),
                        },
                        Err(err) => c.report(
                            path.span(),
                            "policy-file",
                            format!("inline policy `{}` is not JSON: {err}", path.get_ref()),
                        ),
                    },
                }
            }
            Permissions {
                managed_policies: p
                    .managed_policies
                    .into_iter()
                    .map(Spanned::into_inner)
                    .collect(),
                inline_policies: inline,
                boundary: p.boundary.map(Spanned::into_inner),
            }
        }
    };
    let organizational_units = e
        .organizational_units
        .into_iter()
        .map(|ou| {
            if !organizational_unit_id_ok(ou.get_ref()) {
                c.report(
                    ou.span(),
                    "organizational-unit",
                    format!(
                        "`{}` is not an organizational unit or root id (`ou-` 4-32 characters `-` 8-32 characters, or `r-` 4-32 characters; lowercase letters and digits)",
                        ou.get_ref()
                    ),
                );
            } else if !matches!(permission_model, PermissionModel::ServiceManaged { .. }) {
                // Self-managed StackSets take accounts only: the OU would be silently unused.
                c.report(
                    ou.span(),
                    "organizational-unit",
                    format!(
                        "`{}`: `organizational_units` are only used with `[rollout] permission_model = \"service-managed\"`",
                        ou.get_ref()
                    ),
                );
            }
            ou.into_inner()
        })
        .collect();

    Environment {
        line: c.line(name.span()),
        name: n,
        protected: e.protected,
        tier,
        service_role,
        deployment_role,
        broker_user,
        max_session_secs,
        external_id: e.external_id.map(Spanned::into_inner),
        gitlab,
        accounts,
        permissions,
        organizational_units,
    }
}
