//! Which proxy, if any, a request to a URL goes through: `HTTPS_PROXY` and friends minus
//! `NO_PROXY`, read once from the injected environment. One rule for every client rolehop
//! has (STS through the SDK, the claim gate through ureq), so a job behind a corporate proxy
//! never sees one reach the network and the other not.
//!
//! A proxy URL may carry `user:password@`; it travels as a [`Secret`] and prints as
//! `http://***@host:port`, so the password never reaches a log or an error message.

use std::fmt;

use crate::endpoint::is_loopback_host;
use crate::exit::{Exit, HasExit};
use crate::gitlab_ctx::Env;
use crate::secret::{ExposeSecret, Secret, secret};

/// The variables an `https://` URL's proxy is read from, first set wins: curl's and the
/// aws CLI's (botocore's) names, upper case first.
pub const HTTPS_PROXY_VARS: [&str; 4] = ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"];

/// The variables an `http://` URL's proxy is read from. Lower case first: curl reads only
/// `http_proxy` (a CGI server sets `HTTP_PROXY` from a request header, "httpoxy").
pub const HTTP_PROXY_VARS: [&str; 4] = ["http_proxy", "HTTP_PROXY", "ALL_PROXY", "all_proxy"];

/// A proxy's URL, `http://[user:password@]host:port`. Its `Debug` and `Display` hide the
/// credentials; [`ProxyUrl::expose`] hands the whole URL to the HTTP client only.
#[derive(Clone)]
pub struct ProxyUrl {
    url: Secret,
    /// Where it was read from (`HTTPS_PROXY`), for messages.
    pub var: &'static str,
}

impl ProxyUrl {
    /// Parses `url` read from `var`: an `http://` (or `https://`) URL with a host.
    pub fn parse(var: &'static str, url: &str) -> Result<ProxyUrl, ProxyError> {
        let url = url.trim();
        let bad = |reason: &'static str| ProxyError {
            var,
            shown: redacted(url),
            reason,
        };
        // curl takes a bare `host:port` as an http proxy; so do botocore and the SDKs.
        let full = if url.contains("://") {
            url.to_owned()
        } else {
            format!("http://{url}")
        };
        let rest = full
            .strip_prefix("http://")
            .or_else(|| full.strip_prefix("https://"))
            .ok_or_else(|| bad("only http:// and https:// proxies are supported"))?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if host_port.is_empty() || host_port.starts_with(':') {
            return Err(bad("it names no host"));
        }
        if let Some((_, port)) = host_port
            .rsplit_once(':')
            .filter(|_| !host_port.ends_with(']'))
            && port.parse::<u16>().is_err()
        {
            return Err(bad("its port is not a number from 0 to 65535"));
        }
        Ok(ProxyUrl {
            url: secret(full),
            var,
        })
    }

    /// The whole URL, credentials included: for the HTTP client, never for output.
    pub fn expose(&self) -> &str {
        self.url.expose_secret()
    }

    /// Whether the URL carries credentials (`user:password@`).
    pub fn has_credentials(&self) -> bool {
        authority(self.expose()).contains('@')
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redacted(self.expose()))
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({} from {})", self, self.var)
    }
}

/// The authority (`user:pw@host:port`) of a URL, with or without scheme.
fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or("")
}

/// `url` with any `user:password@` replaced by `***@`.
fn redacted(url: &str) -> String {
    let auth = authority(url);
    match auth.rsplit_once('@') {
        Some((_, host)) => url.replacen(auth, &format!("***@{host}"), 1),
        None => url.to_owned(),
    }
}

/// A proxy variable that is set but not a proxy URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var} `{shown}` is not a proxy URL: {reason} (expected http://[user:password@]host:port)")]
pub struct ProxyError {
    /// The variable.
    pub var: &'static str,
    /// Its value, credentials hidden.
    pub shown: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl HasExit for ProxyError {
    // The environment is part of how rolehop was invoked, like `--region`.
    fn exit(&self) -> Exit {
        Exit::Usage
    }
}

/// The proxies and exceptions of one process, read once.
#[derive(Debug, Clone, Default)]
pub struct ProxySettings {
    /// For `https://` URLs.
    pub https: Option<ProxyUrl>,
    /// For `http://` URLs (never used for loopback, see [`ProxySettings::proxy_for`]).
    pub http: Option<ProxyUrl>,
    /// `NO_PROXY` (or `no_proxy`), as given.
    pub no_proxy: String,
}

impl ProxySettings {
    /// Reads [`HTTPS_PROXY_VARS`], [`HTTP_PROXY_VARS`] and `NO_PROXY`/`no_proxy` from `env`.
    pub fn from_env(env: &dyn Env) -> Result<ProxySettings, ProxyError> {
        let first = |vars: [&'static str; 4]| -> Result<Option<ProxyUrl>, ProxyError> {
            vars.iter()
                .find_map(|v| env.var(v).map(|url| (*v, url)))
                .map(|(v, url)| ProxyUrl::parse(v, &url))
                .transpose()
        };
        Ok(ProxySettings {
            https: first(HTTPS_PROXY_VARS)?,
            http: first(HTTP_PROXY_VARS)?,
            no_proxy: env
                .var("NO_PROXY")
                .or_else(|| env.var("no_proxy"))
                .unwrap_or_default(),
        })
    }

