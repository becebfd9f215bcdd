//! rolehop's claim gate, the pure part: everything the gate decides about a GitLab ID token,
//! testable without a socket. [`Verifier`] checks the token (size, form, algorithm allow-list,
//! signature against the issuer's JWKS through [`JwksCache`], `iss`, `aud`, times, replay) and
//! yields typed [`GitlabClaims`]; [`Rules`] decide whether those claims may use an
//! environment; [`AttestedSession`] derives the AssumeRole session name, SourceIdentity and
//! session tags from them. [`GateConfig`] reads the gate's config file; [`request`] parses a
//! request body and maps every outcome to an HTTP status. Fetching keys and calling STS
//! happen at the rim, through [`KeySource`] and the caller.
//!
//! Floors CI enforces here (warnings are denied): every public item is documented
//! (`missing_docs`) and nothing is `pub` that the crate does not export (`unreachable_pub`).

#![warn(missing_docs, unreachable_pub)]

pub mod claims;
pub mod clock;
pub mod config;
pub mod jwks;
pub mod jwt;
pub mod lambda;
pub mod replay;
pub mod request;
pub mod rules;
pub mod session;
pub mod verify;

pub use claims::GitlabClaims;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{ConfigError, EnvironmentGate, GateConfig};
pub use jwks::{FetchError, JwksCache, JwksSettings, KeyError, KeySource};
pub use jwt::{Alg, MAX_TOKEN_LEN, TokenError};
pub use replay::ReplayGuard;
pub use request::{GateRequest, RequestError, Status};
pub use rules::{Decision, Glob, PipelineSources, Refusal, Rules, RulesError};
pub use session::AttestedSession;
pub use verify::{Verified, Verifier, VerifierSettings, VerifyError};

/// Shortens and escapes a value taken from a token or a key document before it goes into a
/// message: claims are signed by GitLab but many are chosen by users (branch names), and a
/// message must never carry control characters into logs or a terminal.
pub(crate) fn shown(s: &str) -> String {
    const MAX: usize = 120;
    let mut out: String = s.chars().take(MAX).flat_map(char::escape_debug).collect();
    if s.chars().count() > MAX {
        out.push('…');
    }
    out
}
