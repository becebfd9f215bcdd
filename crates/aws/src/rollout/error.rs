//! Why a rollout could not go on, and the exit code each reason means. Failed AWS calls are
//! read by the crate's one classifier ([`crate::sdk_error`]), so `rollout` and the STS chain
//! word an unreachable endpoint, a denial or throttling the same way.

use aws_sdk_cloudformation::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use rolehop_core::exit::{Exit, HasExit};

use crate::sdk_error::{self, SdkFailure, ServiceErrorKind};

/// Why a rollout could not go on (per-account failures are results, not errors).
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    #[error(
        "the AWS credentials are for account `{actual}`, but the topology's broker account is `{expected}`: rollout must run with the broker account's administrator credentials"
    )]
    /// The credentials are not the broker account's: rollout refuses before creating anything
    /// in an account the topology does not name.
    WrongAccount {
        /// The topology's broker account.
        expected: String,
        /// The account the credentials are in.
        actual: String,
    },
    /// The SDK's credential chain found nothing to sign `call` with.
    #[error(
        "no AWS credentials for the broker account: the SDK's chain (environment variables, AWS_PROFILE, SSO, container and instance metadata) found none"
    )]
    NoCredentials {
        /// The call that needed them.
        call: &'static str,
    },
    /// An AWS call (`cloudformation:CreateStackSet`, ...) failed; the failure says how.
    #[error("{call}: {failure}{}", likely_cause(.failure))]
    Aws {
        /// `service:Action`.
        call: &'static str,
        /// How it failed, read by the shared classifier.
        failure: SdkFailure,
    },
    /// Polling gave up on a stack or StackSet operation still in progress.
    #[error("{what} did not finish within {secs} s")]
    NotFinished {
        /// The stack or StackSet operation.
        what: String,
        /// How long rollout waited.
        secs: u64,
    },
    #[error("stack `{stack}` ended in {status}: {reason}")]
    /// The broker stack ended in a failed or rolled-back state.
    StackFailed {
        /// The stack's name.
        stack: String,
        /// CloudFormation's final status (`ROLLBACK_COMPLETE`).
        status: String,
        /// CloudFormation's reasons for the failed resources, or what to do about a stack
        /// left in `ROLLBACK_COMPLETE`.
        reason: String,
    },
}

impl RolloutError {
    /// The error on one line, for an account's outcome (the hint is for the final message).
    pub fn reason(&self) -> String {
        match self {
            RolloutError::Aws { call, failure } => format!("{call}: {failure}"),
            other => other.to_string(),
        }
    }
}

impl HasExit for RolloutError {
    fn exit(&self) -> Exit {
        match self {
            RolloutError::WrongAccount { .. } => Exit::Denied,
            RolloutError::NoCredentials { .. } => Exit::NoCredentials,
            RolloutError::Aws { failure, .. } if failure.is_denied() => Exit::Denied,
            RolloutError::Aws { failure, .. } if failure.is_unavailable() => Exit::Unavailable,
            RolloutError::NotFinished { .. } => Exit::Unavailable,
            // A stack or a call that failed for its own reasons: the rollout is incomplete.
            RolloutError::Aws { .. } | RolloutError::StackFailed { .. } => Exit::PartialFailure,
        }
    }
}

/// When no service answered, what to check (a service's own words need no hint).
fn likely_cause(failure: &SdkFailure) -> String {
    failure
        .hint()
        .map(|h| format!("\n  likely cause: {h}"))
        .unwrap_or_default()
}

/// Reads the SDK error of `call` (`service:Action`).
pub(super) fn classify<E>(call: &'static str, e: SdkError<E, HttpResponse>) -> RolloutError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let service = match call.split_once(':') {
        Some(("sts", _)) => "STS",
        Some(("s3", _)) => "S3",
        _ => "CloudFormation",
    };
    match sdk_error::classify(service, &e) {
        SdkFailure::NoCredentials => {
            tracing::debug!(
                "{call}: {}",
                aws_sdk_cloudformation::error::DisplayErrorContext(&e)
            );
            RolloutError::NoCredentials { call }
        }
        failure => RolloutError::Aws { call, failure },
    }
}

/// CloudFormation's way of saying a stack or StackSet does not exist (yet).
pub(super) fn is_not_found<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    ServiceErrorKind::of(e.code().unwrap_or(""), e.message().unwrap_or(""))
        == ServiceErrorKind::NotFound
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(failure: SdkFailure) -> RolloutError {
        RolloutError::Aws {
            call: "sts:GetCallerIdentity",
            failure,
        }
    }

    #[test]
    fn each_reason_names_its_exit_code() {
        let denied = aws(SdkFailure::Service {
            kind: ServiceErrorKind::AccessDenied,
            code: Some("AccessDenied".into()),
            message: Some("not authorized".into()),
        });
        assert_eq!(denied.exit(), Exit::Denied);
        assert_eq!(
            denied.to_string(),
            "sts:GetCallerIdentity: not authorized (AccessDenied)"
        );
        let throttled = aws(SdkFailure::Service {
            kind: ServiceErrorKind::Throttled,
            code: Some("Throttling".into()),
            message: None,
        });
        assert_eq!(throttled.exit(), Exit::Unavailable);
        let exists = aws(SdkFailure::Service {
            kind: ServiceErrorKind::Other,
            code: Some("AlreadyExistsException".into()),
            message: None,
        });
        assert_eq!(exists.exit(), Exit::PartialFailure);
        assert_eq!(
            RolloutError::NoCredentials { call: "x" }.exit(),
            Exit::NoCredentials
        );
        assert_eq!(
            RolloutError::NotFinished {
                what: "stack `b`".into(),
                secs: 5
            }
            .exit(),
            Exit::Unavailable
        );
    }

    #[test]
    fn an_unreachable_endpoint_is_worded_like_the_chain_and_says_what_to_check() {
        let e = aws(SdkFailure::Unreachable {
            service: "STS",
            reason: "connection failed: tcp connect error".into(),
        });
        assert_eq!(e.exit(), Exit::Unavailable);
        let text = e.to_string();
        assert!(
            text.starts_with("sts:GetCallerIdentity: could not reach STS: connection failed"),
            "{text}"
        );
        assert!(
            text.contains("likely cause: STS endpoint unreachable"),
            "{text}"
        );
        assert!(!e.reason().contains('\n'));
    }
}
