//! Fetching a GitLab instance's OIDC discovery document and JWKS for the claim gate: the
//! [`rolehop_gate::KeySource`] the binary injects. Bounded: a timeout, no redirects (a
//! redirect could lead off the issuer's origin), no plain http off loopback, and at most the
//! byte limit the gate asks for.

use std::time::Duration;

use rolehop_core::endpoint::cleartext_off_machine;
use rolehop_gate::{FetchError, KeySource};

/// The gate's view of GitLab's signing keys, fetched over HTTPS (see the module docs for the
/// bounds it keeps).
pub struct IssuerKeySource {
    agent: ureq::Agent,
}

impl IssuerKeySource {
    /// A source whose every fetch gives up after `timeout`: the gate must keep answering
    /// with its cached keys while GitLab is slow.
    pub fn new(timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(timeout))
            .build();
        Self {
            agent: ureq::Agent::new_with_config(config),
        }
    }
}

impl KeySource for IssuerKeySource {
    fn get(&self, url: &str, max_bytes: usize) -> Result<Vec<u8>, FetchError> {
        if let Some(host) = cleartext_off_machine(url) {
            return Err(FetchError::Bad(format!(
                "plain http to `{host}`: keys fetched in clear text could be swapped on the way; use https"
            )));
        }
        let mut resp = self.agent.get(url).call().map_err(|e| {
            FetchError::Unavailable(match e {
                ureq::Error::Timeout(t) => format!("timed out ({t})"),
                other => other.to_string(),
            })
        })?;
        let status = resp.status().as_u16();
        if status == 429 || status >= 500 {
            return Err(FetchError::Unavailable(format!("HTTP {status}")));
        }
        if status != 200 {
            return Err(FetchError::Bad(format!("HTTP {status}")));
        }
        resp.body_mut()
            .with_config()
            .limit(max_bytes as u64)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(n) => {
                    FetchError::Bad(format!("the document has more than {n} bytes"))
                }
                ureq::Error::Timeout(t) => FetchError::Unavailable(format!("timed out ({t})")),
                other => FetchError::Unavailable(other.to_string()),
            })
    }
}
