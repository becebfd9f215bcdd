//! `rolehop credential-process`: the chain as an AWS `credential_process`, so SDKs refresh
//! deployment credentials by re-running it when they near expiry.

use time::OffsetDateTime;

use rolehop_core::credentials::{self, Format};
use rolehop_core::gitlab_ctx::ProcessEnv;

use super::assume::print_stdout;
use super::selection::{self, Selection};
use crate::exit::{CliResult, Exit};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub selection: Selection,
}

pub fn run(args: Args) -> CliResult {
    let resolved = selection::resolve(&args.selection, &ProcessEnv, OffsetDateTime::now_utc())?;
    let outcome = selection::execute(&resolved)?;
    print_stdout(&credentials::render(Format::CredentialProcess, &outcome))?;
    Ok(Exit::Ok)
}
