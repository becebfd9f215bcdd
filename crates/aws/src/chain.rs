//! Executes a planned chain (base -> service role -> deployment role) against STS and turns
//! every failure into an explanation naming the hop, the role and the likely cause.

// A ChainError is built at most once per process, on its way to the user: its size costs
// nothing, and boxing it would only add noise to every `?`.
#![allow(clippy::result_large_err)]

use std::fmt;

use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::types::Tag;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use secrecy::ExposeSecret;
use time::OffsetDateTime;
use tracing::{debug, info};

use rolehop_core::Secret;
use rolehop_core::chain::{ChainPlan, Hop, HopKind};
use rolehop_core::credentials::{ChainOutcome, Credentials, HopOutcome};
use rolehop_core::secret::secret;

use crate::sts::{StaticKeys, StsSettings, anonymous_client, base_config, client_with_keys};

/// How the first hop authenticates.
#[derive(Debug, Clone)]
pub enum Base {
    Keys(StaticKeys),
    WebIdentity(Secret),
}

/// The broad reason a hop failed; it decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// STS said no (trust policy, permissions, token, external id, duration rules).
    Denied,
    /// STS could not be reached or kept failing after bounded retries.
    Unavailable,
    /// The base credentials themselves are invalid or expired.
    BadBaseCredentials,
    /// STS answered something rolehop did not expect.
    Unexpected,
}

/// A failed hop, with AWS's own words and rolehop's explanation.
#[derive(Debug, Clone)]
pub struct ChainError {
    pub hop: &'static str,
    pub role_arn: String,
    pub kind: FailureKind,
    pub code: Option<String>,
    pub aws_message: Option<String>,
    /// What most likely went wrong and how to fix it.
    pub hint: String,
    /// The hops that succeeded before this one (for `doctor`).
    pub completed: Vec<HopOutcome>,
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} hop failed: could not assume `{}`",
            self.hop, self.role_arn
        )?;
        match (&self.code, &self.aws_message) {
            (Some(c), Some(m)) => write!(f, "\n  AWS said: {c}: {m}")?,
            (Some(c), None) => write!(f, "\n  AWS said: {c}")?,
            (None, Some(m)) => write!(f, "\n  {m}")?,
            (None, None) => {}
        }
        write!(f, "\n  likely cause: {}", self.hint)
    }
}

impl std::error::Error for ChainError {}

/// Runs the plan. `web_identity_claims` (sub, aud) only sharpen error messages.
pub async fn run(
    plan: &ChainPlan,
    base: Base,
    settings: &StsSettings,
) -> Result<ChainOutcome, ChainError> {
    let mut hops = Vec::with_capacity(plan.hops.len());
    let mut current: Option<Credentials> = None;
    for (i, hop) in plan.hops.iter().enumerate() {
        let builder = base_config(settings);
        let client = match (&current, &base, hop.kind) {
            (None, Base::WebIdentity(_), HopKind::AssumeRoleWithWebIdentity) => {
                anonymous_client(builder)
            }
            (None, Base::Keys(keys), _) => client_with_keys(builder, keys),
            (Some(c), _, _) => client_with_keys(
                builder,
                &StaticKeys {
                    access_key_id: c.access_key_id.clone(),
                    secret_access_key: c.secret_access_key.clone(),
                    session_token: Some(c.session_token.clone()),
                },
            ),
            (None, Base::WebIdentity(_), HopKind::AssumeRole) => {
                return Err(unexpected(
                    hop,
                    "an ID token can only start a chain with AssumeRoleWithWebIdentity",
                ));
            }
        };
        debug!(hop = hop.label, role = %hop.role_arn, session = %hop.session_name, "assuming role");
        let result = match (hop.kind, &base) {
            (HopKind::AssumeRole, _) => assume_role(&client, hop, i).await,
            (HopKind::AssumeRoleWithWebIdentity, Base::WebIdentity(token)) => {
                assume_web(&client, hop, token).await
            }
            (HopKind::AssumeRoleWithWebIdentity, Base::Keys(_)) => {
                Err(unexpected(hop, "web identity hop without a token"))
            }
        };
        let (creds, outcome) = result.map_err(|e| ChainError {
            completed: hops.clone(),
            ..e
        })?;
        info!(hop = hop.label, session = %outcome.assumed_role_arn, "assumed");
        hops.push(outcome);
        current = Some(creds);
    }
    let credentials = current.ok_or_else(|| ChainError {
        hop: "chain",
        role_arn: String::new(),
        kind: FailureKind::Unexpected,
        code: None,
        aws_message: None,
        hint: "the plan has no hops".into(),
        completed: Vec::new(),
    })?;
    Ok(ChainOutcome { credentials, hops })
}

