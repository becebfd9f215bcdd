//! The job's side of the claim gate: POST the ID token, get service-role credentials.
//!
//! The contract is `rolehop gate serve`'s (docs/gate.md): `{"environment", "token"}` in,
//! rolehop's `--format json` document for the service-role hop out, or `{"status", "error"}`
//! with `rule`, `expected` and `actual` for a refused rule. Transient failures (5xx, 429,
//! connection errors, timeouts) are retried with the same bounded backoff as STS; a refusal
//! (400, 401, 403, 404, ...) never is: asking again cannot change the answer, and each
//! attempt spends the token once more where the gate refuses replays.

// A ChainError is built at most once per process, on its way to the user (as in `chain`).
#![allow(clippy::result_large_err)]

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::debug;

use rolehop_core::Secret;
use rolehop_core::chain::{GateTarget, HopRole};
use rolehop_core::credentials::{Credentials, HopOutcome};
use rolehop_core::secret::secret;

use crate::chain::{ChainError, FailureKind, Origin};
use crate::sts::StsSettings;

/// The longest answer read from the gate: its credentials document is about 2 KiB.
pub const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// What the gate answered: any HTTP status. The body may hold credentials: it is parsed,
/// never printed.
#[derive(Debug, Clone)]
pub struct GateReply {
    /// The HTTP status; the caller reads the body's error only when it is not 200.
    pub status: u16,
    /// The answer; redacted, since a 200 carries credentials.
    pub body: Secret,
}

/// The gate could not be asked: connection refused, DNS, TLS, timeout, unreadable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct TransportError {
    /// What went wrong, without the token or the body.
    pub detail: String,
}

/// How rolehop talks HTTP to the gate; injected in tests to replay recorded exchanges.
pub trait GateTransport: Send + Sync {
    /// POSTs the JSON `body` to `url` once. Any HTTP status is an `Ok` reply.
    fn post(&self, url: &str, body: &Secret) -> Result<GateReply, TransportError>;
}

/// The default transport: ureq with STS's timeouts, no redirects (the token must not follow
/// a `Location` to another host), and the proxy the core's one rule picks
/// (`rolehop_core::proxy`: `HTTPS_PROXY` minus `NO_PROXY`), the same as for STS. A
/// plain-http gate is loopback only and a loopback URL is never proxied: the proxy would
/// carry the token off the machine in clear text.
pub struct UreqGate {
    direct: ureq::Agent,
    /// Built once per proxy URL the settings name (`https` and `http`), by that URL.
    proxied: Vec<(String, ureq::Agent)>,
    network: crate::net::Network,
}

impl UreqGate {
    /// A transport with STS's connect and attempt timeouts and network from `settings`.
    pub fn new(settings: &StsSettings) -> UreqGate {
        let network = settings.network.clone();
        let tls = network.load_ca().ok().flatten().map(|ca| {
            // AWS_CA_BUNDLE replaces the trusted roots, as for the SDK client and the aws CLI.
            let certs = ca
                .certificates()
                .iter()
                .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned());
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::from(certs))
                .build()
        });
        let agent = |proxy: Option<ureq::Proxy>| {
            let mut config = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .proxy(proxy)
                .timeout_connect(Some(settings.connect_timeout))
                .timeout_global(Some(settings.attempt_timeout));
            if let Some(tls) = &tls {
                config = config.tls_config(tls.clone());
            }
            ureq::Agent::new_with_config(config.build())
        };
        let proxied = network
            .proxies
            .https
            .iter()
            .chain(&network.proxies.http)
            // Network::from_env checked each URL; ureq parses the same shape.
            .filter_map(|p| {
                let proxy = ureq::Proxy::new(p.expose()).ok()?;
                Some((p.expose().to_owned(), agent(Some(proxy))))
            })
            .collect();
        UreqGate {
            direct: agent(None),
            proxied,
            network,
        }
    }
}

impl GateTransport for UreqGate {
    fn post(&self, url: &str, body: &Secret) -> Result<GateReply, TransportError> {
        let agent = self
            .network
            .proxy_for(url)
            .and_then(|p| self.proxied.iter().find(|(u, _)| u == p.expose()))
            .map_or(&self.direct, |(_, a)| a);
        let mut resp = agent
            .post(url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .send(body.expose_secret().as_bytes())
            .map_err(|e| TransportError {
                detail: transport_detail(&e),
            })?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_string()
            .map_err(|e| TransportError {
                detail: format!("the answer could not be read: {}", transport_detail(&e)),
            })?;
        Ok(GateReply {
            status,
            body: secret(text),
        })
    }
}

fn transport_detail(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::BodyExceedsLimit(n) => format!("the answer is larger than {n} bytes"),
        other => other.to_string(),
    }
}

