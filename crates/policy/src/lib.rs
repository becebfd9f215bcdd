//! A pure IAM policy parser and evaluator: documents are parsed once into a compiled AST, and
//! requests are decided the way AWS decides them (explicit deny, SCPs, RCPs, resource and trust
//! policies, permissions boundaries, session and identity policies), with an explanation.
//!
//! Stages, each in its own module: [`parse`] (JSON -> [`Policy`]), [`pattern`]/[`arn`] (compiled
//! glob and ARN matching), [`condition`] (operators and policy variables), [`eval`] (the
//! decision), [`trust`] (an index of trust policies by principal) and [`cases`] (the
//! conformance case-file format, shared with `rolehop simulate`).
//!
//! ```
//! use rolehop_policy::{evaluate, Decision, EvalInput, Policy, Principal, Request};
//!
//! let trust = Policy::parse(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow",
//!   "Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"sts:AssumeRole"}}"#).unwrap();
//! let identity = Policy::parse(r#"{"Statement":{"Effect":"Allow","Action":"sts:AssumeRole",
//!   "Resource":"arn:aws:iam::222222222222:role/deploy"}}"#).unwrap();
//! let request = Request::new(
//!     Principal::arn("arn:aws:iam::111111111111:user/ci"),
//!     "sts:AssumeRole",
//!     "arn:aws:iam::222222222222:role/deploy",
//! );
//! let input = EvalInput { identity: &[&identity], resource: Some(&trust), ..EvalInput::default() };
//! assert_eq!(rolehop_policy::evaluate(&request, &input).decision, Decision::Allowed);
//! ```
//!
//! Floors CI enforces here (warnings are denied): every public item is documented
//! (`missing_docs`; IAM's operator names are the one exemption, see [`condition::BaseOp`]) and
//! nothing is `pub` that the crate does not export (`unreachable_pub`).

#![warn(missing_docs, unreachable_pub)]

pub mod arn;
pub mod ast;
pub mod cases;
pub mod condition;
pub mod context;
pub mod error;
pub mod eval;
pub mod parse;
pub mod pattern;
pub mod principal;
pub mod request;
mod reserved;
pub mod trust;
pub mod vars;

pub use ast::{Effect, Policy, Statement};
pub use context::Context;
pub use error::{PolicyError, PolicyErrorKind};
pub use eval::{
    AssumedCondition, Decision, EvalInput, EvalOptions, Evaluation, Explanation, Layer, Reason,
    StatementRef, evaluate, evaluate_with,
};
pub use request::{Principal, Request};
pub use trust::TrustIndex;
