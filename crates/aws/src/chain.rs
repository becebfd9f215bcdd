//! Executes a planned chain (base -> service role -> deployment role) against STS and turns
//! every failure into an explanation naming the hop, the role and the likely cause.

// A ChainError is built at most once per process, on its way to the user: its size costs
// nothing, and boxing it would only add noise to every `?`.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::types::Tag;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use secrecy::ExposeSecret;
use time::OffsetDateTime;
use tracing::{debug, info, warn};

use rolehop_core::Secret;
use rolehop_core::chain::{ChainPlan, FirstHop, Hop, HopRole, StaticKeys, WebIdentityHop};
use rolehop_core::credentials::{ChainOutcome, Credentials, HopOutcome};
use rolehop_core::exit::{Exit, HasExit};
use rolehop_core::secret::secret;

use crate::gate_client::{self, GateTransport, UreqGate};
use crate::sdk_error::{self, SdkFailure, ServiceErrorKind};
use crate::sts::{StsSettings, anonymous_client, base_config, client_with_keys};

/// The broad reason a hop failed; it decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// STS or the claim gate said no (trust policy, permissions, token, claim rule, external
    /// id, duration rules).
    Denied,
    /// STS or the gate could not be reached or kept failing after bounded retries.
    Unavailable,
    /// The base credentials themselves are invalid or expired.
    BadBaseCredentials,
    /// STS or the gate answered something rolehop did not expect.
    Unexpected,
}

impl FailureKind {
    /// The exit code a failed chain ends the process with.
    pub fn exit(self) -> Exit {
        match self {
            FailureKind::Denied | FailureKind::BadBaseCredentials => Exit::Denied,
            FailureKind::Unavailable => Exit::Unavailable,
            FailureKind::Unexpected => Exit::Internal,
        }
    }
}

/// Who answered (or failed to) for the hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// STS itself, for a hop that calls AssumeRole or AssumeRoleWithWebIdentity directly.
    Sts,
    /// The claim gate at `url`, asked for `environment`.
    Gate {
        /// The gate's URL, so the message says which gate refused.
        url: String,
        /// The gate environment the job asked for, whose claim rules decided.
        environment: String,
    },
}

/// A failed hop, with the service's own words and rolehop's explanation.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "{hop} hop failed: {what}{said}\n  likely cause: {hint}",
    what = what_failed(.origin, .role_arn),
    said = service_said(.origin, .code.as_deref(), .aws_message.as_deref())
)]
pub struct ChainError {
    /// Which hop of the chain failed, so the message names it.
    pub hop: HopRole,
    /// Who was asked, so the explanation can say whether STS or the gate refused.
    pub origin: Origin,
    /// The role the hop tried to assume.
    pub role_arn: String,
    /// How the failure is classified, which decides the exit code.
    pub kind: FailureKind,
    /// The service's error code (`AccessDenied`, or `HTTP 403` from the gate).
    pub code: Option<String>,
    /// The service's own message (from the gate: its reason, rule, expected and actual).
    pub aws_message: Option<String>,
    /// What most likely went wrong and how to fix it.
    pub hint: String,
    /// The hops that succeeded before this one (for `doctor`).
    pub completed: Vec<HopOutcome>,
}

impl HasExit for ChainError {
    fn exit(&self) -> Exit {
        self.kind.exit()
    }
}

impl ChainError {
    /// An error of rolehop's own making on `hop`, before or after any call.
    pub fn unexpected(hop: HopRole, role_arn: &str, hint: &str) -> ChainError {
        ChainError {
            hop,
            origin: Origin::Sts,
            role_arn: role_arn.to_owned(),
            kind: FailureKind::Unexpected,
            code: None,
            aws_message: None,
            hint: hint.into(),
            completed: Vec::new(),
        }
    }
}

