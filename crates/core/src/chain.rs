//! Planning a credential chain: base identity -> service role -> deployment role.
//!
//! Everything STS will check about the request is decided here, before any network call:
//! session names, SourceIdentity, session tags, external id and durations, each within AWS's
//! limits. The AWS rim only executes the plan.

use std::fmt::Write as _;
use std::sync::LazyLock;

use regex::Regex;
use sha2::{Digest, Sha256};

use crate::Secret;
use crate::duration::format_secs;
use crate::endpoint;
use crate::exit::{Exit, HasExit};
use crate::gitlab_ctx::JobContext;
use crate::ids::RoleArn;
use crate::topology::{CHAINED_SESSION_MAX_SECS, SESSION_MIN_SECS};
use crate::validate;

/// Static AWS credentials as the base identity (a broker user's keys, or any session).
#[derive(Debug, Clone)]
pub struct StaticKeys {
    /// The access key id (`AKIA…` for a user, `ASIA…` for a session); not secret, so kept plain.
    pub access_key_id: String,
    /// The secret half of the key pair, redacted in any debug output.
    pub secret_access_key: Secret,
    /// Present when the keys are themselves a session's temporary credentials.
    pub session_token: Option<Secret>,
}

/// How the job enters AWS, with the credential it enters with.
#[derive(Debug, Clone)]
pub enum Base {
    /// AWS credentials in the environment (a broker IAM user's keys): AssumeRole on the
    /// service role.
    AccessKeys(StaticKeys),
    /// A GitLab ID token exchanged with AssumeRoleWithWebIdentity for the service role.
    WebIdentity(Secret),
    /// A GitLab ID token posted to the claim gate, which answers with service-role
    /// credentials once GitLab's signature and the environment's claim rules hold.
    Gate {
        /// Which gate to post to and which of its environments to ask for.
        gate: GateTarget,
        /// The GitLab ID token, sent to the gate and never to STS.
        token: Secret,
    },
}

/// Where the claim gate is and which of its environments the job asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateTarget {
    /// Where the gate listens, checked to be https (or http to loopback).
    pub url: GateUrl,
    /// The environment's name in the gate's config (the topology's environment).
    pub environment: String,
}

/// The gate's URL: https, or plain http only to loopback (the token and the issued
/// credentials cross it, as with the STS endpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateUrl(String);

impl GateUrl {
    /// Checks the scheme and the loopback rule.
    pub fn parse(raw: &str) -> Result<GateUrl, PlanError> {
        let url = raw.trim();
        let bad = |why: &str| PlanError::BadGateUrl {
            url: url.to_owned(),
            why: why.to_owned(),
        };
        if let Some(host) = endpoint::cleartext_off_machine(url) {
            return Err(bad(&format!(
                "plain http to `{host}` would send the ID token and the service-role credentials unencrypted; use https (plain http only to 127.0.0.1, [::1] or localhost)"
            )));
        }
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(|| bad("the URL must start with https://"))?;
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(bad("the URL names no host"));
        }
        if url.contains(['?', '#']) {
            return Err(bad("the URL must not carry a query or a fragment"));
        }
        Ok(GateUrl(url.to_owned()))
    }

    /// The URL as validated, for the HTTP client.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for GateUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the user asked for, already resolved to ARNs.
#[derive(Debug, Clone)]
pub struct ChainRequest {
    /// How the job enters AWS, with its credential.
    pub base: Base,
    /// The service role; behind the gate only known from the topology (for messages).
    pub service_role_arn: Option<String>,
    /// The role the job finally works as in the target account.
    pub deploy_role_arn: String,
    /// Requested deployment session length; `None` means the default (1 h).
    pub duration_secs: Option<u64>,
    /// The environment's `max_session`, when a topology is used.
    pub environment_max_secs: Option<u64>,
    /// The ExternalId the deployment role's trust requires, if it requires one.
    pub external_id: Option<String>,
    /// Whether to pass the job's session tags; off (`--no-tags`) for trust policies without `sts:TagSession`.
    pub tags: bool,
    /// Whether to set the job's SourceIdentity; off (`--no-source-identity`) for trust policies without `sts:SetSourceIdentity`.
    pub source_identity: bool,
    /// The session policy and extra tags of the deployment hop (from the topology).
    pub deployment_session: DeploymentSession,
}

/// What the topology adds to the deployment hop: the job's session policy and the
/// environment's extra session tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentSession {
    /// The inline session policy (`Policy`), compact JSON.
    pub policy: Option<String>,
    /// Managed session policies (`PolicyArns`), resolved for the target account.
    pub policy_arns: Vec<String>,
    /// Extra session tags, optional: dropped when STS finds the session too large
    /// (`PackedPolicyTooLarge`), sent only when tags are on.
    pub optional_tags: Vec<Tag>,
}

