//! `rolehop exec -- CMD ARGS...`: replace rolehop with CMD, credentials in its environment.
//!
//! rolehop `exec(2)`s rather than spawning a child: CMD gets rolehop's PID, so the runner's
//! signals reach it directly and its exit status is the job's, with nothing in between.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;

use time::OffsetDateTime;

use rolehop_core::credentials;
use rolehop_core::gitlab_ctx::{Env, ProcessEnv};

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
    let env = ProcessEnv;
    let resolved = selection::resolve(&args.selection, &env, OffsetDateTime::now_utc())?;
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
    // SDKs and the aws CLI need a region: fill in whichever of the two variables the job left
    // unset (the aws CLI v1 reads only AWS_DEFAULT_REGION, newer SDKs AWS_REGION first), with
    // the job's own region if it has one, else the chain's.
    let (region, default_region) = (env.var("AWS_REGION"), env.var("AWS_DEFAULT_REGION"));
    let chosen = region
        .clone()
        .or_else(|| default_region.clone())
        .unwrap_or_else(|| resolved.settings.region.clone());
    if region.is_none() {
        cmd.env("AWS_REGION", &chosen);
    }
    if default_region.is_none() {
        cmd.env("AWS_DEFAULT_REGION", &chosen);
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
