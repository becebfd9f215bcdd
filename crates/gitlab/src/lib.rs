//! rolehop's GitLab rim: a small client for the CI/CD variables REST API (v4) of projects and
//! groups, with bounded retries, and the [`rolehop_core::rotation::VariableStore`] that
//! `rotate` writes broker keys through.

mod client;
mod error;
mod store;

pub use client::{ClientOptions, GitlabClient, NewVariable, Sleeper, Target, Variable, api_base};
pub use error::GitlabError;
pub use store::GitlabVariables;
