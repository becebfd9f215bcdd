//! rolehop's GitLab rim: a small client for the CI/CD variables REST API (v4) of projects and
//! groups, with bounded retries, and the [`rolehop_core::rotation::VariableStore`] that
//! `rotate` writes broker keys through; and the fetcher of an instance's OIDC signing keys
//! for the claim gate; and what a project protects (branches, tags, environments) for
//! `audit --gitlab`.

mod client;
mod error;
mod oidc_keys;
pub mod protection;
mod store;

pub use client::{ClientOptions, GitlabClient, NewVariable, Sleeper, Target, Variable, api_base};
pub use error::GitlabError;
pub use oidc_keys::IssuerKeySource;
pub use store::GitlabVariables;
