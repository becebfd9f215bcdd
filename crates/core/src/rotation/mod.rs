//! Broker access-key rotation as a pure, resumable state machine over two small traits:
//! [`KeyStore`] (the IAM user's keys and a tag holding the rotation record) and
//! [`VariableStore`] (the GitLab CI/CD variables jobs read). No I/O happens here.
//!
//! Every [`Rotator::step`] observes both sides, decides, and performs at most one change, so a
//! crash between any two changes leaves a record from which the next run completes or rolls
//! back. Invariants kept at every step: the key GitLab holds is an active key in IAM, and what
//! GitLab holds is a working pair. The second needs no ordering trick: jobs read the id and
//! the secret from ONE variable (`ROLEHOP_BROKER_KEY` = `<id>:<secret>`, see
//! [`crate::broker_key`]), and GitLab writes one variable atomically. The two variables of
//! earlier setups are migrated: deleted once the combined one is proven to authenticate.

use std::fmt;
use std::time::Duration;

use secrecy::ExposeSecret;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Secret;
use crate::broker_key::BrokerKey;
use crate::duration::format_secs;

/// The IAM user tag holding the rotation record.
pub const RECORD_TAG: &str = "rolehop:rotation";
/// IAM caps tag values at 256 characters.
pub const RECORD_MAX_LEN: usize = 256;
/// The default grace period before a deactivated old key is deleted.
pub const DEFAULT_DELETE_AFTER: Duration = Duration::from_secs(24 * 3600);

// ---------------------------------------------------------------------------------------------
// The two stores
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    Active,
    Inactive,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Inactive => "inactive",
        }
    }
}

/// An access key of the broker user (the id is not a secret; the secret never leaves
/// [`KeyStore::create_key`] except inside a [`Secret`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub id: String,
    pub status: KeyStatus,
}

/// What signing a request with a key (sts:GetCallerIdentity) said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// The key works; `arn` is the caller identity it signed as.
    Accepted { arn: String },
    /// AWS refused the key or its secret (`InvalidClientTokenId`, `SignatureDoesNotMatch`).
    Rejected { reason: String },
}

/// Why a store call failed, so the CLI can pick an exit code and a hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// Authenticated but not allowed (IAM AccessDenied, GitLab 401/403).
    Denied,
    /// The user, project, group or variable does not exist.
    NotFound,
    /// Network, timeouts, throttling or 5xx after bounded retries.
    Unavailable,
    /// The service refused the request as malformed (e.g. GitLab's masked-value rules).
    Invalid,
    /// IAM's 2-key quota.
    Quota,
    /// No credentials to call the service with.
    NoCredentials,
    Other,
}

/// A failed store call. The message never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    pub kind: StoreErrorKind,
    pub message: String,
}

impl StoreError {
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// The broker IAM user: its access keys, a tag for the rotation record, and a way to try a key.
pub trait KeyStore {
    fn list_keys(&mut self) -> Result<Vec<AccessKey>, StoreError>;
    /// Creates an active key; the secret exists only in the returned value from here on.
    fn create_key(&mut self) -> Result<(String, Secret), StoreError>;
    fn set_status(&mut self, id: &str, status: KeyStatus) -> Result<(), StoreError>;
    fn delete_key(&mut self, id: &str) -> Result<(), StoreError>;
    fn read_record(&mut self) -> Result<Option<String>, StoreError>;
    fn write_record(&mut self, value: &str) -> Result<(), StoreError>;
    fn clear_record(&mut self) -> Result<(), StoreError>;
    /// Signs one sts:GetCallerIdentity with the key. Transport failures are `Err`.
    fn verify(&mut self, id: &str, secret: &Secret) -> Result<Verification, StoreError>;
}

/// A CI/CD variable as GitLab returns it (one environment scope, chosen by the store).
#[derive(Debug, Clone)]
pub struct StoredVariable {
    pub value: Secret,
    pub description: Option<String>,
    /// GitLab answered with a `description` field (null or not). Versions before variable
    /// descriptions omit it, and then only signing with the value tells whose secret it is.
    pub descriptions_supported: bool,
    pub masked: bool,
    pub protected: bool,
}

/// A create-or-update of one variable in the store's environment scope.
#[derive(Debug, Clone)]
pub struct VariableWrite {
    pub key: String,
    pub value: Secret,
    pub masked: bool,
    pub protected: bool,
    pub description: String,
}

/// The GitLab CI/CD variables of one project or group, in one environment scope.
pub trait VariableStore {
    fn get(&mut self, key: &str) -> Result<Option<StoredVariable>, StoreError>;
    fn put(&mut self, var: &VariableWrite) -> Result<(), StoreError>;
    /// Deletes the variable in the store's scope; a missing variable is not an error.
    fn delete(&mut self, key: &str) -> Result<(), StoreError>;
}

/// Time and waiting, injected so tests neither read the clock nor sleep.
pub trait Clock {
    fn now(&self) -> OffsetDateTime;
    fn sleep(&self, d: Duration);
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

// ---------------------------------------------------------------------------------------------
// The record kept in the user's tag
// ---------------------------------------------------------------------------------------------

/// How far a rotation got. Each phase is recorded *before* the change it announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// About to create the new key (`new` unknown until created).
    Creating,
    /// The new key exists; its secret lives only in the creating process until stored.
    Created,
    /// Writing the key variable (one atomic write of `<id>:<secret>`, its description naming
    /// the key id).
    Storing,
    /// GitLab holds the new key; the old key is (being) deactivated and is deleted after the
    /// grace period counted from `since`.
    Retiring,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Creating => "creating",
            Phase::Created => "created",
            Phase::Storing => "storing",
            Phase::Retiring => "retiring",
        }
    }
}

