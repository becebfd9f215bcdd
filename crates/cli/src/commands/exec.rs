//! `rolehop exec -- CMD ARGS...`: replace rolehop with CMD, credentials in its environment.
//!
//! rolehop `exec(2)`s rather than spawning a child: CMD gets rolehop's PID, so the runner's
//! signals reach it directly and its exit status is the job's, with nothing in between.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;

use time::OffsetDateTime;

use rolehop_core::credentials;
use rolehop_core::gitlab_ctx::ProcessEnv;

use super::selection::{self, Selection};
use crate::exit::{CliError, CliResult};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub selection: Selection,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// Variables removed from CMD's environment: a profile would shadow the credentials, and the
/// ID token and the broker keys have no business in a deploy script.
const SCRUBBED: &[&str] = &[
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
];

pub fn run(args: Args) -> CliResult {
    let resolved = selection::resolve(&args.selection, &ProcessEnv, OffsetDateTime::now_utc())?;
    let outcome = selection::execute(&resolved)?;
    let (program, rest) = args.command.split_first().ok_or_else(|| {
        CliError::msg(crate::exit::Exit::Usage, "exec needs a command after `--`")
    })?;
    let mut cmd = std::process::Command::new(program);
    cmd.args(rest);
    for k in SCRUBBED {
        cmd.env_remove(k);
    }
    cmd.env_remove(&args.selection.id_token_var);
    for (k, v) in credentials::environment(&outcome.credentials) {
        cmd.env(k, v);
    }
    // Only returns on failure.
    let err = cmd.exec();
    let code = match err.kind() {
        std::io::ErrorKind::NotFound => 127,
        std::io::ErrorKind::PermissionDenied => 126,
        _ => 126,
    };
    eprintln!(
        "rolehop: error: cannot run `{}`: {err}",
        program.to_string_lossy()
    );
    std::process::exit(code)
}
