//! placeholder

pub mod iam;