/// The rotation record: `v1 phase=storing old=AKIA... new=AKIA... since=2026-01-02T03:04:05Z`.
/// IAM tag values allow only letters, digits, spaces and `_.:/=+-@` (so no JSON) and at most
/// 256 characters; this stays near 110.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub phase: Phase,
    pub old: Option<String>,
    pub new: Option<String>,
    pub since: OffsetDateTime,
}

impl Record {
    pub fn encode(&self) -> String {
        let since = self
            .since
            .replace_nanosecond(0)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| self.since.unix_timestamp().to_string());
        format!(
            "v1 phase={} old={} new={} since={since}",
            self.phase.as_str(),
            self.old.as_deref().unwrap_or("-"),
            self.new.as_deref().unwrap_or("-"),
        )
    }

    pub fn parse(value: &str) -> Result<Record, String> {
        let mut parts = value.split_whitespace();
        if parts.next() != Some("v1") {
            return Err("it does not start with `v1`".into());
        }
        let (mut phase, mut old, mut new, mut since) = (None, None, None, None);
        for p in parts {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| format!("`{p}` is not `name=value`"))?;
            let id = || (v != "-").then(|| v.to_owned());
            match k {
                "phase" => {
                    phase = Some(match v {
                        "creating" => Phase::Creating,
                        "created" => Phase::Created,
                        "storing" => Phase::Storing,
                        "retiring" => Phase::Retiring,
                        other => return Err(format!("unknown phase `{other}`")),
                    })
                }
                "old" => old = id(),
                "new" => new = id(),
                "since" => {
                    since = Some(
                        OffsetDateTime::parse(v, &Rfc3339)
                            .map_err(|e| format!("`since` is not a timestamp: {e}"))?,
                    )
                }
                other => return Err(format!("unknown field `{other}`")),
            }
        }
        let phase = phase.ok_or("it has no `phase`")?;
        let since = since.ok_or("it has no `since`")?;
        if phase != Phase::Creating && new.is_none() {
            return Err(format!("phase `{}` needs `new`", phase.as_str()));
        }
        Ok(Record {
            phase,
            old,
            new,
            since,
        })
    }
}

/// The description rotate writes on the key variable: it names the key the value belongs to,
/// so a resumed run knows what GitLab holds even when the variable is hidden (GitLab 17.4+
/// answers hidden variables without their value).
pub fn key_description(user: &str, key_id: &str) -> String {
    format!("rolehop rotate: `<access key id>:<secret>` of IAM user {user} for key {key_id}")
}

/// The key id named by [`key_description`], if the description is one of ours.
pub fn described_key(description: &str) -> Option<&str> {
    description
        .strip_prefix("rolehop rotate: ")?
        .rsplit_once(" for key ")
        .map(|(_, k)| k.trim())
}

