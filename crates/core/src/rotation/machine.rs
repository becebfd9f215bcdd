//! The machine: observe both stores, decide, make at most one change per step.

use std::time::Duration;

use secrecy::ExposeSecret;
use time::OffsetDateTime;

use super::*;
use crate::Secret;
use crate::broker_key::BrokerKey;
use crate::duration::format_secs;

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
    /// A machine over the two stores; nothing happens until it is stepped.
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
