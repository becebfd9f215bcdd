//! The compact JWS form of an ID token, parsed strictly before any key is looked up: bounded
//! size, exactly three canonical base64url parts, a JSON header whose `alg` is on the
//! allow-list and that names its key (`kid`). Nothing here trusts the token; it only decides
//! whether it is worth verifying.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::shown;

/// STS's own bound on a web identity token, in bytes: GitLab's tokens are far smaller.
pub const MAX_TOKEN_LEN: usize = 20_000;
/// A `kid` longer than this is not a key id.
const MAX_KID_LEN: usize = 256;

/// Signature algorithms the gate can be configured to accept. `none` and the HMAC family are
/// not representable: an HMAC "verified" with a public key is the classic key-confusion forgery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256, what GitLab signs ID tokens with.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
}

impl Alg {
    /// The algorithm a JOSE `alg` names, or `None` for anything not allowed here (`none`, `HS256`, ...).
    pub fn parse(s: &str) -> Option<Alg> {
        match s {
            "RS256" => Some(Alg::RS256),
            "RS384" => Some(Alg::RS384),
            "RS512" => Some(Alg::RS512),
            "ES256" => Some(Alg::ES256),
            _ => None,
        }
    }
    /// The JOSE name, as it appears in a token header and the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::ES256 => "ES256",
        }
    }
    /// Whether the algorithm needs an RSA key (rather than an EC one).
    pub fn is_rsa(self) -> bool {
        !matches!(self, Alg::ES256)
    }
    pub(crate) fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Alg::RS256 => jsonwebtoken::Algorithm::RS256,
            Alg::RS384 => jsonwebtoken::Algorithm::RS384,
            Alg::RS512 => jsonwebtoken::Algorithm::RS512,
            Alg::ES256 => jsonwebtoken::Algorithm::ES256,
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a token is refused. Every variant is the caller's fault (HTTP 401, or 413 for size) and
/// none carries the token: only what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Longer than [`MAX_TOKEN_LEN`] (HTTP 413): refused before any parsing work.
    #[error("the token has {len} bytes; at most {max} are accepted")]
    TooLarge {
        /// The token's length in bytes.
        len: usize,
        /// The largest length accepted.
        max: usize,
    },
    /// Not three canonical base64url parts, or a header or payload that is not a JSON object.
    #[error("the token is not a compact JWT: {0}")]
    Malformed(String),
    /// The header's `alg` (first) is not on the configured allow-list (second).
    #[error("the token's algorithm `{0}` is not allowed (allowed: {1})")]
    AlgorithmNotAllowed(String, String),
    /// No `kid` in the header: the gate verifies only against the one key a token names.
    #[error(
        "the token's header has no `kid`: the gate only verifies against a named key of the issuer"
    )]
    MissingKid,
    /// The issuer publishes no key with this `kid`, even after a refetch (or refetching is throttled).
    #[error(
        "no key `{0}` in the issuer's JWKS (after a refetch, or refetched too recently to try again)"
    )]
    UnknownKid(String),
    /// The named key exists but cannot verify this algorithm (other key type, or its own `alg` differs).
    #[error("key `{kid}` cannot verify `{alg}` tokens: {why}")]
    KeyMismatch {
        /// The key the token named.
        kid: String,
        /// The algorithm the token's header states.
        alg: Alg,
        /// Why the two do not fit.
        why: String,
    },
    /// The signature does not verify with the named key: forged or altered.
    #[error("the token's signature does not verify with the issuer's key `{0}`")]
    BadSignature(String),
    /// A claim the gate needs is absent (or an empty string).
    #[error("claim `{0}` is missing")]
    MissingClaim(&'static str),
    /// A claim has another JSON type or shape than GitLab documents; refused, never coerced.
    #[error("claim `{claim}` must be {expected}")]
    WrongType {
        /// The claim's name.
        claim: &'static str,
        /// What it must be, in words.
        expected: &'static str,
    },
    /// `iss` is not the configured issuer.
    #[error("the token was issued by `{actual}`, the gate accepts only `{expected}`")]
    WrongIssuer {
        /// The configured issuer.
        expected: String,
        /// The token's `iss`.
        actual: String,
    },
    /// `aud` does not name the gate's audience, so the token was minted for another service.
    #[error("the token's audience is `{actual}`, the gate accepts only `{expected}`")]
    WrongAudience {
        /// The configured audience.
        expected: String,
        /// The token's `aud`, joined.
        actual: String,
    },
    /// `exp` plus the leeway lies in the past.
    #[error("the token expired at {exp} (now {now}, leeway {leeway}s)")]
    Expired {
        /// The token's `exp`, Unix seconds.
        exp: i64,
        /// The gate's clock, Unix seconds.
        now: i64,
        /// The clock skew allowed, in seconds.
        leeway: i64,
    },
    /// `nbf` minus the leeway still lies in the future.
    #[error("the token is not valid before {nbf} (now {now}, leeway {leeway}s)")]
    NotYetValid {
        /// The token's `nbf`, Unix seconds.
        nbf: i64,
        /// The gate's clock, Unix seconds.
        now: i64,
        /// The clock skew allowed, in seconds.
        leeway: i64,
    },
    /// `iat` minus the leeway lies in the future: a wrong clock or a forged time.
    #[error("the token claims to be issued at {iat}, in the future (now {now}, leeway {leeway}s)")]
    IssuedInFuture {
        /// The token's `iat`, Unix seconds.
        iat: i64,
        /// The gate's clock, Unix seconds.
        now: i64,
        /// The clock skew allowed, in seconds.
        leeway: i64,
    },
    /// Issued longer ago than the configured maximum age, however late its `exp`.
    #[error("the token was issued {age}s ago; the gate accepts tokens up to {max}s old")]
    TooOld {
        /// Seconds since `iat`.
        age: i64,
        /// The oldest age accepted, in seconds.
        max: i64,
    },
    /// The token's `jti` was already used for credentials.
    #[error("the token (jti `{0}`) was already used: each ID token gets credentials once")]
    Replayed(String),
}

