//! The file half of `credential-process`'s cache: a private directory, entries sealed with a
//! key only the same job's chain inputs give (`rolehop_core::credential_cache`).
//!
//! The directory is `$ROLEHOP_CACHE_DIR`, else `$XDG_RUNTIME_DIR`, `$TMPDIR` or `/tmp`, with
//! `rolehop-cache-<uid>` below it: created 0700, and used only while it is a real directory
//! (no symlink) owned by this user and closed to everyone else. An entry is a 0600 regular
//! file owned by this user, read without following symlinks, and opened with ChaCha20-Poly1305
//! under the entry's key: a file planted by someone else, or written for other inputs, fails
//! to open and is replaced. Anything wrong with the cache is a warning and an uncached run,
//! never a failed job.

use std::fs;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use time::OffsetDateTime;

use rolehop_core::credential_cache::{self, CacheKey};
use rolehop_core::credentials::Credentials;
use rolehop_core::gitlab_ctx::Env;

/// Entries older than this are removed when a new one is written: no session lives longer.
const STALE_SECS: u64 = 2 * 3600;

pub fn uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// The cache directory for this user, created if missing; `Err` says why it is not used.
pub fn dir(env: &dyn Env) -> Result<PathBuf, String> {
    let base = env
        .var("ROLEHOP_CACHE_DIR")
        .or_else(|| env.var("XDG_RUNTIME_DIR"))
        .or_else(|| env.var("TMPDIR"))
        .unwrap_or_else(|| "/tmp".into());
    let dir = Path::new(&base).join(format!("rolehop-cache-{}", uid()));
    match fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create `{}`: {e}", dir.display())),
    }
    let meta =
        fs::symlink_metadata(&dir).map_err(|e| format!("cannot read `{}`: {e}", dir.display()))?;
    if !meta.file_type().is_dir() {
        return Err(format!(
            "`{}` is not a directory (a symlink?)",
            dir.display()
        ));
    }
    if meta.uid() != uid() {
        return Err(format!(
            "`{}` belongs to user {}, not to this user ({}): someone else made it",
            dir.display(),
            meta.uid(),
            uid()
        ));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "`{}` is open to other users (mode {:o}); it must be 0700",
            dir.display(),
            meta.permissions().mode() & 0o777
        ));
    }
    Ok(dir)
}

fn sealing_key(k: &CacheKey) -> Option<LessSafeKey> {
    UnboundKey::new(&CHACHA20_POLY1305, &k.key)
        .ok()
        .map(LessSafeKey::new)
}

/// The entry for `key`, if there is one this job wrote and it is still fresh at `now`.
pub fn load(dir: &Path, key: &CacheKey, now: OffsetDateTime) -> Option<Credentials> {
    let path = dir.join(&key.file_name);
    let mut f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&path)
        .ok()?;
    let meta = f.metadata().ok()?;
    if !meta.file_type().is_file() || meta.uid() != uid() || meta.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "rolehop: warning: ignoring the cache entry `{}`: not a private file of this user",
            path.display()
        );
        return None;
    }
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).ok()?;
    if bytes.len() < NONCE_LEN {
        return None;
    }
    let (nonce, sealed) = bytes.split_at_mut(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let plain = sealing_key(key)?
        .open_in_place(nonce, Aad::from(key.file_name.as_bytes()), sealed)
        .ok()?;
    let creds = credential_cache::decode(plain)?;
    credential_cache::fresh(creds.expiration, now).then_some(creds)
}

/// Stores `creds` under `key`, replacing any entry atomically; errors are warnings.
pub fn store(dir: &Path, key: &CacheKey, creds: &Credentials) {
    if let Err(e) = try_store(dir, key, creds) {
        eprintln!(
            "rolehop: warning: cannot write the credential cache in `{}`: {e}",
            dir.display()
        );
    }
    remove_stale(dir);
}

fn try_store(dir: &Path, key: &CacheKey, creds: &Credentials) -> Result<(), String> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| "the system's random source failed".to_owned())?;
    let mut sealed = credential_cache::encode(creds);
    sealing_key(key)
        .ok_or("bad key")?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(key.file_name.as_bytes()),
            &mut sealed,
        )
        .map_err(|_| "cannot seal the entry".to_owned())?;
    // NamedTempFile is 0600 from the start; the rename replaces a planted file or symlink
    // itself, never what it points to.
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| e.to_string())?;
    tmp.write_all(&nonce)
        .and_then(|()| tmp.write_all(&sealed))
        .map_err(|e| e.to_string())?;
    tmp.persist(dir.join(&key.file_name))
        .map_err(|e| e.error.to_string())?;
    Ok(())
}

fn remove_stale(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let old = e
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > STALE_SECS);
        if old {
            let _ = fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rolehop_core::secret::secret;
    use secrecy::ExposeSecret;
    use std::collections::BTreeMap;

    fn key(job: &str) -> CacheKey {
        let base = secret("AKIA:s");
        credential_cache::key(&credential_cache::CacheInputs {
            job: [job, "1", "2"],
            plan: "p",
            region: "eu-west-1",
            endpoint: "",
            base_secret: &base,
            user: "1000",
        })
    }

    fn creds() -> Credentials {
        Credentials {
            access_key_id: "ASIAX".into(),
            secret_access_key: secret("sk"),
            session_token: secret("tok"),
            expiration: OffsetDateTime::now_utc() + time::Duration::hours(1),
        }
    }

    fn env(dir: &Path) -> BTreeMap<String, String> {
        [("ROLEHOP_CACHE_DIR".to_owned(), dir.display().to_string())].into()
    }

    #[test]
    fn an_entry_is_private_sealed_and_only_opened_by_its_own_key() {
        let t = tempfile::tempdir().unwrap();
        let d = dir(&env(t.path())).unwrap();
        assert_eq!(
            fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let k = key("5005");
        store(&d, &k, &creds());
        let file = d.join(&k.file_name);
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let raw = fs::read(&file).unwrap();
        assert!(
            !String::from_utf8_lossy(&raw).contains("tok"),
            "stored in clear"
        );
        let now = OffsetDateTime::now_utc();
        let back = load(&d, &k, now).unwrap();
        assert_eq!(back.session_token.expose_secret(), "tok");
        // Another job's key finds nothing, even when handed this job's file.
        let other = key("5006");
        fs::copy(&file, d.join(&other.file_name)).unwrap();
        assert!(load(&d, &other, now).is_none());
    }

    #[test]
    fn a_planted_or_loose_file_is_never_served() {
        let t = tempfile::tempdir().unwrap();
        let d = dir(&env(t.path())).unwrap();
        let k = key("5005");
        let file = d.join(&k.file_name);
        // Planted plain JSON, as someone without the key would write it.
        fs::write(&file, credential_cache::encode(&creds())).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(load(&d, &k, OffsetDateTime::now_utc()).is_none());
        // A genuine entry made readable to others is refused too.
        store(&d, &k, &creds());
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load(&d, &k, OffsetDateTime::now_utc()).is_none());
        // A symlink in the entry's place is not followed.
        fs::remove_file(&file).unwrap();
        store(&d, &key("x"), &creds());
        std::os::unix::fs::symlink(d.join(key("x").file_name), &file).unwrap();
        assert!(load(&d, &k, OffsetDateTime::now_utc()).is_none());
    }

    #[test]
    fn a_directory_open_to_others_is_not_used() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join(format!("rolehop-cache-{}", uid()));
        fs::create_dir(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
        let e = dir(&env(t.path())).unwrap_err();
        assert!(e.contains("open to other users"), "{e}");
    }
}
