//! `rolehop validate`: every check `render` and `rollout` make before they write or deploy
//! anything (the topology's rules, its policy files, what AWS would refuse to deploy), with no
//! output file and no AWS call: for an editor, a pre-commit hook or a merge request job.

use std::io::Write;

use rolehop_core::gitlab_ctx::ProcessEnv;

use crate::config::{ConfigArg, load_topology};
use crate::exit::{CliResult, Exit};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
}

pub fn run(args: Args) -> CliResult {
    let path = args.config.path(&ProcessEnv);
    let topo = load_topology(&path)?;
    crate::config::deployable(&topo)?;
    let rendered = rolehop_render::render(&topo);
    let accounts: usize = topo.environments.iter().map(|e| e.accounts.len()).sum();
    let _ = writeln!(
        std::io::stdout().lock(),
        "{}: valid: {} environment(s), {accounts} target account(s); render would write {} file(s)",
        path.display(),
        topo.environments.len(),
        rendered.files.len()
    );
    Ok(Exit::Ok)
}