fn what_failed(origin: &Origin, role_arn: &str) -> String {
    match origin {
        Origin::Sts => format!("could not assume `{role_arn}`"),
        Origin::Gate { url, environment } => {
            format!("the claim gate `{url}` gave no credentials for environment `{environment}`")
        }
    }
}

/// The service's code and message on their own line, as much of them as there is.
fn service_said(origin: &Origin, code: Option<&str>, message: Option<&str>) -> String {
    let who = match origin {
        Origin::Sts => "AWS said",
        Origin::Gate { .. } => "the gate said",
    };
    match (code, message) {
        (Some(c), Some(m)) => format!("\n  {who}: {c}: {m}"),
        (Some(c), None) => format!("\n  {who}: {c}"),
        (None, Some(m)) => format!("\n  {m}"),
        (None, None) => String::new(),
    }
}

/// Runs the plan with the default transports: the SDK's HTTP client for STS (or the one
/// injected in `settings`), ureq for the claim gate. This is the chain's entry point for
/// every command (assume, exec, credential-process, doctor).
pub async fn run(plan: &ChainPlan, settings: &StsSettings) -> Result<ChainOutcome, ChainError> {
    let gate: Arc<dyn GateTransport> = Arc::new(UreqGate::new(settings));
    run_with(plan, settings, gate).await
}

/// [`run`] with the claim gate's transport injected (recorded exchanges in tests).
pub async fn run_with(
    plan: &ChainPlan,
    settings: &StsSettings,
    gate: Arc<dyn GateTransport>,
) -> Result<ChainOutcome, ChainError> {
    let (service, first) = match &plan.first {
        FirstHop::AccessKeys { keys, hop } => {
            assume_one(hop, HopRole::Service, keys, settings).await?
        }
        FirstHop::WebIdentity { token, hop } => {
            let client = anonymous_client(base_config(settings));
            debug!(hop = "service role", role = %hop.role_arn, session = %hop.session_name, "assuming role with web identity");
            assume_web(&client, hop, token)
                .await
                .map_err(|e| through_proxy(e, settings))?
        }
        FirstHop::Gate {
            token,
            gate: target,
            service_role_arn,
        } => {
            debug!(gate = %target.url, environment = %target.environment, "asking the claim gate");
            gate_client::exchange(gate, settings, target, service_role_arn.as_deref(), token)
                .await?
        }
    };
    info!(hop = "service role", session = %first.assumed_role_arn, "assumed");
    let (credentials, deployment) = assume_one(
        &plan.deployment,
        HopRole::Deployment,
        &as_keys(&service),
        settings,
    )
    .await
    .map_err(|e| ChainError {
        completed: vec![first.clone()],
        ..e
    })?;
    info!(hop = "deployment role", session = %deployment.assumed_role_arn, "assumed");
    Ok(ChainOutcome {
        credentials,
        hops: vec![first, deployment],
    })
}

/// One AssumeRole with `keys`: the access-keys chain's service hop, the gate's own
/// service-role call, and every chain's deployment hop.
pub async fn assume_one(
    hop: &Hop,
    role: HopRole,
    keys: &StaticKeys,
    settings: &StsSettings,
) -> Result<(Credentials, HopOutcome), ChainError> {
    let client = client_with_keys(base_config(settings), keys);
    debug!(hop = role.label(), role = %hop.role_arn, session = %hop.session_name, "assuming role");
    assume_role(&client, hop, role)
        .await
        .map_err(|e| through_proxy(e, settings))
}

/// An unreachable STS behind a proxy is most often the proxy's doing: the hint says which
/// proxy (never its password) so the user does not hunt the network or the region.
fn through_proxy(mut e: ChainError, settings: &StsSettings) -> ChainError {
    if e.kind == FailureKind::Unavailable
        && let Some(note) = crate::sts::proxy_note(settings)
    {
        e.hint = format!("{note}; {}", e.hint);
    }
    e
}

