//! Building STS clients quickly and predictably.
//!
//! The chain runs at the start of every deploy job, so it skips aws-config's full default
//! chain (profile files, IMDS region probing) and builds clients from exactly the settings it
//! was given: region, optional endpoint, bounded retries and timeouts.

use std::time::Duration;

use aws_credential_types::Credentials as SdkCredentials;
use aws_sdk_sts::config::retry::RetryConfig;
use aws_sdk_sts::config::timeout::TimeoutConfig;
use aws_sdk_sts::config::{BehaviorVersion, Region};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use secrecy::ExposeSecret;

/// Where and how to talk to STS.
#[derive(Debug, Clone)]
pub struct StsSettings {
    /// The AWS region whose STS endpoint is called; also the region credentials are scoped to.
    pub region: String,
    /// `AWS_ENDPOINT_URL(_STS)` (moto in tests); `None` uses the regional STS endpoint.
    pub endpoint_url: Option<String>,
    /// Total attempts per call, including the first (throttling and 5xx are retried).
    pub max_attempts: u32,
    /// The first retry's backoff; later retries back off exponentially, capped at 5 seconds.
    pub initial_backoff: Duration,
    /// How long to wait for a TCP/TLS connection before giving the attempt up.
    pub connect_timeout: Duration,
    /// The time one attempt may take; the whole call is bounded by this times the attempts.
    pub attempt_timeout: Duration,
    /// The HTTP client under the SDK; `None` is the SDK's default (hyper with rustls). Tests
    /// inject one that replays recorded exchanges.
    pub http_client: Option<SharedHttpClient>,
    /// The proxy and extra CAs (`HTTPS_PROXY`, `NO_PROXY`, `AWS_CA_BUNDLE`) for STS and the
    /// claim gate; the default is neither.
    pub network: crate::net::Network,
}

impl StsSettings {
    /// Settings for `region` and `endpoint_url` with rolehop's defaults: 4 attempts, 200 ms first backoff, 3 s connect and 10 s attempt timeouts.
    pub fn new(region: impl Into<String>, endpoint_url: Option<String>) -> Self {
        Self {
            region: region.into(),
            endpoint_url,
            max_attempts: 4,
            initial_backoff: Duration::from_millis(200),
            connect_timeout: Duration::from_secs(3),
            attempt_timeout: Duration::from_secs(10),
            http_client: None,
            network: crate::net::Network::default(),
        }
    }
}

/// Static AWS credentials as the base identity (a broker user's keys, or any session); the
/// plan carries them, so they live in the core.
pub use rolehop_core::chain::StaticKeys;

/// A config with rolehop's retry, timeout and endpoint settings, without credentials.
pub fn base_config(s: &StsSettings) -> aws_sdk_sts::config::Builder {
    // Exponential backoff with full jitter is the SDK's standard mode; rolehop only bounds it.
    let retry = RetryConfig::standard()
        .with_max_attempts(s.max_attempts)
        .with_initial_backoff(s.initial_backoff)
        .with_max_backoff(Duration::from_secs(5));
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(s.connect_timeout)
        .operation_attempt_timeout(s.attempt_timeout)
        .operation_timeout(s.attempt_timeout * s.max_attempts + Duration::from_secs(10))
        .build();
    let mut b = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(s.region.clone()))
        .retry_config(retry)
        .timeout_config(timeouts);
    if let Some(url) = &s.endpoint_url {
        b = b.endpoint_url(url.clone());
    }
    let url = sts_url(s);
    if let Some(client) = s
        .http_client
        .clone()
        .or_else(|| s.network.sdk_http_client(&url))
    {
        b = b.http_client(client);
    }
    b
}

/// The STS URL calls go to: the endpoint override, else the region's.
pub fn sts_url(s: &StsSettings) -> String {
    s.endpoint_url
        .clone()
        .unwrap_or_else(|| crate::net::regional_sts_url(&s.region))
}

/// For a failure to reach STS: which proxy was in the way, if any (credentials hidden).
pub fn proxy_note(s: &StsSettings) -> Option<String> {
    let url = sts_url(s);
    s.network.proxy_for(&url).map(|p| {
        format!(
            "STS is reached through the proxy {p} ({}): check that it is up and allows CONNECT to `{}`, or name the host in NO_PROXY",
            p.var,
            rolehop_core::proxy::host_of(&url)
        )
    })
}

/// An STS client signing with `keys`.
pub fn client_with_keys(
    builder: aws_sdk_sts::config::Builder,
    keys: &StaticKeys,
) -> aws_sdk_sts::Client {
    let creds = SdkCredentials::new(
        keys.access_key_id.clone(),
        keys.secret_access_key.expose_secret().to_owned(),
        keys.session_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned()),
        None,
        "rolehop",
    );
    aws_sdk_sts::Client::from_conf(builder.credentials_provider(creds).build())
}

/// An STS client for unsigned calls (AssumeRoleWithWebIdentity).
pub fn anonymous_client(builder: aws_sdk_sts::config::Builder) -> aws_sdk_sts::Client {
    aws_sdk_sts::Client::from_conf(builder.build())
}

/// `sts:GetCallerIdentity` with `keys`: who the base identity is. Errors are read by the one
/// classifier, so they are worded as the chain and rollout word them.
pub async fn caller_identity(
    settings: &StsSettings,
    keys: &StaticKeys,
) -> Result<String, crate::sdk_error::SdkFailure> {
    let client = client_with_keys(base_config(settings), keys);
    match client.get_caller_identity().send().await {
        Ok(out) => Ok(out.arn().unwrap_or_default().to_owned()),
        // The one classifier, so doctor words a failure as rollout and the chain do.
        Err(e) => Err(crate::sdk_error::classify("STS", &e)),
    }
}
