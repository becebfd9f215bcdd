//! rolehop's AWS rim: the STS chain, IAM and CloudFormation StackSets.

pub mod rollout;
