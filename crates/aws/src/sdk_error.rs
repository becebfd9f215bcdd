//! One reading of aws-sdk-rust errors for every AWS call rolehop makes (the STS chain, the
//! rollout, key rotation): what kind of failure it is, AWS's code and message when a service
//! answered, and one clean wording for transport failures instead of the SDK's debug dump
//! (`dispatch failure: ... ConnectorError { ... }`). Callers add what only they know (which
//! hop, which role, which exit code).

use aws_credential_types::provider::error::CredentialsError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::{DispatchFailure, SdkError};
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// What a service's error code means, whichever service sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceErrorKind {
    /// Throttled, and still throttled after the SDK's bounded retries.
    Throttled,
    /// The service (or the identity provider behind it) kept failing: 5xx, internal errors.
    Unavailable,
    /// The caller may not do this (identity policy, trust policy, SCP).
    AccessDenied,
    /// The signing credentials are unknown, deleted, inactive or paired with the wrong secret.
    InvalidCredentials,
    /// The signing session (or the presented token) has expired.
    ExpiredToken,
    /// The named resource does not exist.
    NotFound,
    /// A request parameter was refused.
    Validation,
    /// Any other service error; its code and message say more.
    Other,
}

impl ServiceErrorKind {
    /// The kind of an AWS error `code` (with its `message` where the code alone is ambiguous).
    pub fn of(code: &str, message: &str) -> Self {
        match code {
            c if c.contains("Throttl") || c == "RequestLimitExceeded" => Self::Throttled,
            "InternalFailure"
            | "InternalError"
            | "ServiceUnavailable"
            | "ServiceFailure"
            | "IDPCommunicationError" => Self::Unavailable,
            c if c.contains("AccessDenied") => Self::AccessDenied,
            "InvalidClientTokenId"
            | "SignatureDoesNotMatch"
            | "UnrecognizedClientException"
            | "AuthFailure" => Self::InvalidCredentials,
            "ExpiredToken" | "ExpiredTokenException" => Self::ExpiredToken,
            "NoSuchEntity" | "NoSuchEntityException" | "StackSetNotFoundException" => {
                Self::NotFound
            }
            // CloudFormation says "Stack with id x does not exist" as a ValidationError.
            "ValidationError" if message.contains("does not exist") => Self::NotFound,
            "ValidationError" | "ValidationException" => Self::Validation,
            _ => Self::Other,
        }
    }
}

/// A failed AWS call, read once. `service` is the name people know (`STS`, `CloudFormation`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdkFailure {
    /// The SDK's credential chain found nothing to sign with.
    #[error("no AWS credentials were found")]
    NoCredentials,
    /// The endpoint could not be reached: connection refused, DNS, TLS.
    #[error("could not reach {service}: {reason}")]
    Unreachable {
        /// The service as people know it (`STS`, `CloudFormation`).
        service: &'static str,
        /// The transport's error (connection refused, DNS, TLS).
        reason: String,
    },
    /// Something answered that is not HTTP (hyper reports it as a failure to send).
    #[error("{service}'s answer is not valid HTTP: {reason}")]
    NotHttp {
        /// The service as people know it (`STS`, `CloudFormation`).
        service: &'static str,
        /// hyper's parse error.
        reason: String,
    },
    /// No answer within the timeouts, after bounded retries.
    #[error("{service} did not answer in time")]
    TimedOut {
        /// The service as people know it (`STS`, `CloudFormation`).
        service: &'static str,
    },
    /// An answer arrived and could not be parsed (truncated, mangled).
    #[error("{service}'s answer could not be read (HTTP {status}): {reason}")]
    Unreadable {
        /// The service as people know it (`STS`, `CloudFormation`).
        service: &'static str,
        /// The HTTP status of the answer.
        status: u16,
        /// What could not be parsed.
        reason: String,
    },
    /// An answer that is neither the service's result nor its error: a captive proxy, an HTML
    /// error page, the wrong endpoint.
    #[error("{service}'s answer could not be read (HTTP {}): it is not {service} XML", status_text(.status))]
    NotAws {
        /// The service as people know it (`STS`, `CloudFormation`).
        service: &'static str,
        /// The HTTP status, when there was one.
        status: Option<u16>,
    },
    /// The SDK could not build the request.
    #[error("could not build the request: {reason}")]
    Construction {
        /// The SDK's reason (a missing region or a malformed endpoint URL).
        reason: String,
    },
    /// The service answered with an error.
    #[error("{}", service_text(.code.as_deref(), .message.as_deref()))]
    Service {
        /// What the code means for rolehop (denied, throttled, not found...).
        kind: ServiceErrorKind,
        /// The service's error code (`AccessDenied`).
        code: Option<String>,
        /// The service's message.
        message: Option<String>,
    },
}

