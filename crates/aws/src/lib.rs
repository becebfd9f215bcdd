//! rolehop's AWS rim: executes what the pure core planned, through the official aws-sdk-rust
//! crates. STS for the credential chain, IAM for key rotation, CloudFormation for rollout.

pub mod chain;
pub mod rollout;
pub mod sts;
