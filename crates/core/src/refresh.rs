//! When served deployment credentials are renewed, and when they no longer can be.
//!
//! `rolehop exec` keeps the chain's inputs in memory and runs it again before each session
//! expires. This module decides, from times alone, how long the next session may live (never
//! past the job's end) and when to renew it (a window before expiry, but never after the ID
//! token that starts the chain has expired). The caller reads the clock and runs the chain.

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::duration::format_secs;
use crate::gitlab_ctx::Env;
use crate::topology::SESSION_MIN_SECS;

/// How long before a session expires rolehop renews it. Longer than botocore's advisory
/// refresh (15 min before expiry), so a client that asks for credentials because its own copy
/// is about to expire already gets the next session.
pub const DEFAULT_WINDOW_SECS: u64 = 20 * 60;

/// The last chain is run this long before the ID token expires: STS and rolehop's clocks may
/// differ by a little, and a token that expires in flight fails the whole chain.
pub const TOKEN_MARGIN_SECS: i64 = 30;

/// A session ending this close to the job's end covers it: a session cut to the job's
/// remaining time ends a second or two early (the chain takes time), and renewing it for
/// those seconds would only churn STS.
pub const COVER_SLACK_SECS: i64 = 60;

/// When GitLab ends the job: `CI_JOB_STARTED_AT` + `CI_JOB_TIMEOUT` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobDeadline {
    /// The moment GitLab stops the job; no session is worth more than that.
    pub at: OffsetDateTime,
    /// False when GitLab did not say when the job started and rolehop's own start stood in:
    /// the job then ends somewhat earlier than `at`.
    pub start_known: bool,
}

/// A `CI_JOB_*` variable rolehop cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{var}` is `{value}`: {why}")]
pub struct DeadlineError {
    /// The variable's name.
    pub var: &'static str,
    /// What it held (job timing, not a secret).
    pub value: String,
    /// Why it cannot be used.
    pub why: &'static str,
}

impl crate::exit::HasExit for DeadlineError {
    fn exit(&self) -> crate::exit::Exit {
        crate::exit::Exit::Input
    }
}

/// The job's deadline from GitLab's variables; `None` outside a job or when GitLab does not
/// say the timeout. `now` stands in for a missing start time.
pub fn job_deadline(
    env: &dyn Env,
    now: OffsetDateTime,
) -> Result<Option<JobDeadline>, DeadlineError> {
    let Some(raw) = env.var("CI_JOB_TIMEOUT") else {
        return Ok(None);
    };
    let secs: i64 = raw
        .trim()
        .parse()
        .ok()
        .filter(|s| *s > 0)
        .ok_or_else(|| DeadlineError {
            var: "CI_JOB_TIMEOUT",
            value: raw.clone(),
            why: "expected the job's timeout in whole seconds, as GitLab sets it",
        })?;
    let started = env
        .var("CI_JOB_STARTED_AT")
        .map(|s| {
            OffsetDateTime::parse(s.trim(), &Rfc3339).map_err(|_| DeadlineError {
                var: "CI_JOB_STARTED_AT",
                value: s.clone(),
                why: "expected an RFC 3339 time such as `2026-12-05T10:00:00Z`, as GitLab sets it",
            })
        })
        .transpose()?;
    Ok(Some(JobDeadline {
        at: started.unwrap_or(now) + Duration::seconds(secs),
        start_known: started.is_some(),
    }))
}

/// What bounds the served sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// When GitLab ends the job, if it said: sessions never outlive it.
    pub job_deadline: Option<JobDeadline>,
    /// The ID token's `exp` (OIDC): no chain can start after it.
    pub token_expiry: Option<OffsetDateTime>,
    /// Renew this long before a session expires.
    pub window_secs: u64,
}

