//! rolehop's pure core: the validated topology (`rolehop.toml`), the plan of a credential chain
//! (session names, SourceIdentity, tags, durations), the GitLab job context, whether that job
//! may use an environment (`job_check`) and the redacting secret type. Nothing in here talks to AWS, GitLab or the network; callers inject the
//! environment, the clock and file reads.

pub mod broker_key;
pub mod chain;
pub mod credentials;
pub mod duration;
pub mod endpoint;
pub mod gitlab_ctx;
pub mod id_token;
pub mod job_check;
pub mod rotation;
pub mod secret;
pub mod span;
pub mod topology;
pub mod validate;

pub use secret::Secret;
pub use topology::{Topology, TopologyError};