/// Which role of the chain a hop reaches; it names the hop in messages and outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HopRole {
    /// The broker account's service role (the first hop).
    Service,
    /// The target account's deployment role (the last hop).
    Deployment,
}

impl HopRole {
    /// `service role` / `deployment role`, as messages and `--format json` say it.
    pub fn label(self) -> &'static str {
        match self {
            HopRole::Service => "service role",
            HopRole::Deployment => "deployment role",
        }
    }
}

impl std::fmt::Display for HopRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// A session tag; all of rolehop's tags are transitive so they survive the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// The tag key, as IAM conditions name it (`aws:PrincipalTag/<key>`).
    pub key: String,
    /// The tag value, sanitized to the characters STS accepts.
    pub value: String,
}

/// One `sts:AssumeRole` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// The role to assume.
    pub role_arn: String,
    /// The role session name, `gl-<project>-<pipeline>-<job>`, which CloudTrail records.
    pub session_name: String,
    /// The requested session length, already clamped to what STS allows for this hop.
    pub duration_secs: u64,
    /// The job's SourceIdentity, which persists through the chain and cannot be changed later.
    pub source_identity: Option<String>,
    /// The session tags to pass; empty when tags are off or not set on this hop.
    pub tags: Vec<Tag>,
    /// The tag keys marked transitive so they survive the next AssumeRole of the chain.
    pub transitive_tag_keys: Vec<String>,
    /// The ExternalId the role's trust requires, if any.
    pub external_id: Option<String>,
    /// The inline session policy (`Policy`) narrowing this session, compact JSON.
    pub policy: Option<String>,
    /// Managed session policies (`PolicyArns`) narrowing this session.
    pub policy_arns: Vec<String>,
    /// Session tags that are not transitive and may be dropped when STS refuses the packed
    /// session as too large; sent after `tags`.
    pub optional_tags: Vec<Tag>,
}

impl Hop {
    /// Every tag the hop sends: the required ones, then the optional ones.
    pub fn all_tags(&self) -> impl Iterator<Item = &Tag> {
        self.tags.iter().chain(&self.optional_tags)
    }
}

/// One `sts:AssumeRoleWithWebIdentity` call: STS takes neither tags nor a SourceIdentity
/// there (they would have to be claims in the token, and GitLab's tokens have none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebIdentityHop {
    /// The service role to assume.
    pub role_arn: String,
    /// The role session name, `gl-<project>-<pipeline>-<job>`, which CloudTrail records.
    pub session_name: String,
    /// The requested session length, already clamped to what STS allows.
    pub duration_secs: u64,
}

/// How the chain reaches the service role, with the credential it spends.
#[derive(Debug, Clone)]
pub enum FirstHop {
    /// Access keys -> service role with AssumeRole, carrying the job's SourceIdentity and
    /// session tags (they persist through the chain).
    AccessKeys {
        /// The base identity's keys, which sign the AssumeRole call.
        keys: StaticKeys,
        /// The AssumeRole call on the service role.
        hop: Hop,
    },
    /// ID token -> service role with AssumeRoleWithWebIdentity.
    WebIdentity {
        /// The GitLab ID token STS verifies against the account's OIDC provider.
        token: Secret,
        /// The AssumeRoleWithWebIdentity call on the service role.
        hop: WebIdentityHop,
    },
    /// ID token -> the claim gate, which assumes the service role itself (session name,
    /// SourceIdentity and tags from the verified claims) and returns its credentials.
    Gate {
        /// The GitLab ID token the gate verifies before it assumes the service role.
        token: Secret,
        /// Which gate to post to and which of its environments to ask for.
        gate: GateTarget,
        /// The service role the topology names, for messages; the gate decides.
        service_role_arn: Option<String>,
    },
}

impl FirstHop {
    /// The service role's ARN when the plan knows it.
    pub fn service_role_arn(&self) -> Option<&str> {
        match self {
            FirstHop::AccessKeys { hop, .. } => Some(&hop.role_arn),
            FirstHop::WebIdentity { hop, .. } => Some(&hop.role_arn),
            FirstHop::Gate {
                service_role_arn, ..
            } => service_role_arn.as_deref(),
        }
    }
}

/// A chain that can only be valid: a first hop of a known kind, then the deployment hop.
#[derive(Debug, Clone)]
pub struct ChainPlan {
    /// How the chain reaches the service role.
    pub first: FirstHop,
    /// The AssumeRole call from the service role to the deployment role.
    pub deployment: Hop,
    /// Adjustments the user should know about (clamped durations, skipped tags).
    pub notes: Vec<String>,
}