// ---------------------------------------------------------------------------------------------
// Settings, errors, outcomes
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Settings {
    /// The broker IAM user (for messages and variable descriptions).
    pub user: String,
    /// The one variable jobs read, `<access key id>:<secret>` ([`crate::broker_key::BROKER_KEY_VAR`]).
    pub key_var: String,
    /// The access key id and secret variables of a setup from before the combined variable:
    /// read as the key GitLab holds while `key_var` is missing, deleted once `key_var` is proven.
    pub legacy_vars: Option<(String, String)>,
    /// Where variables are written, for messages (`project acme/shop, scope production`).
    pub gitlab_place: String,
    pub protected: bool,
    pub delete_after: Duration,
    pub delete_inactive_extra: bool,
    /// Waits between attempts to verify a brand-new key (IAM is eventually consistent); the
    /// number of attempts is one more than its length.
    pub verify_delays: Vec<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// rotate will not proceed without the user's action (quota, foreign keys).
    #[error("{0}")]
    Refused(String),
    #[error(
        "the tag `{RECORD_TAG}` on IAM user `{user}` holds `{value}`, which is not a rotation record ({reason}); inspect the user's keys and GitLab variables, then remove the tag (`aws iam untag-user --user-name {user} --tag-keys {RECORD_TAG}`)"
    )]
    BadRecord {
        user: String,
        value: String,
        reason: String,
    },
    #[error("{0}")]
    Inconsistent(String),
    #[error(
        "the new access key `{id}` was still rejected after {attempts} attempts over {waited}: {reason}; the key stays recorded and the next run deletes it"
    )]
    NewKeyRejected {
        id: String,
        attempts: usize,
        waited: String,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new key is in GitLab and active; `old` was deactivated (and deleted if `deleted`).
    Rotated {
        new: String,
        old: Option<String>,
        deleted: bool,
        delete_due: Option<OffsetDateTime>,
    },
    /// The previous rotation's old key is waiting out its grace period; nothing to do yet.
    Waiting {
        new: String,
        old: String,
        delete_due: OffsetDateTime,
    },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Rotated {
                new,
                old,
                deleted,
                delete_due,
            } => {
                write!(f, "rotated: GitLab now holds key `{new}`")?;
                match (old, deleted, delete_due) {
                    (Some(o), true, _) => write!(f, "; old key `{o}` deleted"),
                    (Some(o), false, Some(due)) => write!(
                        f,
                        "; old key `{o}` is inactive and will be deleted by a run after {}",
                        fmt_time(*due)
                    ),
                    _ => Ok(()),
                }
            }
            Outcome::Waiting {
                new,
                old,
                delete_due,
            } => write!(
                f,
                "nothing to rotate yet: GitLab holds key `{new}`; the previous key `{old}` is inactive and may be deleted after {} (run again then, or pass `--delete-after 0` to delete it now); a new rotation needs its slot",
                fmt_time(*delete_due)
            ),
        }
    }
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A change was made (or a check done); the text says which, without secrets.
    Progress(String),
    Done(Outcome),
}

fn fmt_time(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| t.unix_timestamp().to_string())
}

// ---------------------------------------------------------------------------------------------
// The machine
// ---------------------------------------------------------------------------------------------

/// What this process knows beyond the stores (lost in a crash).
#[derive(Debug, Default)]
struct Memory {
    /// The key this process created, with its secret.
    fresh: Option<(String, Secret)>,
    /// A key proven to work with the secret this process holds.
    verified: Option<String>,
    /// The exact value of the key variable that authenticated (sts:GetCallerIdentity with the
    /// stored pair), so a value that changes later in the run is checked again.
    proven: Option<Secret>,
    /// This process carried a rotation to `retiring`: do not start another.
    rotated: bool,
    /// The old key this process deleted at the end of its grace period.
    retired: Option<String>,
    /// Times this process rewrote a key variable that changed after it was written.
    repairs: usize,
}

/// What GitLab holds in the key variable.
enum Held {
    /// Nothing: neither the key variable nor a legacy pair.
    Nothing,
    /// A readable `<id>:<secret>`.
    Pair(BrokerKey),
    /// A hidden value whose description names the key (or not).
    Hidden(Option<String>),
    /// A value that is not `<id>:<secret>` (set by hand?): jobs cannot authenticate with it.
    Malformed,
}

/// What both stores hold now.
struct World {
    keys: Vec<AccessKey>,
    record: Option<Record>,
    /// The access key id jobs get: the key variable's, else the legacy id variable's.
    held: Option<String>,
    /// The key variable.
    var: Option<StoredVariable>,
    pair: Held,
    /// Legacy variables that still exist.
    legacy: Vec<String>,
    /// The legacy access key id variable's value.
    legacy_id: Option<String>,
}

impl World {
    fn key(&self, id: &str) -> Option<&AccessKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// The IAM key GitLab gives jobs, or that the legacy variables still hold when the combined
    /// variable names a key IAM does not have (a write that landed late): the key a new
    /// rotation replaces, and one that is never deleted.
    fn current(&self) -> Option<&str> {
        [self.held.as_deref(), self.legacy_id.as_deref()]
            .into_iter()
            .flatten()
            .find(|id| self.key(id).is_some())
    }

