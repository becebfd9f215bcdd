//! Documented exit codes, and the error type every command returns.
//!
//! The numbers are a contract with CI scripts (see the README's "Exit codes"); never renumber.
//! They are defined in `rolehop_core::exit` so that library errors can name their own code
//! ([`HasExit`]); [`CliError::from_error`] is the one place such an error becomes an exit.

use std::fmt;

pub use rolehop_core::exit::{Exit, HasExit};

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
    /// A library error that names its own exit code.
    pub fn from_error<E>(error: E) -> Self
    where
        E: HasExit + std::error::Error + Send + Sync + 'static,
    {
        Self::new(error.exit(), error)
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
