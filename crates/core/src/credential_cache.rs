//! The pure half of `credential-process`'s cache: which entry a run may use, what it holds and
//! when it is too old.
//!
//! An entry belongs to one job and one set of chain inputs, the base secret included: its
//! file name and its encryption key are both derived from them, so another job (even of the
//! same user on a shell runner) neither finds its own entry under that name nor can read or
//! forge one without the base secret. The caller does the file I/O and the encryption.

use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::Secret;
use crate::credentials::Credentials;
use crate::secret::secret;

/// An entry is used only while its session has more than this left: botocore runs a
/// `credential_process` again 15 minutes before expiry, and must then get a newer session.
pub const FRESH_MARGIN_SECS: i64 = 20 * 60;

/// Everything a chain's result depends on. Two runs share an entry only if all are equal.
pub struct CacheInputs<'a> {
    /// `CI_JOB_ID`, `CI_PIPELINE_ID`, `CI_PROJECT_ID` (empty outside a job).
    pub job: [&'a str; 3],
    /// The plan, written out completely (roles, session names, durations, tags, external id).
    pub plan: &'a str,
    /// The STS region: sessions are the same, but an entry names where it was issued.
    pub region: &'a str,
    /// The STS endpoint (`AWS_ENDPOINT_URL_STS`): another endpoint is another issuer.
    pub endpoint: &'a str,
    /// The base identity's secret material (the broker key pair or the ID token).
    pub base_secret: &'a Secret,
    /// Who runs rolehop (the numeric user id): never share between users.
    pub user: &'a str,
}

/// Where an entry lives and the key that seals it.
pub struct CacheKey {
    /// A file name: 32 hex digits, revealing nothing of the inputs.
    pub file_name: String,
    /// 256 bits for the AEAD that seals the entry.
    pub key: [u8; 32],
}

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheKey")
            .field("file_name", &self.file_name)
            .field("key", &"** redacted **")
            .finish()
    }
}

fn digest(purpose: &str, i: &CacheInputs<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    // Each field length-prefixed, so no two different input lists hash alike.
    for part in [
        "rolehop credential cache v1",
        purpose,
        i.user,
        i.job[0],
        i.job[1],
        i.job[2],
        i.plan,
        i.region,
        i.endpoint,
        i.base_secret.expose_secret(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

/// The entry's name and sealing key for these inputs.
pub fn key(inputs: &CacheInputs<'_>) -> CacheKey {
    let name = digest("name", inputs);
    let mut file_name = String::with_capacity(32);
    for b in &name[..16] {
        file_name.push_str(&format!("{b:02x}"));
    }
    CacheKey {
        file_name,
        key: digest("key", inputs),
    }
}

#[derive(Serialize, Deserialize)]
struct Entry {
    v: u32,
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    expiration: i64,
}

/// The plaintext of an entry (the caller seals it).
pub fn encode(c: &Credentials) -> Vec<u8> {
    let e = Entry {
        v: 1,
        access_key_id: c.access_key_id.clone(),
        secret_access_key: c.secret_access_key.expose_secret().to_owned(),
        session_token: c.session_token.expose_secret().to_owned(),
        expiration: c.expiration.unix_timestamp(),
    };
    serde_json::to_vec(&e).unwrap_or_default()
}

/// An opened entry's credentials, if it is one rolehop wrote.
pub fn decode(plain: &[u8]) -> Option<Credentials> {
    let e: Entry = serde_json::from_slice(plain).ok()?;
    if e.v != 1 {
        return None;
    }
    Some(Credentials {
        access_key_id: e.access_key_id,
        secret_access_key: secret(e.secret_access_key),
        session_token: secret(e.session_token),
        expiration: OffsetDateTime::from_unix_timestamp(e.expiration).ok()?,
    })
}

/// Whether a session expiring at `expiration` may still be handed out at `now`.
pub fn fresh(expiration: OffsetDateTime, now: OffsetDateTime) -> bool {
    expiration - now > Duration::seconds(FRESH_MARGIN_SECS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use time::macros::datetime;

    fn inputs<'a>(job: &'a str, plan: &'a str, base: &'a Secret, user: &'a str) -> CacheInputs<'a> {
        CacheInputs {
            job: [job, "1001", "42"],
            plan,
            region: "eu-west-1",
            endpoint: "",
            base_secret: base,
            user,
        }
    }

    #[test]
    fn every_input_changes_both_the_name_and_the_key() {
        let base = secret("AKIA:secret");
        let other_base = secret("AKIA:other");
        let a = key(&inputs("5005", "plan", &base, "1000"));
        for b in [
            key(&inputs("5006", "plan", &base, "1000")),
            key(&inputs("5005", "plan2", &base, "1000")),
            key(&inputs("5005", "plan", &other_base, "1000")),
            key(&inputs("5005", "plan", &base, "1001")),
        ] {
            assert_ne!(a.file_name, b.file_name);
            assert_ne!(a.key, b.key);
        }
        assert_eq!(
            a.file_name,
            key(&inputs("5005", "plan", &base, "1000")).file_name
        );
        assert_eq!(a.file_name.len(), 32);
        assert!(format!("{a:?}").contains("redacted"));
    }

    #[test]
    fn an_entry_round_trips_and_garbage_is_no_entry() {
        let c = Credentials {
            access_key_id: "ASIA1".into(),
            secret_access_key: secret("s"),
            session_token: secret("t"),
            expiration: datetime!(2026-12-05 11:00 UTC),
        };
        let back = decode(&encode(&c)).unwrap();
        assert_eq!(back.access_key_id, "ASIA1");
        assert_eq!(back.session_token.expose_secret(), "t");
        assert_eq!(back.expiration, c.expiration);
        assert!(decode(b"{}").is_none());
        assert!(decode(b"\xff").is_none());
    }

    #[test]
    fn an_entry_is_used_until_twenty_minutes_before_it_expires() {
        let exp = datetime!(2026-12-05 11:00 UTC);
        assert!(fresh(exp, datetime!(2026-12-05 10:39 UTC)));
        assert!(!fresh(exp, datetime!(2026-12-05 10:40 UTC)));
    }
}
