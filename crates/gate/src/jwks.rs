//! The issuer's signing keys: discovery document -> `jwks_uri` -> JWKS, through an injected
//! [`KeySource`], cached with a bounded TTL.
//!
//! Fail closed: no keys, no verification. An unknown `kid` triggers at most one refetch per
//! `refetch_interval` (so GitLab's key rotation works within one request while a flood of
//! tokens with random kids costs the issuer one request per interval), and a failed fetch is
//! not retried before the same interval either (a down issuer is not hammered, and every
//! caller gets the same clear error meanwhile).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde_json::Value;

use crate::clock::Clock;
use crate::jwt::Alg;
use crate::shown;

/// Largest discovery document or JWKS the gate reads (GitLab's are about 1 KiB).
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// More keys than this is not an issuer's key set.
pub const MAX_KEYS: usize = 32;

/// Why a document could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Network failure, timeout, 5xx: the issuer is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// The issuer answered, but not with the document (4xx, more than the byte limit).
    #[error("{0}")]
    Bad(String),
}

/// An HTTP GET, at the rim (ureq in the binary, a map in unit tests). It must not follow
/// redirects to another origin, must time out, and must stop reading after `max_bytes`.
pub trait KeySource: Send + Sync {
    /// Fetches `url`, reading at most `max_bytes` so a hostile issuer cannot exhaust memory.
    fn get(&self, url: &str, max_bytes: usize) -> Result<Vec<u8>, FetchError>;
}

/// Why the gate has no key to verify with: the issuer's fault, not the token's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// HTTP 503: the issuer cannot be reached; nothing is accepted meanwhile.
    #[error("the issuer's keys are unavailable, so no token is accepted: {0}")]
    Unavailable(String),
    /// HTTP 502: the issuer answered something that is not a usable discovery document or JWKS.
    #[error("the issuer's keys cannot be used, so no token is accepted: {0}")]
    BadDocument(String),
}

/// Cache timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksSettings {
    /// Keys older than this are refetched before use; if that fails, nothing verifies.
    pub ttl_secs: i64,
    /// At most one fetch per this many seconds, for unknown kids and after failures.
    pub refetch_interval_secs: i64,
}

impl Default for JwksSettings {
    fn default() -> Self {
        Self {
            ttl_secs: 600,
            refetch_interval_secs: 60,
        }
    }
}

/// One usable public key.
#[derive(Clone)]
pub struct VerifyKey {
    /// The key id tokens name in their header to pick this key.
    pub kid: String,
    /// The JWK's own `alg`, if it states one: then only that algorithm may use it.
    pub alg: Option<Alg>,
    /// `RSA` or `EC`.
    pub kty: &'static str,
    pub(crate) key: DecodingKey,
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("kty", &self.kty)
            .finish_non_exhaustive()
    }
}

/// A parsed JWKS: usable keys by kid, and what was skipped and why (for logs).
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    /// The usable keys, by `kid`.
    pub keys: BTreeMap<String, Arc<VerifyKey>>,
    /// Keys left out (wrong type, bad parameters, disallowed alg), with the reason, for logs.
    pub skipped: Vec<String>,
}

fn b64_field(key: &serde_json::Map<String, Value>, f: &str) -> Result<Vec<u8>, String> {
    let s = key
        .get(f)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no `{f}`"))?;
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|e| format!("`{f}` is not base64url: {e}"))
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}

