//! Broker access-key rotation as a pure, resumable state machine over two small traits:
//! [`KeyStore`] (the IAM user's keys and a tag holding the rotation record) and
//! [`VariableStore`] (the GitLab CI/CD variables jobs read). No I/O happens here.
//!
//! Every [`Rotator::step`] observes both sides, decides, and performs at most one change, so a
//! crash between any two changes leaves a record from which the next run completes or rolls
//! back. Invariants kept at every step: the key GitLab holds is an active key in IAM, and what
//! GitLab holds is a working pair. The second needs no ordering trick: jobs read the id and
//! the secret from ONE variable (`ROLEHOP_BROKER_KEY` = `<id>:<secret>`, see
//! [`crate::broker_key`]), and GitLab writes one variable atomically. The two variables of
//! earlier setups are migrated: deleted once the combined one is proven to authenticate.

use std::time::Duration;

/// The IAM user tag holding the rotation record.
pub const RECORD_TAG: &str = "rolehop:rotation";
/// IAM caps tag values at 256 characters.
pub const RECORD_MAX_LEN: usize = 256;
/// The default grace period before a deactivated old key is deleted.
pub const DEFAULT_DELETE_AFTER: Duration = Duration::from_secs(24 * 3600);

mod machine;
mod outcome;
mod record;
mod store;

pub use machine::Rotator;
pub use outcome::*;
pub use record::*;
pub use store::*;

pub mod sim;

#[cfg(test)]
mod tests;
