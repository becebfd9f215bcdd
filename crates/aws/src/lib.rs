//! rolehop's AWS rim: executes what the pure core planned, through the official aws-sdk-rust
//! crates (and ureq for the claim gate). STS and the gate for the credential chain, IAM for
//! key rotation, CloudFormation for rollout.
//! Every failed SDK call is read by [`sdk_error::classify`], and each error type names its
//! exit code (`rolehop_core::exit::HasExit`). This crate is one of the few `deny.toml` lets
//! depend on tokio and the SDK; the plans it executes stay in the pure core.
//! CI denies warnings, so every public item is documented (`missing_docs`) and nothing is
//! `pub` that the crate does not export (`unreachable_pub`).

#![warn(missing_docs, unreachable_pub)]

pub mod chain;
pub mod gate_client;
pub mod iam;
pub mod net;
pub mod rollout;
pub mod sdk_error;
pub mod sts;
