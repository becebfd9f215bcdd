//! `rolehop rotate` (not implemented yet).

use crate::exit::{CliError, CliResult, Exit};

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> CliResult {
    Err(CliError::msg(
        Exit::Internal,
        "`rotate` is not implemented yet",
    ))
}