    /// The proxy a request to `url` goes through: by scheme, unless `NO_PROXY` names its
    /// host. A loopback host is never proxied: the proxy's loopback is not this machine's,
    /// and a plain-http loopback URL (moto, a local gate) would carry tokens to the proxy in
    /// clear text.
    pub fn proxy_for(&self, url: &str) -> Option<&ProxyUrl> {
        let (scheme, _) = url.split_once("://")?;
        let proxy = match scheme.to_ascii_lowercase().as_str() {
            "https" => self.https.as_ref(),
            "http" => self.http.as_ref(),
            _ => None,
        }?;
        let host = host_of(url);
        let loopback = is_loopback_host(host) || host == "::1";
        (!loopback && !bypasses_proxy(host, &self.no_proxy)).then_some(proxy)
    }
}

/// The host of `url` (with or without scheme), without port, credentials or brackets.
pub fn host_of(url: &str) -> &str {
    let authority = authority(url);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    }
}

/// Whether `NO_PROXY` names `host` as curl and the AWS SDKs read it: `*` is every host; an
/// entry (with or without a leading `.` or `*.`) is that host and every host under it.
pub fn bypasses_proxy(host: &str, no_proxy: &str) -> bool {
    let host = host.to_ascii_lowercase();
    no_proxy
        .split(',')
        .map(|e| e.trim().to_ascii_lowercase())
        .filter(|e| !e.is_empty())
        .any(|e| {
            let domain = e.trim_start_matches("*.").trim_start_matches('.');
            e == "*" || host == domain || host.ends_with(&format!(".{domain}"))
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::gitlab_ctx::fixed_env as env;

    #[test]
    fn no_proxy_names_a_host_and_everything_under_it() {
        assert_eq!(
            host_of("https://gate.example.com:8443/v1"),
            "gate.example.com"
        );
        assert_eq!(host_of("http://[::1]:80/"), "::1");
        assert_eq!(host_of("https://u:p@h.example:1"), "h.example");
        for np in [
            "example.com",
            ".example.com",
            "*.example.com",
            "a, EXAMPLE.com",
            "*",
        ] {
            assert!(bypasses_proxy("gate.example.com", np), "{np}");
        }
        for np in ["", "ample.com", "gate.example.co", "other.example.com"] {
            assert!(!bypasses_proxy("gate.example.com", np), "{np}");
        }
    }

    #[test]
    fn https_urls_take_https_proxy_minus_no_proxy_and_never_for_loopback() {
        let e = env(&[
            ("https_proxy", "http://proxy.corp:3128"),
            ("NO_PROXY", ".internal"),
        ]);
        let p = ProxySettings::from_env(&e).unwrap();
        let sts = "https://sts.eu-west-1.amazonaws.com";
        assert_eq!(p.proxy_for(sts).unwrap().expose(), "http://proxy.corp:3128");
        assert_eq!(p.proxy_for(sts).unwrap().var, "https_proxy");
        assert!(p.proxy_for("https://gate.internal/v1").is_none());
        assert!(p.proxy_for("https://127.0.0.1:4566").is_none());
        assert!(p.proxy_for("https://[::1]:4566").is_none());
        // No http proxy set: plain http goes direct.
        assert!(p.proxy_for("http://sts.example.com").is_none());
    }

    #[test]
    fn upper_case_wins_for_https_and_lower_case_for_http() {
        let e = env(&[
            ("HTTPS_PROXY", "http://upper:1"),
            ("https_proxy", "http://lower:1"),
            ("HTTP_PROXY", "http://upper-plain:1"),
            ("http_proxy", "http://lower-plain:1"),
        ]);
        let p = ProxySettings::from_env(&e).unwrap();
        assert_eq!(p.https.unwrap().var, "HTTPS_PROXY");
        assert_eq!(p.http.unwrap().var, "http_proxy");
        let all = ProxySettings::from_env(&env(&[("ALL_PROXY", "proxy:8080")])).unwrap();
        assert_eq!(
            all.proxy_for("https://sts.amazonaws.com").unwrap().expose(),
            "http://proxy:8080"
        );
    }

    #[test]
    fn a_proxy_password_never_prints() {
        let u = ProxyUrl::parse("HTTPS_PROXY", "http://alice:hunter2@proxy.corp:3128").unwrap();
        assert!(u.has_credentials());
        assert_eq!(u.to_string(), "http://***@proxy.corp:3128");
        assert!(!format!("{u:?}").contains("hunter2"));
        assert!(u.expose().contains("hunter2"));
        let e = env(&[("HTTPS_PROXY", "http://alice:hunter2@proxy.corp:port")]);
        let err = ProxySettings::from_env(&e).unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.contains("HTTPS_PROXY `http://***@proxy.corp:port`"),
            "{text}"
        );
        assert_eq!(err.exit(), Exit::Usage);
    }

    #[test]
    fn malformed_proxies_are_refused_with_the_variable_named() {
        for bad in [
            "socks5://p:1080",
            "http://",
            "http://:8080",
            "http://p:99999",
        ] {
            let err = ProxyUrl::parse("HTTPS_PROXY", bad).unwrap_err();
            assert!(err.to_string().starts_with("HTTPS_PROXY `"), "{err}");
        }
        assert!(ProxyUrl::parse("HTTPS_PROXY", "http://[::1]:3128").is_ok());
    }
}
