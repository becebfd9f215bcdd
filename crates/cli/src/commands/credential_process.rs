//! `rolehop credential-process` (not implemented yet).

use crate::exit::{CliError, CliResult, Exit};

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> CliResult {
    Err(CliError::msg(
        Exit::Internal,
        "`credential-process` is not implemented yet",
    ))
}
