//! rolehop's GitLab rim: a small client for the CI/CD variables REST API (v4) of projects and
//! groups, with bounded retries, and the [`rolehop_core::rotation::VariableStore`] that
//! `rotate` writes broker keys through; and the fetcher of an instance's OIDC signing keys
//! for the claim gate; and what a project protects (branches, tags, environments) for
//! `audit --gitlab`.
//!
//! Floors CI enforces here (warnings are denied): every public item is documented
//! (`missing_docs`) and nothing is `pub` that the crate does not export (`unreachable_pub`).

#![warn(missing_docs, unreachable_pub)]

mod client;
mod error;
mod oidc_keys;
pub mod protection;
mod store;

pub use client::{ClientOptions, GitlabClient, NewVariable, Sleeper, Target, Variable, api_base};
pub use error::GitlabError;
pub use oidc_keys::IssuerKeySource;
pub use store::GitlabVariables;
