//! A deploy command written with aws-sdk-rust, for the tests of `rolehop exec`'s credentials
//! endpoint: it takes credentials from the SDK's default chain (the container provider when
//! rolehop serves them, or a profile's `credential_process`), calls
//! `sts:GetCallerIdentity`, waits `SDK_CHILD_WAIT_SECS`, and calls it again with the same
//! client. Prints one JSON line: the access key ids its provider gave before and after, and
//! the ARN of each call. `SDK_CHILD_BUFFER_SECS` sets the client's refresh buffer, so a short
//! test session is renewed by the client as a long one would be near its end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::identity::IdentityCache;
use aws_credential_types::provider::ProvideCredentials;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let secs = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let config = aws_config::defaults(BehaviorVersion::latest())
        .identity_cache(
            IdentityCache::lazy()
                .buffer_time(Duration::from_secs(secs("SDK_CHILD_BUFFER_SECS", 10)))
                .build(),
        )
        .load()
        .await;
    let provider = config
        .credentials_provider()
        .expect("a credentials provider");
    let sts = aws_sdk_sts::Client::new(&config);
    let key1 = provider.provide_credentials().await.expect("credentials");
    let arn1 = sts.get_caller_identity().send().await.expect("first call");
    tokio::time::sleep(Duration::from_secs(secs("SDK_CHILD_WAIT_SECS", 0))).await;
    let key2 = provider.provide_credentials().await.expect("credentials");
    let arn2 = sts.get_caller_identity().send().await.expect("second call");
    println!(
        "{{\"key1\":\"{}\",\"key2\":\"{}\",\"arn1\":\"{}\",\"arn2\":\"{}\"}}",
        key1.access_key_id(),
        key2.access_key_id(),
        arn1.arn().unwrap_or_default(),
        arn2.arn().unwrap_or_default()
    );
}