/// Why a chain cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A role ARN (or a missing one) that STS would refuse.
    #[error("{which}: {message}")]
    BadRoleArn {
        /// Which role it is (`service role ARN` or `deployment role ARN`), so the user knows which to fix.
        which: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A requested session shorter than STS's 15-minute minimum.
    #[error(
        "a session of {} is too short: STS refuses less than 15m, and SDKs would refresh credentials before every call",
        format_secs(*.requested)
    )]
    DurationTooShort {
        /// The requested session length, in seconds.
        requested: u64,
    },
    /// An external id outside STS's length or character rules; the message says which.
    #[error("{0}")]
    BadExternalId(String),
    /// A gate URL that is not https (or http to loopback), or names no host.
    #[error("gate URL `{url}`: {why}")]
    BadGateUrl {
        /// The URL as given, trimmed.
        url: String,
        /// Which rule it breaks.
        why: String,
    },
}

impl HasExit for PlanError {
    fn exit(&self) -> Exit {
        Exit::Input
    }
}

/// The first hop only has to live long enough to make the second call, so it gets STS's
/// minimum: a leaked service-role session is worth as little as possible.
pub const SERVICE_HOP_SECS: u64 = SESSION_MIN_SECS;

/// Plans the two hops for `req` in the GitLab job `job`.
pub fn plan(req: &ChainRequest, job: &JobContext) -> Result<ChainPlan, PlanError> {
    let role_arn = |s: &str| s.parse::<RoleArn>().map_err(|e| e.to_string());
    if let Some(arn) = &req.service_role_arn {
        role_arn(arn).map_err(|message| PlanError::BadRoleArn {
            which: "service role ARN",
            message,
        })?;
    }
    role_arn(&req.deploy_role_arn).map_err(|message| PlanError::BadRoleArn {
        which: "deployment role ARN",
        message,
    })?;
    if let Some(x) = &req.external_id {
        validate::external_id(x).map_err(PlanError::BadExternalId)?;
    }
    let mut notes = Vec::new();

    let ceiling = req
        .environment_max_secs
        .map_or(CHAINED_SESSION_MAX_SECS, |m| {
            m.min(CHAINED_SESSION_MAX_SECS)
        });
    // Without a request the session is simply as long as allowed; only an explicit request
    // that cannot be honoured is worth a note.
    let Some(requested) = req.duration_secs else {
        return finish(req, job, ceiling, notes);
    };
    if requested < SESSION_MIN_SECS {
        return Err(PlanError::DurationTooShort { requested });
    }
    let mut duration = requested;
    if duration > CHAINED_SESSION_MAX_SECS {
        duration = CHAINED_SESSION_MAX_SECS;
        notes.push(format!(
            "session clamped from {} to 1h: the deployment role is reached by role chaining, which AWS caps at 1h",
            format_secs(requested)
        ));
    }
    if duration > ceiling {
        notes.push(format!(
            "session clamped from {} to {}: the environment's max_session",
            format_secs(duration),
            format_secs(ceiling)
        ));
        duration = ceiling;
    }
    finish(req, job, duration, notes)
}

fn service_arn(req: &ChainRequest) -> Result<String, PlanError> {
    req.service_role_arn
        .clone()
        .ok_or_else(|| PlanError::BadRoleArn {
            which: "service role ARN",
            message: "none given: only the claim gate picks the service role itself".into(),
        })
}

fn finish(
    req: &ChainRequest,
    job: &JobContext,
    duration: u64,
    mut notes: Vec<String>,
) -> Result<ChainPlan, PlanError> {
    let session_name = session_name(job);
    let deployment = |source_identity: Option<String>, tags: Vec<Tag>| Hop {
        role_arn: req.deploy_role_arn.clone(),
        session_name: session_name.clone(),
        duration_secs: duration,
        source_identity,
        transitive_tag_keys: tag_keys(&tags),
        tags,
        external_id: req.external_id.clone(),
        policy: req.deployment_session.policy.clone(),
        policy_arns: req.deployment_session.policy_arns.clone(),
        optional_tags: if req.tags {
            req.deployment_session.optional_tags.clone()
        } else {
            Vec::new()
        },
    };
    let source_identity = req.source_identity.then(|| source_identity(job));
    let tags = if req.tags {
        session_tags(job)
    } else {
        Vec::new()
    };
    let (first, deployment) = match &req.base {
        // The gate sets the session name, SourceIdentity and tags from the verified claims
        // on the service-role session; they persist into the deployment hop, which may not
        // set them again.
        Base::Gate { gate, token } => (
            FirstHop::Gate {
                token: token.clone(),
                gate: gate.clone(),
                service_role_arn: req.service_role_arn.clone(),
            },
            deployment(None, Vec::new()),
        ),
        // With access keys the identity goes on the first hop and persists through the
        // chain.
        Base::AccessKeys(keys) => (
            FirstHop::AccessKeys {
                keys: keys.clone(),
                hop: Hop {
                    role_arn: service_arn(req)?,
                    session_name: session_name.clone(),
                    duration_secs: SERVICE_HOP_SECS,
                    source_identity,
                    transitive_tag_keys: tag_keys(&tags),
                    tags: tags.clone(),
                    external_id: None,
                    policy: None,
                    policy_arns: Vec::new(),
                    optional_tags: Vec::new(),
                },
            },
            deployment(None, Vec::new()),
        ),
        // AssumeRoleWithWebIdentity cannot carry it, so in OIDC mode it goes on the second
        // hop.
        Base::WebIdentity(token) => (
            FirstHop::WebIdentity {
                token: token.clone(),
                hop: WebIdentityHop {
                    role_arn: service_arn(req)?,
                    session_name: session_name.clone(),
                    duration_secs: SERVICE_HOP_SECS,
                },
            },
            deployment(source_identity, tags.clone()),
        ),
    };
    let local_tags = !matches!(req.base, Base::Gate { .. });
    if local_tags && req.tags && tags.is_empty() {
        notes.push("no session tags: not running in a GitLab job (no CI_* variables)".into());
    }
    Ok(ChainPlan {
        first,
        deployment,
        notes,
    })
}

