//! GitLab ID tokens (`id_tokens:` in .gitlab-ci.yml), decoded WITHOUT verifying the signature.
//!
//! rolehop never trusts these claims: STS verifies the token. The claims only make error
//! messages and `doctor` precise ("the token's sub is ..., the trust policy wants ...") and
//! catch an expired or malformed token before a network round trip.

use std::fmt;

use serde::Deserialize;
use time::OffsetDateTime;

use crate::Secret;
use secrecy::ExposeSecret;

/// STS's bounds on WebIdentityToken length.
pub const TOKEN_MIN_LEN: usize = 4;
/// STS's upper bound.
pub const TOKEN_MAX_LEN: usize = 20_000;

/// A token's `aud`: GitLab writes one string, the JWT spec allows a list.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `aud` is among them.
    pub fn contains(&self, aud: &str) -> bool {
        match self {
            Audience::One(a) => a == aud,
            Audience::Many(v) => v.iter().any(|a| a == aud),
        }
    }
}

impl fmt::Display for Audience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Audience::One(a) => write!(f, "{a}"),
            Audience::Many(v) => write!(f, "{}", v.join(", ")),
        }
    }
}

/// The claims GitLab documents for ID tokens (all values are strings in GitLab's tokens).
///
/// Each field is the claim of the same name in GitLab's ID token reference (`ref_name` is
/// `ref`); rolehop reads them unverified, only to explain failures before STS does.
#[allow(missing_docs)]
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default)]
pub struct Claims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub aud: Option<Audience>,
    pub exp: Option<i64>,
    pub iat: Option<i64>,
    pub nbf: Option<i64>,
    pub project_path: Option<String>,
    pub project_id: Option<String>,
    pub namespace_path: Option<String>,
    #[serde(rename = "ref")]
    pub ref_name: Option<String>,
    pub ref_type: Option<String>,
    pub ref_protected: Option<String>,
    pub environment: Option<String>,
    pub environment_protected: Option<String>,
    pub deployment_tier: Option<String>,
    pub pipeline_source: Option<String>,
    pub user_login: Option<String>,
}

impl Claims {
    /// `exp` as a time, if it is a valid timestamp.
    pub fn expires_at(&self) -> Option<OffsetDateTime> {
        self.exp
            .and_then(|e| OffsetDateTime::from_unix_timestamp(e).ok())
    }
}

/// Why an ID token cannot be used, before STS sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Outside the lengths STS accepts.
    #[error("the ID token has {0} characters; STS accepts {TOKEN_MIN_LEN} to {TOKEN_MAX_LEN}")]
    Length(usize),
    /// Not three base64url parts with JSON claims (often a CI_JOB_TOKEN passed by mistake).
    #[error(
        "the ID token is not a JWT ({0}); pass the variable named in `id_tokens:`, not CI_JOB_TOKEN"
    )]
    NotAJwt(String),
    /// Its `exp` is past.
    #[error(
        "the ID token expired {}s ago (at {}): GitLab ID tokens live as long as the job timeout; rerun the job",
        (*now - *at).whole_seconds(),
        crate::credentials::rfc3339(*at)
    )]
    Expired {
        /// The token's `exp`.
        at: OffsetDateTime,
        /// The clock's reading when it was checked.
        now: OffsetDateTime,
    },
}

impl crate::exit::HasExit for TokenError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            TokenError::Length(_) | TokenError::NotAJwt(_) => crate::exit::Exit::Input,
            // A well-formed token GitLab no longer vouches for: STS would refuse it (exit 5).
            TokenError::Expired { .. } => crate::exit::Exit::Denied,
        }
    }
}

/// Decodes the claims of `token` without verifying it.
pub fn decode_unverified(token: &Secret) -> Result<Claims, TokenError> {
    let t = token.expose_secret().trim();
    if !(TOKEN_MIN_LEN..=TOKEN_MAX_LEN).contains(&t.len()) {
        return Err(TokenError::Length(t.len()));
    }
    if t.split('.').count() != 3 {
        return Err(TokenError::NotAJwt(
            "it does not have three dot-separated parts".into(),
        ));
    }
    jsonwebtoken::dangerous::insecure_decode::<Claims>(t)
        .map(|d| d.claims)
        // The library's message never contains the token itself, only what was wrong with it.
        .map_err(|e| TokenError::NotAJwt(e.to_string()))
}

/// Refuses a token whose `exp` has passed at `now` (the caller's clock).
pub fn check_not_expired(claims: &Claims, now: OffsetDateTime) -> Result<(), TokenError> {
    match claims.expires_at() {
        Some(at) if at <= now => Err(TokenError::Expired { at, now }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::secret::secret;

    fn b64(s: &str) -> String {
        // Base64url without padding, enough for test tokens.
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let b = s.as_bytes();
        let mut out = String::new();
        for chunk in b.chunks(3) {
            let n =
                chunk.iter().fold(0u32, |a, &x| (a << 8) | u32::from(x)) << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    fn token(payload: &str) -> Secret {
        secret(format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"RS256","typ":"JWT"}"#),
            b64(payload)
        ))
    }

    #[test]
    fn decodes_gitlab_claims() {
        let c = decode_unverified(&token(r#"{"sub":"project_path:acme/app:ref_type:branch:ref:main","aud":"https://aws","exp":100,"ref_protected":"true"}"#)).unwrap();
        assert_eq!(
            c.sub.as_deref(),
            Some("project_path:acme/app:ref_type:branch:ref:main")
        );
        assert!(c.aud.unwrap().contains("https://aws"));
        assert_eq!(c.ref_protected.as_deref(), Some("true"));
    }

    #[test]
    fn refuses_garbage_and_expired_tokens() {
        assert!(matches!(
            decode_unverified(&secret("abc")),
            Err(TokenError::Length(3))
        ));
        assert!(matches!(
            decode_unverified(&secret("abcd.efgh")),
            Err(TokenError::NotAJwt(_))
        ));
        assert!(matches!(
            decode_unverified(&secret("!!!!.@@@@.####")),
            Err(TokenError::NotAJwt(_))
        ));
        let c = decode_unverified(&token(r#"{"exp":100}"#)).unwrap();
        let now = OffsetDateTime::from_unix_timestamp(200).unwrap();
        assert!(
            check_not_expired(&c, now)
                .unwrap_err()
                .to_string()
                .contains("expired 100s ago")
        );
    }
}
