//! Settings, errors and outcomes of a rotation.

use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::*;

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
    pub protected: bool,
    pub delete_after: Duration,
    pub delete_inactive_extra: bool,
    /// Waits between attempts to verify a brand-new key (IAM is eventually consistent); the
    /// number of attempts is one more than its length.
    pub verify_delays: Vec<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// rotate will not proceed without the user's action (quota, foreign keys).
    #[error("{0}")]
    Refused(String),
    #[error(
        "the tag `{RECORD_TAG}` on IAM user `{user}` holds `{value}`, which is not a rotation record ({reason}); inspect the user's keys and GitLab variables, then remove the tag (`aws iam untag-user --user-name {user} --tag-keys {RECORD_TAG}`)"
    )]
    BadRecord {
        user: String,
        value: String,
        reason: String,
    },
    #[error("{0}")]
    Inconsistent(String),
    #[error(
        "the new access key `{id}` was still rejected after {attempts} attempts over {waited}: {reason}; the key stays recorded and the next run deletes it"
    )]
    NewKeyRejected {
        id: String,
        attempts: usize,
        waited: String,
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new key is in GitLab and active; `old` was deactivated (and deleted if `deleted`).
    Rotated {
        new: String,
        old: Option<String>,
        deleted: bool,
        delete_due: Option<OffsetDateTime>,
    },
    /// The previous rotation's old key is waiting out its grace period; nothing to do yet.
    Waiting {
        new: String,
        old: String,
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
    Done(Outcome),
}

fn fmt_time(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| t.unix_timestamp().to_string())
}
