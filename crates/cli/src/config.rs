//! Loading `rolehop.toml` from disk: the file and the inline policy files it names (relative
//! to the topology's own directory).

use std::path::Path;

use rolehop_core::Topology;

use crate::exit::{CliError, CliResult, Exit};

pub fn load_topology(path: &Path) -> CliResult<Topology> {
    let src = std::fs::read_to_string(path).map_err(|e| {
        CliError::msg(
            Exit::Io,
            format!("cannot read topology `{}`: {e}", path.display()),
        )
    })?;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut read = |rel: &str| std::fs::read_to_string(dir.join(rel)).map_err(|e| e.to_string());
    Topology::parse(&path.display().to_string(), &src, &mut read)
        .map_err(|e| CliError::new(Exit::Input, e))
}
