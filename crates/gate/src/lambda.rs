//! The gate behind a Lambda function URL, the pure part: a function URL hands the function
//! an event in API Gateway's payload format 2.0 and expects a JSON response object back.
//! [`parse_event`] turns the event into what the gate's request handler reads (method, path,
//! `Authorization` header, body) and [`response`] wraps the handler's answer. The Runtime API
//! loop that fetches events and posts responses lives in the binary.
//!
//! Event (the fields used): `{"rawPath": "/", "headers": {"authorization": "..."},
//! "requestContext": {"http": {"method": "POST"}}, "body": "...", "isBase64Encoded": false}`.
//! Function URLs lower-case header names and join repeated headers with commas.

use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

use crate::request::MAX_BODY_BYTES;

/// An HTTP request as the function URL delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The HTTP method, as the function URL reported it.
    pub method: String,
    /// The raw request path, which picks the gate's endpoint.
    pub path: String,
    /// The `Authorization` header, if sent; headers are matched case-insensitively.
    pub authorization: Option<String>,
    /// At most [`MAX_BODY_BYTES`] + 1 bytes: one more tells an oversized body.
    pub body: Vec<u8>,
    /// Whether the body was longer than [`MAX_BODY_BYTES`] and was cut, so the gate answers 413.
    pub body_too_large: bool,
}

/// The event is not a function URL event (a misconfigured trigger, or a direct invocation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Lambda function URL event (payload format 2.0): {0}")]
pub struct EventError(pub String);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    version: Option<String>,
    raw_path: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    request_context: Context,
    body: Option<String>,
    #[serde(default)]
    is_base64_encoded: bool,
}

#[derive(Deserialize)]
struct Context {
    http: Http,
}

#[derive(Deserialize)]
struct Http {
    method: String,
}

/// Parses a function URL event. Bodies are bounded before they are decoded, so a 6 MB
/// payload (Lambda's limit) costs no more than a 24 KiB one.
pub fn parse_event(event: &[u8]) -> Result<HttpRequest, EventError> {
    let e: Event = serde_json::from_slice(event).map_err(|e| EventError(e.to_string()))?;
    if e.version.as_deref().is_some_and(|v| v != "2.0") {
        return Err(EventError(format!(
            "payload format `{}`",
            crate::shown(e.version.as_deref().unwrap_or(""))
        )));
    }
    let authorization = e
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.clone());
    let raw = e.body.unwrap_or_default();
    let (body, too_large) = if e.is_base64_encoded {
        // base64 grows 3 bytes to 4: a longer text decodes to more than the limit.
        let max_encoded = (MAX_BODY_BYTES + 1).div_ceil(3) * 4;
        if raw.len() > max_encoded {
            (Vec::new(), true)
        } else {
            let b = base64::engine::general_purpose::STANDARD
                .decode(raw.as_bytes())
                .map_err(|e| EventError(format!("body is not base64: {e}")))?;
            let too = b.len() > MAX_BODY_BYTES;
            (b, too)
        }
    } else {
        let too = raw.len() > MAX_BODY_BYTES;
        (if too { Vec::new() } else { raw.into_bytes() }, too)
    };
    Ok(HttpRequest {
        method: e.request_context.http.method,
        path: e.raw_path,
        authorization,
        body,
        body_too_large: too_large,
    })
}

/// The function URL response for a JSON answer.
pub fn response(status: u16, body: &str) -> Value {
    json!({
        "statusCode": status,
        "headers": {
            "content-type": "application/json",
            "cache-control": "no-store",
        },
        "body": body,
        "isBase64Encoded": false,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn event(body: &str, b64: bool, headers: Value) -> Vec<u8> {
        json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": "/",
            "rawQueryString": "",
            "headers": headers,
            "requestContext": {"http": {"method": "POST", "path": "/", "sourceIp": "192.0.2.1"}},
            "body": body,
            "isBase64Encoded": b64,
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_function_url_event_becomes_the_gates_request() {
        let r = parse_event(&event(
            "{\"environment\":\"prod\"}",
            false,
            json!({"authorization": "Bearer x.y.z", "content-type": "application/json"}),
        ))
        .unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/");
        assert_eq!(r.authorization.as_deref(), Some("Bearer x.y.z"));
        assert_eq!(r.body, b"{\"environment\":\"prod\"}");
        assert!(!r.body_too_large);
    }

    #[test]
    fn base64_bodies_are_decoded_and_bounded_before_decoding() {
        let enc = base64::engine::general_purpose::STANDARD.encode("{\"a\":1}");
        let r = parse_event(&event(&enc, true, json!({}))).unwrap();
        assert_eq!(r.body, b"{\"a\":1}");
        let huge = "A".repeat(MAX_BODY_BYTES * 2);
        let r = parse_event(&event(&huge, true, json!({}))).unwrap();
        assert!(r.body_too_large && r.body.is_empty());
        let r = parse_event(&event(&"x".repeat(MAX_BODY_BYTES + 1), false, json!({}))).unwrap();
        assert!(r.body_too_large);
        assert!(parse_event(&event("%%%", true, json!({}))).is_err());
    }

    #[test]
    fn other_events_are_refused() {
        for bad in [
            &b"not json"[..],
            br#"{"version":"1.0","rawPath":"/","requestContext":{"http":{"method":"POST"}}}"#,
            br#"{"Records":[]}"#,
        ] {
            assert!(
                parse_event(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn responses_are_json_and_never_cached() {
        let r = response(403, "{\"status\":403}");
        assert_eq!(r["statusCode"], 403);
        assert_eq!(r["headers"]["cache-control"], "no-store");
        assert_eq!(r["body"], "{\"status\":403}");
    }
}
