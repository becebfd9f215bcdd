//! Verifying an ID token, fail closed, in an order that never lets unverified data decide
//! anything but a refusal: form and algorithm, a cheap refusal of foreign issuers (before
//! their kids can trigger a JWKS refetch), the key, the signature, then the claims' types,
//! issuer, audience, times and replay.

use std::sync::Arc;

use crate::claims::GitlabClaims;
use crate::clock::Clock;
use crate::jwks::{JwksCache, KeyError, Lookup};
use crate::jwt::{self, Alg, TokenError};
use crate::replay::ReplayGuard;
use crate::shown;

/// What the verifier accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierSettings {
    /// Exact `iss` (GitLab's URL, no trailing slash).
    pub issuer: String,
    /// The audience the gate's tokens are minted for (`id_tokens: X: aud:`).
    pub audience: String,
    /// The signature algorithms accepted; a token signed with any other is refused before key lookup.
    pub algorithms: Vec<Alg>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    pub leeway_secs: i64,
    /// The oldest token (by `iat`) accepted, whatever its `exp`.
    pub max_token_age_secs: i64,
    /// `Some(capacity)`: every `jti` is accepted once.
    pub replay_capacity: Option<usize>,
}

impl VerifierSettings {
    /// RS256 only, 60 s leeway, tokens up to 1 h old, replay refusal off.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into().trim_end_matches('/').to_owned(),
            audience: audience.into(),
            algorithms: vec![Alg::RS256],
            leeway_secs: 60,
            max_token_age_secs: 3600,
            replay_capacity: None,
        }
    }
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The token's fault (401; 413 when too large).
    #[error(transparent)]
    Token(TokenError),
    /// The issuer's keys are missing or unusable (503/502).
    #[error(transparent)]
    Keys(KeyError),
    /// The replay store is full of live tokens (503).
    #[error("the replay store holds {0} live tokens; no new token is accepted until some expire")]
    ReplayStoreFull(usize),
}

impl From<TokenError> for VerifyError {
    fn from(e: TokenError) -> Self {
        VerifyError::Token(e)
    }
}

impl From<KeyError> for VerifyError {
    fn from(e: KeyError) -> Self {
        VerifyError::Keys(e)
    }
}

/// A token that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The token's claims, typed and checked.
    pub claims: GitlabClaims,
    /// The `kid` of the issuer's key that verified the signature.
    pub kid: String,
}

/// Checks ID tokens against the issuer's keys, the configured claims and times, and the replay guard.
pub struct Verifier {
    settings: VerifierSettings,
    keys: JwksCache,
    replay: Option<ReplayGuard>,
    clock: Arc<dyn Clock>,
}

impl Verifier {
    /// A verifier with `settings`, fetching keys through `keys` and reading time from `clock`; the replay guard is built from the settings.
    pub fn new(settings: VerifierSettings, keys: JwksCache, clock: Arc<dyn Clock>) -> Self {
        let replay = settings.replay_capacity.map(ReplayGuard::new);
        Self {
            settings,
            keys,
            replay,
            clock,
        }
    }

    /// The issuer, audience, algorithms and limits this verifier enforces.
    pub fn settings(&self) -> &VerifierSettings {
        &self.settings
    }

    /// The cache of the issuer's keys this verifier looks `kid`s up in.
    pub fn keys(&self) -> &JwksCache {
        &self.keys
    }

    /// Verifies `token` (surrounding whitespace ignored). With replay refusal on, an accepted
    /// token's `jti` is recorded; [`Verifier::release`] forgets it if nothing was handed out.
    pub fn verify(&self, token: &str) -> Result<Verified, VerifyError> {
        let s = &self.settings;
        let parsed = jwt::parse(token.trim(), &s.algorithms)?;
        // Unverified, so it may only refuse: a token of another issuer is not worth a refetch.
        if let Some(serde_json::Value::String(iss)) = parsed.payload.get("iss")
            && iss != &s.issuer
        {
            return Err(TokenError::WrongIssuer {
                expected: s.issuer.clone(),
                actual: shown(iss),
            }
            .into());
        }
        let key = match self.keys.key(&parsed.kid)? {
            Lookup::Found(k) => k,
            Lookup::Unknown => return Err(TokenError::UnknownKid(shown(&parsed.kid)).into()),
        };
        let mismatch = |why: &str| TokenError::KeyMismatch {
            kid: shown(&parsed.kid),
            alg: parsed.alg,
            why: why.into(),
        };
        if key.alg.is_some_and(|a| a != parsed.alg) {
            return Err(mismatch("the JWKS binds the key to another algorithm").into());
        }
        if (key.kty == "RSA") != parsed.alg.is_rsa() {
            return Err(mismatch("the key's type does not fit the algorithm").into());
        }
        let ok = jsonwebtoken::crypto::verify(
            parsed.signature,
            parsed.signing_input.as_bytes(),
            &key.key,
            parsed.alg.jwt(),
        )
        .map_err(|e| mismatch(&e.to_string()))?;
        if !ok {
            return Err(TokenError::BadSignature(shown(&parsed.kid)).into());
        }
        let claims = GitlabClaims::from_payload(&parsed.payload)?;
        self.check_claims(&claims)?;
        if let Some(guard) = &self.replay {
            let jti = claims
                .jti
                .as_deref()
                .ok_or(TokenError::MissingClaim("jti"))?;
            guard.record(jti, claims.exp + s.leeway_secs, self.clock.now())?;
        }
        Ok(Verified {
            claims,
            kid: parsed.kid,
        })
    }

    fn check_claims(&self, c: &GitlabClaims) -> Result<(), TokenError> {
        let s = &self.settings;
        let (now, leeway) = (self.clock.now(), s.leeway_secs);
        if c.iss != s.issuer {
            return Err(TokenError::WrongIssuer {
                expected: s.issuer.clone(),
                actual: shown(&c.iss),
            });
        }
        if !c.aud.iter().any(|a| a == &s.audience) {
            return Err(TokenError::WrongAudience {
                expected: s.audience.clone(),
                actual: shown(&c.aud.join(", ")),
            });
        }
        if now > c.exp.saturating_add(leeway) {
            return Err(TokenError::Expired {
                exp: c.exp,
                now,
                leeway,
            });
        }
        if let Some(nbf) = c.nbf
            && now.saturating_add(leeway) < nbf
        {
            return Err(TokenError::NotYetValid { nbf, now, leeway });
        }
        if c.iat > now.saturating_add(leeway) {
            return Err(TokenError::IssuedInFuture {
                iat: c.iat,
                now,
                leeway,
            });
        }
        let age = now.saturating_sub(c.iat);
        if age > s.max_token_age_secs.saturating_add(leeway) {
            return Err(TokenError::TooOld {
                age,
                max: s.max_token_age_secs,
            });
        }
        Ok(())
    }

    /// Forgets an accepted token's `jti` (STS failed; the job may retry with the same token).
    pub fn release(&self, verified: &Verified) {
        if let (Some(g), Some(j)) = (&self.replay, &verified.claims.jti) {
            g.release(j);
        }
    }
}
