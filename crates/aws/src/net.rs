//! How rolehop's clients reach STS and the claim gate from behind a corporate network: the
//! proxy `HTTPS_PROXY`/`NO_PROXY` name (the rule is the core's [`ProxySettings`], shared by
//! both clients) and the trusted CA certificates from `AWS_CA_BUNDLE`, the variable the
//! aws CLI and boto3 read (with their meaning: these CAs instead of the system's), so one job setting serves rolehop and the tools it runs.
//!
//! The SDK's default HTTP client reads neither, so for STS rolehop builds the SDK's own
//! hyper client (aws-smithy-http-client) with the proxy and trust store set; without either
//! variable the SDK's default client is used unchanged.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use rolehop_core::exit::{Exit, HasExit};
use rolehop_core::gitlab_ctx::Env;
use rolehop_core::proxy::{ProxyError, ProxySettings, ProxyUrl};

/// The network settings of one process: proxies and trusted CAs, read once.
#[derive(Debug, Clone, Default)]
pub struct Network {
    /// The proxies and their exceptions.
    pub proxies: ProxySettings,
    /// `AWS_CA_BUNDLE`: the only CAs trusted when set, as for the aws CLI and boto3 (a
    /// corporate bundle holds the interception CA and whatever public roots it still needs).
    ca_path: Option<PathBuf>,
    /// The bundle, read on first use: runners often set `AWS_CA_BUNDLE` to the whole system
    /// bundle (~150 certificates, about 1 ms to parse), which a credential-process cache hit,
    /// making no call at all, must not pay for.
    ca: Arc<OnceLock<Result<CaBundle, NetError>>>,
}

/// PEM certificates read from a file, checked to parse (the SDK would panic on a bad one).
#[derive(Debug, Clone)]
pub struct CaBundle {
    /// The file, for messages.
    pub path: PathBuf,
    pem: Vec<u8>,
    certs: Vec<rustls::pki_types::CertificateDer<'static>>,
}

impl CaBundle {
    /// Reads and checks `path`: at least one PEM certificate, each one parsable.
    pub fn load(path: &Path) -> Result<CaBundle, NetError> {
        let pem = std::fs::read(path).map_err(|e| NetError::CaRead {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let bad = |reason: String| NetError::CaNotPem {
            path: path.to_owned(),
            reason,
        };
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("not PEM: {e}")))?;
        if certs.is_empty() {
            return Err(bad("it holds no `BEGIN CERTIFICATE` block".into()));
        }
        let mut roots = rustls::RootCertStore::empty();
        for (i, c) in certs.iter().enumerate() {
            roots
                .add(c.clone())
                .map_err(|e| bad(format!("certificate {} is not usable: {e}", i + 1)))?;
        }
        Ok(CaBundle {
            path: path.to_owned(),
            pem,
            certs,
        })
    }

    /// The certificates, DER-encoded.
    pub fn certificates(&self) -> &[rustls::pki_types::CertificateDer<'static>] {
        &self.certs
    }
}

/// The proxy or CA bundle variables cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NetError {
    /// A proxy variable is not a proxy URL.
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    /// `AWS_CA_BUNDLE` names a file that cannot be read.
    #[error("AWS_CA_BUNDLE `{}` could not be read: {reason}", path.display())]
    CaRead {
        /// The file.
        path: PathBuf,
        /// The OS's reason.
        reason: String,
    },
    /// `AWS_CA_BUNDLE` names a file without usable PEM certificates.
    #[error("AWS_CA_BUNDLE `{}` is not a PEM certificate bundle: {reason}", path.display())]
    CaNotPem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl HasExit for NetError {
    fn exit(&self) -> Exit {
        match self {
            Self::Proxy(e) => e.exit(),
            Self::CaRead { .. } => Exit::Io,
            Self::CaNotPem { .. } => Exit::Input,
        }
    }
}

impl Network {
    /// Reads the proxy variables and `AWS_CA_BUNDLE` from `env`.
    pub fn from_env(env: &dyn Env) -> Result<Network, NetError> {
        let proxies = ProxySettings::from_env(env)?;
        for p in proxies.https.iter().chain(&proxies.http) {
            // The SDK's own parse; its message would quote the password, so it is not kept.
            ProxyConfig::all(p.expose()).map_err(|_| ProxyError {
                var: p.var,
                shown: p.to_string(),
                reason: "it is not a valid URI",
            })?;
        }
        Ok(Network {
            proxies,
            ca_path: env.var("AWS_CA_BUNDLE").map(PathBuf::from),
            ca: Arc::default(),
        })
    }