/// Turns one JWK into a key, or says why it is not usable for `allowed`.
fn parse_key(key: &serde_json::Map<String, Value>, allowed: &[Alg]) -> Result<VerifyKey, String> {
    let kid = match key.get("kid") {
        Some(Value::String(k)) if !k.is_empty() && k.len() <= 256 => k.clone(),
        _ => return Err("no usable `kid`".into()),
    };
    match key.get("use") {
        None => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(u) => {
            return Err(format!(
                "key `{}` has use {}, not `sig`",
                shown(&kid),
                shown(&u.to_string())
            ));
        }
    }
    let alg = match key.get("alg") {
        None => None,
        Some(Value::String(a)) => match Alg::parse(a).filter(|a| allowed.contains(a)) {
            Some(a) => Some(a),
            None => {
                return Err(format!(
                    "key `{}` is for `{}`, which is not allowed",
                    shown(&kid),
                    shown(a)
                ));
            }
        },
        Some(_) => return Err(format!("key `{}` has a non-string `alg`", shown(&kid))),
    };
    let why = |m: String| format!("key `{}`: {m}", shown(&kid));
    match key.get("kty").and_then(Value::as_str) {
        Some("RSA") => {
            if !allowed.iter().any(|a| a.is_rsa()) || alg.is_some_and(|a| !a.is_rsa()) {
                return Err(why(
                    "an RSA key, and no RSA algorithm is allowed for it".into()
                ));
            }
            let n = b64_field(key, "n").map_err(why)?;
            let e = b64_field(key, "e").map_err(why)?;
            let bits = strip_zeros(&n).len() * 8;
            if !(2048..=8192).contains(&bits) {
                return Err(why(format!(
                    "an RSA modulus of about {bits} bits; 2048 to 8192 are accepted"
                )));
            }
            let e = strip_zeros(&e);
            if e.is_empty() || e.len() > 4 || e.last().is_some_and(|b| b & 1 == 0) {
                return Err(why("an RSA exponent that is not a small odd number".into()));
            }
            Ok(VerifyKey {
                kid: kid.clone(),
                alg,
                kty: "RSA",
                key: DecodingKey::from_rsa_raw_components(&n, e),
            })
        }
        Some("EC") => {
            if !allowed.contains(&Alg::ES256) || alg.is_some_and(|a| a != Alg::ES256) {
                return Err(why("an EC key, and ES256 is not allowed".into()));
            }
            if key.get("crv").and_then(Value::as_str) != Some("P-256") {
                return Err(why("an EC key not on P-256".into()));
            }
            let (x, y) = (
                b64_field(key, "x").map_err(why)?,
                b64_field(key, "y").map_err(why)?,
            );
            if x.len() != 32 || y.len() != 32 {
                return Err(why("P-256 coordinates must be 32 bytes".into()));
            }
            let k = DecodingKey::from_ec_components(
                &URL_SAFE_NO_PAD.encode(&x),
                &URL_SAFE_NO_PAD.encode(&y),
            )
            .map_err(|e| why(e.to_string()))?;
            Ok(VerifyKey {
                kid: kid.clone(),
                alg,
                kty: "EC",
                key: k,
            })
        }
        Some(other) => Err(why(format!("key type `{}` is not supported", shown(other)))),
        None => Err(why("no `kty`".into())),
    }
}

/// Parses a JWKS document. Garbage, an oversized set or a set without one usable key is an
/// error; single unusable keys (another algorithm, encryption keys) are skipped and listed.
/// A kid that appears twice is dropped: which of the two GitLab meant is unknowable.
pub fn parse_jwks(bytes: &[u8], allowed: &[Alg]) -> Result<KeySet, KeyError> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(KeyError::BadDocument(format!(
            "the JWKS has {} bytes; at most {MAX_DOCUMENT_BYTES} are read",
            bytes.len()
        )));
    }
    let doc: Value = serde_json::from_slice(bytes)
        .map_err(|e| KeyError::BadDocument(format!("the JWKS is not JSON: {e}")))?;
    let Some(keys) = doc.get("keys").and_then(Value::as_array) else {
        return Err(KeyError::BadDocument("the JWKS has no `keys` array".into()));
    };
    if keys.len() > MAX_KEYS {
        return Err(KeyError::BadDocument(format!(
            "the JWKS has {} keys; at most {MAX_KEYS} are accepted",
            keys.len()
        )));
    }
    let mut set = KeySet::default();
    let mut twice = BTreeSet::new();
    for k in keys {
        let Some(obj) = k.as_object() else {
            set.skipped.push("a key that is not a JSON object".into());
            continue;
        };
        match parse_key(obj, allowed) {
            Ok(key) => {
                if set.keys.contains_key(&key.kid) {
                    twice.insert(key.kid.clone());
                }
                set.keys.insert(key.kid.clone(), Arc::new(key));
            }
            Err(why) => set.skipped.push(why),
        }
    }
    for kid in twice {
        set.keys.remove(&kid);
        set.skipped
            .push(format!("key `{}` appears more than once", shown(&kid)));
    }
    if set.keys.is_empty() {
        return Err(KeyError::BadDocument(format!(
            "the JWKS has no usable signing key ({})",
            if set.skipped.is_empty() {
                "it is empty".to_owned()
            } else {
                set.skipped.join("; ")
            }
        )));
    }
    Ok(set)
}

/// `scheme://host[:port]` of an http(s) URL.
fn origin(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let host_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    (host_len > 0).then(|| &url[..url.len() - rest.len() + host_len])
}