    /// A key GitLab still holds in either place.
    fn holds_key(&self, id: &str) -> bool {
        self.held.as_deref() == Some(id) || self.legacy_id.as_deref() == Some(id)
    }
}

enum Action {
    DeleteKey {
        id: String,
        why: String,
    },
    WriteRecord(Record),
    ClearRecord(&'static str),
    CreateKey,
    VerifyFresh,
    /// sts:GetCallerIdentity with exactly the pair the key variable holds.
    ProveStored,
    PutKey,
    /// Rewrite the key variable, which holds `found` instead of this run's new key.
    RepairKey {
        found: String,
    },
    DeleteLegacy {
        key: String,
    },
    Deactivate {
        id: String,
    },
    Finish(Outcome),
}

/// Drives one rotation. Create a new one per run; it holds nothing durable.
pub struct Rotator<'a, K: KeyStore, V: VariableStore, C: Clock> {
    keys: &'a mut K,
    vars: &'a mut V,
    clock: &'a C,
    settings: &'a Settings,
    mem: Memory,
}

impl<'a, K: KeyStore, V: VariableStore, C: Clock> Rotator<'a, K, V, C> {
    pub fn new(keys: &'a mut K, vars: &'a mut V, clock: &'a C, settings: &'a Settings) -> Self {
        Self {
            keys,
            vars,
            clock,
            settings,
            mem: Memory::default(),
        }
    }

    /// Steps until done, reporting each step's text to `progress`.
    pub fn run(&mut self, mut progress: impl FnMut(&str)) -> Result<Outcome, RotateError> {
        // A rotation takes about ten steps; the bound only stops a logic loop.
        for _ in 0..64 {
            match self.step()? {
                Step::Progress(p) => progress(&p),
                Step::Done(o) => return Ok(o),
            }
        }
        Err(RotateError::Inconsistent(
            "rotation did not settle after 64 steps; this is a bug in rolehop".into(),
        ))
    }

    /// Observes, decides and makes at most one change.
    pub fn step(&mut self) -> Result<Step, RotateError> {
        let world = self.observe()?;
        let action = match self.decide(&world)? {
            Action::Finish(outcome) => self.before_finishing(&world, outcome)?,
            action => action,
        };
        self.apply(action, &world)
    }

    fn observe(&mut self) -> Result<World, RotateError> {
        let s = self.settings;
        let keys = self.keys.list_keys()?;
        let record = match self.keys.read_record()? {
            None => None,
            Some(v) => Some(Record::parse(&v).map_err(|reason| RotateError::BadRecord {
                user: s.user.clone(),
                value: v.clone(),
                reason,
            })?),
        };
        let mut legacy = Vec::new();
        let mut legacy_id = None;
        if let Some((id_var, secret_var)) = &s.legacy_vars {
            if let Some(v) = self.vars.get(id_var)? {
                legacy_id =
                    Some(v.value.expose_secret().trim().to_owned()).filter(|v| !v.is_empty());
                legacy.push(id_var.clone());
            }
            if self.vars.get(secret_var)?.is_some() {
                legacy.push(secret_var.clone());
            }
        }
        // The key variable is read last, so the decision sees any write that landed meanwhile.
        let var = self.vars.get(&s.key_var)?;
        let pair = match &var {
            None => Held::Nothing,
            Some(v) if v.value.expose_secret().is_empty() => Held::Hidden(
                v.description
                    .as_deref()
                    .and_then(described_key)
                    .map(str::to_owned),
            ),
            Some(v) => match BrokerKey::parse(&s.key_var, &v.value) {
                Ok(k) => Held::Pair(k),
                Err(_) => Held::Malformed,
            },
        };
        let legacy_id = legacy_id.filter(|_| legacy.len() == 2);
        let held = match (&var, &pair) {
            (_, Held::Pair(k)) => Some(k.id.clone()),
            (_, Held::Hidden(id)) => id.clone(),
            (None, _) => legacy_id.clone(),
            (Some(_), _) => None,
        };
        Ok(World {
            keys,
            record,
            held,
            var,
            pair,
            legacy,
            legacy_id,
        })
    }