fn as_keys(c: &Credentials) -> StaticKeys {
    StaticKeys {
        access_key_id: c.access_key_id.clone(),
        secret_access_key: c.secret_access_key.clone(),
        session_token: Some(c.session_token.clone()),
    }
}

fn duration_i32(secs: u64) -> i32 {
    i32::try_from(secs).unwrap_or(i32::MAX)
}

/// What STS was asked, for explaining its refusal.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    /// The hop's place in the chain, for the label in the error.
    pub role: HopRole,
    /// The role STS was asked to assume.
    pub role_arn: &'a str,
    /// AssumeRoleWithWebIdentity (an ID token), rather than AssumeRole.
    pub web_identity: bool,
    /// Whether session tags were sent, which needs `sts:TagSession` in the trust policy.
    pub tags: bool,
    /// The SourceIdentity sent, if any; a role whose trust lacks `sts:SetSourceIdentity` refuses it.
    pub source_identity: Option<&'a str>,
    /// Whether an ExternalId was sent, so a mismatch can be suggested as the cause.
    pub external_id: bool,
}

impl<'a> Asked<'a> {
    fn assume_role(hop: &'a Hop, role: HopRole) -> Self {
        Asked {
            role,
            role_arn: &hop.role_arn,
            web_identity: false,
            tags: !hop.tags.is_empty(),
            source_identity: hop.source_identity.as_deref(),
            external_id: hop.external_id.is_some(),
        }
    }
    fn web(hop: &'a WebIdentityHop) -> Self {
        Asked {
            role: HopRole::Service,
            role_arn: &hop.role_arn,
            web_identity: true,
            tags: false,
            source_identity: None,
            external_id: false,
        }
    }
}

async fn assume_role(
    client: &aws_sdk_sts::Client,
    hop: &Hop,
    role: HopRole,
) -> Result<(Credentials, HopOutcome), ChainError> {
    let asked = Asked::assume_role(hop, role);
    let tags = sdk_tags(hop.all_tags(), role, &hop.role_arn)?;
    let required = hop.tags.len();
    let first = send_assume_role(client, hop, &tags).await;
    let out = match first {
        Ok(out) => out,
        // Session tags and session policies share one packed size: the optional tags (the
        // topology's extras) are what can go without weakening anything rolehop relies on,
        // so drop them and try once more rather than fail the deploy.
        Err(e) if !hop.optional_tags.is_empty() && is_packed_too_large(&e) => {
            let dropped: Vec<&str> = hop.optional_tags.iter().map(|t| t.key.as_str()).collect();
            warn!(
                "STS found the {} session too large (PackedPolicyTooLarge); retrying once without the optional session tags {}",
                role.label(),
                dropped.join(", ")
            );
            send_assume_role(client, hop, &tags[..required])
                .await
                .map_err(|e| explain(&asked, &e))?
        }
        Err(e) => return Err(explain(&asked, &e)),
    };
    outcome(
        &asked,
        &hop.session_name,
        hop.tags.len(),
        out.assumed_role_user(),
        out.credentials(),
        out.source_identity(),
    )
}

type AssumeRoleResult = Result<
    aws_sdk_sts::operation::assume_role::AssumeRoleOutput,
    SdkError<aws_sdk_sts::operation::assume_role::AssumeRoleError, HttpResponse>,
>;

fn is_packed_too_large<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    e.as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .is_some_and(|c| c == "PackedPolicyTooLarge")
}

/// The SDK's tags for `tags`; the builder refuses only a missing key or value, which a planned
/// tag never has, so a refusal is rolehop's bug and says so.
fn sdk_tags<'t>(
    tags: impl Iterator<Item = &'t rolehop_core::chain::Tag>,
    role: HopRole,
    role_arn: &str,
) -> Result<Vec<Tag>, ChainError> {
    tags.map(|t| {
        Tag::builder()
            .key(&t.key)
            .value(&t.value)
            .build()
            .map_err(|e| {
                ChainError::unexpected(role, role_arn, &format!("bad session tag `{}`: {e}", t.key))
            })
    })
    .collect()
}