/// The length of the next deployment session: the planned one, cut to the job's remaining
/// time, but never under STS's 15 minutes (a note says so when that outlives the job).
pub fn session_secs(planned: u64, now: OffsetDateTime, limits: &Limits) -> (u64, Option<String>) {
    let Some(deadline) = limits.job_deadline else {
        return (planned, None);
    };
    let left = (deadline.at - now).whole_seconds().max(0);
    let left = u64::try_from(left).unwrap_or(0);
    if left >= planned {
        return (planned, None);
    }
    if left >= SESSION_MIN_SECS {
        return (
            left,
            Some(format!(
                "session cut from {} to {}: the job ends then (CI_JOB_TIMEOUT)",
                format_secs(planned),
                format_secs(left)
            )),
        );
    }
    (
        SESSION_MIN_SECS,
        Some(format!(
            "the job ends in {}, but STS issues no session shorter than 15m: this session outlives the job by up to {}",
            format_secs(left),
            format_secs(SESSION_MIN_SECS - left)
        )),
    )
}

/// What to do about a session that expires at `expiration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Run the chain again at this time.
    RenewAt(OffsetDateTime),
    /// No renewal will be needed: the session outlives the job.
    Covered,
    /// No renewal is possible: the session ends at `expiration` and nothing follows it.
    Last(StopReason),
}

/// Why the current session is the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The ID token expires (at this time) before the session would be renewed.
    TokenExpires(OffsetDateTime),
}

/// When to renew a session that expires at `expiration`, seen at `now`.
pub fn next(expiration: OffsetDateTime, now: OffsetDateTime, limits: &Limits) -> Next {
    if let Some(d) = limits.job_deadline
        && expiration + Duration::seconds(COVER_SLACK_SECS) >= d.at
    {
        return Next::Covered;
    }
    let window = Duration::seconds(i64::try_from(limits.window_secs).unwrap_or(i64::MAX / 2));
    let mut at = expiration - window;
    if let Some(token) = limits.token_expiry {
        let last_chance = token - Duration::seconds(TOKEN_MARGIN_SECS);
        if at > last_chance {
            // Renew early, while the token still works: that last session then covers as
            // much of the job as one session can.
            if last_chance <= now {
                return Next::Last(StopReason::TokenExpires(token));
            }
            at = last_chance;
        }
    }
    Next::RenewAt(at.max(now))
}

