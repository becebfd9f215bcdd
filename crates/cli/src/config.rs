//! Loading `rolehop.toml` from disk: the file and the inline policy files it names (relative
//! to the topology's own directory).

use std::path::Path;

use rolehop_core::Topology;

use crate::exit::{CliError, CliResult, Exit};

/// Reads a user's text file. A file that is not UTF-8 (a binary, a UTF-16 export from
/// PowerShell) is malformed input (exit 3), not an I/O failure.
pub fn read_text(path: &Path, what: &str) -> CliResult<String> {
    std::fs::read_to_string(path).map_err(|e| {
        let name = if what.is_empty() {
            format!("`{}`", path.display())
        } else {
            format!("{what} `{}`", path.display())
        };
        if e.kind() == std::io::ErrorKind::InvalidData {
            CliError::msg(
                Exit::Input,
                format!("cannot read {name}: it is not UTF-8 text (re-save it as UTF-8)"),
            )
        } else {
            CliError::msg(Exit::Io, format!("cannot read {name}: {e}"))
        }
    })
}

/// Refuses a valid topology AWS would still refuse to deploy (a trust policy over IAM's size
/// limit), before anything is written or rolled out.
pub fn deployable(topo: &Topology) -> CliResult<()> {
    let problems = rolehop_render::iam::oversized_trust_policies(topo);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CliError::msg(Exit::Input, problems.join("\n")))
    }
}

pub fn load_topology(path: &Path) -> CliResult<Topology> {
    let src = read_text(path, "topology")?;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut read = |rel: &str| std::fs::read_to_string(dir.join(rel)).map_err(|e| e.to_string());
    Topology::parse(&path.display().to_string(), &src, &mut read).map_err(CliError::from_error)
}
