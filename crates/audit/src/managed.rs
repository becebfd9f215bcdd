//! AWS managed policies for when the estate does not carry their documents (a topology names
//! them by ARN only; exports usually list only customer managed policies): every one, from the
//! data package in `crates/audit/data/` (see [`crate::data`]). A policy the package does not
//! know stays unevaluated and becomes finding RH091, never a guess.

use serde_json::Value;

/// The default-version document of an AWS managed policy, if the data package has it.
pub fn aws_managed(arn: &str) -> Option<Value> {
    serde_json::from_str(crate::data::managed_policy(arn)?).ok()
}