    fn decide(&self, w: &World) -> Result<Action, RotateError> {
        let now = self.clock.now();
        let Some(rec) = &w.record else {
            return self.decide_idle(w, now);
        };
        let new = rec.new.clone().unwrap_or_default();
        let fresh_id = self.mem.fresh.as_ref().map(|(id, _)| id.as_str());
        match rec.phase {
            Phase::Creating => {
                if let Some(id) = fresh_id
                    && w.key(id).is_some()
                {
                    return Ok(Action::WriteRecord(Record {
                        phase: Phase::Created,
                        new: Some(id.to_owned()),
                        ..rec.clone()
                    }));
                }
                // Keys other than the recorded old one were created by a run that crashed before
                // recording them: their secrets are lost, so they can only go.
                if let Some(orphan) = w.keys.iter().find(|k| Some(&k.id) != rec.old.as_ref()) {
                    return self.delete_unheld(
                        w,
                        &orphan.id,
                        "its secret was lost when an earlier run stopped after creating it",
                    );
                }
                if rec.old.is_some() && rec.old.as_deref() != w.current() {
                    // GitLab changed under us since the record was written: start over.
                    return Ok(Action::ClearRecord(
                        "GitLab's key changed since the rotation started; starting over",
                    ));
                }
                Ok(Action::CreateKey)
            }
            Phase::Created => {
                if fresh_id == Some(new.as_str()) {
                    if self.mem.verified.as_deref() != Some(new.as_str()) {
                        return Ok(Action::VerifyFresh);
                    }
                    return Ok(Action::WriteRecord(Record {
                        phase: Phase::Storing,
                        ..rec.clone()
                    }));
                }
                // Not stored anywhere yet and the secret is gone: roll back.
                if w.key(&new).is_some() {
                    return self.delete_unheld(
                        w,
                        &new,
                        "an earlier run stopped before storing it in GitLab; its secret is lost",
                    );
                }
                Ok(Action::ClearRecord("rolled back the interrupted rotation"))
            }
            Phase::Storing => self.decide_storing(w, rec, &new),
            Phase::Retiring => self.decide_retiring(w, rec, &new, now),
        }
    }

    fn decide_idle(&self, w: &World, now: OffsetDateTime) -> Result<Action, RotateError> {
        let s = self.settings;
        if self.mem.rotated {
            let new = w.held.clone().unwrap_or_default();
            return Ok(Action::Finish(Outcome::Rotated {
                new,
                old: self.mem.retired.clone(),
                deleted: self.mem.retired.is_some(),
                delete_due: None,
            }));
        }
        let extras: Vec<&AccessKey> = w.keys.iter().filter(|k| !w.holds_key(&k.id)).collect();
        let dead = match (&w.held, &w.pair) {
            (Some(h), _) if w.key(h).is_none() => format!(
                " (`{}` in {} names key `{h}`, which IAM does not have: jobs cannot authenticate until a rotation stores a fresh pair)",
                s.key_var, s.gitlab_place
            ),
            (_, Held::Malformed) => format!(
                " (`{}` in {} holds a value that is not `<access key id>:<secret>`: jobs cannot authenticate until a rotation stores a fresh pair)",
                s.key_var, s.gitlab_place
            ),
            _ => String::new(),
        };
        if let Some(active) = extras.iter().find(|k| k.status == KeyStatus::Active) {
            return Err(RotateError::Refused(format!(
                "IAM user `{user}` has an active access key `{id}` that GitLab does not hold ({place} has {held}){dead}; rotate keeps exactly one active key, the one in GitLab, and IAM allows only 2 keys per user. If nothing uses `{id}`, deactivate it (`aws iam update-access-key --user-name {user} --access-key-id {id} --status Inactive`), then rerun with `--delete-inactive-extra` or delete it (`aws iam delete-access-key --user-name {user} --access-key-id {id}`); if jobs use it, store it in `{kv}` as `<access key id>:<secret>` first",
                user = s.user,
                id = active.id,
                place = s.gitlab_place,
                held = w
                    .held
                    .as_deref()
                    .map_or("no key".to_owned(), |h| format!("`{h}`")),
                kv = s.key_var,
            )));
        }
        if let Some(inactive) = extras.first() {
            if s.delete_inactive_extra {
                return self.delete_unheld(
                    w,
                    &inactive.id,
                    "it is an inactive extra key and `--delete-inactive-extra` was given",
                );
            }
            return Err(RotateError::Refused(format!(
                "IAM user `{user}` has an inactive access key `{id}` that GitLab does not hold{dead}; it takes one of the user's 2 key slots. Rerun with `--delete-inactive-extra` to delete it, or delete it yourself (`aws iam delete-access-key --user-name {user} --access-key-id {id}`)",
                user = s.user,
                id = inactive.id,
            )));
        }
        let old = w.current().map(str::to_owned);
        Ok(Action::WriteRecord(Record {
            phase: Phase::Creating,
            old,
            new: None,
            since: now,
        }))
    }

    /// This process's new key and its variable value, when it holds them.
    fn fresh_value(&self, id: &str) -> Option<Secret> {
        self.mem
            .fresh
            .as_ref()
            .filter(|(fid, _)| fid == id)
            .map(|(fid, secret)| {
                BrokerKey {
                    id: fid.clone(),
                    secret: secret.clone(),
                }
                .encode()
            })
    }

