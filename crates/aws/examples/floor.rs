//! The benchmark floor for `rolehop assume`: the same two AssumeRole calls with aws-sdk-rust
//! and nothing else (no validation, tags, source identity, logging or error explanations).
//! Reads AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL,
//! ROLEHOP_SERVICE_ROLE_ARN and ROLEHOP_DEPLOY_ROLE_ARN; prints the final access key id.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_credential_types::Credentials;
use aws_sdk_sts::config::{BehaviorVersion, Region};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let var = |k: &str| std::env::var(k).unwrap();
    let mk = |creds: Credentials| {
        let mut b = aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(var("AWS_REGION")))
            .credentials_provider(creds);
        if let Ok(url) = std::env::var("AWS_ENDPOINT_URL") {
            b = b.endpoint_url(url);
        }
        aws_sdk_sts::Client::from_conf(b.build())
    };
    let base = Credentials::new(
        var("AWS_ACCESS_KEY_ID"),
        var("AWS_SECRET_ACCESS_KEY"),
        None,
        None,
        "env",
    );
    let first = mk(base)
        .assume_role()
        .role_arn(var("ROLEHOP_SERVICE_ROLE_ARN"))
        .role_session_name("floor")
        .send()
        .await
        .unwrap();
    let c = first.credentials().unwrap();
    let hop = Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_owned()),
        None,
        "hop",
    );
    let second = mk(hop)
        .assume_role()
        .role_arn(var("ROLEHOP_DEPLOY_ROLE_ARN"))
        .role_session_name("floor")
        .send()
        .await
        .unwrap();
    println!("{}", second.credentials().unwrap().access_key_id());
}
