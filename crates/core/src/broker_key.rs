//! The broker user's access key as jobs receive it: ONE masked, protected, environment-scoped
//! GitLab variable, `ROLEHOP_BROKER_KEY` = `<access key id>:<secret access key>`.
//!
//! One variable because GitLab writes one variable atomically and has no transactions: with the
//! id and the secret in two variables, a rotation interrupted between the two writes leaves a
//! pair that does not authenticate. `:` and the AWS alphabets (`A-Z0-9` ids, base64 secrets)
//! are all inside GitLab's masking alphabet (RFC 4648 base64 plus `@ : . ~`, 8+ characters),
//! so the whole value stays masked in job logs.
//!
//! The two variables `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` stay a fallback for setups
//! made by hand; `rolehop rotate` migrates away from them.

use secrecy::ExposeSecret;

use crate::Secret;
use crate::gitlab_ctx::Env;
use crate::secret::secret;

/// The variable holding `<access key id>:<secret>`.
pub const BROKER_KEY_VAR: &str = "ROLEHOP_BROKER_KEY";
/// The fallback pair, for broker keys stored by hand in the AWS SDK's own variables.
pub const LEGACY_ACCESS_KEY_VAR: &str = "AWS_ACCESS_KEY_ID";
/// Its secret half, read only together with the key id.
pub const LEGACY_SECRET_KEY_VAR: &str = "AWS_SECRET_ACCESS_KEY";

/// An access key with its secret. The secret is a [`Secret`] from the moment the value is split.
#[derive(Debug, Clone)]
pub struct BrokerKey {
    /// The access key id (`AKIA...`): safe to print, names the key in messages and IAM.
    pub id: String,
    /// The secret access key, redacted everywhere but the output the user asked for.
    pub secret: Secret,
}

/// Why a `ROLEHOP_BROKER_KEY` value is not a key pair. Never carries the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{var}` is not `<access key id>:<secret access key>`: {reason}")]
pub struct BrokerKeyError {
    /// The variable's name (never its value).
    pub var: String,
    /// What is wrong with the value, in words that do not quote it.
    pub reason: String,
}

impl crate::exit::HasExit for BrokerKeyError {
    /// The variable holds something that is not a key pair: malformed input, not a denial.
    fn exit(&self) -> crate::exit::Exit {
        crate::exit::Exit::Input
    }
}

/// An access key id as IAM issues them: 16..128 upper-case letters and digits.
pub fn is_access_key_id(id: &str) -> bool {
    (16..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// GitLab's masking rule: one line of 8+ characters from the base64 alphabet (RFC 4648, both
/// variants, with `=`) plus `@`, `:`, `.` and `~`.
pub fn maskable(value: &str) -> bool {
    value.len() >= 8
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+/=-_@:.~".contains(c))
}

impl BrokerKey {
    /// Splits a variable's value at its first `:` (ids hold no `:`). `var` names the variable
    /// for the message.
    pub fn parse(var: &str, value: &Secret) -> Result<BrokerKey, BrokerKeyError> {
        let fail = |reason: &str| BrokerKeyError {
            var: var.to_owned(),
            reason: reason.to_owned(),
        };
        let v = value.expose_secret().trim();
        let Some((id, rest)) = v.split_once(':') else {
            return Err(fail("it has no `:`"));
        };
        let sec = secret(rest);
        if !is_access_key_id(id) {
            return Err(fail(
                "the part before `:` is not an access key id (16 to 128 upper-case letters and digits)",
            ));
        }
        if sec.expose_secret().is_empty() || !maskable(sec.expose_secret()) {
            return Err(fail(
                "the part after `:` is not a secret access key (base64 characters, no spaces)",
            ));
        }
        Ok(BrokerKey {
            id: id.to_owned(),
            secret: sec,
        })
    }

    /// The variable's value.
    pub fn encode(&self) -> Secret {
        secret(format!("{}:{}", self.id, self.secret.expose_secret()))
    }
}

/// Where a job's broker key came from, for messages and for `exec` to strip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `ROLEHOP_BROKER_KEY`.
    Combined,
    /// The `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` fallback.
    Legacy,
}

/// The job's broker key: `ROLEHOP_BROKER_KEY` when set (a malformed value is an error, never a
/// silent fall back to other credentials), else the legacy pair when both are set.
pub fn from_env(env: &dyn Env) -> Result<Option<(BrokerKey, KeySource)>, BrokerKeyError> {
    if let Some(v) = env.var(BROKER_KEY_VAR) {
        let v = secret(v);
        return BrokerKey::parse(BROKER_KEY_VAR, &v).map(|k| Some((k, KeySource::Combined)));
    }
    match (
        env.var(LEGACY_ACCESS_KEY_VAR),
        env.var(LEGACY_SECRET_KEY_VAR),
    ) {
        (Some(id), Some(sec)) => Ok(Some((
            BrokerKey {
                id: id.trim().to_owned(),
                secret: secret(sec),
            },
            KeySource::Legacy,
        ))),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::collections::BTreeMap;

    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    #[test]
    fn a_pair_round_trips_and_stays_maskable() {
        let k = BrokerKey {
            id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret: secret(SECRET),
        };
        let v = k.encode();
        assert!(
            maskable(v.expose_secret()),
            "GitLab would refuse to mask it"
        );
        let back = BrokerKey::parse(BROKER_KEY_VAR, &v).unwrap();
        assert_eq!(back.id, k.id);
        assert_eq!(back.secret.expose_secret(), SECRET);
        // Debug never shows the secret.
        assert!(!format!("{back:?}").contains(SECRET));
    }

    #[test]
    fn malformed_values_are_named_without_the_value() {
        for bad in [
            "no-colon-here-at-all",
            "akiaiosfodnn7example:abcdefgh",
            "AKIAIOSFODNN7EXAMPLE:",
            "AKIAIOSFODNN7EXAMPLE:has space",
            ":wJalrXUtnFEMI",
        ] {
            let e = BrokerKey::parse(BROKER_KEY_VAR, &secret(bad)).unwrap_err();
            let m = e.to_string();
            assert!(m.starts_with("`ROLEHOP_BROKER_KEY` is not"), "{m}");
            assert!(!m.contains(bad), "{m}");
        }
    }

    #[test]
    fn the_combined_variable_wins_and_a_bad_one_never_falls_back() {
        let mut env = BTreeMap::new();
        env.insert(
            LEGACY_ACCESS_KEY_VAR.to_owned(),
            "AKIALEGACY0000000000".to_owned(),
        );
        env.insert(LEGACY_SECRET_KEY_VAR.to_owned(), "legacy-secret".to_owned());
        let (k, src) = from_env(&env).unwrap().unwrap();
        assert_eq!(
            (k.id.as_str(), src),
            ("AKIALEGACY0000000000", KeySource::Legacy)
        );
        env.insert(
            BROKER_KEY_VAR.to_owned(),
            format!("AKIAIOSFODNN7EXAMPLE:{SECRET}"),
        );
        let (k, src) = from_env(&env).unwrap().unwrap();
        assert_eq!(
            (k.id.as_str(), src),
            ("AKIAIOSFODNN7EXAMPLE", KeySource::Combined)
        );
        env.insert(BROKER_KEY_VAR.to_owned(), "garbage".to_owned());
        assert!(from_env(&env).is_err());
        assert!(from_env(&BTreeMap::new()).unwrap().is_none());
    }
}