impl SdkFailure {
    /// A service or the network kept failing after bounded retries: worth retrying later.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unreachable { .. }
            | Self::NotHttp { .. }
            | Self::TimedOut { .. }
            | Self::Unreadable { .. }
            | Self::NotAws { .. } => true,
            Self::Service { kind, .. } => matches!(
                kind,
                ServiceErrorKind::Throttled | ServiceErrorKind::Unavailable
            ),
            Self::NoCredentials | Self::Construction { .. } => false,
        }
    }

    /// AWS refused the caller: access denied, or credentials it does not accept.
    pub fn is_denied(&self) -> bool {
        matches!(
            self,
            Self::Service {
                kind: ServiceErrorKind::AccessDenied
                    | ServiceErrorKind::InvalidCredentials
                    | ServiceErrorKind::ExpiredToken,
                ..
            }
        )
    }

    /// The service error's kind, if a service answered.
    pub fn service_kind(&self) -> Option<ServiceErrorKind> {
        match self {
            Self::Service { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// What to check when no service answered (service errors need the caller's context).
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Self::Unreachable { service, .. } => format!(
                "{service} endpoint unreachable after retries: check the network, the region (`--region`/`AWS_REGION`) and AWS_ENDPOINT_URL"
            ),
            Self::NotHttp { service, .. } => format!(
                "something other than {service} answers at this address (a proxy, or AWS_ENDPOINT_URL pointing at the wrong port); check AWS_ENDPOINT_URL"
            ),
            Self::TimedOut { service } => format!(
                "the {service} endpoint timed out after bounded retries; check the network and the region"
            ),
            Self::Unreadable { service, .. } => format!(
                "the answer was truncated or is not {service} XML (a proxy or load balancer in between?); retry the job, and check AWS_ENDPOINT_URL"
            ),
            Self::NotAws { service, .. } => format!(
                "something other than {service} answered (a proxy, a load balancer, or AWS_ENDPOINT_URL pointing at the wrong service); retry the job, and check AWS_ENDPOINT_URL"
            ),
            Self::Construction { .. } => {
                "a request parameter is invalid; this is likely a rolehop bug".to_owned()
            }
            Self::NoCredentials => {
                "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".to_owned()
            }
            Self::Service { .. } => return None,
        })
    }
}

fn status_text(status: &Option<u16>) -> String {
    status.map_or_else(|| "?".to_owned(), |s| s.to_string())
}

/// `message (Code)`: the service's own words first, as people search for them.
fn service_text(code: Option<&str>, message: Option<&str>) -> String {
    match (code, message) {
        (Some(c), Some(m)) => format!("{m} ({c})"),
        (Some(c), None) => c.to_owned(),
        (None, Some(m)) => m.to_owned(),
        (None, None) => "an error without code or message".to_owned(),
    }
}

/// Reads an SDK error of a call to `service`.
pub fn classify<E>(service: &'static str, err: &SdkError<E, HttpResponse>) -> SdkFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if lacks_credentials(err) {
        return SdkFailure::NoCredentials;
    }
    match err {
        // hyper reports an answer it cannot parse as HTTP as a failure to send; saying
        // "could not reach" would send the user after the network instead of the endpoint.
        SdkError::DispatchFailure(d)
            if d.as_connector_error()
                .is_some_and(|e| error_chain(e).contains(" parsed")) =>
        {
            SdkFailure::NotHttp {
                service,
                reason: dispatch_reason(d),
            }
        }
        SdkError::DispatchFailure(d) => SdkFailure::Unreachable {
            service,
            reason: dispatch_reason(d),
        },
        SdkError::TimeoutError(_) => SdkFailure::TimedOut { service },
        SdkError::ResponseError(r) => SdkFailure::Unreadable {
            service,
            status: r.raw().status().as_u16(),
            reason: error_chain(err),
        },
        SdkError::ConstructionFailure(_) => SdkFailure::Construction {
            reason: error_chain(err),
        },
        _ => {
            // Some endpoints (moto among them) answer errors in a shape the SDK cannot parse;
            // then the status and a look into the body still tell what happened.
            let raw = err.raw_response();
            let body = raw
                .and_then(|r| r.body().bytes())
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            let status = raw.map(|r| r.status().as_u16());
            let code = err
                .code()
                .map(str::to_owned)
                .or_else(|| xml_text(&body, "Code"))
                .or_else(|| match status {
                    Some(403) => Some("AccessDenied".to_owned()),
                    Some(s) if s >= 500 => Some("ServiceUnavailable".to_owned()),
                    _ => None,
                });
            let message = err
                .message()
                .map(str::to_owned)
                .or_else(|| xml_text(&body, "Message"));
            if code.is_none() && message.is_none() {
                return SdkFailure::NotAws { service, status };
            }
            SdkFailure::Service {
                kind: ServiceErrorKind::of(
                    code.as_deref().unwrap_or(""),
                    message.as_deref().unwrap_or(""),
                ),
                code,
                message,
            }
        }
    }
}

