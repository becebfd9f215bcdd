#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use crate::Secret;

use secrecy::ExposeSecret;
use time::OffsetDateTime;
use time::macros::datetime;

use super::sim::{SimKeys, SimVariables};
use super::*;

const OLD: &str = "AKIAOLDKEY0000000001";
const OLD_SECRET: &str = "old/Secret+0000000000000000000000000000";
const AK: &str = "AWS_ACCESS_KEY_ID";
const SK: &str = "AWS_SECRET_ACCESS_KEY";
const KV: &str = "ROLEHOP_BROKER_KEY";

struct TestClock {
    now: Cell<OffsetDateTime>,
    slept: RefCell<Vec<Duration>>,
}

impl TestClock {
    fn new() -> Self {
        Self {
            now: Cell::new(datetime!(2026-01-02 03:04:05 UTC)),
            slept: RefCell::new(Vec::new()),
        }
    }
    fn advance(&self, d: Duration) {
        self.now.set(self.now.get() + d);
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        self.now.get()
    }
    fn sleep(&self, d: Duration) {
        self.slept.borrow_mut().push(d);
        self.advance(d);
    }
}

fn settings(delete_after: Duration) -> Settings {
    Settings {
        user: "rolehop-prod".into(),
        key_var: KV.into(),
        legacy_vars: Some((AK.into(), SK.into())),
        gitlab_place: "project `acme/shop` (scope `production`)".into(),
        protected: true,
        delete_after,
        delete_inactive_extra: false,
        verify_delays: vec![
            Duration::from_secs(1),
            Duration::from_secs(2),
            Duration::from_secs(4),
        ],
    }
}

/// A user whose one key is in GitLab the way earlier setups stored it (two variables): every
/// test that starts here also proves the migration to the combined variable.
fn healthy() -> (SimKeys, SimVariables) {
    let keys = SimKeys::new("arn:aws:iam::111111111111:user/rolehop-prod").with_key(
        OLD,
        KeyStatus::Active,
        Some(OLD_SECRET),
    );
    let mut vars = SimVariables::default();
    vars.set(AK, OLD);
    vars.set(SK, OLD_SECRET);
    (keys, vars)
}

/// A user whose one key is in the combined variable.
fn healthy_combined() -> (SimKeys, SimVariables) {
    let (keys, mut vars) = healthy();
    vars.vars.clear();
    vars.set(KV, &format!("{OLD}:{OLD_SECRET}"));
    (keys, vars)
}

/// A starting world: the stores as a healthy setup leaves them.
type Start = fn() -> (SimKeys, SimVariables);

