//! `rolehop rollout` against CloudFormation: the broker stack in the broker account, then one
//! StackSet per environment carrying its deployment role to every target account. Reading
//! (`plan`) is separate from writing (`apply`), so `--dry-run` and idempotence share one diff.
//!
//! What to deploy and the pure diff live in `rolehop_core::rollout` (re-exported here); this
//! module is the AWS half, one file per concern:
//! - `deployed`: reads what CloudFormation has deployed and plans against it
//! - `execute`: carries out a plan (stack, StackSets, stack instances)
//! - `wait`: polls stacks and StackSet operations to their end, with an injected sleep
//! - `report`: per-account outcomes and the progress a person watches
//! - `error`: why a rollout could not go on, and the exit code each reason means

pub mod artifact;
mod deployed;
mod error;
mod execute;
mod report;
mod wait;

pub use error::RolloutError;
pub use execute::{Rollout, broker_config};
pub use report::{AccountResult, Outcome, Progress, Report};
pub use rolehop_core::rollout::{
    Account, CallAs, Change, Deployed, Instance, Permission, Plan, RolloutInput, StackSetPlan,
    StackSetSpec, diff, organizational_units_text,
};
pub use wait::{Sleep, Timing, real_sleep};