/// Whether asking again may get another answer.
pub fn transient(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status)
}

/// The pause before attempt `attempt + 1` (1-based `attempt`): exponential from STS's
/// initial backoff, capped at 5 s, with full jitter (`jitter` in 0..=1), as the SDK's
/// standard retry mode does for STS.
pub fn backoff(settings: &StsSettings, attempt: u32, jitter: f64) -> Duration {
    let exp = settings
        .initial_backoff
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    exp.min(Duration::from_secs(5))
        .mul_f64(jitter.clamp(0.0, 1.0))
}

fn jitter() -> f64 {
    // RandomState is seeded from the OS per process; enough to keep retrying jobs apart.
    let mut h = RandomState::new().build_hasher();
    h.write_u64(0);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Posts the token to the gate, retrying transient failures, and reads its credentials.
pub async fn exchange(
    transport: Arc<dyn GateTransport>,
    settings: &StsSettings,
    target: &GateTarget,
    service_role_arn: Option<&str>,
    token: &Secret,
) -> Result<(Credentials, HopOutcome), ChainError> {
    let body = secret(
        serde_json::json!({
            "environment": target.environment,
            "token": token.expose_secret(),
        })
        .to_string(),
    );
    let attempts = settings.max_attempts.max(1);
    let mut attempt = 1;
    let reply = loop {
        let (t, url, b) = (transport.clone(), target.url.to_string(), body.clone());
        let sent = tokio::task::spawn_blocking(move || t.post(&url, &b))
            .await
            .map_err(|e| TransportError {
                detail: format!("the request did not complete: {e}"),
            })
            .and_then(|r| r);
        let again = match &sent {
            Ok(r) => transient(r.status),
            Err(_) => true,
        };
        if !again || attempt >= attempts {
            break sent;
        }
        let pause = backoff(settings, attempt, jitter());
        debug!(attempt, ?pause, "the gate failed transiently; retrying");
        tokio::time::sleep(pause).await;
        attempt += 1;
    };
    let fail =
        |kind: FailureKind, code: Option<String>, said: Option<String>, hint: String| ChainError {
            hop: HopRole::Service,
            origin: Origin::Gate {
                url: target.url.to_string(),
                environment: target.environment.clone(),
            },
            role_arn: service_role_arn.unwrap_or("").to_owned(),
            kind,
            code,
            aws_message: said.map(|s| redact(&s, token)),
            hint,
            completed: Vec::new(),
        };
    let reply = reply.map_err(|e| {
        fail(
            FailureKind::Unavailable,
            None,
            Some(format!("could not reach the gate after {attempt} attempts: {e}")),
            "the gate is down, unreachable or slow; check the gate URL (--gate-url, ROLEHOP_GATE_URL or the topology's `auth.gate_url`), HTTPS_PROXY/NO_PROXY, and retry the job".into(),
        )
    })?;
    let doc: Option<Value> = serde_json::from_str(reply.body.expose_secret()).ok();
    if reply.status == 200 {
        return match doc.as_ref().and_then(|d| read_answer(d, service_role_arn)) {
            Some(ok) => Ok(ok),
            None => Err(fail(
                FailureKind::Unavailable,
                Some("HTTP 200".into()),
                Some("the gate's answer could not be read as credentials".into()),
                "the answer was truncated or mangled on the way, or the URL is not a claim gate (a proxy or login page?); check the gate URL and retry".into(),
            )),
        };
    }
    let code = Some(format!("HTTP {}", reply.status));
    let said = doc.as_ref().map(refusal_text).filter(|s| !s.is_empty());
    let (kind, hint) = match reply.status {
        401 => (
            FailureKind::Denied,
            "the gate did not accept the ID token itself (signature, issuer, audience, age or reuse): declare it under `id_tokens:` with `aud:` set to the gate's audience, and use each token once".to_owned(),
        ),
        403 => (
            FailureKind::Denied,
            format!(
                "a claim rule of environment `{}` refused this job: GitLab signed these claims, so deploy from a project, ref and environment the rule admits (a protected branch or tag, a protected environment)",
                target.environment
            ),
        ),
        404 => (
            FailureKind::Denied,
            format!(
                "the gate serves no environment `{}`, or the gate URL's path is wrong (POST / or /v1/credentials)",
                target.environment
            ),
        ),
        400 | 405 | 413 => (
            FailureKind::Denied,
            "the gate refused the request itself (an oversized or malformed token?); pass the `id_tokens:` token unchanged".to_owned(),
        ),
        s if transient(s) => (
            FailureKind::Unavailable,
            format!("the gate kept failing after {attempt} attempts (its issuer or STS is unreachable or refuses it); retry the job, or ask the gate's operators"),
        ),
        _ => (
            FailureKind::Unexpected,
            "the gate answered with a status rolehop does not know; check the gate URL".to_owned(),
        ),
    };
    Err(fail(kind, code, said, hint))
}

/// The gate's error, and for a refused rule which rule, what it wanted and what it got.
fn refusal_text(doc: &Value) -> String {
    let mut s = doc["error"].as_str().unwrap_or("").to_owned();
    if let Some(rule) = doc["rule"].as_str() {
        let part = |k: &str| match &doc[k] {
            Value::String(v) => v.clone(),
            Value::Null => "?".into(),
            other => other.to_string(),
        };
        s.push_str(&format!(
            " (rule `{rule}`, expected {}, actual {})",
            part("expected"),
            part("actual")
        ));
    }
    s
}

/// Whatever answered is not trusted to keep the token out of its message.
fn redact(text: &str, token: &Secret) -> String {
    let t = token.expose_secret();
    if t.len() < 8 {
        return text.to_owned();
    }
    text.replace(t, "[the ID token]")
}

/// The service-role credentials and hop record from a 200 answer, if complete.
fn read_answer(doc: &Value, service_role_arn: Option<&str>) -> Option<(Credentials, HopOutcome)> {
    let c = &doc["credentials"];
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    let when = |v: &Value| OffsetDateTime::parse(v.as_str()?, &Rfc3339).ok();
    let credentials = Credentials {
        access_key_id: text(&c["access_key_id"])?,
        secret_access_key: secret(text(&c["secret_access_key"])?),
        session_token: secret(text(&c["session_token"])?),
        expiration: when(&c["expiration"])?,
    };
    let h = &doc["hops"][0];
    let assumed = text(&h["assumed_role_arn"]).or_else(|| text(&doc["assumed_role_arn"]))?;
    let hop = HopOutcome {
        label: HopRole::Service.label(),
        role_arn: text(&h["role_arn"])
            .or_else(|| service_role_arn.map(str::to_owned))
            .unwrap_or_default(),
        assumed_role_arn: assumed,
        session_name: text(&h["session_name"]).unwrap_or_default(),
        source_identity: text(&h["source_identity"]),
        tags: h["session_tags"]
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0),
        expiration: credentials.expiration,
    };
    Some((credentials, hop))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_statuses_are_retried() {
        for s in [429, 500, 502, 503, 504] {
            assert!(transient(s), "{s}");
        }
        // A refusal is final: asking again only spends the token again.
        for s in [200, 400, 401, 403, 404, 405, 413] {
            assert!(!transient(s), "{s}");
        }
    }

    #[test]
    fn backoff_is_bounded_like_sts() {
        let s = StsSettings::new("eu-west-1", None);
        assert_eq!(backoff(&s, 1, 1.0), Duration::from_millis(200));
        assert_eq!(backoff(&s, 3, 1.0), Duration::from_millis(800));
        assert_eq!(backoff(&s, 30, 1.0), Duration::from_secs(5));
        assert_eq!(backoff(&s, 3, 0.0), Duration::ZERO);
        let j = jitter();
        assert!((0.0..=1.0).contains(&j));
    }

    #[test]
    fn a_refusal_names_rule_expected_and_actual_and_never_the_token() {
        let doc = serde_json::json!({
            "status": 403,
            "error": "rule `ref_protected` refused the job",
            "rule": "ref_protected",
            "expected": "true",
            "actual": "false",
        });
        let t = refusal_text(&doc);
        assert!(
            t.contains("rule `ref_protected`, expected true, actual false"),
            "{t}"
        );
        let token = secret("eyJhbGciOiJSUzI1NiJ9.payload.sig");
        assert_eq!(
            redact("echoed eyJhbGciOiJSUzI1NiJ9.payload.sig back", &token),
            "echoed [the ID token] back"
        );
    }
}