fn unexpected(hop: &Hop, msg: &str) -> ChainError {
    ChainError {
        hop: hop.label,
        role_arn: hop.role_arn.clone(),
        kind: FailureKind::Unexpected,
        code: None,
        aws_message: None,
        hint: msg.into(),
        completed: Vec::new(),
    }
}

fn duration_i32(secs: u64) -> i32 {
    i32::try_from(secs).unwrap_or(i32::MAX)
}

async fn assume_role(
    client: &aws_sdk_sts::Client,
    hop: &Hop,
    index: usize,
) -> Result<(Credentials, HopOutcome), ChainError> {
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
    for t in &hop.tags {
        let tag = Tag::builder()
            .key(&t.key)
            .value(&t.value)
            .build()
            .map_err(|e| unexpected(hop, &format!("bad session tag `{}`: {e}", t.key)))?;
        req = req.tags(tag);
    }
    for k in &hop.transitive_tag_keys {
        req = req.transitive_tag_keys(k);
    }
    let out = req.send().await.map_err(|e| explain(hop, index, &e))?;
    outcome(
        hop,
        out.assumed_role_user(),
        out.credentials(),
        out.source_identity(),
    )
}

async fn assume_web(
    client: &aws_sdk_sts::Client,
    hop: &Hop,
    token: &Secret,
) -> Result<(Credentials, HopOutcome), ChainError> {
    let res = client
        .assume_role_with_web_identity()
        .role_arn(&hop.role_arn)
        .role_session_name(&hop.session_name)
        .web_identity_token(token.expose_secret())
        .duration_seconds(duration_i32(hop.duration_secs))
        .send()
        .await;
    let out = res.map_err(|e| explain(hop, 0, &e))?;
    outcome(
        hop,
        out.assumed_role_user(),
        out.credentials(),
        out.source_identity(),
    )
}

/// What a successful hop gave. The SourceIdentity STS reports wins over the one planned:
/// once set on an earlier hop it persists, and that is what CloudTrail will show.
fn outcome(
    hop: &Hop,
    user: Option<&aws_sdk_sts::types::AssumedRoleUser>,
    credentials: Option<&aws_sdk_sts::types::Credentials>,
    source_identity: Option<&str>,
) -> Result<(Credentials, HopOutcome), ChainError> {
    let creds = convert(complete(hop, credentials, user)?);
    let outcome = HopOutcome {
        label: hop.label,
        role_arn: hop.role_arn.clone(),
        assumed_role_arn: user.map(|u| u.arn().to_owned()).unwrap_or_default(),
        session_name: hop.session_name.clone(),
        source_identity: source_identity
            .map(str::to_owned)
            .or_else(|| hop.source_identity.clone()),
        tags: hop.tags.len(),
        expiration: creds.expiration,
    };
    Ok((creds, outcome))
}

/// The SDK fills required fields it did not find with defaults (empty strings, the epoch), so
/// a truncated or mangled answer can parse "successfully". Such an answer must never become
/// credentials: they would be cut short, or expire in 1970.
// ChainError is the crate's error everywhere; it is built at most once per run.
#[allow(clippy::result_large_err)]
fn complete<'a>(
    hop: &Hop,
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
            ..unexpected(hop, "")
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