    /// The key variable holds `value` (or, hidden, names `id`).
    fn holds(&self, w: &World, id: &str, value: &Secret) -> bool {
        match (&w.var, &w.pair) {
            (Some(_), Held::Hidden(named)) => named.as_deref() == Some(id),
            (Some(v), _) => v.value.expose_secret() == value.expose_secret(),
            (None, _) => false,
        }
    }

    fn decide_storing(&self, w: &World, rec: &Record, new: &str) -> Result<Action, RotateError> {
        if let Some(value) = self.fresh_value(new) {
            if !self.holds(w, new, &value) {
                return Ok(Action::PutKey);
            }
            return Ok(Action::WriteRecord(Record {
                phase: Phase::Retiring,
                since: self.clock.now(),
                ..rec.clone()
            }));
        }
        // Resumed after a crash. One variable holds both halves, so if it names the new key it
        // holds the new key's secret too: retiring proves it before touching the old key.
        if w.held.as_deref() == Some(new) {
            if w.key(new).is_none() {
                // The write landed after this rotation was rolled back (GitLab applied a request
                // the client had given up on). A fresh rotation rewrites the variable.
                return Ok(Action::ClearRecord(
                    "GitLab's key variable names a key deleted when the interrupted rotation was rolled back (a write that landed late?); starting over",
                ));
            }
            return Ok(Action::WriteRecord(Record {
                phase: Phase::Retiring,
                since: self.clock.now(),
                ..rec.clone()
            }));
        }
        if w.key(new).is_some() {
            return self.delete_unheld(
                w,
                new,
                "an earlier run stopped before storing it in GitLab; its secret is lost",
            );
        }
        Ok(Action::ClearRecord("rolled back the interrupted rotation"))
    }

    /// The key variable authenticates as it is: proven this run with exactly its value, or
    /// hidden (GitLab will not show it; its description names the key).
    fn stored_proven(&self, w: &World) -> bool {
        match (&w.var, &w.pair) {
            (Some(_), Held::Hidden(_)) => true,
            (Some(v), Held::Pair(_)) => self
                .mem
                .proven
                .as_ref()
                .is_some_and(|p| p.expose_secret() == v.value.expose_secret()),
            _ => false,
        }
    }

    fn decide_retiring(
        &self,
        w: &World,
        rec: &Record,
        new: &str,
        now: OffsetDateTime,
    ) -> Result<Action, RotateError> {
        let s = self.settings;
        if w.held.as_deref() != Some(new) {
            if self.fresh_value(new).is_some() {
                // Ours was overwritten (a write that landed late): put it back.
                return self.repair_or_fail(w);
            }
            let held_dead = match (&w.held, &w.pair) {
                (Some(h), _) => w.key(h).is_none_or(|k| k.status != KeyStatus::Active),
                (None, Held::Malformed) => true,
                _ => false,
            };
            if held_dead {
                // GitLab holds no working key (a write of a rolled-back or retired key landed
                // late, or a hand edit) and the new key's secret died with the run that made
                // it: only a fresh rotation can help, and the new key is in nobody's hands.
                if w.key(new).is_some() {
                    return self.delete_unheld(
                        w,
                        new,
                        "GitLab no longer holds it (its variable names a key IAM does not have) and its secret is lost; starting over",
                    );
                }
                return Ok(Action::ClearRecord(
                    "GitLab holds no working key; starting over",
                ));
            }
        }
        // Prove what GitLab holds before migrating away from anything or retiring the old key.
        if matches!(w.pair, Held::Pair(_)) && !self.stored_proven(w) {
            return Ok(Action::ProveStored);
        }
        if w.var.is_some()
            && let Some(key) = w.legacy.first()
        {
            return Ok(Action::DeleteLegacy { key: key.clone() });
        }
        let Some(old) = &rec.old else {
            return Ok(Action::ClearRecord(
                "rotation complete (there was no old key)",
            ));
        };
        match w.key(old) {
            None => Ok(Action::ClearRecord("rotation complete")),
            Some(k) if k.status == KeyStatus::Active => {
                if w.held.as_deref() == Some(old.as_str()) {
                    return Err(RotateError::Inconsistent(format!(
                        "{} holds the old key `{old}` again in `{}` (changed by hand?); rotate will not deactivate a key jobs use. Store the new key `{new}` there, or remove the tag `{RECORD_TAG}` from IAM user `{}` to start over",
                        s.gitlab_place, s.key_var, s.user
                    )));
                }
                Ok(Action::Deactivate { id: old.clone() })
            }
            Some(_) => {
                let due = rec.since + s.delete_after;
                if now >= due {
                    self.delete_unheld(w, old, "its grace period is over")
                } else if self.mem.rotated {
                    Ok(Action::Finish(Outcome::Rotated {
                        new: new.to_owned(),
                        old: Some(old.clone()),
                        deleted: false,
                        delete_due: Some(due),
                    }))
                } else {
                    Ok(Action::Finish(Outcome::Waiting {
                        new: new.to_owned(),
                        old: old.clone(),
                        delete_due: due,
                    }))
                }
            }
        }
    }

