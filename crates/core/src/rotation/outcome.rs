//! Settings, errors and outcomes of a rotation.

use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::*;

/// How one rotation runs: which user and variables, and how careful it is with old keys.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The broker IAM user (for messages and variable descriptions).
    pub user: String,
    /// The one variable jobs read, `<access key id>:<secret>` ([`crate::broker_key::BROKER_KEY_VAR`]).
    pub key_var: String,
    /// The access key id and secret variables of a setup from before the combined variable:
    /// read as the key GitLab holds while `key_var` is missing, deleted once `key_var` is proven.
    pub legacy_vars: Option<(String, String)>,
    /// Where variables are written, for messages (`project acme/shop, scope production`).
    pub gitlab_place: String,
    /// Write the variable protected, so only protected refs receive the key.
    pub protected: bool,
    /// How long an old key stays inactive before a later run deletes it: jobs started
    /// before the rotation may still use it.
    pub delete_after: Duration,
    /// Delete an inactive key GitLab does not hold to free IAM's second slot (otherwise
    /// rotate refuses and leaves it to a person).
    pub delete_inactive_extra: bool,
    /// Waits between attempts to verify a brand-new key (IAM is eventually consistent); the
    /// number of attempts is one more than its length.
    pub verify_delays: Vec<Duration>,
}

/// Why a rotation stopped; the recorded state lets the next run finish or roll back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotateError {
    /// IAM or GitLab failed a call.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// rotate will not proceed without the user's action (quota, foreign keys).
    #[error("{0}")]
    Refused(String),
    #[error(
        "the tag `{RECORD_TAG}` on IAM user `{user}` holds `{value}`, which is not a rotation record ({reason}); inspect the user's keys and GitLab variables, then remove the tag (`aws iam untag-user --user-name {user} --tag-keys {RECORD_TAG}`)"
    )]
    /// The user's rotation record tag is not one rotate wrote: it will not guess.
    BadRecord {
        /// The broker IAM user.
        user: String,
        /// The tag's value (a record holds key ids, never secrets).
        value: String,
        /// Why it does not parse.
        reason: String,
    },
    /// IAM and GitLab disagree in a way no step of the rotation produces.
    #[error("{0}")]
    Inconsistent(String),
    #[error(
        "the new access key `{id}` was still rejected after {attempts} attempts over {waited}: {reason}; the key stays recorded and the next run deletes it"
    )]
    /// IAM kept refusing the key it had just created (eventual consistency that never settled).
    NewKeyRejected {
        /// The new key's id.
        id: String,
        /// How many verifications were tried.
        attempts: usize,
        /// The total wait, for the message.
        waited: String,
        /// The last refusal.
        reason: String,
    },
}

impl crate::exit::HasExit for RotateError {
    fn exit(&self) -> crate::exit::Exit {
        use crate::exit::Exit;
        match self {
            RotateError::Store(s) => s.exit(),
            // rotate stops rather than guess: the user inspects the keys and the record.
            RotateError::Refused(_)
            | RotateError::BadRecord { .. }
            | RotateError::Inconsistent(_) => Exit::Refused,
            // IAM never accepted the new key within the wait: a service that stayed unready.
            RotateError::NewKeyRejected { .. } => Exit::Unavailable,
        }
    }
}

/// What a successful run did, as `rotate` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new key is in GitLab and active; `old` was deactivated (and deleted if `deleted`).
    Rotated {
        /// The key id GitLab now holds.
        new: String,
        /// The key it replaced, if there was one.
        old: Option<String>,
        /// This run deleted the old key (its grace period was over).
        deleted: bool,
        /// When a later run may delete the inactive old key.
        delete_due: Option<OffsetDateTime>,
    },
    /// The previous rotation's old key is waiting out its grace period; nothing to do yet.
    Waiting {
        /// The key id GitLab holds.
        new: String,
        /// The inactive old key.
        old: String,
        /// When a run may delete it.
        delete_due: OffsetDateTime,
    },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Rotated {
                new,
                old,
                deleted,
                delete_due,
            } => {
                write!(f, "rotated: GitLab now holds key `{new}`")?;
                match (old, deleted, delete_due) {
                    (Some(o), true, _) => write!(f, "; old key `{o}` deleted"),
                    (Some(o), false, Some(due)) => write!(
                        f,
                        "; old key `{o}` is inactive and will be deleted by a run after {}",
                        fmt_time(*due)
                    ),
                    _ => Ok(()),
                }
            }
            Outcome::Waiting {
                new,
                old,
                delete_due,
            } => write!(
                f,
                "nothing to rotate yet: GitLab holds key `{new}`; the previous key `{old}` is inactive and may be deleted after {} (run again then, or pass `--delete-after 0` to delete it now); a new rotation needs its slot",
                fmt_time(*delete_due)
            ),
        }
    }
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A change was made (or a check done); the text says which, without secrets.
    Progress(String),
    /// The rotation is complete (or had nothing to do).
    Done(Outcome),
}

fn fmt_time(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| t.unix_timestamp().to_string())
}
