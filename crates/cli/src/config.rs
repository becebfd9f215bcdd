//! Which file a command reads, and loading it: the topology with the inline policy files it
//! names (relative to the topology's own directory), or a job file `render` wrote.
//!
//! One rule for every command that reads a topology: `-c/--config FILE`, else the
//! `ROLEHOP_CONFIG` variable, else `rolehop.toml` in the current directory.

use std::path::{Path, PathBuf};

use rolehop_core::Topology;
use rolehop_core::gitlab_ctx::Env;
use rolehop_core::job_file;

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

/// The file read when neither `--config` nor `ROLEHOP_CONFIG` names one.
pub const DEFAULT_CONFIG: &str = "rolehop.toml";
/// The variable naming the file when `--config` is not given.
pub const CONFIG_VAR: &str = "ROLEHOP_CONFIG";

/// `-c/--config`, shared by every command reading a topology so the flag, its help and its
/// fallbacks are the same everywhere (the default is applied by [`ConfigArg::path`], not by
/// clap, so that `audit --authz-details` and `assume --service-role-arn` can do without it).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArg {
    /// The topology [default: $ROLEHOP_CONFIG, else rolehop.toml].
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ConfigArg {
    /// The flag, else `ROLEHOP_CONFIG`, else `rolehop.toml`.
    pub fn path(&self, env: &dyn Env) -> PathBuf {
        self.explicit(env)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG))
    }

    /// The flag, else `ROLEHOP_CONFIG` (non-empty): what the user named, if anything.
    pub fn explicit(&self, env: &dyn Env) -> Option<PathBuf> {
        self.config.clone().or_else(|| {
            env.var(CONFIG_VAR)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
    }
}

/// Reads the topology file; a missing default file says how to name another (`or_else`: what
/// else the command takes instead of a file).
fn read_config(path: &Path, or_else: &str) -> CliResult<String> {
    if path == Path::new(DEFAULT_CONFIG) && !path.exists() {
        return Err(CliError::msg(
            Exit::Io,
            format!(
                "no topology: `{DEFAULT_CONFIG}` does not exist in this directory; name one with -c FILE or {CONFIG_VAR}{or_else}"
            ),
        ));
    }
    read_text(path, "topology")
}

/// Loads a topology for the platform commands (render, rollout, rotate, audit, validate). A
/// job file is refused: it lacks the policies and the other environments, and rolling it out
/// would tear those environments down.
pub fn load_topology(path: &Path) -> CliResult<Topology> {
    let src = read_config(path, " (`rolehop init` writes a starting one)")?;
    if job_file::is_job_file(&src) {
        return Err(CliError::msg(
            Exit::Input,
            format!(
                "`{}` is a job file (one environment's view, written by `rolehop render` for deploy jobs): it cannot be rendered, rolled out, rotated or audited; use the platform topology it was rendered from",
                path.display()
            ),
        ));
    }
    parse_topology(path, &src)
}

/// Loads what a deploy job reads (assume, exec, credential-process, doctor): a job file, or a
/// whole topology with its policy files.
pub fn load_for_job(path: &Path) -> CliResult<Topology> {
    let src = read_config(
        path,
        " (in a deploy job: the job file `rolehop render` wrote, rolehop/jobs/<env>.toml), or give --service-role-arn and --deploy-role-arn",
    )?;
    if job_file::is_job_file(&src) {
        return job_file::parse(&path.display().to_string(), &src).map_err(CliError::from_error);
    }
    parse_topology(path, &src)
}

fn parse_topology(path: &Path, src: &str) -> CliResult<Topology> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut read = |rel: &str| std::fs::read_to_string(dir.join(rel)).map_err(|e| e.to_string());
    Topology::parse(&path.display().to_string(), src, &mut read).map_err(CliError::from_error)
}
