//! rolehop's documented exit codes, and the trait by which an error says which one it means.
//!
//! The numbers are a contract with CI scripts (see the README's "Exit codes"); never renumber.
//! They live in the pure core so that every library crate's error type can name its own code
//! ([`HasExit`]) and the binary maps errors to codes in one place instead of at each call site.

/// What a `rolehop` process tells its caller through its exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Everything asked for was done.
    Ok = 0,
    /// A check failed: `simulate --check` saw a wrong decision or a case without one, `doctor`
    /// found a problem.
    CheckFailed = 1,
    /// The command line itself is wrong (clap uses 2 too).
    Usage = 2,
    /// An input file (topology, policy, export, token) is malformed or breaks a rule.
    Input = 3,
    /// rolehop refused on purpose: a protected environment from an unprotected ref, a job whose
    /// project, ref or GitLab environment the topology does not name, or a `rotate` that would
    /// run as a broker user or send a secret off the topology's GitLab or over plain http.
    Refused = 4,
    /// AWS or GitLab said no: access denied, trust policy mismatch, missing role, bad token.
    Denied = 5,
    /// A service stayed unavailable (network, throttling, 5xx) after bounded retries.
    Unavailable = 6,
    /// No base identity: no AWS credentials, ID token or GitLab token where one is needed.
    NoCredentials = 7,
    /// A local I/O problem: a file could not be read or written.
    Io = 8,
    /// `audit --fail-on`: findings at or above the given severity.
    Findings = 10,
    /// `rollout`: at least one account failed.
    PartialFailure = 11,
    /// A bug in rolehop; please report it.
    Internal = 70,
}

impl Exit {
    /// The process exit status.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// An error that knows the exit code it ends a `rolehop` process with.
pub trait HasExit {
    /// The documented exit code for this error.
    fn exit(&self) -> Exit;
}

// rolehop-policy sits below core and cannot name exit codes itself, so its errors' codes are
// named here: a policy or case file that breaks the grammar is malformed input.
impl HasExit for rolehop_policy::PolicyError {
    fn exit(&self) -> Exit {
        Exit::Input
    }
}

impl HasExit for rolehop_policy::cases::CaseError {
    fn exit(&self) -> Exit {
        Exit::Input
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::id_token::TokenError;
    use crate::rotation::{RotateError, StoreError, StoreErrorKind};

    /// Each error names its code; the CLI no longer picks one per call site.
    #[test]
    fn errors_name_their_own_exit_codes() {
        let policy = rolehop_policy::Policy::parse("[1]").unwrap_err();
        assert_eq!(policy.exit(), Exit::Input);
        assert_eq!(TokenError::Length(3).exit(), Exit::Input);
        let t = time::OffsetDateTime::UNIX_EPOCH;
        assert_eq!(TokenError::Expired { at: t, now: t }.exit(), Exit::Denied);
        let quota = StoreError::new(StoreErrorKind::Quota, "two keys");
        assert_eq!(quota.exit(), Exit::Refused);
        assert_eq!(RotateError::Store(quota).exit(), Exit::Refused);
        let gone = StoreError::new(StoreErrorKind::Unavailable, "timeout");
        assert_eq!(RotateError::Store(gone).exit(), Exit::Unavailable);
        assert_eq!(
            "x".parse::<crate::ids::Region>().unwrap_err().exit(),
            Exit::Usage
        );
    }
}