fn tag_keys(tags: &[Tag]) -> Vec<String> {
    tags.iter().map(|t| t.key.clone()).collect()
}

/// Keeps STS's `[\w+=,.@-]`, maps everything else to `-`, and fits 2..=64 characters.
pub fn sanitize_sts_name(raw: &str) -> String {
    let mut s: String = raw
        .chars()
        .map(|c| {
            if validate::is_sts_name_char(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    while s.chars().count() < 2 {
        s.push('-');
    }
    s
}

/// `gl-<project id>-<pipeline id>-<job id>`: unique per job and searchable in CloudTrail.
pub fn session_name(job: &JobContext) -> String {
    match (&job.project_id, &job.pipeline_id, &job.job_id) {
        (Some(p), Some(pl), Some(j)) => sanitize_sts_name(&format!("gl-{p}-{pl}-{j}")),
        (_, _, Some(j)) => sanitize_sts_name(&format!("gl-job-{j}")),
        _ => "rolehop-local".to_owned(),
    }
}

/// How much of a too-long project path a SourceIdentity keeps: with `+`, the project id and
/// the pipeline id it stays within STS's 64 characters for any realistic ids.
const SOURCE_IDENTITY_PATH_PREFIX: usize = 32;

/// A project path as SourceIdentity writes it: `/` becomes `.` (GitLab paths use only
/// letters, digits, `_`, `-` and `.` otherwise, all in STS's charset).
fn dotted(path: &str) -> String {
    path.replace('/', ".")
}

/// `<group>.<project>@<pipeline id>`: who deployed, fixed for the whole chain. A path too long
/// for 64 characters keeps its first 32 characters, then `+<project id>` (`+` never occurs in
/// a GitLab path, so the short form of another project cannot be claimed this way). Trust
/// policies hold the same shape ([`source_identity_patterns`]).
pub fn source_identity(job: &JobContext) -> String {
    let pipeline = job.pipeline_id.as_deref().unwrap_or("local");
    let raw = match &job.project_path {
        Some(p) => format!("{}@{pipeline}", dotted(p)),
        None => format!("rolehop@{pipeline}"),
    };
    let mut si = sanitize_sts_name(&raw);
    if let Some(p) = &job.project_path
        && raw.chars().count() > 64
    {
        let id = job.project_id.as_deref().unwrap_or("0");
        let prefix: String = dotted(p)
            .chars()
            .take(SOURCE_IDENTITY_PATH_PREFIX)
            .collect();
        si = sanitize_sts_name(&format!("{prefix}+{id}@{pipeline}"));
    }
    if si.starts_with("aws:") {
        si = format!("gl-{si}");
    }
    si
}

/// The longest pipeline id a SourceIdentity is planned for (u64 in decimal).
const PIPELINE_ID_MAX_DIGITS: usize = 20;

/// The `StringLike` patterns on `sts:SourceIdentity` that admit exactly the identities
/// [`source_identity`] gives jobs of `project` (a path, or a topology glob with `*`):
/// `<dotted path>@*`, and for paths that may not fit, the cut form `<first 32>+*`.
/// Anyone holding the base credential still chooses the value; this only keeps a session of
/// one environment from naming a project outside it.
pub fn source_identity_patterns(project: &str) -> Vec<String> {
    let d = dotted(project);
    let mut out = vec![format!("{d}@*")];
    let literal: String = d.chars().take_while(|&c| c != '*').collect();
    let may_be_cut = d.contains('*') || d.chars().count() + 1 + PIPELINE_ID_MAX_DIGITS > 64;
    // `acme.shop-*@*` already admits `acme.shop-<rest>+<id>@<pipeline>`.
    let covered = d.ends_with('*')
        && d.matches('*').count() == 1
        && literal.chars().count() <= SOURCE_IDENTITY_PATH_PREFIX;
    if may_be_cut && !covered {
        let cut: String = literal.chars().take(SOURCE_IDENTITY_PATH_PREFIX).collect();
        if cut.chars().count() == SOURCE_IDENTITY_PATH_PREFIX {
            out.push(format!("{cut}+*"));
        } else {
            // The glob's `*` comes before the cut: any continuation of its literal part.
            out.push(format!("{cut}*+*"));
        }
    }
    out
}

/// The session tag keys rolehop sets (all transitive); trust policies admit no other key.
pub const SESSION_TAG_KEYS: [&str; 5] = [
    "gitlab:project",
    "gitlab:ref",
    "gitlab:pipeline",
    "gitlab:job",
    "gitlab:environment",
];

/// STS's session tag charset. `char::is_alphanumeric` is not `\p{L}\p{N}`: it also admits
/// combining marks (Devanagari vowel signs) and symbols such as `Ⓐ`, which STS refuses.
static TAG_CHAR: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^[\p{L}\p{Z}\p{N}_.:/=+\-@]$").ok());

pub(crate) fn is_tag_char(c: char) -> bool {
    // ASCII first: the usual ref never pays for compiling the Unicode classes.
    if c.is_ascii() {
        return c.is_ascii_alphanumeric()
            || matches!(c, ' ' | '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@');
    }
    let mut buf = [0u8; 4];
    match TAG_CHAR.as_ref() {
        Some(re) => re.is_match(c.encode_utf8(&mut buf)),
        // Unreachable (the pattern is fixed); escaping is always accepted.
        None => false,
    }
}

/// STS's limit on a session tag value, in characters.
pub const TAG_VALUE_MAX: usize = 256;

/// Fits a value to the session tag charset and 256 characters without ever giving two values
/// the same tag (a policy on `aws:PrincipalTag/gitlab:ref` must not match another ref):
/// characters STS accepts stay as they are, except `=`; `=` and every other character become
/// `=XX` per UTF-8 byte. An encoding over 256 characters is cut and ends in `==` (which no
/// uncut encoding contains) and 128 bits of the raw value's SHA-256.
pub fn sanitize_tag_value(raw: &str) -> String {
    let mut out = String::new();
    for c in raw.chars() {
        if c != '=' && is_tag_char(c) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "={b:02X}");
            }
        }
    }
    if out.chars().count() <= TAG_VALUE_MAX {
        return out;
    }
    let digest = Sha256::digest(raw.as_bytes());
    let mut hash = String::new();
    for b in digest.iter().take(16) {
        let _ = write!(hash, "{b:02x}");
    }
    let mut cut: String = out.chars().take(TAG_VALUE_MAX - 2 - hash.len()).collect();
    cut.push_str("==");
    cut.push_str(&hash);
    cut
}