    fn repair_or_fail(&self, w: &World) -> Result<Action, RotateError> {
        let found = self.describe_held(w);
        if self.mem.repairs < 2 {
            return Ok(Action::RepairKey { found });
        }
        Err(RotateError::Inconsistent(format!(
            "`{}` in {} changed again after being rewritten (it holds {found}); is another `rolehop rotate` or a person writing it? Stop the other writer, then rerun `rolehop rotate`",
            self.settings.key_var, self.settings.gitlab_place
        )))
    }

    fn describe_held(&self, w: &World) -> String {
        match (&w.var, &w.pair, &w.held) {
            (None, _, Some(h)) => format!("no value (the legacy variables hold key `{h}`)"),
            (None, _, None) => "nothing (the variable is missing)".to_owned(),
            (Some(_), Held::Malformed, _) => {
                "a value that is not `<access key id>:<secret>`".to_owned()
            }
            (Some(_), _, Some(h)) => format!("key `{h}`"),
            (Some(_), _, None) => "a hidden value naming no key".to_owned(),
        }
    }

    /// The last look before reporting success: what GitLab holds must authenticate. GitLab has
    /// no conditional writes, and a write the client gave up on (a timeout) can still land
    /// after later ones.
    fn before_finishing(&self, w: &World, outcome: Outcome) -> Result<Action, RotateError> {
        let s = self.settings;
        if self.mem.rotated
            && let Some((id, _)) = &self.mem.fresh
            && let Some(value) = self.fresh_value(id)
        {
            // This run stored its own key: the variable must still hold exactly that.
            if !self.holds(w, id, &value) {
                return self.repair_or_fail(w);
            }
            return Ok(Action::Finish(outcome));
        }
        match &w.pair {
            Held::Pair(_) if !self.stored_proven(w) => Ok(Action::ProveStored),
            Held::Pair(_) | Held::Hidden(_) => Ok(Action::Finish(outcome)),
            Held::Nothing if w.held.is_some() => Ok(Action::Finish(outcome)),
            _ => Err(RotateError::Inconsistent(format!(
                "`{}` in {} holds {}, so jobs cannot authenticate. Rerun `rolehop rotate --delete-after 0 --delete-inactive-extra`: it frees the key slots and issues a fresh pair",
                s.key_var,
                s.gitlab_place,
                self.describe_held(w)
            ))),
        }
    }

    /// Deleting a key is only ever allowed when GitLab does not hold it.
    fn delete_unheld(&self, w: &World, id: &str, why: &str) -> Result<Action, RotateError> {
        if w.holds_key(id) {
            return Err(RotateError::Inconsistent(format!(
                "refusing to delete key `{id}` ({why}): {} holds it in `{}`",
                self.settings.gitlab_place, self.settings.key_var
            )));
        }
        Ok(Action::DeleteKey {
            id: id.to_owned(),
            why: why.to_owned(),
        })
    }