/// Maps an SDK error to a [`ChainError`] with a hint. `index` is the hop's position: a
/// failure on hop 0 may be the base credentials' fault, later hops never are.
fn explain<E>(hop: &Hop, index: usize, err: &SdkError<E, HttpResponse>) -> ChainError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let base = ChainError {
        hop: hop.label,
        role_arn: hop.role_arn.clone(),
        kind: FailureKind::Unexpected,
        code: None,
        aws_message: None,
        hint: String::new(),
        completed: Vec::new(),
    };
    match err {
        // hyper reports an answer it cannot parse as HTTP as a failure to send; saying
        // "could not reach" would send the user after the network instead of the endpoint.
        SdkError::DispatchFailure(d)
            if d
                .as_connector_error()
                .is_some_and(|e| error_chain(e).contains(" parsed")) =>
        {
            ChainError {
                kind: FailureKind::Unavailable,
                aws_message: Some(format!(
                    "STS's answer is not valid HTTP: {}",
                    dispatch_reason(d)
                )),
                hint: "something other than STS answers at this address (a proxy, or AWS_ENDPOINT_URL pointing at the wrong port); check AWS_ENDPOINT_URL".into(),
                ..base
            }
        }
        SdkError::DispatchFailure(d) => ChainError {
            kind: FailureKind::Unavailable,
            aws_message: Some(format!("could not reach STS: {}", dispatch_reason(d))),
            hint: "STS endpoint unreachable after retries: check the network, the region (`--region`/`AWS_REGION`) and AWS_ENDPOINT_URL".into(),
            ..base
        },
        SdkError::TimeoutError(_) => ChainError {
            kind: FailureKind::Unavailable,
            aws_message: Some("STS did not answer in time".into()),
            hint: "the STS endpoint timed out after bounded retries; check the network and the region".into(),
            ..base
        },
        SdkError::ResponseError(r) => ChainError {
            kind: FailureKind::Unavailable,
            aws_message: Some(format!(
                "STS's answer could not be read (HTTP {}): {}",
                r.raw().status().as_u16(),
                error_chain(err)
            )),
            hint: "the answer was truncated or is not STS XML (a proxy or load balancer in between?); retry the job, and check AWS_ENDPOINT_URL".into(),
            ..base
        },
        SdkError::ConstructionFailure(_) => ChainError {
            kind: FailureKind::Unexpected,
            aws_message: Some(format!("could not build the request: {}", error_chain(err))),
            hint: "a request parameter is invalid; this is likely a rolehop bug".into(),
            ..base
        },
        _ => {
            // Some endpoints (moto among them) answer errors in a shape the SDK cannot parse;
            // then the status and a look into the body still tell what happened.
            let raw = err.raw_response();
            let body = raw.and_then(|r| r.body().bytes()).map(String::from_utf8_lossy).unwrap_or_default();
            let status = raw.map(|r| r.status().as_u16());
            let code = err.code().map(str::to_owned).or_else(|| xml_text(&body, "Code")).or_else(|| match status {
                Some(403) => Some("AccessDenied".to_owned()),
                Some(s) if s >= 500 => Some("ServiceUnavailable".to_owned()),
                _ => None,
            });
            let message = err.message().map(str::to_owned).or_else(|| xml_text(&body, "Message"));
            if code.is_none() && message.is_none() {
                // Neither an STS answer nor an STS error: a captive proxy, an HTML error page,
                // the wrong endpoint.
                return ChainError {
                    kind: FailureKind::Unavailable,
                    aws_message: Some(format!(
                        "STS's answer could not be read (HTTP {}): it is not STS XML",
                        status.map_or_else(|| "?".to_owned(), |s| s.to_string())
                    )),
                    hint: "something other than STS answered (a proxy, a load balancer, or AWS_ENDPOINT_URL pointing at the wrong service); retry the job, and check AWS_ENDPOINT_URL".into(),
                    ..base
                };
            }
            let (kind, hint) = hint_for(hop, index, code.as_deref().unwrap_or(""), message.as_deref().unwrap_or(""));
            ChainError { kind, code, aws_message: message, hint, ..base }
        }
    }
}