/// One AssumeRole request for `hop` with `tags` (its required tags, then any optional ones).
async fn send_assume_role(
    client: &aws_sdk_sts::Client,
    hop: &Hop,
    tags: &[Tag],
) -> AssumeRoleResult {
    let mut req = client
        .assume_role()
        .role_arn(&hop.role_arn)
        .role_session_name(&hop.session_name)
        .duration_seconds(duration_i32(hop.duration_secs));
    if let Some(si) = &hop.source_identity {
        req = req.source_identity(si);
    }
    if let Some(x) = &hop.external_id {
        req = req.external_id(x);
    }
    for t in tags {
        req = req.tags(t.clone());
    }
    for k in &hop.transitive_tag_keys {
        req = req.transitive_tag_keys(k);
    }
    if let Some(p) = &hop.policy {
        req = req.policy(p);
    }
    for arn in &hop.policy_arns {
        req = req.policy_arns(
            aws_sdk_sts::types::PolicyDescriptorType::builder()
                .arn(arn)
                .build(),
        );
    }
    req.send().await
}

async fn assume_web(
    client: &aws_sdk_sts::Client,
    hop: &WebIdentityHop,
    token: &Secret,
) -> Result<(Credentials, HopOutcome), ChainError> {
    let asked = Asked::web(hop);
    let res = client
        .assume_role_with_web_identity()
        .role_arn(&hop.role_arn)
        .role_session_name(&hop.session_name)
        .web_identity_token(token.expose_secret())
        .duration_seconds(duration_i32(hop.duration_secs))
        .send()
        .await;
    let out = res.map_err(|e| explain(&asked, &e))?;
    outcome(
        &asked,
        &hop.session_name,
        0,
        out.assumed_role_user(),
        out.credentials(),
        out.source_identity(),
    )
}

/// What a successful hop gave. The SourceIdentity STS reports wins over the one planned:
/// once set on an earlier hop it persists, and that is what CloudTrail will show.
fn outcome(
    asked: &Asked<'_>,
    session_name: &str,
    tags: usize,
    user: Option<&aws_sdk_sts::types::AssumedRoleUser>,
    credentials: Option<&aws_sdk_sts::types::Credentials>,
    source_identity: Option<&str>,
) -> Result<(Credentials, HopOutcome), ChainError> {
    let creds = convert(complete(asked, credentials, user)?);
    let outcome = HopOutcome {
        label: asked.role.label(),
        role_arn: asked.role_arn.to_owned(),
        assumed_role_arn: user.map(|u| u.arn().to_owned()).unwrap_or_default(),
        session_name: session_name.to_owned(),
        source_identity: source_identity
            .map(str::to_owned)
            .or_else(|| asked.source_identity.map(str::to_owned)),
        tags,
        expiration: creds.expiration,
    };
    Ok((creds, outcome))
}

/// The SDK fills required fields it did not find with defaults (empty strings, the epoch), so
/// a truncated or mangled answer can parse "successfully". Such an answer must never become
/// credentials: they would be cut short, or expire in 1970.
fn complete<'a>(
    asked: &Asked<'_>,
    creds: Option<&'a aws_sdk_sts::types::Credentials>,
    user: Option<&aws_sdk_sts::types::AssumedRoleUser>,
) -> Result<&'a aws_sdk_sts::types::Credentials, ChainError> {
    let mut missing = Vec::new();
    match creds {
        None => missing.push("Credentials"),
        Some(c) => {
            if c.access_key_id().is_empty() {
                missing.push("AccessKeyId");
            }
            if c.secret_access_key().is_empty() {
                missing.push("SecretAccessKey");
            }
            if c.session_token().is_empty() {
                missing.push("SessionToken");
            }
            if c.expiration().secs() <= 0 {
                missing.push("Expiration");
            }
        }
    }
    if user.is_none_or(|u| u.arn().is_empty()) {
        missing.push("AssumedRoleUser");
    }
    match creds {
        Some(c) if missing.is_empty() => Ok(c),
        _ => Err(ChainError {
            kind: FailureKind::Unavailable,
            aws_message: Some(format!(
                "STS's answer could not be read: it lacks {}",
                missing.join(", ")
            )),
            hint: "the answer was truncated or mangled on the way (a proxy or load balancer in between?); retry the job, and check AWS_ENDPOINT_URL".into(),
            ..ChainError::unexpected(asked.role, asked.role_arn, "")
        }),
    }
}

