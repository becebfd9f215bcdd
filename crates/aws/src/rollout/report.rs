//! What a rollout tells: each account's outcome, the final report, and the progress a person
//! watches while it runs (per-account failures are results, not errors).

use std::fmt;

use rolehop_core::rollout::Account;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    Created,
    Updated,
    Removed,
    Failed(String),
}

impl Outcome {
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Failed(_))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Unchanged => f.write_str("unchanged"),
            Outcome::Created => f.write_str("created"),
            Outcome::Updated => f.write_str("updated"),
            Outcome::Removed => f.write_str("removed"),
            Outcome::Failed(r) => write!(f, "failed: {r}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AccountResult {
    pub environment: String,
    /// The topology's name for the account (the id again for removed accounts).
    pub name: String,
    pub id: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub broker: Outcome,
    pub accounts: Vec<AccountResult>,
}

impl Report {
    pub fn failures(&self) -> impl Iterator<Item = &AccountResult> {
        self.accounts.iter().filter(|a| a.outcome.is_failure())
    }
}

/// What a rollout tells the person watching it.
pub trait Progress: Send + Sync {
    /// A step begins (`creating stack rolehop-broker`).
    fn step(&self, message: &str);
    /// An operation on these accounts has started.
    fn accounts_started(&self, environment: &str, accounts: &[Account], action: &str);
    /// One account is done.
    fn account_done(&self, result: &AccountResult);
}
