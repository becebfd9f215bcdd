//! The pure half of `rolehop rollout`, beside the chain plan: what to deploy ([`spec`]) and
//! the difference between that and what is deployed ([`plan`]). `rolehop_aws::rollout` reads
//! the deployed state from CloudFormation, hands it to [`diff`] and carries out the result.

pub mod plan;
pub mod spec;

pub use crate::topology::CallAs;
pub use plan::{
    Change, Deployed, Instance, Plan, StackSetPlan, diff, organizational_units_text, same_template,
};
pub use spec::{Account, Permission, RolloutInput, StackSetSpec};
