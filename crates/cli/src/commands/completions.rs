//! `rolehop completions <shell>`: the shell completion script, generated from the same clap
//! definitions that parse the command line, so it never lists a flag rolehop does not take.

use clap::CommandFactory;

use crate::exit::{CliResult, Exit};

#[derive(clap::Args)]
pub struct Args {
    /// The shell to complete for; write the script where it loads completions, e.g.
    /// `rolehop completions bash > ~/.local/share/bash-completion/completions/rolehop`.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub fn run<C: CommandFactory>(args: Args) -> CliResult {
    let mut cmd = C::command();
    clap_complete::generate(args.shell, &mut cmd, "rolehop", &mut std::io::stdout());
    Ok(Exit::Ok)
}
