//! The pure half of `rolehop rollout`, beside the chain plan: what to deploy ([`spec`]) and
//! the difference between that and what is deployed ([`plan`]). `rolehop_aws::rollout` reads
//! the deployed state from CloudFormation, hands it to [`diff`] and carries out the result.

pub mod changes;
pub mod plan;
pub mod spec;

pub use crate::topology::CallAs;
pub use changes::{same_template, template_changes};
pub use plan::{
    Change, Deployed, FoundStackSet, Instance, Orphan, Plan, StackSetPlan, diff,
    organizational_units_text, orphan_environment, orphans, stack_change,
};
pub use spec::{Account, Permission, RolloutInput, StackSetSpec};