/// Reads `jwks_uri` from a discovery document, which must name `issuer` exactly (OpenID
/// Connect Discovery 4.3) and keep the keys on the issuer's own origin.
pub fn parse_discovery(bytes: &[u8], issuer: &str) -> Result<String, KeyError> {
    let doc: Value = serde_json::from_slice(bytes)
        .map_err(|e| KeyError::BadDocument(format!("the discovery document is not JSON: {e}")))?;
    match doc.get("issuer").and_then(Value::as_str) {
        Some(i) if i == issuer => {}
        Some(i) => {
            return Err(KeyError::BadDocument(format!(
                "the discovery document names issuer `{}`, not `{issuer}`",
                shown(i)
            )));
        }
        None => {
            return Err(KeyError::BadDocument(
                "the discovery document has no `issuer`".into(),
            ));
        }
    }
    let uri = doc
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or_else(|| KeyError::BadDocument("the discovery document has no `jwks_uri`".into()))?;
    if origin(uri).is_none() || origin(uri) != origin(issuer) {
        return Err(KeyError::BadDocument(format!(
            "the discovery document's jwks_uri `{}` is not on the issuer's origin",
            shown(uri)
        )));
    }
    Ok(uri.to_owned())
}

#[derive(Default)]
struct State {
    keys: Option<KeySet>,
    fetched_at: i64,
    /// The last refetch made for an unknown kid (rate-limited on its own, so the regular
    /// load does not delay picking up a rotated key).
    last_unknown_refetch: Option<i64>,
    /// The last failed fetch and its error (no fetch before the interval passes).
    last_failure: Option<(i64, KeyError)>,
}

/// The issuer's keys, fetched on demand and cached.
pub struct JwksCache {
    issuer: String,
    allowed: Vec<Alg>,
    settings: JwksSettings,
    source: Box<dyn KeySource>,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    /// Serialises fetches: concurrent misses make one request, not one each.
    fetching: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the cache half-written (every write is one
    // assignment), so a poisoned lock is still safe to use.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a lookup found.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// The key for the token's `kid`.
    Found(Arc<VerifyKey>),
    /// Not in a fresh key set, and a refetch was made (or was not allowed yet).
    Unknown,
}

impl JwksCache {
    /// A cache for `issuer`'s keys that accepts only the `allowed` algorithms; nothing is fetched until the first lookup.
    pub fn new(
        issuer: impl Into<String>,
        allowed: Vec<Alg>,
        settings: JwksSettings,
        source: Box<dyn KeySource>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            issuer: issuer.into().trim_end_matches('/').to_owned(),
            allowed,
            settings,
            source,
            clock,
            state: Mutex::new(State::default()),
            fetching: Mutex::new(()),
        }
    }