fn xml_text(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body.get(start..)?.find(&format!("</{tag}>"))? + start;
    body.get(start..end)
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn dispatch_reason(d: &aws_smithy_runtime_api::client::result::DispatchFailure) -> String {
    let mut s = if d.is_io() {
        "connection failed".to_owned()
    } else if d.is_timeout() {
        "connection timed out".to_owned()
    } else {
        "request could not be sent".to_owned()
    };
    if let Some(e) = d.as_connector_error() {
        s.push_str(&format!(": {}", error_chain(e)));
    }
    s
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    s
}

/// The heart of "failures explained": AWS's error code and message -> cause and fix.
pub fn hint_for(hop: &Hop, index: usize, code: &str, message: &str) -> (FailureKind, String) {
    let m = message.to_ascii_lowercase();
    let role = &hop.role_arn;
    let denied = FailureKind::Denied;
    match code {
        "Throttling" | "ThrottlingException" | "RequestLimitExceeded" => (
            FailureKind::Unavailable,
            "STS kept throttling after bounded retries; too many jobs assume roles at once, retry later or spread them".into(),
        ),
        "InternalFailure" | "ServiceUnavailable" | "InternalError" | "IDPCommunicationError" => (
            FailureKind::Unavailable,
            "STS or the OIDC provider kept failing after bounded retries; retry the job".into(),
        ),
        "RegionDisabledException" => (
            denied,
            "STS is not activated in this region for the account; use a default-enabled region (`--region`) or activate it in IAM account settings".into(),
        ),
        "ExpiredToken" | "ExpiredTokenException" if hop.kind == HopKind::AssumeRoleWithWebIdentity => (
            denied,
            "the GitLab ID token has expired: it lives only as long as the job's timeout; rerun the job and assume right after the token is issued".into(),
        ),
        "ExpiredToken" | "ExpiredTokenException" => (
            FailureKind::BadBaseCredentials,
            "the base session token has expired; refresh the job's AWS credentials".into(),
        ),
        "InvalidClientTokenId" | "SignatureDoesNotMatch" | "UnrecognizedClientException" if index == 0 => (
            FailureKind::BadBaseCredentials,
            "the broker access key is unknown, deleted, inactive or paired with the wrong secret: check the masked GitLab variable ROLEHOP_BROKER_KEY (`<access key id>:<secret>`; or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in hand-made setups; a rotation may have replaced them) and that this ref can see protected variables".into(),
        ),
        "InvalidIdentityToken" if m.contains("audience") => (
            denied,
            "the ID token's `aud` does not match the audience registered on the IAM OIDC provider; set `id_tokens:` `aud:` in .gitlab-ci.yml to the topology's audience".into(),
        ),
        "InvalidIdentityToken" if m.contains("openidconnect provider") || m.contains("no openid") => (
            denied,
            "no IAM OIDC provider exists for the token's issuer in the broker account; roll out the broker stack (rolehop rollout) or check `auth.issuer`".into(),
        ),
        "InvalidIdentityToken" => (
            denied,
            "STS rejected the ID token (issuer, signature or format); make sure the job passes an `id_tokens:` token, not CI_JOB_JWT, and that the issuer matches the IAM OIDC provider".into(),
        ),
        "IDPRejectedClaim" => (
            denied,
            "the OIDC provider rejected a claim of the token; check the token's `sub` and `aud`".into(),
        ),
        "PackedPolicyTooLarge" => (
            denied,
            "the session tags are too large for STS's packed size limit; run with --no-tags or shorten the ref name".into(),
        ),
        "ValidationError" if m.contains("role chaining") || m.contains("1 hour") => (
            denied,
            "role chaining caps sessions at 1h; ask for --duration 1h or less".into(),
        ),
        "ValidationError" if m.contains("maxsessionduration") || m.contains("max session") => (
            denied,
            format!("the requested duration exceeds `{role}`'s MaxSessionDuration; ask for less or raise it on the role"),
        ),
        "ValidationError" if m.contains("sourceidentity") || m.contains("source identity") => (
            denied,
            "the SourceIdentity was refused; it is set once on the first hop and can never change afterwards".into(),
        ),
        "AccessDenied" | "AccessDeniedException" if hop.kind == HopKind::AssumeRoleWithWebIdentity => (
            denied,
            format!("the trust policy of `{role}` does not admit this ID token: its `sub` or `aud` does not match the trust conditions (run `rolehop doctor` to compare them), or the ref is not one this environment allows"),
        ),
        "AccessDenied" | "AccessDeniedException" if m.contains("sts:tagsession") => (
            denied,
            format!("the trust policy of `{role}` does not allow sts:TagSession while rolehop passes session tags; allow it (rolehop render does) or run with --no-tags"),
        ),
        "AccessDenied" | "AccessDeniedException" if m.contains("sts:setsourceidentity") => (
            denied,
            format!("the trust policy of `{role}` does not allow sts:SetSourceIdentity for `{}`: rolehop's rendered trust admits only SourceIdentities of the environment's own projects (`<group>.<project>@<pipeline>`), so run from one of them; a trust policy without sts:SetSourceIdentity needs --no-source-identity", hop.source_identity.as_deref().unwrap_or("?")),
        ),
        "AccessDenied" | "AccessDeniedException" => {
            let mut causes = Vec::new();
            if index == 0 {
                causes.push("the base identity's policy does not allow sts:AssumeRole on this role (a broker user may only assume its own environment's service role)".to_owned());
            } else {
                causes.push("the service role may not assume this deployment role: it belongs to another environment, or its policy lacks sts:AssumeRole on it".to_owned());
            }
            causes.push(format!("the trust policy of `{role}` does not trust the caller (or the role does not exist)"));
            if hop.external_id.is_some() {
                causes.push("the external id differs from the one the trust policy requires".into());
            } else {
                causes.push("the trust policy requires an external id that was not given".into());
            }
            if !hop.tags.is_empty() {
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
        "NoSuchEntity" | "NoSuchEntityException" => (denied, format!("the role `{role}` does not exist; roll out the topology (rolehop rollout) or check the ARN")),
        "MalformedPolicyDocument" => (denied, "STS rejected a session parameter as malformed".into()),
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
    use rolehop_core::chain::Tag as PlanTag;

    fn hop(kind: HopKind) -> Hop {
        Hop {
            label: "deployment role",
            kind,
            role_arn: "arn:aws:iam::222222222222:role/d".into(),
            session_name: "s".into(),
            duration_secs: 3600,
            source_identity: Some("a@1".into()),
            tags: vec![PlanTag {
                key: "k".into(),
                value: "v".into(),
            }],
            transitive_tag_keys: vec![],
            external_id: None,
        }
    }

    #[test]
    fn each_known_cause_is_named() {
        let h = hop(HopKind::AssumeRole);
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
            let (_, hint) = hint_for(&h, 1, code, msg);
            assert!(hint.contains(want), "{code}/{msg}: `{hint}` lacks `{want}`");
        }
    }

    #[test]
    fn web_identity_causes_are_about_the_token() {
        let h = hop(HopKind::AssumeRoleWithWebIdentity);
        assert!(
            hint_for(&h, 0, "InvalidIdentityToken", "Incorrect token audience")
                .1
                .contains("aud")
        );
        assert!(
            hint_for(
                &h,
                0,
                "InvalidIdentityToken",
                "No OpenIDConnect provider found in your account for https://x"
            )
            .1
            .contains("OIDC provider")
        );
        assert!(
            hint_for(&h, 0, "ExpiredTokenException", "Token expired")
                .1
                .contains("ID token has expired")
        );
        assert!(
            hint_for(
                &h,
                0,
                "AccessDenied",
                "Not authorized to perform sts:AssumeRoleWithWebIdentity"
            )
            .1
            .contains("sub")
        );
    }

    #[test]
    fn kinds_decide_exit_codes() {
        let h = hop(HopKind::AssumeRole);
        assert_eq!(
            hint_for(&h, 0, "Throttling", "").0,
            FailureKind::Unavailable
        );
        assert_eq!(
            hint_for(&h, 0, "InvalidClientTokenId", "").0,
            FailureKind::BadBaseCredentials
        );
        assert_eq!(
            hint_for(&h, 1, "InvalidClientTokenId", "").0,
            FailureKind::Unexpected
        );
        assert_eq!(hint_for(&h, 1, "AccessDenied", "").0, FailureKind::Denied);
    }
}
