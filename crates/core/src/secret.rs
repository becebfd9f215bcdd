//! The one type secrets travel in. Its `Debug` is redacted and it has no `Display`, so a secret
//! can only reach output through an explicit `expose_secret()` at the place that prints it.

pub use secrecy::{ExposeSecret, SecretString};

/// A secret string (access key secret, session token, ID token, GitLab token).
pub type Secret = SecretString;

/// Makes a [`Secret`] from anything string-like.
pub fn secret(s: impl Into<String>) -> Secret {
    SecretString::from(s.into())
}
