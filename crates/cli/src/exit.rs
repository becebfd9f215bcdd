//! Documented exit codes, and the error type every command returns.
//!
//! The numbers are a contract with CI scripts (see the README's "Exit codes"); never renumber.

use std::fmt;

/// What a `rolehop` process tells its caller through its exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Everything asked for was done.
    Ok = 0,
    /// A check failed: `simulate --check` saw a wrong decision, `doctor` found a problem.
    CheckFailed = 1,
    /// The command line itself is wrong (clap uses 2 too).
    Usage = 2,
    /// An input file (topology, policy, export, token) is malformed or breaks a rule.
    Input = 3,
    /// rolehop refused on purpose: a protected environment from an unprotected ref, or a job
    /// whose project, ref or GitLab environment the topology does not name.
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

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e as u8)
    }
}

/// An error on its way out of `main`: the message to print and the exit code it maps to.
pub struct CliError {
    pub exit: Exit,
    pub error: anyhow::Error,
}

impl CliError {
    pub fn new(exit: Exit, error: impl Into<anyhow::Error>) -> Self {
        Self {
            exit,
            error: error.into(),
        }
    }
    pub fn msg(exit: Exit, msg: impl fmt::Display) -> Self {
        Self {
            exit,
            error: anyhow::anyhow!("{msg}"),
        }
    }
}

impl fmt::Debug for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({:?})", self.error, self.exit)
    }
}

pub type CliResult<T = Exit> = Result<T, CliError>;
