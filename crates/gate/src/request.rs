//! What a job sends the gate and what every outcome answers, independent of the HTTP server:
//! the server reads the method, path, `Authorization` header and body, and passes them here.
//!
//! `POST /` (or `/v1/credentials`) with `{"environment": "prod", "token": "<ID token>"}`, or
//! the token as `Authorization: Bearer <ID token>` and `{"environment": "prod"}`.
//! Statuses: 200 credentials; 400 malformed request; 401 bad token; 403 a claim rule refused;
//! 404 no such environment (said only after the token verified); 405 wrong method; 413 body or
//! token too large; 502 the issuer's keys or STS answered garbage or refused the gate; 503 the
//! issuer or STS is unavailable (fail closed).

use rolehop_core::Secret;
use rolehop_core::secret::secret;
use serde_json::{Value, json};

use crate::jwks::KeyError;
use crate::jwt::{MAX_TOKEN_LEN, TokenError};
use crate::rules::Refusal;
use crate::verify::VerifyError;

/// The largest body read: a token at STS's limit plus a little JSON.
pub const MAX_BODY_BYTES: usize = MAX_TOKEN_LEN + 4096;

/// An HTTP status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub u16);

/// A parsed request. The token stays in a redacting type until the verifier reads it.
#[derive(Debug)]
pub struct GateRequest {
    /// The GitLab ID token, from the body or the `Authorization` header.
    pub token: Secret,
    /// The gate environment the job asks credentials for.
    pub environment: String,
}

/// Why a request is refused before its token is even looked at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The body is over [`MAX_BODY_BYTES`] (HTTP 413).
    #[error("the request body has more than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    /// The method is not POST (HTTP 405).
    #[error("only POST is accepted")]
    Method,
    /// The body is not JSON, not an object, or has fields other than `environment` and `token` (HTTP 400).
    #[error("the request body is not a JSON object with `environment` (and `token`): {0}")]
    Body(String),
    /// Neither the body nor the header carries a token (HTTP 400).
    #[error("no token: send it as `token` in the body or as `Authorization: Bearer <token>`")]
    NoToken,
    /// Both the body and the header carry a token; refused rather than guessing which one counts (HTTP 400).
    #[error("the token was sent twice (body and Authorization header); send it once")]
    TwoTokens,
    /// The `Authorization` header is present but not a bearer token (HTTP 400).
    #[error("the Authorization header is not `Bearer <token>`")]
    BadAuthorization,
}

impl RequestError {
    /// The HTTP status the gate answers this refusal with.
    pub fn status(&self) -> Status {
        match self {
            RequestError::TooLarge => Status(413),
            RequestError::Method => Status(405),
            _ => Status(400),
        }
    }
}

/// Parses a request. `body_len_exceeded` is the server's word that it stopped reading at
/// [`MAX_BODY_BYTES`].
pub fn parse_request(
    method: &str,
    authorization: Option<&str>,
    body: &[u8],
    body_len_exceeded: bool,
) -> Result<GateRequest, RequestError> {
    if !method.eq_ignore_ascii_case("POST") {
        return Err(RequestError::Method);
    }
    if body_len_exceeded || body.len() > MAX_BODY_BYTES {
        return Err(RequestError::TooLarge);
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| RequestError::Body(e.to_string()))?;
    let Value::Object(obj) = v else {
        return Err(RequestError::Body("it is not an object".into()));
    };
    if let Some(k) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "environment" | "token"))
    {
        return Err(RequestError::Body(format!(
            "unknown field `{}`",
            crate::shown(k)
        )));
    }
    let environment = match obj.get("environment") {
        Some(Value::String(e)) if !e.is_empty() && e.len() <= 128 => e.clone(),
        Some(_) => {
            return Err(RequestError::Body(
                "`environment` must be a short non-empty string".into(),
            ));
        }
        None => return Err(RequestError::Body("`environment` is missing".into())),
    };
    let bearer = match authorization {
        None => None,
        Some(h) => match h.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => {
                Some(t.trim())
            }
            _ => return Err(RequestError::BadAuthorization),
        },
    };
    let token = match (obj.get("token"), bearer) {
        (Some(_), Some(_)) => return Err(RequestError::TwoTokens),
        (Some(Value::String(t)), None) => t.as_str(),
        (Some(_), None) => return Err(RequestError::Body("`token` must be a string".into())),
        (None, Some(t)) => t,
        (None, None) => return Err(RequestError::NoToken),
    };
    Ok(GateRequest {
        token: secret(token),
        environment,
    })
}

/// The status for a token that did not verify.
pub fn verify_status(e: &VerifyError) -> Status {
    match e {
        VerifyError::Token(TokenError::TooLarge { .. }) => Status(413),
        VerifyError::Token(_) => Status(401),
        VerifyError::Keys(KeyError::Unavailable(_)) | VerifyError::ReplayStoreFull(_) => {
            Status(503)
        }
        VerifyError::Keys(KeyError::BadDocument(_)) => Status(502),
    }
}

/// The JSON body of an error answer. It carries what went wrong, never the token.
pub fn error_body(status: Status, message: &str, refusal: Option<&Refusal>) -> String {
    let mut doc = json!({ "status": status.0, "error": message });
    if let Some(r) = refusal {
        doc["rule"] = json!(r.rule);
        doc["expected"] = json!(r.expected);
        doc["actual"] = json!(r.actual);
    }
    format!("{doc}\n")
}