/// Both starting points: migrating from two variables, and rotating the combined one.
fn starts() -> [(&'static str, Start); 2] {
    [("legacy pair", healthy), ("combined", healthy_combined)]
}

/// The pair jobs get: the combined variable's, else the legacy pair.
fn held_pair(vars: &SimVariables) -> Option<(String, String)> {
    match vars.value(KV) {
        Some(v) => {
            let (id, sec) = v.split_once(':')?;
            Some((id.to_owned(), sec.to_owned()))
        }
        None => Some((vars.value(AK)?.to_owned(), vars.value(SK)?.to_owned())),
    }
}

/// What GitLab holds authenticates: its key is active and the secret beside it is that key's
/// (checked against the simulated IAM's own record of the secret, whatever `ignore_secrets`).
fn assert_invariant(keys: &SimKeys, vars: &SimVariables, ctx: &str) {
    let (held, secret) = held_pair(vars).expect("GitLab holds a pair");
    assert_eq!(
        keys.status(&held),
        Some(KeyStatus::Active),
        "{ctx}: GitLab holds `{held}`, which is not an active key in IAM: {:?}",
        keys.keys.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );
    assert_eq!(
        keys.secret_of(&held).map(|s| s.expose_secret()),
        Some(secret.as_str()),
        "{ctx}: GitLab holds `{held}` with another key's secret: jobs cannot authenticate"
    );
}

/// Exactly one key, active, in the combined variable with its own secret, the legacy variables
/// gone, no record, and it is not the old one.
fn assert_converged(keys: &SimKeys, vars: &SimVariables, ctx: &str) {
    assert_eq!(keys.keys.len(), 1, "{ctx}: keys {:?}", keys.keys);
    let (k, s) = &keys.keys[0];
    assert_eq!(k.status, KeyStatus::Active, "{ctx}");
    assert_eq!(
        vars.value(KV),
        Some(format!("{}:{}", k.id, s.as_ref().unwrap().expose_secret()).as_str()),
        "{ctx}: the key variable does not hold the active key's pair"
    );
    assert_eq!(keys.record, None, "{ctx}: record left behind");
    assert!(vars.vars[KV].masked, "{ctx}: not masked");
    assert!(vars.vars[KV].protected, "{ctx}: not protected");
    assert!(
        !vars.vars.contains_key(AK) && !vars.vars.contains_key(SK),
        "{ctx}: legacy variables left: {:?}",
        vars.vars.keys().collect::<Vec<_>>()
    );
}

fn run_to_end(
    keys: &mut SimKeys,
    vars: &mut SimVariables,
    clock: &TestClock,
    s: &Settings,
) -> Outcome {
    let mut r = Rotator::new(keys, vars, clock, s);
    r.run(|_| {}).expect("rotation completes")
}

/// Steps once at a time, checking the invariant between steps.
fn steps_checked(
    keys: &mut SimKeys,
    vars: &mut SimVariables,
    clock: &TestClock,
    s: &Settings,
    limit: usize,
    ctx: &str,
) -> (usize, Option<Outcome>) {
    let mut n = 0;
    while n < limit {
        let step = {
            let mut r = Rotator::new(&mut *keys, &mut *vars, clock, s);
            // One machine per step would forget the fresh secret; keep one for all steps.
            let mut out = Vec::new();
            for _ in n..limit {
                let st = r.step().expect("step");
                out.push(st.clone());
                if matches!(st, Step::Done(_)) {
                    break;
                }
            }
            out
        };
        for st in step {
            n += 1;
            if let Step::Done(o) = st {
                assert_invariant(keys, vars, ctx);
                return (n, Some(o));
            }
        }
        assert_invariant(keys, vars, ctx);
    }
    (n, None)
}

#[test]
fn a_healthy_rotation_moves_gitlab_to_a_new_verified_key_and_retires_the_old_one() {
    let (mut keys, mut vars) = healthy();
    let clock = TestClock::new();
    let s = settings(DEFAULT_DELETE_AFTER);
    let mut lines = Vec::new();
    let outcome = Rotator::new(&mut keys, &mut vars, &clock, &s)
        .run(|l| lines.push(l.to_owned()))
        .unwrap();
    let Outcome::Rotated {
        new,
        old,
        deleted,
        delete_due,
    } = &outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(old.as_deref(), Some(OLD));
    assert!(!deleted);
    assert_eq!(delete_due.unwrap(), clock.now() + DEFAULT_DELETE_AFTER);
    assert_eq!(held_pair(&vars).unwrap().0, *new);
    assert_invariant(&keys, &vars, "rotated");
    assert!(
        !vars.vars.contains_key(AK) && !vars.vars.contains_key(SK),
        "migrated"
    );
    assert_eq!(keys.status(OLD), Some(KeyStatus::Inactive));
    assert_eq!(keys.status(new), Some(KeyStatus::Active));
    assert!(described_key(vars.vars[KV].description.as_deref().unwrap()) == Some(new.as_str()));
    assert!(
        keys.record
            .as_deref()
            .unwrap()
            .starts_with("v1 phase=retiring")
    );
    let text = lines.join("\n");
    assert!(
        !text.contains("sim/Secret") && !text.contains(OLD_SECRET),
        "{text}"
    );
    assert!(
        outcome
            .to_string()
            .contains("will be deleted by a run after")
    );

    // Before the grace period ends a rerun changes nothing and says when.
    clock.advance(Duration::from_secs(3600));
    let again = run_to_end(&mut keys, &mut vars, &clock, &s);
    assert!(matches!(again, Outcome::Waiting { .. }), "{again:?}");
    assert_eq!(keys.keys.len(), 2);

    // After it, the old key goes, and the run rotates again.
    clock.advance(DEFAULT_DELETE_AFTER);
    let third = run_to_end(&mut keys, &mut vars, &clock, &s);
    assert!(matches!(third, Outcome::Rotated { .. }));
    assert_eq!(keys.status(OLD), None, "old key deleted after grace");
    assert_eq!(
        keys.status(new),
        Some(KeyStatus::Inactive),
        "the second key retires"
    );
}

#[test]
fn delete_after_zero_ends_with_exactly_one_key_and_no_record() {
    let (mut keys, mut vars) = healthy();
    let clock = TestClock::new();
    let s = settings(Duration::ZERO);
    let o = run_to_end(&mut keys, &mut vars, &clock, &s);
    assert!(matches!(o, Outcome::Rotated { deleted: true, .. }), "{o:?}");
    assert!(
        o.to_string().contains(&format!("old key `{OLD}` deleted")),
        "{o}"
    );
    assert_converged(&keys, &vars, "fresh");
    assert_ne!(keys.keys[0].0.id, OLD);
}

/// How many steps a clean rotation takes (with deletion), for the crash matrix.
fn clean_steps(start: Start) -> usize {
    let (mut keys, mut vars) = start();
    let clock = TestClock::new();
    let (n, o) = steps_checked(
        &mut keys,
        &mut vars,
        &clock,
        &settings(Duration::ZERO),
        100,
        "clean",
    );
    assert!(o.is_some());
    n
}

#[test]
fn a_crash_after_any_step_leaves_gitlab_a_working_pair_and_the_next_run_converges() {
    for (name, start) in starts() {
        let total = clean_steps(start);
        assert!(total >= 9, "expected a multi-step rotation, got {total}");
        for k in 0..total {
            let ctx = format!("crash after step {k} (from {name})");
            let (mut keys, mut vars) = start();
            // Recovery must not need AWS to check secrets (moto with auth off does not); the
            // invariant checks them against the simulated IAM's own record.
            keys.ignore_secrets = true;
            let clock = TestClock::new();
            let s = settings(Duration::ZERO);
            let (done, o) = steps_checked(&mut keys, &mut vars, &clock, &s, k, &ctx);
            assert_eq!((done, o), (k, None), "{ctx}");
            // The crashed process's memory (the new secret) is gone; a new run resumes.
            let (_, o) = steps_checked(&mut keys, &mut vars, &clock, &s, 100, &ctx);
            assert!(o.is_some(), "{ctx}: did not finish");
            assert_converged(&keys, &vars, &ctx);
            assert_ne!(keys.keys[0].0.id, OLD, "{ctx}: not rotated");
        }
    }
}

/// Counts store calls across both stores and fails one of them: before it takes effect
/// (a refused request) or after (the change happened but the answer was lost: a timeout).
struct Faults {
    calls: Cell<usize>,
    fail_at: usize,
    after: bool,
    kind: StoreErrorKind,
    fired: Cell<bool>,
}

impl Faults {
    fn hit<T>(&self, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        let n = self.calls.get();
        self.calls.set(n + 1);
        if n != self.fail_at {
            return f();
        }
        self.fired.set(true);
        let err = StoreError::new(self.kind, format!("injected fault at call {n}"));
        if self.after {
            f()?;
        }
        Err(err)
    }
}

struct FaultyKeys<'a>(&'a mut SimKeys, Rc<Faults>);
struct FaultyVars<'a>(&'a mut SimVariables, Rc<Faults>);

