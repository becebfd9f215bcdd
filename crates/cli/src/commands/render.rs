//! `rolehop render`: renders the broker and target CloudFormation templates and the GitLab
//! pipeline into a directory. Rendering is pure (`rolehop_render`); this module only loads
//! the topology and writes the files, each atomically.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::load_topology;
use crate::exit::{CliError, CliResult, Exit};
use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    /// The topology file.
    #[arg(long, default_value = "rolehop.toml", value_name = "FILE")]
    pub config: PathBuf,
    /// The directory to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

pub fn run(args: Args) -> CliResult {
    let topo = load_topology(&args.config)?;
    crate::config::deployable(&topo)?;
    let rendered = rolehop_render::render(&topo);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create `{}`", args.out.display()))
        .map_err(|e| CliError::new(Exit::Io, e))?;
    let mut stdout = std::io::stdout().lock();
    for (name, content) in &rendered.files {
        let path = args.out.join(name);
        write_atomically(&path, content.as_bytes())
            .with_context(|| format!("cannot write `{}`", path.display()))
            .map_err(|e| CliError::new(Exit::Io, e))?;
        let _ = writeln!(stdout, "wrote {}", path.display());
    }
    Ok(Exit::Ok)
}

/// Writes through a temporary file in the same directory and renames it into place, so a
/// reader never sees half a template.
fn write_atomically(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