fn convert(c: &aws_sdk_sts::types::Credentials) -> Credentials {
    let exp = c.expiration();
    let expiration =
        OffsetDateTime::from_unix_timestamp(exp.secs()).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    Credentials {
        access_key_id: c.access_key_id().to_owned(),
        secret_access_key: secret(c.secret_access_key()),
        session_token: secret(c.session_token()),
        expiration,
    }
}

/// Maps an SDK error to a [`ChainError`] with a hint. A failure on the service-role hop may
/// be the base credentials' fault, the deployment hop's never is.
fn explain<E>(asked: &Asked<'_>, err: &SdkError<E, HttpResponse>) -> ChainError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let base = ChainError::unexpected(asked.role, asked.role_arn, "");
    let failure = sdk_error::classify("STS", err);
    let kind = match &failure {
        SdkFailure::Service { code, message, .. } => {
            let (kind, hint) = hint_for(
                asked,
                code.as_deref().unwrap_or(""),
                message.as_deref().unwrap_or(""),
            );
            return ChainError {
                kind,
                code: code.clone(),
                aws_message: message.clone(),
                hint,
                ..base
            };
        }
        // The chain signs with the keys it was given; none at all is the base's fault.
        SdkFailure::NoCredentials => FailureKind::BadBaseCredentials,
        SdkFailure::Construction { .. } => FailureKind::Unexpected,
        _ => FailureKind::Unavailable,
    };
    ChainError {
        kind,
        hint: failure.hint().unwrap_or_default(),
        aws_message: Some(failure.to_string()),
        ..base
    }
}