impl KeyStore for FaultyKeys<'_> {
    fn list_keys(&mut self) -> Result<Vec<AccessKey>, StoreError> {
        self.1.hit(|| self.0.list_keys())
    }
    fn create_key(&mut self) -> Result<(String, Secret), StoreError> {
        self.1.hit(|| self.0.create_key())
    }
    fn set_status(&mut self, id: &str, st: KeyStatus) -> Result<(), StoreError> {
        self.1.hit(|| self.0.set_status(id, st))
    }
    fn delete_key(&mut self, id: &str) -> Result<(), StoreError> {
        self.1.hit(|| self.0.delete_key(id))
    }
    fn read_record(&mut self) -> Result<Option<String>, StoreError> {
        self.1.hit(|| self.0.read_record())
    }
    fn write_record(&mut self, v: &str) -> Result<(), StoreError> {
        self.1.hit(|| self.0.write_record(v))
    }
    fn clear_record(&mut self) -> Result<(), StoreError> {
        self.1.hit(|| self.0.clear_record())
    }
    fn verify(&mut self, id: &str, s: &Secret) -> Result<Verification, StoreError> {
        self.1.hit(|| self.0.verify(id, s))
    }
}

impl VariableStore for FaultyVars<'_> {
    fn get(&mut self, key: &str) -> Result<Option<StoredVariable>, StoreError> {
        self.1.hit(|| self.0.get(key))
    }
    fn put(&mut self, var: &VariableWrite) -> Result<(), StoreError> {
        self.1.hit(|| self.0.put(var))
    }
    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        self.1.hit(|| self.0.delete(key))
    }
}