/// The job's identity as session tags (project, ref, pipeline, job, environment).
pub fn session_tags(job: &JobContext) -> Vec<Tag> {
    let values = [
        &job.project_path,
        &job.ref_name,
        &job.pipeline_id,
        &job.job_id,
        &job.environment,
    ];
    SESSION_TAG_KEYS
        .into_iter()
        .zip(values)
        .filter_map(|(k, v)| {
            v.as_ref().map(|v| Tag {
                key: k.to_owned(),
                value: sanitize_tag_value(v),
            })
        })
        .collect()
}

/// rolehop refuses a protected environment from an unprotected ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The protected environment the job asked for.
    pub environment: String,
    /// The job's ref (`CI_COMMIT_REF_NAME`), when GitLab set it.
    pub ref_name: Option<String>,
    /// The topology's mode when known (`Some(true)` for OIDC): what should already have kept
    /// the job out differs, and the message names the right one.
    pub oidc: Option<bool>,
}

impl Refusal {
    /// The refusal worded for the topology's mode (`Some(true)`: OIDC).
    pub fn in_mode(self, oidc: Option<bool>) -> Self {
        Self { oidc, ..self }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.ref_name.as_deref().unwrap_or("(unknown ref)");
        let env = &self.environment;
        let first_line = match self.oidc {
            Some(true) => format!(
                "the service role's trust admits only the refs the topology names for `{env}`, which GitLab should protect, so this job's ID token should not reach `{env}`"
            ),
            Some(false) => format!(
                "GitLab's protected variables and protected environments should already keep this job from `{env}`'s broker key"
            ),
            None => format!(
                "GitLab's protected variables and environments (access keys) or the service role's trust (OIDC) should already keep this job from `{env}`"
            ),
        };
        write!(
            f,
            "refusing to hand out credentials for protected environment `{env}` from unprotected ref `{r}` \
             (CI_COMMIT_REF_PROTECTED is not `true`).\n\
             This is defence in depth: {first_line}; deploy from a protected branch or tag, or, for local use only, \
             pass --allow-unprotected-ref"
        )
    }
}

impl std::error::Error for Refusal {}

impl HasExit for Refusal {
    fn exit(&self) -> Exit {
        Exit::Refused
    }
}