/// What the job is told when the current session is its last.
pub fn last_session_message(reason: StopReason, expiration: OffsetDateTime) -> String {
    match reason {
        StopReason::TokenExpires(token) => format!(
            "the deployment credentials cannot be renewed after {}: the GitLab ID token expires then and the chain cannot start without it. \
             The current session stays valid until {}; AWS calls of the deploy command fail after that. \
             GitLab ID tokens live as long as the job's timeout: give the job a longer timeout",
            rfc3339(token),
            rfc3339(expiration)
        ),
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    crate::credentials::rfc3339(t)
}

/// The refresh window a user asked for, checked against the session it applies to.
pub fn check_window(window_secs: u64, session_secs: u64) -> Result<(), String> {
    if window_secs >= session_secs {
        return Err(format!(
            "a refresh window of {} is not shorter than the {} session: rolehop would renew it without pause",
            format_secs(window_secs),
            format_secs(session_secs)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::gitlab_ctx::fixed_env as env;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-12-05 10:00 UTC);

    fn limits(deadline: Option<OffsetDateTime>, token: Option<OffsetDateTime>) -> Limits {
        Limits {
            job_deadline: deadline.map(|at| JobDeadline {
                at,
                start_known: true,
            }),
            token_expiry: token,
            window_secs: DEFAULT_WINDOW_SECS,
        }
    }

    #[test]
    fn the_deadline_is_the_start_plus_the_timeout() {
        let e = env(&[
            ("CI_JOB_TIMEOUT", "7200"),
            ("CI_JOB_STARTED_AT", "2026-12-05T09:30:00Z"),
        ]);
        let d = job_deadline(&e, T0).unwrap().unwrap();
        assert_eq!(d.at, datetime!(2026-12-05 11:30 UTC));
        assert!(d.start_known);
        let d = job_deadline(&env(&[("CI_JOB_TIMEOUT", "3600")]), T0)
            .unwrap()
            .unwrap();
        assert_eq!((d.at, d.start_known), (T0 + Duration::hours(1), false));
        assert_eq!(job_deadline(&env(&[]), T0).unwrap(), None);
    }

    #[test]
    fn unreadable_job_variables_are_named() {
        let err = job_deadline(&env(&[("CI_JOB_TIMEOUT", "1h")]), T0).unwrap_err();
        assert!(
            err.to_string().starts_with("`CI_JOB_TIMEOUT` is `1h`"),
            "{err}"
        );
        let err = job_deadline(
            &env(&[("CI_JOB_TIMEOUT", "60"), ("CI_JOB_STARTED_AT", "yesterday")]),
            T0,
        )
        .unwrap_err();
        assert_eq!(err.var, "CI_JOB_STARTED_AT");
    }

    #[test]
    fn sessions_are_cut_to_the_jobs_remaining_time_but_not_under_fifteen_minutes() {
        let l = limits(Some(T0 + Duration::minutes(40)), None);
        let (secs, note) = session_secs(3600, T0, &l);
        assert_eq!(secs, 2400);
        assert!(note.unwrap().contains("job ends"));
        let (secs, note) = session_secs(3600, T0 + Duration::minutes(35), &l);
        assert_eq!(secs, 900);
        assert!(note.unwrap().contains("outlives the job by up to 10m"));
        assert_eq!(session_secs(3600, T0, &limits(None, None)), (3600, None));
    }

    #[test]
    fn a_session_is_renewed_a_window_before_it_expires() {
        let l = limits(Some(T0 + Duration::hours(3)), None);
        let exp = T0 + Duration::hours(1);
        assert_eq!(next(exp, T0, &l), Next::RenewAt(T0 + Duration::minutes(40)));
        // Late (a suspended machine): renew at once, never in the past.
        assert_eq!(
            next(exp, T0 + Duration::minutes(50), &l),
            Next::RenewAt(T0 + Duration::minutes(50))
        );
    }

    #[test]
    fn a_session_that_outlives_the_job_is_never_renewed() {
        let l = limits(Some(T0 + Duration::minutes(50)), None);
        assert_eq!(next(T0 + Duration::hours(1), T0, &l), Next::Covered);
        // Cut to the job's end, it ends a moment early: still covered, never renewed.
        assert_eq!(
            next(T0 + Duration::minutes(49) + Duration::seconds(58), T0, &l),
            Next::Covered
        );
    }

    #[test]
    fn with_an_id_token_the_last_renewal_comes_before_the_token_expires() {
        let token = T0 + Duration::minutes(70);
        let l = limits(None, Some(token));
        // The first session would be renewed at 0:40, while the token is valid.
        assert_eq!(
            next(T0 + Duration::hours(1), T0, &l),
            Next::RenewAt(T0 + Duration::minutes(40))
        );
        // The second (issued at 0:40) would be renewed at 1:20, after the token: renew at
        // 1:09:30 instead, while it still works.
        let second = T0 + Duration::minutes(100);
        assert_eq!(
            next(second, T0 + Duration::minutes(40), &l),
            Next::RenewAt(token - Duration::seconds(TOKEN_MARGIN_SECS))
        );
        // The session issued then is the last one, and the job is told so.
        let third = token + Duration::minutes(60);
        let now = token - Duration::seconds(TOKEN_MARGIN_SECS);
        assert_eq!(
            next(third, now, &l),
            Next::Last(StopReason::TokenExpires(token))
        );
        let msg = last_session_message(StopReason::TokenExpires(token), third);
        assert!(
            msg.contains("2026-12-05T11:10:00Z") && msg.contains("2026-12-05T12:10:00Z"),
            "{msg}"
        );
    }

    #[test]
    fn a_window_as_long_as_the_session_is_refused() {
        assert!(check_window(1200, 3600).is_ok());
        let e = check_window(900, 900).unwrap_err();
        assert!(e.contains("15m"), "{e}");
    }
}