#[test]
fn a_failure_at_any_call_leaves_gitlab_a_working_pair_and_a_rerun_converges() {
    let mut cases = 0;
    for ((name, start), after) in starts()
        .into_iter()
        .flat_map(|st| [(st, false), (st, true)])
    {
        for kind in [StoreErrorKind::Unavailable, StoreErrorKind::Denied] {
            for fail_at in 0.. {
                let ctx = format!(
                    "fault {kind:?} at call {fail_at} (applied first: {after}, from {name})"
                );
                let (mut keys, mut vars) = start();
                let clock = TestClock::new();
                let s = settings(Duration::ZERO);
                let faults = Rc::new(Faults {
                    calls: Cell::new(0),
                    fail_at,
                    after,
                    kind,
                    fired: Cell::new(false),
                });
                let result = {
                    let mut fk = FaultyKeys(&mut keys, faults.clone());
                    let mut fv = FaultyVars(&mut vars, faults.clone());
                    Rotator::new(&mut fk, &mut fv, &clock, &s).run(|_| {})
                };
                if !faults.fired.get() {
                    assert!(result.is_ok(), "{ctx}: {result:?}");
                    break;
                }
                cases += 1;
                let err = result.expect_err(&ctx);
                assert!(
                    matches!(&err, RotateError::Store(e) if e.kind == kind),
                    "{ctx}: {err:?}"
                );
                assert_invariant(&keys, &vars, &ctx);
                run_to_end(&mut keys, &mut vars, &clock, &s);
                assert_converged(&keys, &vars, &ctx);
            }
        }
    }
    assert!(cases > 200, "only {cases} fault cases ran");
}

#[test]
fn a_new_key_is_retried_with_the_given_backoff_until_iam_accepts_it() {
    let (mut keys, mut vars) = healthy();
    keys.reject_new_times = 2;
    let clock = TestClock::new();
    let s = settings(Duration::ZERO);
    let mut lines = Vec::new();
    Rotator::new(&mut keys, &mut vars, &clock, &s)
        .run(|l| lines.push(l.to_owned()))
        .unwrap();
    assert_eq!(
        *clock.slept.borrow(),
        vec![Duration::from_secs(1), Duration::from_secs(2)]
    );
    assert!(lines.iter().any(|l| l.contains("(attempt 3)")), "{lines:?}");
    assert_converged(&keys, &vars, "eventual consistency");
}

