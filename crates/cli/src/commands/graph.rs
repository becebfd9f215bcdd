//! `rolehop graph`: the access graph of a topology or of exports, as mermaid or dot, from
//! GitLab subjects through broker identities and service roles to deployment roles and
//! accounts, production paths in red.

use crate::commands::audit::{Labels, Source, emit, load_estate};
use crate::exit::CliResult;
use crate::exit::Exit;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub source: Source,
    #[command(flatten)]
    pub labels: Labels,
    /// The graph language: mermaid (GitLab and GitHub draw it in Markdown) or dot (Graphviz).
    #[arg(long, value_enum, default_value_t = Format::Mermaid)]
    pub format: Format,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Mermaid,
    Dot,
}

pub fn run(args: Args) -> CliResult {
    let mut estate = load_estate(&args.source)?;
    args.labels.apply(&mut estate)?;
    // The graph needs no clock: key ages only affect findings.
    let report = rolehop_audit::audit(&estate, 0);
    let text = match args.format {
        Format::Mermaid => rolehop_audit::output::mermaid(&report.graph),
        Format::Dot => rolehop_audit::output::dot(&report.graph),
    };
    emit(&text)?;
    Ok(Exit::Ok)
}