/// The SDK reports credentials it could not load as a failure to send (or to build) the
/// request; find them among the causes.
fn lacks_credentials<E>(err: &SdkError<E, HttpResponse>) -> bool
where
    E: std::error::Error + 'static,
{
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(c) = cur {
        if matches!(
            c.downcast_ref::<CredentialsError>(),
            Some(CredentialsError::CredentialsNotLoaded(_))
        ) {
            return true;
        }
        cur = c.source();
    }
    // Without any credentials provider the SDK only says so in words.
    let text = DisplayErrorContext(err).to_string();
    match err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            text.contains("credentials") || text.contains("identity")
        }
        SdkError::ConstructionFailure(_) => text.contains("credentials"),
        _ => false,
    }
}

fn xml_text(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body.get(start..)?.find(&format!("</{tag}>"))? + start;
    body.get(start..end)
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn dispatch_reason(d: &DispatchFailure) -> String {
    let mut s = if d.is_io() {
        "connection failed".to_owned()
    } else if d.is_timeout() {
        "connection timed out".to_owned()
    } else {
        "request could not be sent".to_owned()
    };
    if let Some(e) = d.as_connector_error() {
        // The innermost cause is the one that says what happened (`Connection refused (os
        // error 111)`, a DNS or certificate failure); the layers above it only repeat
        // "client error (Connect)".
        s.push_str(&format!(": {}", innermost(e)));
    }
    s
}

fn innermost(e: &dyn std::error::Error) -> String {
    let mut cur = e;
    while let Some(inner) = cur.source() {
        cur = inner;
    }
    cur.to_string()
}

/// An error and its causes on one line, without the SDK's debug dump.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_of_every_service_read_the_same() {
        use ServiceErrorKind as K;
        let cases = [
            ("Throttling", "", K::Throttled),
            ("ThrottlingException", "", K::Throttled),
            ("RequestLimitExceeded", "", K::Throttled),
            ("InternalFailure", "", K::Unavailable),
            ("ServiceUnavailable", "", K::Unavailable),
            ("AccessDenied", "", K::AccessDenied),
            ("AccessDeniedException", "", K::AccessDenied),
            ("InvalidClientTokenId", "", K::InvalidCredentials),
            ("SignatureDoesNotMatch", "", K::InvalidCredentials),
            ("ExpiredToken", "", K::ExpiredToken),
            ("ExpiredTokenException", "", K::ExpiredToken),
            ("NoSuchEntity", "", K::NotFound),
            ("StackSetNotFoundException", "", K::NotFound),
            (
                "ValidationError",
                "Stack with id x does not exist",
                K::NotFound,
            ),
            ("ValidationError", "1 validation error", K::Validation),
            ("AlreadyExistsException", "", K::Other),
        ];
        for (code, message, want) in cases {
            assert_eq!(ServiceErrorKind::of(code, message), want, "{code}");
        }
    }

    #[test]
    fn an_unreachable_endpoint_reads_cleanly() {
        let f = SdkFailure::Unreachable {
            service: "STS",
            reason: "connection failed: tcp connect error: Connection refused (os error 111)"
                .into(),
        };
        assert_eq!(
            f.to_string(),
            "could not reach STS: connection failed: tcp connect error: Connection refused (os error 111)"
        );
        assert!(f.is_unavailable() && !f.is_denied());
        assert!(f.hint().is_some_and(|h| h.contains("AWS_ENDPOINT_URL")));
    }

    #[test]
    fn a_service_error_shows_its_message_then_its_code() {
        let f = SdkFailure::Service {
            kind: ServiceErrorKind::AccessDenied,
            code: Some("AccessDenied".into()),
            message: Some("User x is not authorized".into()),
        };
        assert_eq!(f.to_string(), "User x is not authorized (AccessDenied)");
        assert!(f.is_denied() && !f.is_unavailable());
        let f = SdkFailure::NotAws {
            service: "STS",
            status: Some(200),
        };
        assert_eq!(
            f.to_string(),
            "STS's answer could not be read (HTTP 200): it is not STS XML"
        );
    }
}