#[test]
fn a_new_key_never_accepted_stops_before_gitlab_and_the_next_run_rolls_it_back() {
    let (mut keys, mut vars) = healthy();
    keys.reject_new_times = 100;
    let clock = TestClock::new();
    let s = settings(Duration::ZERO);
    let err = Rotator::new(&mut keys, &mut vars, &clock, &s)
        .run(|_| {})
        .unwrap_err();
    assert!(
        matches!(&err, RotateError::NewKeyRejected { attempts: 4, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("after 4 attempts over 7s"),
        "{err}"
    );
    assert_eq!(vars.value(AK), Some(OLD), "GitLab untouched");
    assert_eq!(vars.value(KV), None, "GitLab untouched");
    assert_eq!(keys.keys.len(), 2);
    keys.reject_new_times = 0;
    run_to_end(&mut keys, &mut vars, &clock, &s);
    assert_converged(&keys, &vars, "after rollback");
}

#[test]
fn an_extra_active_key_is_refused_with_what_to_do() {
    let (keys, mut vars) = healthy();
    let mut keys = keys.with_key("AKIAEXTRA00000000002", KeyStatus::Active, None);
    let clock = TestClock::new();
    let s = settings(Duration::ZERO);
    let err = Rotator::new(&mut keys, &mut vars, &clock, &s)
        .run(|_| {})
        .unwrap_err();
    let m = err.to_string();
    assert!(matches!(err, RotateError::Refused(_)));
    assert!(
        m.contains("active access key `AKIAEXTRA00000000002` that GitLab does not hold"),
        "{m}"
    );
    assert!(m.contains("aws iam update-access-key --user-name rolehop-prod --access-key-id AKIAEXTRA00000000002 --status Inactive"), "{m}");
    assert_eq!(keys.keys.len(), 2, "nothing changed");
    assert_eq!(keys.record, None);
    // Even with the flag: only inactive extras are deleted.
    let s = Settings {
        delete_inactive_extra: true,
        ..s
    };
    assert!(
        Rotator::new(&mut keys, &mut vars, &clock, &s)
            .run(|_| {})
            .is_err()
    );
}

#[test]
fn an_inactive_extra_key_is_refused_unless_the_flag_deletes_it() {
    let (keys, mut vars) = healthy();
    let mut keys = keys.with_key("AKIAEXTRA00000000002", KeyStatus::Inactive, None);
    let clock = TestClock::new();
    let s = settings(Duration::ZERO);
    let err = Rotator::new(&mut keys, &mut vars, &clock, &s)
        .run(|_| {})
        .unwrap_err();
    assert!(err.to_string().contains("--delete-inactive-extra"), "{err}");
    assert_eq!(keys.keys.len(), 2);
    let s = Settings {
        delete_inactive_extra: true,
        ..s
    };
    let mut lines = Vec::new();
    Rotator::new(&mut keys, &mut vars, &clock, &s)
        .run(|l| lines.push(l.to_owned()))
        .unwrap();
    assert!(
        lines[0].contains("deleted access key `AKIAEXTRA00000000002`"),
        "{lines:?}"
    );
    assert_converged(&keys, &vars, "extra deleted");
}

#[test]
fn first_rotation_into_an_empty_project_creates_both_variables() {
    let mut keys = SimKeys::new("arn:aws:iam::111111111111:user/rolehop-prod");
    let mut vars = SimVariables::default();
    let clock = TestClock::new();
    let s = settings(DEFAULT_DELETE_AFTER);
    let o = run_to_end(&mut keys, &mut vars, &clock, &s);
    assert!(matches!(o, Outcome::Rotated { old: None, .. }), "{o:?}");
    assert_converged(&keys, &vars, "bootstrap");
}

#[test]
fn a_gitlab_key_missing_from_iam_is_replaced() {
    let (_, mut vars) = healthy();
    let mut keys = SimKeys::new("arn:aws:iam::111111111111:user/rolehop-prod");
    let clock = TestClock::new();
    run_to_end(
        &mut keys,
        &mut vars,
        &clock,
        &settings(DEFAULT_DELETE_AFTER),
    );
    assert_converged(&keys, &vars, "replaced");
}

#[test]
fn the_record_fits_iam_tag_rules_and_round_trips() {
    let r = Record {
        phase: Phase::Storing,
        old: Some("AKIAIOSFODNN7EXAMPLE".into()),
        new: Some("AKIAI44QH8DHBEXAMPLE".into()),
        since: datetime!(2026-01-02 03:04:05.123 UTC),
    };
    let v = r.encode();
    assert_eq!(
        v,
        "v1 phase=storing old=AKIAIOSFODNN7EXAMPLE new=AKIAI44QH8DHBEXAMPLE since=2026-01-02T03:04:05Z"
    );
    assert!(v.len() <= RECORD_MAX_LEN);
    assert!(
        v.chars()
            .all(|c| c.is_alphanumeric() || " _.:/=+-@".contains(c))
    );
    let back = Record::parse(&v).unwrap();
    assert_eq!(back.phase, Phase::Storing);
    assert_eq!(back.new, r.new);
    assert_eq!(back.since, datetime!(2026-01-02 03:04:05 UTC));
    let none = Record {
        phase: Phase::Creating,
        old: None,
        new: None,
        since: r.since,
    };
    assert_eq!(Record::parse(&none.encode()).unwrap().old, None);
    assert!(Record::parse("{\"phase\":1}").is_err());
    assert!(
        Record::parse("v1 phase=storing since=2026-01-02T03:04:05Z")
            .unwrap_err()
            .contains("needs `new`")
    );
}

#[test]
fn a_garbled_record_stops_with_how_to_clear_it() {
    let (mut keys, mut vars) = healthy();
    keys.record = Some("whatever".into());
    let clock = TestClock::new();
    let s = settings(Duration::ZERO);
    let err = Rotator::new(&mut keys, &mut vars, &clock, &s)
        .run(|_| {})
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("aws iam untag-user --user-name rolehop-prod --tag-keys rolehop:rotation"),
        "{err}"
    );
}

#[test]
fn descriptions_name_the_key() {
    let d = key_description("rolehop-prod", "AKIAI44QH8DHBEXAMPLE");
    assert_eq!(described_key(&d), Some("AKIAI44QH8DHBEXAMPLE"));
    assert_eq!(described_key("set by hand"), None);
}

#[test]
fn a_dry_run_on_a_snapshot_changes_nothing_real() {
    let (mut keys, mut vars) = healthy();
    let s = settings(DEFAULT_DELETE_AFTER);
    let (mut sk, mut sv) = sim::snapshot(&mut keys, &mut vars, &s).unwrap();
    let clock = TestClock::new();
    let mut lines = Vec::new();
    Rotator::new(&mut sk, &mut sv, &clock, &s)
        .run(|l| lines.push(l.to_owned()))
        .unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("created access key `DRYRUNNEWKEY0000000000001`")),
        "{lines:?}"
    );
    assert_eq!(keys.keys.len(), 1);
    assert_eq!(keys.record, None);
    assert_eq!(vars.value(AK), Some(OLD));
    assert_eq!(vars.value(KV), None);
}