/// A token split into its parts, its header checked; the signature not yet verified.
#[derive(Debug, Clone)]
pub struct Parsed<'a> {
    /// The header's algorithm, already checked against the allow-list.
    pub alg: Alg,
    /// The header's key id, which picks the issuer's key to verify with.
    pub kid: String,
    /// `base64(header) "." base64(payload)`: what the signature covers.
    pub signing_input: &'a str,
    /// The third part, still base64url-encoded as the verifier expects it.
    pub signature: &'a str,
    /// The decoded claims; not to be trusted until the signature verified.
    pub payload: Map<String, Value>,
}

fn b64(part: &str, what: &str) -> Result<Vec<u8>, TokenError> {
    // The strict engine refuses padding and non-canonical trailing bits, so one token has one
    // spelling (no malleable signatures).
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| TokenError::Malformed(format!("its {what} is not base64url: {e}")))
}

fn json_object(bytes: &[u8], what: &str) -> Result<Map<String, Value>, TokenError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(TokenError::Malformed(format!(
            "its {what} is not a JSON object"
        ))),
        Err(e) => Err(TokenError::Malformed(format!(
            "its {what} is not JSON: {e}"
        ))),
    }
}

/// Splits and checks `token` against the `allowed` algorithms. The payload is decoded (so the
/// caller can refuse a foreign issuer before asking for keys) but nothing in it is trusted.
pub fn parse<'a>(token: &'a str, allowed: &[Alg]) -> Result<Parsed<'a>, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLarge {
            len: token.len(),
            max: MAX_TOKEN_LEN,
        });
    }
    if token.is_empty() {
        return Err(TokenError::Malformed("it is empty".into()));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed(
            "it does not have exactly three dot-separated parts (JWE and JSON serialisations are not accepted)".into(),
        ));
    };
    let header = json_object(&b64(h, "header")?, "header")?;
    let alg = match header.get("alg") {
        Some(Value::String(a)) => a.as_str(),
        Some(_) => {
            return Err(TokenError::WrongType {
                claim: "alg",
                expected: "a string",
            });
        }
        None => return Err(TokenError::Malformed("its header has no `alg`".into())),
    };
    let allowed_list = allowed
        .iter()
        .map(|a| a.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let alg = Alg::parse(alg)
        .filter(|a| allowed.contains(a))
        .ok_or_else(|| TokenError::AlgorithmNotAllowed(shown(alg), allowed_list))?;
    // RFC 7515: a recipient must refuse extensions it does not understand; the gate knows none.
    if header.contains_key("crit") {
        return Err(TokenError::Malformed(
            "its header has `crit` extensions, which the gate does not support".into(),
        ));
    }
    match header.get("typ") {
        None => {}
        Some(Value::String(t)) if t.eq_ignore_ascii_case("JWT") => {}
        Some(other) => {
            return Err(TokenError::Malformed(format!(
                "its header's `typ` is {}, not `JWT`",
                shown(&other.to_string())
            )));
        }
    }
    let kid = match header.get("kid") {
        Some(Value::String(k)) if !k.is_empty() && k.len() <= MAX_KID_LEN => k.clone(),
        Some(Value::String(_) | Value::Null) | None => return Err(TokenError::MissingKid),
        Some(_) => {
            return Err(TokenError::WrongType {
                claim: "kid",
                expected: "a string",
            });
        }
    };
    if s.is_empty() {
        return Err(TokenError::Malformed("its signature is empty".into()));
    }
    // Decoded only to check its form; the verifier decodes it again with the key's backend.
    b64(s, "signature")?;
    let payload = json_object(&b64(p, "payload")?, "payload")?;
    let signing_input = &token[..h.len() + 1 + p.len()];
    Ok(Parsed {
        alg,
        kid,
        signing_input,
        signature: s,
        payload,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn enc(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn tok(header: &str, payload: &str, sig: &str) -> String {
        format!("{}.{}.{sig}", enc(header), enc(payload))
    }

    #[test]
    fn refuses_none_hmac_and_unlisted_algorithms_by_name() {
        for alg in ["none", "HS256", "RS384", "PS256", "EdDSA"] {
            let t = tok(&format!(r#"{{"alg":"{alg}","kid":"k"}}"#), "{}", "c2ln");
            let e = parse(&t, &[Alg::RS256]).unwrap_err();
            assert!(
                matches!(&e, TokenError::AlgorithmNotAllowed(a, _) if a == alg),
                "{alg}: {e}"
            );
        }
        // `none` with its empty signature is refused for the algorithm, not the form.
        let t = tok(r#"{"alg":"none"}"#, "{}", "");
        assert!(matches!(
            parse(&t, &[Alg::RS256]),
            Err(TokenError::AlgorithmNotAllowed(..))
        ));
    }

    #[test]
    fn refuses_bad_forms() {
        let ok_h = r#"{"alg":"RS256","kid":"k","typ":"JWT"}"#;
        let cases = [
            ("a.b".to_owned(), "three"),
            ("a.b.c.d.e".to_owned(), "three"),
            (tok(ok_h, "{}", "c2ln") + "=", "base64url"),
            (format!("{}.{}.c2ln", enc(ok_h), "e30="), "base64url"),
            (tok(ok_h, "[1]", "c2ln"), "not a JSON object"),
            (tok(ok_h, "{", "c2ln"), "not JSON"),
            (
                tok(r#"{"alg":"RS256","kid":"k","crit":["b64"]}"#, "{}", "c2ln"),
                "crit",
            ),
            (
                tok(r#"{"alg":"RS256","kid":"k","typ":"at+jwt"}"#, "{}", "c2ln"),
                "typ",
            ),
            (tok(ok_h, "{}", ""), "signature is empty"),
        ];
        for (t, want) in cases {
            let e = parse(&t, &[Alg::RS256]).unwrap_err().to_string();
            assert!(e.contains(want), "{t}: {e}");
        }
        assert_eq!(
            parse(&tok(r#"{"alg":"RS256"}"#, "{}", "c2ln"), &[Alg::RS256]).unwrap_err(),
            TokenError::MissingKid
        );
        assert!(matches!(
            parse(
                &tok(r#"{"alg":"RS256","kid":7}"#, "{}", "c2ln"),
                &[Alg::RS256]
            ),
            Err(TokenError::WrongType { claim: "kid", .. })
        ));
        let big = "a".repeat(MAX_TOKEN_LEN + 1);
        assert!(matches!(
            parse(&big, &[Alg::RS256]),
            Err(TokenError::TooLarge { .. })
        ));
    }

    #[test]
    fn splits_a_good_token() {
        let t = tok(r#"{"alg":"RS256","kid":"k1"}"#, r#"{"iss":"x"}"#, "c2ln");
        let p = parse(&t, &[Alg::RS256]).unwrap();
        assert_eq!(p.kid, "k1");
        assert_eq!(p.signature, "c2ln");
        assert_eq!(format!("{}.c2ln", p.signing_input), t);
        assert_eq!(p.payload["iss"], "x");
    }
}