    fn apply(&mut self, action: Action, w: &World) -> Result<Step, RotateError> {
        let s = self.settings;
        let msg = match action {
            Action::Finish(o) => return Ok(Step::Done(o)),
            Action::DeleteKey { id, why } => {
                self.keys.delete_key(&id)?;
                if let Some(r) = &w.record
                    && r.phase == Phase::Retiring
                    && r.old.as_deref() == Some(id.as_str())
                {
                    self.mem.retired = Some(id.clone());
                }
                format!("deleted access key `{id}` of `{}`: {why}", s.user)
            }
            Action::WriteRecord(rec) => {
                let value = rec.encode();
                self.keys.write_record(&value)?;
                if rec.phase == Phase::Retiring {
                    self.mem.rotated = true;
                }
                format!(
                    "recorded phase `{}` on `{}` ({value})",
                    rec.phase.as_str(),
                    s.user
                )
            }
            Action::ClearRecord(why) => {
                self.keys.clear_record()?;
                format!("cleared the rotation record: {why}")
            }
            Action::CreateKey => {
                let (id, secret) = self.keys.create_key()?;
                let m = format!("created access key `{id}` for `{}`", s.user);
                self.mem.fresh = Some((id, secret));
                m
            }
            Action::VerifyFresh => {
                let Some((id, secret)) = self.mem.fresh.clone() else {
                    return Err(RotateError::Inconsistent("no new key to verify".into()));
                };
                let (attempts, arn) = self.verify_with_retries(&id, &secret)?;
                self.mem.verified = Some(id.clone());
                format!("verified key `{id}` signs as `{arn}` (attempt {attempts})")
            }
            Action::ProveStored => {
                let (Some(var), Held::Pair(k)) = (&w.var, &w.pair) else {
                    return Err(RotateError::Inconsistent("no stored pair to prove".into()));
                };
                // An inactive key fails in AWS whatever its secret; emulators that ignore key
                // status must not make it look alive.
                let verdict = match w.key(&k.id) {
                    Some(key) if key.status == KeyStatus::Active => {
                        self.keys.verify(&k.id, &k.secret)?
                    }
                    Some(_) => Verification::Rejected {
                        reason: "the key is inactive".into(),
                    },
                    None => Verification::Rejected {
                        reason: "IAM has no such key".into(),
                    },
                };
                match verdict {
                    Verification::Accepted { arn } => {
                        self.mem.proven = Some(var.value.clone());
                        format!(
                            "proved the pair in `{}` authenticates as `{arn}` (key `{}`)",
                            s.key_var, k.id
                        )
                    }
                    Verification::Rejected { reason } => {
                        return Err(RotateError::Inconsistent(format!(
                            "`{}` in {} holds key `{}` but AWS rejects the pair ({reason}), so jobs cannot authenticate. Rerun `rolehop rotate --delete-after 0 --delete-inactive-extra`: it frees the key slots and issues a fresh pair",
                            s.key_var, s.gitlab_place, k.id
                        )));
                    }
                }
            }
            Action::PutKey => {
                let id = self.put_fresh()?;
                format!(
                    "wrote key `{id}` with its secret to `{}` in {} (one variable, masked{}): jobs now get the new key",
                    s.key_var,
                    s.gitlab_place,
                    if s.protected { ", protected" } else { "" }
                )
            }
            Action::RepairKey { found } => {
                let id = self.put_fresh()?;
                self.mem.repairs += 1;
                format!(
                    "rewrote `{}` in {}: it held {found} instead of key `{id}` (a late GitLab write?)",
                    s.key_var, s.gitlab_place
                )
            }
            Action::DeleteLegacy { key } => {
                self.vars.delete(&key)?;
                format!(
                    "deleted the legacy variable `{key}` in {}: jobs read `{}`, proven to work",
                    s.gitlab_place, s.key_var
                )
            }
            Action::Deactivate { id } => {
                self.keys.set_status(&id, KeyStatus::Inactive)?;
                format!(
                    "deactivated the old key `{id}`; it is deleted after {} (`--delete-after`)",
                    format_secs(s.delete_after.as_secs())
                )
            }
        };
        Ok(Step::Progress(msg))
    }

    /// Writes `<id>:<secret>` of the key this process created in one request, its description
    /// naming the key; returns the key id.
    fn put_fresh(&mut self) -> Result<String, RotateError> {
        let s = self.settings;
        let Some((id, _)) = self.mem.fresh.clone() else {
            return Err(RotateError::Inconsistent("no new key to store".into()));
        };
        let Some(value) = self.fresh_value(&id) else {
            return Err(RotateError::Inconsistent("no new key to store".into()));
        };
        self.vars.put(&VariableWrite {
            key: s.key_var.clone(),
            value,
            masked: true,
            protected: s.protected,
            description: key_description(&s.user, &id),
        })?;
        Ok(id)
    }

    fn verify_with_retries(
        &mut self,
        id: &str,
        secret: &Secret,
    ) -> Result<(usize, String), RotateError> {
        let mut waited = Duration::ZERO;
        let mut delays = self.settings.verify_delays.iter();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.keys.verify(id, secret)? {
                Verification::Accepted { arn } => return Ok((attempt, arn)),
                Verification::Rejected { reason } => match delays.next() {
                    Some(d) => {
                        self.clock.sleep(*d);
                        waited += *d;
                    }
                    None => {
                        return Err(RotateError::NewKeyRejected {
                            id: id.to_owned(),
                            attempts: attempt,
                            waited: format_secs(waited.as_secs()),
                            reason,
                        });
                    }
                },
            }
        }
    }
}

pub mod sim;

#[cfg(test)]
mod tests;