#[test]
fn retiring_never_deactivates_a_key_gitlab_holds_again() {
    let (mut keys, mut vars) = healthy();
    let clock = TestClock::new();
    let s = settings(DEFAULT_DELETE_AFTER);
    // Stop right after the record says `retiring`, before the old key is deactivated.
    {
        let mut r = Rotator::new(&mut keys, &mut vars, &clock, &s);
        for _ in 0..7 {
            r.step().unwrap();
        }
    }
    assert!(keys.record.as_deref().unwrap().contains("phase=retiring"));
    assert_eq!(keys.status(OLD), Some(KeyStatus::Active));
    // Someone puts the old key back by hand.
    vars.set(KV, &format!("{OLD}:{OLD_SECRET}"));
    let err = Rotator::new(&mut keys, &mut vars, &clock, &s)
        .run(|_| {})
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("will not deactivate a key jobs use"),
        "{err}"
    );
    assert_eq!(keys.status(OLD), Some(KeyStatus::Active));
}

#[test]
fn hidden_variables_are_tracked_by_their_description() {
    for k in 0..12 {
        let (mut keys, mut vars) = healthy();
        vars.hidden = vec![KV.into()];
        let clock = TestClock::new();
        let s = settings(Duration::ZERO);
        {
            let mut r = Rotator::new(&mut keys, &mut vars, &clock, &s);
            for _ in 0..k {
                if matches!(r.step().unwrap(), Step::Done(_)) {
                    break;
                }
            }
        }
        run_to_end(&mut keys, &mut vars, &clock, &s);
        assert_converged(&keys, &vars, &format!("hidden, crash after {k}"));
    }
}

/// GitLab with a write that times out for the client but lands later: the first write of the
/// key variable is held back and applied after `land_after` more calls, possibly in a later
/// run (GitLab has no conditional writes, so nothing stops it overwriting newer values).
struct LateWrite {
    pending: RefCell<Option<VariableWrite>>,
    calls: Cell<usize>,
    land_after: usize,
    landed: Cell<bool>,
}

struct LateVars<'a>(&'a mut SimVariables, Rc<LateWrite>);

impl LateVars<'_> {
    fn tick(&mut self) {
        let late = &self.1;
        if late.pending.borrow().is_some() {
            late.calls.set(late.calls.get() + 1);
            if late.calls.get() > late.land_after
                && let Some(w) = late.pending.borrow_mut().take()
            {
                self.0.put(&w).unwrap();
                late.landed.set(true);
            }
        }
    }
}

impl VariableStore for LateVars<'_> {
    fn get(&mut self, key: &str) -> Result<Option<StoredVariable>, StoreError> {
        self.tick();
        self.0.get(key)
    }
    fn put(&mut self, var: &VariableWrite) -> Result<(), StoreError> {
        self.tick();
        let first = !self.1.landed.get() && self.1.calls.get() == 0;
        if var.key == KV && first && self.1.pending.borrow().is_none() {
            *self.1.pending.borrow_mut() = Some(var.clone());
            return Err(StoreError::new(
                StoreErrorKind::Unavailable,
                "timed out after 30 s",
            ));
        }
        self.0.put(var)
    }
    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        self.tick();
        self.0.delete(key)
    }
}