/// The heart of "failures explained": AWS's error code and message -> cause and fix.
pub fn hint_for(hop: &Asked<'_>, code: &str, message: &str) -> (FailureKind, String) {
    let index = usize::from(hop.role == HopRole::Deployment);
    let m = message.to_ascii_lowercase();
    let role = &hop.role_arn;
    let denied = FailureKind::Denied;
    let web = hop.web_identity;
    match (ServiceErrorKind::of(code, message), code) {
        (ServiceErrorKind::Throttled, _) => (
            FailureKind::Unavailable,
            "STS kept throttling after bounded retries; too many jobs assume roles at once, retry later or spread them".into(),
        ),
        (ServiceErrorKind::Unavailable, _) => (
            FailureKind::Unavailable,
            "STS or the OIDC provider kept failing after bounded retries; retry the job".into(),
        ),
        (_, "RegionDisabledException") => (
            denied,
            "STS is not activated in this region for the account; use a default-enabled region (`--region`) or activate it in IAM account settings".into(),
        ),
        (ServiceErrorKind::ExpiredToken, _) if web => (
            denied,
            "the GitLab ID token has expired: it lives only as long as the job's timeout; rerun the job and assume right after the token is issued".into(),
        ),
        (ServiceErrorKind::ExpiredToken, _) => (
            FailureKind::BadBaseCredentials,
            "the base session token has expired; refresh the job's AWS credentials".into(),
        ),
        (ServiceErrorKind::InvalidCredentials, _) if index == 0 => (
            FailureKind::BadBaseCredentials,
            "the broker access key is unknown, deleted, inactive or paired with the wrong secret: check the masked GitLab variable ROLEHOP_BROKER_KEY (`<access key id>:<secret>`; or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in hand-made setups; a rotation may have replaced them) and that this ref can see protected variables".into(),
        ),
        (_, "InvalidIdentityToken") if m.contains("audience") => (
            denied,
            "the ID token's `aud` does not match the audience registered on the IAM OIDC provider; set `id_tokens:` `aud:` in .gitlab-ci.yml to the topology's audience".into(),
        ),
        (_, "InvalidIdentityToken") if m.contains("openidconnect provider") || m.contains("no openid") => (
            denied,
            "no IAM OIDC provider exists for the token's issuer in the broker account; roll out the broker stack (rolehop rollout) or check `auth.issuer`".into(),
        ),
        (_, "InvalidIdentityToken") => (
            denied,
            "STS rejected the ID token (issuer, signature or format); make sure the job passes an `id_tokens:` token, not CI_JOB_JWT, and that the issuer matches the IAM OIDC provider".into(),
        ),
        (_, "IDPRejectedClaim") => (
            denied,
            "the OIDC provider rejected a claim of the token; check the token's `sub` and `aud`".into(),
        ),
        (_, "PackedPolicyTooLarge") => (
            denied,
            "the session tags and session policies together are too large for STS's packed size limit (rolehop already retried once without the topology's optional `session_tags`, if any); shorten the session policy, use fewer `session_tags`, run with --no-tags, or shorten the ref name".into(),
        ),
        (_, "ValidationError") if m.contains("role chaining") || m.contains("1 hour") => (
            denied,
            "role chaining caps sessions at 1h; ask for --duration 1h or less".into(),
        ),
        (_, "ValidationError") if m.contains("maxsessionduration") || m.contains("max session") => (
            denied,
            format!("the requested duration exceeds `{role}`'s MaxSessionDuration; ask for less or raise it on the role"),
        ),
        (_, "ValidationError") if m.contains("sourceidentity") || m.contains("source identity") => (
            denied,
            "the SourceIdentity was refused; it is set once on the first hop and can never change afterwards".into(),
        ),
        (ServiceErrorKind::AccessDenied, _) if web => (
            denied,
            format!("the trust policy of `{role}` does not admit this ID token: its `sub` or `aud` does not match the trust conditions (run `rolehop doctor` to compare them), or the ref is not one this environment allows"),
        ),
        (ServiceErrorKind::AccessDenied, _) if m.contains("sts:tagsession") => (
            denied,
            format!("the trust policy of `{role}` does not allow sts:TagSession while rolehop passes session tags; allow it (rolehop render does) or run with --no-tags"),
        ),
        (ServiceErrorKind::AccessDenied, _) if m.contains("sts:setsourceidentity") => (
            denied,
            format!("the trust policy of `{role}` does not allow sts:SetSourceIdentity for `{}`: rolehop's rendered trust admits only SourceIdentities of the environment's own projects (`<group>.<project>@<pipeline>`), so run from one of them; a trust policy without sts:SetSourceIdentity needs --no-source-identity", hop.source_identity.unwrap_or("?")),
        ),
        (ServiceErrorKind::AccessDenied, _) => {
            let mut causes = Vec::new();
            if index == 0 {
                causes.push("the base identity's policy does not allow sts:AssumeRole on this role (a broker user may only assume its own environment's service role)".to_owned());
            } else {
                causes.push("the service role may not assume this deployment role: it belongs to another environment, or its policy lacks sts:AssumeRole on it".to_owned());
            }
            causes.push(format!("the trust policy of `{role}` does not trust the caller (or the role does not exist)"));
            if hop.external_id {
                causes.push("the external id differs from the one the trust policy requires".into());
            } else {
                causes.push("the trust policy requires an external id that was not given".into());
            }
            if hop.tags {
                causes.push("the trust policy lacks sts:TagSession (try --no-tags)".into());
            }
            if hop.source_identity.is_some() {
                causes.push("the trust policy lacks sts:SetSourceIdentity (try --no-source-identity)".into());
            }
            // rolehop's trust admits only its own tag keys and SourceIdentities shaped like the
            // environment's projects; the identity persists from the first hop with access keys.
            causes.push("the job's project is not one of the environment's `projects` (its SourceIdentity `<group>.<project>@<pipeline>` is refused)".into());
            (denied, causes.join("; or "))
        }
        (_, "NoSuchEntity" | "NoSuchEntityException") => (denied, format!("the role `{role}` does not exist; roll out the topology (rolehop rollout) or check the ARN")),
        (_, "MalformedPolicyDocument") => (denied, "STS rejected a session parameter as malformed".into()),
        _ => (
            FailureKind::Unexpected,
            "an unexpected STS error; rerun with -vv for details".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn hop(web_identity: bool) -> Asked<'static> {
        Asked {
            role: HopRole::Deployment,
            role_arn: "arn:aws:iam::222222222222:role/d",
            web_identity,
            tags: true,
            source_identity: Some("a@1"),
            external_id: false,
        }
    }

    fn at(h: Asked<'static>, index: usize) -> Asked<'static> {
        Asked {
            role: if index == 0 {
                HopRole::Service
            } else {
                HopRole::Deployment
            },
            ..h
        }
    }

    #[test]
    fn each_known_cause_is_named() {
        let h = hop(false);
        let cases = [
            (
                "AccessDenied",
                "User: x is not authorized to perform: sts:TagSession on resource: y",
                "sts:TagSession",
            ),
            (
                "AccessDenied",
                "not authorized to perform: sts:SetSourceIdentity",
                "sts:SetSourceIdentity",
            ),
            (
                "AccessDenied",
                "not authorized to perform: sts:AssumeRole",
                "external id",
            ),
            (
                "ValidationError",
                "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
                "1h",
            ),
            (
                "ValidationError",
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
                "MaxSessionDuration",
            ),
            ("RegionDisabledException", "STS is not activated", "region"),
            (
                "ExpiredToken",
                "The security token included in the request is expired",
                "expired",
            ),
            ("PackedPolicyTooLarge", "", "--no-tags"),
        ];
        for (code, msg, want) in cases {
            let (_, hint) = hint_for(&at(h, 1), code, msg);
            assert!(hint.contains(want), "{code}/{msg}: `{hint}` lacks `{want}`");
        }
    }

    #[test]
    fn web_identity_causes_are_about_the_token() {
        let h = hop(true);
        assert!(
            hint_for(
                &at(h, 0),
                "InvalidIdentityToken",
                "Incorrect token audience"
            )
            .1
            .contains("aud")
        );
        assert!(
            hint_for(
                &at(h, 0),
                "InvalidIdentityToken",
                "No OpenIDConnect provider found in your account for https://x"
            )
            .1
            .contains("OIDC provider")
        );
        assert!(
            hint_for(&at(h, 0), "ExpiredTokenException", "Token expired")
                .1
                .contains("ID token has expired")
        );
        assert!(
            hint_for(
                &at(h, 0),
                "AccessDenied",
                "Not authorized to perform sts:AssumeRoleWithWebIdentity"
            )
            .1
            .contains("sub")
        );
    }

    #[test]
    fn kinds_decide_exit_codes() {
        let h = hop(false);
        assert_eq!(
            hint_for(&at(h, 0), "Throttling", "").0,
            FailureKind::Unavailable
        );
        assert_eq!(
            hint_for(&at(h, 0), "InvalidClientTokenId", "").0,
            FailureKind::BadBaseCredentials
        );
        assert_eq!(
            hint_for(&at(h, 1), "InvalidClientTokenId", "").0,
            FailureKind::Unexpected
        );
        assert_eq!(
            hint_for(&at(h, 1), "AccessDenied", "").0,
            FailureKind::Denied
        );
    }
}
