//! What a rollout tells: each account's outcome, the final report, and the progress a person
//! watches while it runs (per-account failures are results, not errors).

use std::fmt;

use rolehop_core::rollout::Account;

/// What happened to a stack or one account's stack instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Already as the topology wants.
    Unchanged,
    /// Deployed for the first time.
    Created,
    /// Redeployed with the new template.
    Updated,
    /// Deleted: the account left the topology.
    Removed,
    /// CloudFormation's reason; the rest of the rollout went on.
    Failed(String),
}

impl Outcome {
    /// A failure makes the rollout exit 11.
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

/// One account's outcome.
#[derive(Debug, Clone)]
pub struct AccountResult {
    /// The topology environment.
    pub environment: String,
    /// The topology's name for the account (the id again for removed accounts).
    pub name: String,
    /// The account id.
    pub id: String,
    /// What happened to its instance.
    pub outcome: Outcome,
}

/// The end of a rollout: the broker stack and every account.
#[derive(Debug, Clone)]
pub struct Report {
    /// What happened to the broker stack.
    pub broker: Outcome,
    /// Every account of every environment, in plan order.
    pub accounts: Vec<AccountResult>,
}

impl Report {
    /// The accounts that failed.
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