#[test]
fn a_key_write_that_lands_late_is_repaired_or_named_never_reported_as_success() {
    let (mut landed_in_rerun, mut repaired, mut restarted) = (0, 0, 0);
    for land_after in 0.. {
        let ctx = format!("late write lands after {land_after} GitLab calls");
        let (mut keys, mut vars) = healthy();
        let clock = TestClock::new();
        let grace = settings(Duration::from_secs(24 * 3600));
        let late = Rc::new(LateWrite {
            pending: RefCell::new(None),
            calls: Cell::new(0),
            land_after,
            landed: Cell::new(false),
        });
        let mut lines = Vec::new();
        let mut run = |keys: &mut SimKeys, vars: &mut SimVariables, s: &Settings| {
            let mut lv = LateVars(vars, late.clone());
            Rotator::new(keys, &mut lv, &clock, s).run(|l| lines.push(l.to_owned()))
        };
        // The first run gives up on its write; an operator reruns at once.
        let first = run(&mut keys, &mut vars, &grace);
        assert!(
            matches!(first, Err(RotateError::Store(_))),
            "{ctx}: {first:?}"
        );
        assert_invariant(&keys, &vars, &ctx);
        let rerun = run(&mut keys, &mut vars, &grace);
        if late.landed.get() {
            // Landed while the rerun worked: it must not end with a pair that fails.
            landed_in_rerun += 1;
            rerun.unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert_invariant(&keys, &vars, &ctx);
            repaired += lines.iter().any(|l| l.starts_with("rewrote")) as usize;
            restarted += lines.iter().any(|l| l.contains("starting over")) as usize;
            continue;
        }
        // Landed after the rerun ended (a key nobody has any more): the next run names it,
        // and the fix it names works.
        rerun.unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let next = run(&mut keys, &mut vars, &grace).expect_err(&ctx);
        assert!(late.landed.get(), "{ctx}");
        let msg = next.to_string();
        assert!(
            msg.contains("jobs cannot authenticate") && msg.contains("--delete-inactive-extra"),
            "{ctx}: {msg}"
        );
        let fix = Settings {
            delete_inactive_extra: true,
            ..settings(Duration::ZERO)
        };
        run(&mut keys, &mut vars, &fix).unwrap();
        assert_converged(&keys, &vars, &ctx);
        break;
    }
    assert!(
        landed_in_rerun >= 5,
        "only {landed_in_rerun} landing points"
    );
    // Both ways out are exercised: rewritten at the end of the run, or rotated afresh.
    assert!(
        repaired > 0 && restarted > 0,
        "{repaired} repaired, {restarted} restarted"
    );
}

#[test]
fn a_malformed_pair_is_named_without_its_value_and_a_wrong_secret_is_rotated_away() {
    let clock = TestClock::new();
    let s = settings(Duration::ZERO);
    let (mut keys, mut vars) = healthy_combined();
    let bad = "not-a-pair-at-all";
    vars.set(KV, bad);
    let e = Rotator::new(&mut keys, &mut vars, &clock, &s)
        .run(|_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("is not `<access key id>:<secret>`"), "{e}");
    assert!(e.contains("jobs cannot authenticate"), "{e}");
    assert!(!e.contains(bad), "the value leaks into `{e}`");

    // A pair whose secret is wrong (edited by hand): the rotation replaces it with a working one.
    let (mut keys, mut vars) = healthy_combined();
    vars.set(KV, &format!("{OLD}:wrongSecret00000"));
    run_to_end(&mut keys, &mut vars, &clock, &s);
    assert_converged(&keys, &vars, "wrong secret");
}

#[test]
fn a_retired_key_written_back_over_the_new_one_is_rotated_away_not_reported_as_working() {
    // After a rotation (grace period running), GitLab gets the old, inactive key back: a late
    // write, or a hand edit. AWS refuses it whatever its secret; so must rotate.
    let (mut keys, mut vars) = healthy_combined();
    keys.ignore_secrets = true; // like moto: the key's status is what must decide
    let clock = TestClock::new();
    let s = settings(DEFAULT_DELETE_AFTER);
    run_to_end(&mut keys, &mut vars, &clock, &s);
    vars.set(KV, &format!("{OLD}:{OLD_SECRET}"));
    let mut lines = Vec::new();
    let o = Rotator::new(&mut keys, &mut vars, &clock, &s)
        .run(|l| lines.push(l.to_owned()))
        .unwrap();
    assert!(matches!(o, Outcome::Rotated { .. }), "{o:?}");
    assert!(
        lines.iter().any(|l| l.contains("starting over")),
        "{lines:?}"
    );
    assert_invariant(&keys, &vars, "after the retired key came back");
}