    /// `AWS_CA_BUNDLE`'s certificates, read and checked on the first call. Callers check it
    /// before their first request (the CLI does before running the chain), so a bad bundle is
    /// its own error, never a TLS failure later.
    pub fn load_ca(&self) -> Result<Option<&CaBundle>, NetError> {
        let Some(path) = &self.ca_path else {
            return Ok(None);
        };
        self.ca
            .get_or_init(|| CaBundle::load(path))
            .as_ref()
            .map(Some)
            .map_err(Clone::clone)
    }

    /// The proxy a request to `url` goes through, if any.
    pub fn proxy_for(&self, url: &str) -> Option<&ProxyUrl> {
        self.proxies.proxy_for(url)
    }

    /// An SDK HTTP client for calls to `url` (the STS endpoint), or `None` when the SDK's
    /// default client does the same: no proxy for it and no extra CA.
    pub fn sdk_http_client(&self, url: &str) -> Option<SharedHttpClient> {
        let proxy = self.proxy_for(url);
        if proxy.is_none() && self.ca_path.is_none() {
            return None;
        }
        // `from_env` checked that the SDK takes every proxy URL.
        let proxy = proxy
            .and_then(|p| ProxyConfig::all(p.expose()).ok())
            .unwrap_or_else(ProxyConfig::disabled);
        // An unusable bundle was reported by `load_ca` before any call (an empty trust store
        // would make the SDK panic, so the system's roots stand in for an unchecked one).
        let trust = match self.load_ca().ok().flatten() {
            Some(ca) => TrustStore::empty()
                .with_native_roots(false)
                .with_pem_certificate(ca.pem.clone()),
            None => TrustStore::default(),
        };
        // Building never fails in this SDK version; the default context is the system's roots.
        let tls = TlsContext::builder()
            .with_trust_store(trust)
            .build()
            .unwrap_or_default();
        Some(
            aws_smithy_http_client::Builder::new().build_with_connector_fn(
                move |settings, components| {
                    let mut b =
                        aws_smithy_http_client::Connector::builder().proxy_config(proxy.clone());
                    b.set_connector_settings(settings.cloned());
                    if let Some(c) = components {
                        b.set_sleep_impl(c.sleep_impl());
                    }
                    b.tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
                        .tls_context(tls.clone())
                        .build()
                },
            ),
        )
    }
}

/// The URL of the regional STS endpoint of `region` (what the SDK resolves without an
/// endpoint override), for the proxy decision.
pub fn regional_sts_url(region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://sts.{region}.{suffix}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn a_ca_bundle_must_hold_parsable_certificates() {
        let dir = std::env::temp_dir().join(format!("rolehop-net-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        let e = CaBundle::load(&empty).unwrap_err();
        assert_eq!(e.exit(), Exit::Input);
        assert!(e.to_string().contains("no `BEGIN CERTIFICATE`"), "{e}");
        let garbage = dir.join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = CaBundle::load(&garbage).unwrap_err();
        assert!(e.to_string().contains("certificate 1 is not usable"), "{e}");
        let e = CaBundle::load(&dir.join("missing.pem")).unwrap_err();
        assert_eq!(e.exit(), Exit::Io);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_sdk_default_client_stays_without_proxy_or_ca() {
        let env: BTreeMap<String, String> = [
            ("HTTPS_PROXY", "http://proxy.corp:3128"),
            ("NO_PROXY", "amazonaws.com"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let net = Network::from_env(&env).unwrap();
        assert!(
            net.sdk_http_client(&regional_sts_url("eu-west-1"))
                .is_none()
        );
        assert!(net.sdk_http_client("https://sts.example.test").is_some());
        assert_eq!(
            regional_sts_url("cn-north-1"),
            "https://sts.cn-north-1.amazonaws.com.cn"
        );
    }

    #[test]
    fn the_ca_bundle_is_read_on_first_use_and_once() {
        let dir = std::env::temp_dir().join(format!("rolehop-net-lazy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bundle.pem");
        let env: BTreeMap<String, String> =
            [("AWS_CA_BUNDLE".to_owned(), path.display().to_string())].into();
        // Not there yet: reading the environment alone never touches the file.
        let net = Network::from_env(&env).unwrap();
        std::fs::write(&path, "not a bundle").unwrap();
        assert_eq!(net.load_ca().unwrap_err().exit(), Exit::Input);
        // The answer is kept: the file is read once per process.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(net.load_ca().unwrap_err().exit(), Exit::Input);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