    /// The discovery document's URL.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    fn fetch(&self) -> Result<KeySet, KeyError> {
        let get = |url: &str, what: &str| {
            self.source
                .get(url, MAX_DOCUMENT_BYTES)
                .map_err(|e| match e {
                    FetchError::Unavailable(m) => {
                        KeyError::Unavailable(format!("{what} {url}: {m}"))
                    }
                    FetchError::Bad(m) => KeyError::BadDocument(format!("{what} {url}: {m}")),
                })
        };
        let discovery = get(&self.discovery_url(), "discovery document")?;
        let uri = parse_discovery(&discovery, &self.issuer)?;
        parse_jwks(&get(&uri, "JWKS")?, &self.allowed)
    }

    /// Fetches the keys, unless a fetch failed (or, for an unknown kid, a refetch was made)
    /// within the interval: then that outcome stands, so a down issuer or a flood of random
    /// kids costs one request per interval.
    fn refresh(&self, for_unknown_kid: bool) -> Result<(), KeyError> {
        let _one = lock(&self.fetching);
        let now = self.clock.now();
        let recent = |t: i64| now - t < self.settings.refetch_interval_secs;
        {
            let st = lock(&self.state);
            if let Some((at, e)) = &st.last_failure
                && recent(*at)
            {
                return Err(e.clone());
            }
            if for_unknown_kid && st.last_unknown_refetch.is_some_and(recent) {
                return Ok(());
            }
            // Another caller refreshed while this one waited for the fetch lock.
            if !for_unknown_kid && st.keys.is_some() && now - st.fetched_at < self.settings.ttl_secs
            {
                return Ok(());
            }
        }
        let result = self.fetch();
        let mut st = lock(&self.state);
        if for_unknown_kid {
            st.last_unknown_refetch = Some(now);
        }
        match result {
            Ok(keys) => {
                st.keys = Some(keys);
                st.fetched_at = now;
                st.last_failure = None;
                Ok(())
            }
            Err(e) => {
                st.last_failure = Some((now, e.clone()));
                Err(e)
            }
        }
    }

    fn cached(&self, kid: &str) -> (bool, Option<Arc<VerifyKey>>) {
        let st = lock(&self.state);
        let now = self.clock.now();
        match &st.keys {
            Some(set) if now - st.fetched_at < self.settings.ttl_secs => {
                (true, set.keys.get(kid).cloned())
            }
            _ => (false, None),
        }
    }

    /// The key named `kid`. Fresh cache: answered from memory; an unknown kid refetches at
    /// most once per interval. Stale or empty cache: refetched, and without keys nothing is
    /// found (an error, never a pass).
    pub fn key(&self, kid: &str) -> Result<Lookup, KeyError> {
        match self.cached(kid) {
            (true, Some(k)) => return Ok(Lookup::Found(k)),
            (true, None) => {
                // An error on an unknown-kid refetch must not stop tokens signed with the keys
                // still cached and fresh: the lookup below answers from them.
                let _ = self.refresh(true);
            }
            (false, _) => self.refresh(false)?,
        }
        match self.cached(kid) {
            (true, Some(k)) => Ok(Lookup::Found(k)),
            (true, None) => Ok(Lookup::Unknown),
            (false, _) => Err(lock(&self.state)
                .last_failure
                .clone()
                .map(|(_, e)| e)
                .unwrap_or_else(|| {
                    KeyError::Unavailable("the issuer's keys have expired from the cache".into())
                })),
        }
    }

    /// The kids currently cached (for logs and tests).
    pub fn cached_kids(&self) -> Vec<String> {
        lock(&self.state)
            .keys
            .as_ref()
            .map(|s| s.keys.keys().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn origin_is_scheme_and_authority() {
        assert_eq!(
            origin("https://gitlab.example.com/oauth/discovery/keys"),
            Some("https://gitlab.example.com")
        );
        assert_eq!(
            origin("http://127.0.0.1:8080"),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            origin("https://gitlab.example.com.evil.io/k"),
            Some("https://gitlab.example.com.evil.io")
        );
        assert_eq!(origin("file:///etc/passwd"), None);
    }

    #[test]
    fn discovery_must_name_the_issuer_and_stay_on_its_origin() {
        let iss = "https://gitlab.example.com";
        let ok = br#"{"issuer":"https://gitlab.example.com","jwks_uri":"https://gitlab.example.com/oauth/discovery/keys"}"#;
        assert_eq!(
            parse_discovery(ok, iss).unwrap(),
            "https://gitlab.example.com/oauth/discovery/keys"
        );
        let elsewhere =
            br#"{"issuer":"https://gitlab.example.com","jwks_uri":"https://evil.example/keys"}"#;
        assert!(
            parse_discovery(elsewhere, iss)
                .unwrap_err()
                .to_string()
                .contains("not on the issuer's origin")
        );
        let other = br#"{"issuer":"https://gitlab.com","jwks_uri":"https://gitlab.com/oauth/discovery/keys"}"#;
        assert!(
            parse_discovery(other, iss)
                .unwrap_err()
                .to_string()
                .contains("names issuer")
        );
        assert!(
            parse_discovery(b"<html>", iss)
                .unwrap_err()
                .to_string()
                .contains("not JSON")
        );
    }

    #[test]
    fn garbage_and_oversized_key_sets_are_errors() {
        let a = [Alg::RS256];
        for (doc, want) in [
            (b"not json".to_vec(), "not JSON"),
            (br#"{"keys":"x"}"#.to_vec(), "no `keys` array"),
            (
                br#"{"keys":[]}"#.to_vec(),
                "no usable signing key (it is empty)",
            ),
            (
                br#"{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}"#.to_vec(),
                "`oct` is not supported",
            ),
            (
                br#"{"keys":[{"kty":"RSA","kid":"s","n":"AQAB","e":"AQAB"}]}"#.to_vec(),
                "about 24 bits",
            ),
            (
                br#"{"keys":[{"kty":"RSA","kid":"e","use":"enc","n":"AQAB","e":"AQAB"}]}"#.to_vec(),
                "not `sig`",
            ),
            (vec![b' '; MAX_DOCUMENT_BYTES + 1], "bytes; at most"),
            (
                format!(r#"{{"keys":[{}]}}"#, vec!["{}"; MAX_KEYS + 1].join(",")).into_bytes(),
                "keys; at most",
            ),
        ] {
            let e = parse_jwks(&doc, &a).unwrap_err();
            assert!(matches!(e, KeyError::BadDocument(_)));
            assert!(e.to_string().contains(want), "{want}: {e}");
        }
    }
}
