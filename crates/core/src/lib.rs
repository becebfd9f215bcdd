//! rolehop's pure core: the validated topology (`rolehop.toml`), the plan of a credential chain
//! (session names, SourceIdentity, tags, durations), the plan of a rollout, the GitLab job
//! context, whether that job may use an environment (`job_check`), the redacting secret type
//! and the documented exit codes. Nothing in here talks to AWS, GitLab or the network;
//! callers inject the environment, the clock and file reads.
//! cargo-deny's bans (`deny.toml`) fail CI if this crate gains a path to tokio, the AWS SDK
//! or an HTTP/TLS crate.
//!
//! Raw input is parsed once, where it enters, into types that are valid by construction
//! ([`ids`]: account ids, regions, partitions, role ARNs; [`Topology`]), and errors are
//! thiserror types that name their own exit code ([`exit::HasExit`]). CI also denies
//! warnings, so every public item is documented (`missing_docs`) and nothing is `pub` that
//! the crate does not export (`unreachable_pub`).

#![warn(missing_docs, unreachable_pub)]

pub mod broker_key;
pub mod chain;
pub mod credential_cache;
pub mod credentials;
pub mod duration;
pub mod endpoint;
pub mod exit;
pub mod gitlab_ctx;
pub mod id_token;
pub mod ids;
pub mod job_check;
pub mod job_file;
pub mod proxy;
pub mod refresh;
pub mod rollout;
pub mod rotation;
pub mod secret;
pub mod span;
pub mod topology;
pub mod validate;

pub use ids::{AccountId, Partition, Region, RoleArn};
pub use secret::Secret;
pub use topology::{Topology, TopologyError};