/// Refuses protected environments outside protected refs unless `allow_override`.
pub fn check_protected(
    environment: &str,
    protected: bool,
    job: &JobContext,
    allow_override: bool,
) -> Result<(), Refusal> {
    if !protected || job.ref_protected || allow_override {
        return Ok(());
    }
    Err(Refusal {
        environment: environment.to_owned(),
        ref_name: job.ref_name.clone(),
        oidc: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> JobContext {
        JobContext {
            project_path: Some("acme/app".into()),
            project_id: Some("42".into()),
            pipeline_id: Some("1001".into()),
            job_id: Some("5005".into()),
            ref_name: Some("feature/x#1".into()),
            environment: Some("production".into()),
            ..JobContext::default()
        }
    }

    fn keys() -> StaticKeys {
        StaticKeys {
            access_key_id: "AKIAEXAMPLE".into(),
            secret_access_key: crate::secret::secret("s"),
            session_token: None,
        }
    }

    fn req(base: Base) -> ChainRequest {
        ChainRequest {
            base,
            service_role_arn: Some("arn:aws:iam::111111111111:role/svc".into()),
            deploy_role_arn: "arn:aws:iam::222222222222:role/deploy".into(),
            duration_secs: None,
            environment_max_secs: None,
            external_id: None,
            tags: true,
            source_identity: true,
            deployment_session: Default::default(),
        }
    }

    fn first_assume(p: &ChainPlan) -> &Hop {
        match &p.first {
            FirstHop::AccessKeys { hop, .. } => hop,
            other => panic!("not an access-key first hop: {other:?}"),
        }
    }

    #[test]
    fn access_keys_put_identity_on_the_first_hop() {
        let p = plan(&req(Base::AccessKeys(keys())), &job()).unwrap();
        let first = first_assume(&p);
        assert_eq!(first.session_name, "gl-42-1001-5005");
        assert_eq!(first.source_identity.as_deref(), Some("acme.app@1001"));
        assert_eq!(first.tags.len(), 5);
        assert_eq!(first.transitive_tag_keys.len(), 5);
        assert_eq!(first.duration_secs, 900);
        assert!(p.deployment.tags.is_empty() && p.deployment.source_identity.is_none());
        assert_eq!(p.deployment.duration_secs, 3600);
    }

    #[test]
    fn web_identity_moves_identity_to_the_second_hop() {
        let p = plan(&req(Base::WebIdentity(crate::secret::secret("t"))), &job()).unwrap();
        assert!(matches!(&p.first, FirstHop::WebIdentity { hop, .. } if hop.duration_secs == 900));
        assert_eq!(
            p.deployment.source_identity.as_deref(),
            Some("acme.app@1001")
        );
        assert_eq!(p.deployment.tags.len(), 5);
    }

    fn gate_base(url: &str) -> Base {
        Base::Gate {
            gate: GateTarget {
                url: GateUrl::parse(url).unwrap(),
                environment: "prod".into(),
            },
            token: crate::secret::secret("t"),
        }
    }

    #[test]
    fn behind_the_gate_the_deployment_hop_sets_no_identity_of_its_own() {
        // The gate's session carries SourceIdentity and transitive tags from signed claims;
        // STS refuses a chained hop that tries to set them again, and CI_* values must not
        // replace them.
        let mut r = req(gate_base("https://gate.example.com/"));
        r.service_role_arn = None;
        let p = plan(&r, &job()).unwrap();
        assert!(matches!(&p.first, FirstHop::Gate { gate, .. } if gate.environment == "prod"));
        assert!(p.deployment.tags.is_empty() && p.deployment.source_identity.is_none());
        assert_eq!(p.deployment.session_name, "gl-42-1001-5005");
        assert!(p.notes.is_empty());
        // Only the gate may leave the service role to someone else.
        let mut r = req(Base::AccessKeys(keys()));
        r.service_role_arn = None;
        assert!(matches!(
            plan(&r, &job()),
            Err(PlanError::BadRoleArn { .. })
        ));
    }

    #[test]
    fn the_gate_url_is_https_or_loopback() {
        for ok in [
            "https://gate.example.com",
            "http://127.0.0.1:8080/",
            "http://localhost:1/v1/credentials",
            "http://[::1]:80",
        ] {
            assert!(GateUrl::parse(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("http://gate.example.com", "plain http"),
            ("http://127.0.0.1.evil.example/", "plain http"),
            ("gate.example.com", "https://"),
            ("ftp://gate", "https://"),
            ("https://", "no host"),
            ("https://gate.example.com/?env=prod", "query"),
        ] {
            let e = GateUrl::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why) && e.starts_with("gate URL"), "{bad}: {e}");
        }
    }

    #[test]
    fn durations_are_clamped_with_a_note_or_refused() {
        let mut r = req(Base::AccessKeys(keys()));
        r.duration_secs = Some(7200);
        let p = plan(&r, &job()).unwrap();
        assert_eq!(p.deployment.duration_secs, 3600);
        assert!(p.notes[0].contains("role chaining"));
        r.environment_max_secs = Some(1800);
        let p = plan(&r, &job()).unwrap();
        assert_eq!(p.deployment.duration_secs, 1800);
        // Without a request, the environment's maximum is simply the length, no note.
        r.duration_secs = None;
        let p = plan(&r, &job()).unwrap();
        assert_eq!(p.deployment.duration_secs, 1800);
        assert!(p.notes.is_empty());
        r.duration_secs = Some(600);
        assert_eq!(
            plan(&r, &job()).unwrap_err(),
            PlanError::DurationTooShort { requested: 600 }
        );
    }

    #[test]
    fn names_fit_sts_rules() {
        assert_eq!(sanitize_sts_name("a"), "a-");
        assert_eq!(sanitize_sts_name("a b/c"), "a-b-c");
        assert_eq!(sanitize_sts_name(&"x".repeat(100)).len(), 64);
        let mut j = job();
        j.project_path = Some(format!("{}/app", "g".repeat(80)));
        assert_eq!(source_identity(&j), format!("{}+42@1001", "g".repeat(32)));
        assert_eq!(session_name(&JobContext::default()), "rolehop-local");
    }

    /// IAM's `StringLike` for the test: `*` any run, `?` one character.
    fn like(pattern: &str, value: &str) -> bool {
        match pattern.chars().next() {
            None => value.is_empty(),
            Some('*') => (0..=value.len())
                .filter(|&i| value.is_char_boundary(i))
                .any(|i| like(&pattern[1..], &value[i..])),
            Some(c) => {
                value.starts_with(c) && like(&pattern[c.len_utf8()..], &value[c.len_utf8()..])
            }
        }
    }

    #[test]
    fn source_identity_patterns_admit_the_project_and_no_other() {
        let si = |path: &str, id: &str, pipeline: &str| {
            let mut j = job();
            j.project_path = Some(path.into());
            j.project_id = Some(id.into());
            j.pipeline_id = Some(pipeline.into());
            source_identity(&j)
        };
        let admits = |project: &str, si: &str| {
            source_identity_patterns(project)
                .iter()
                .any(|p| like(p, si))
        };
        assert_eq!(source_identity_patterns("acme/shop"), ["acme.shop@*"]);
        assert!(admits("acme/shop", &si("acme/shop", "42", "12345678901")));
        assert!(!admits("acme/shop", &si("acme/shopping", "43", "1")));
        assert!(!admits("acme/shop", &si("acme/shop/sub", "44", "1")));
        assert!(!admits("acme/shop", &si("evil/shop", "45", "1")));
        // A glob admits what it admits in `sub` (subgroups too), nothing beside it.
        assert!(admits("acme/shop-*", &si("acme/shop-api/x", "46", "1")));
        assert!(!admits("acme/shop-*", &si("acme/shop", "47", "1")));
        // Paths too long for 64 characters keep a prefix and the project id; the trust keeps
        // admitting them, and only them.
        let long = format!("acme/{}", "deep-group/".repeat(5) + "app");
        let s = si(&long, "123456", "98765432109");
        assert!(s.contains('+') && s.len() <= 64, "{s}");
        assert!(
            admits(&long, &s),
            "{s} vs {:?}",
            source_identity_patterns(&long)
        );
        assert!(admits("acme/*", &s));
        assert!(!admits("acme/shop", &s));
        assert!(!admits("other/*", &s));
    }

    #[test]
    fn tag_values_are_sanitised() {
        let tags = session_tags(&job());
        let r = tags.iter().find(|t| t.key == "gitlab:ref").unwrap();
        assert_eq!(r.value, "feature/x=231");
        assert_eq!(sanitize_tag_value(&"é".repeat(300)).chars().count(), 256);
        // What STS accepts stays readable, so policies can name ordinary refs.
        assert_eq!(
            sanitize_tag_value("release/1.2-rc+b@x"),
            "release/1.2-rc+b@x"
        );
        assert_eq!(sanitize_tag_value("日本 ١٢"), "日本 ١٢");
    }

    /// STS's own check for a session tag value, written from its API model.
    fn sts_accepts_tag_value(v: &str) -> bool {
        let re = regex::Regex::new(r"^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$").unwrap();
        re.is_match(v) && v.chars().count() <= 256
    }

    /// Values a GitLab job can really carry: branch names may hold nearly anything git allows.
    fn awkward_refs() -> Vec<String> {
        vec![
            "feature/x#1".into(),
            "feature/x_1".into(),
            "feature/x=1".into(),
            "feature/x=231".into(),
            "fix 🚀 launch".into(),
            "fix 🚁 launch".into(),
            "feature/हिन्दी".into(),
            "Ⓐ-team".into(),
            "e\u{301}te".into(),
            "main".into(),
            format!("{}-a", "x".repeat(300)),
            format!("{}-b", "x".repeat(300)),
            "é".repeat(300),
        ]
    }

    #[test]
    fn tag_values_only_hold_characters_sts_accepts() {
        // `char::is_alphanumeric` is not `\p{L}\p{N}`: it also admits combining marks such as
        // Devanagari vowel signs and symbols such as `Ⓐ`, which STS refuses with a
        // ValidationError that fails the whole chain.
        for raw in awkward_refs() {
            let mut j = job();
            j.ref_name = Some(raw.clone());
            j.project_path = Some(format!("grüppe/{raw}"));
            j.environment = Some(raw.clone());
            let p = plan(&req(Base::AccessKeys(keys())), &j).unwrap();
            for t in &first_assume(&p).tags {
                assert!(
                    sts_accepts_tag_value(&t.value),
                    "STS would refuse {}=`{}` (from `{raw}`)",
                    t.key,
                    t.value
                );
            }
        }
    }

    #[test]
    fn different_refs_never_share_a_tag_value() {
        // A policy on `aws:PrincipalTag/gitlab:ref` must not be satisfiable by another ref:
        // `release#1` must not pass for `release_1`, nor one 300-character branch for
        // another with the same first 256 characters.
        let awkward = awkward_refs();
        let mut seen = std::collections::BTreeMap::new();
        for raw in &awkward {
            let v = sanitize_tag_value(raw);
            if let Some(other) = seen.insert(v.clone(), raw.clone()) {
                panic!("`{raw}` and `{other}` both become tag value `{v}`");
            }
        }
    }

    #[test]
    fn switches_turn_tags_and_identity_off() {
        let mut r = req(Base::AccessKeys(keys()));
        r.tags = false;
        r.source_identity = false;
        let p = plan(&r, &job()).unwrap();
        assert!(
            [first_assume(&p), &p.deployment]
                .iter()
                .all(|h| h.tags.is_empty() && h.source_identity.is_none())
        );
    }

    #[test]
    fn the_session_policy_and_optional_tags_go_on_the_deployment_hop_only() {
        let session = DeploymentSession {
            policy: Some("{\"Statement\":[]}".into()),
            policy_arns: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()],
            optional_tags: vec![Tag {
                key: "team".into(),
                value: "payments".into(),
            }],
        };
        for base in [
            Base::AccessKeys(keys()),
            Base::WebIdentity(crate::secret::secret("t")),
        ] {
            let mut r = req(base);
            r.deployment_session = session.clone();
            let p = plan(&r, &job()).unwrap();
            let d = &p.deployment;
            assert_eq!(d.policy, session.policy);
            assert_eq!(d.policy_arns, session.policy_arns);
            assert_eq!(d.optional_tags, session.optional_tags);
            // Optional tags are not transitive: nothing after this hop needs them.
            assert!(!d.transitive_tag_keys.contains(&"team".to_owned()));
            assert!(d.all_tags().any(|t| t.key == "team"));
            if let FirstHop::AccessKeys { hop, .. } = &p.first {
                assert!(hop.policy.is_none() && hop.optional_tags.is_empty());
            }
            // --no-tags sends no tag at all, the optional ones included; the policy stays.
            r.tags = false;
            let p = plan(&r, &job()).unwrap();
            assert!(p.deployment.all_tags().next().is_none());
            assert_eq!(p.deployment.policy, session.policy);
        }
    }

    #[test]
    fn bad_arns_name_the_hop() {
        let mut r = req(Base::AccessKeys(keys()));
        r.deploy_role_arn = "arn:aws:iam::2222:role/x".into();
        assert!(
            plan(&r, &job())
                .unwrap_err()
                .to_string()
                .starts_with("deployment role ARN")
        );
    }

    #[test]
    fn protected_environments_need_protected_refs() {
        let mut j = job();
        assert!(
            check_protected("prod", true, &j, false)
                .unwrap_err()
                .to_string()
                .contains("defence in depth")
        );
        assert!(check_protected("prod", true, &j, true).is_ok());
        assert!(check_protected("dev", false, &j, false).is_ok());
        j.ref_protected = true;
        assert!(check_protected("prod", true, &j, false).is_ok());
    }

    #[test]
    fn the_refusal_names_what_should_have_kept_the_job_out_in_each_mode() {
        let r = check_protected("prod", true, &job(), false).unwrap_err();
        let oidc = r.clone().in_mode(Some(true)).to_string();
        assert!(
            oidc.contains(
                "the service role's trust admits only the refs the topology names for `prod`"
            ) && !oidc.contains("broker"),
            "{oidc}"
        );
        let keys = r.in_mode(Some(false)).to_string();
        assert!(keys.contains("from `prod`'s broker key"), "{keys}");
    }
}
