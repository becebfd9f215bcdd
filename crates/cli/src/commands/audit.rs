//! `rolehop audit`: reads a topology or authorization-details exports (plus SCPs and a
//! credential report), runs the pure auditor and prints findings and blast radius in the
//! asked format; `--fail-on` turns findings into exit code 10.

use std::path::{Path, PathBuf};

use clap::builder::TypedValueParser;
use rolehop_audit::{Estate, Severity, baseline, gitlab_check, input, output};
use rolehop_core::Topology;
use rolehop_core::gitlab_ctx::ProcessEnv;

use super::audit_gate;
use crate::exit::{CliError, CliResult, Exit};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub source: Source,
    /// Service control policies: `[{"orgIdentifier": "r-root", "policies": [...]}, ...]`, one
    /// entry per organisation level, optionally with `"accounts": [...]`.
    #[arg(long, value_name = "FILE")]
    pub scp: Option<PathBuf>,
    /// An IAM credential report (CSV) to date access keys.
    #[arg(long, value_name = "FILE")]
    pub credential_report: Option<PathBuf>,
    #[command(flatten)]
    pub labels: Labels,
    /// How to print the findings and blast radius: a table to read, or a file for a tool (SARIF
    /// for code scanning, GitLab Code Quality, Markdown for a merge request, JSON).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Exit with 10 when a finding is at or above this severity (a CI gate).
    #[arg(
        long,
        value_name = "SEVERITY",
        value_parser = clap::builder::PossibleValuesParser::new(SEVERITIES).try_map(parse_severity)
    )]
    pub fail_on: Option<Severity>,
    /// The time key ages and waiver expiries are measured at (RFC 3339), for reproducible
    /// reports.
    #[arg(long, hide = true, value_name = "TIME")]
    pub now: Option<String>,
    /// A previous JSON report (`--format json`): report only what this change adds (new
    /// findings, edges and reach); markdown becomes a merge-request comment.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// With `--baseline`: exit with 10 when a new finding is at or above this severity.
    #[arg(long, value_name = "SEVERITY", requires = "baseline", value_parser = clap::builder::PossibleValuesParser::new(SEVERITIES).try_map(parse_severity))]
    pub fail_on_new: Option<Severity>,
    /// Accepted findings (TOML `[[waiver]]` entries with id, resource, reason, expires).
    #[arg(long, value_name = "FILE")]
    pub waivers: Option<PathBuf>,
    /// Cross-check with GitLab: its URL (reads protected branches, tags and environments of
    /// the projects the trusts name, with `GITLAB_TOKEN`), or an export file of that shape.
    #[arg(long, value_name = "URL|FILE")]
    pub gitlab: Option<String>,
    /// The claim gate's config (`gate.toml`): its rules are cross-checked with `--gitlab` too.
    #[arg(long, value_name = "FILE", requires = "gitlab")]
    pub gate: Option<PathBuf>,
}

/// Environment labels from outside IAM (shared with `rolehop graph`).
#[derive(clap::Args)]
pub struct Labels {
    /// Environments of accounts or principals: `{"222222222222": "prod", "arn:...": "dev"}`;
    /// the audit propagates them along the access graph.
    #[arg(long, value_name = "FILE")]
    pub env_map: Option<PathBuf>,
    /// `aws organizations list-accounts` output, accounts optionally with their `Tags`: an
    /// environment tag or name labels each account.
    #[arg(long, value_name = "FILE")]
    pub org_accounts: Option<PathBuf>,
}

impl Labels {
    /// Reads the label files into `estate`.
    pub fn apply(&self, estate: &mut Estate) -> CliResult<()> {
        if let Some(p) = &self.env_map {
            let text = read(p)?;
            input::labels::add_env_map(estate, &p.display().to_string(), &text)
                .map_err(CliError::from_error)?;
        }
        if let Some(p) = &self.org_accounts {
            let text = read(p)?;
            input::labels::add_org_accounts(estate, &p.display().to_string(), &text)
                .map_err(CliError::from_error)?;
        }
        Ok(())
    }
}

/// What to audit: a topology (by the same rule as every command), or exports instead.
#[derive(clap::Args)]
pub struct Source {
    /// The topology whose IAM `render` would deploy [default: $ROLEHOP_CONFIG, else
    /// rolehop.toml; not read with --authz-details].
    #[arg(
        short = 'c',
        long,
        value_name = "FILE",
        conflicts_with = "authz_details"
    )]
    pub config: Option<PathBuf>,
    /// Outputs of `aws iam get-account-authorization-details`, one per account, instead of
    /// the topology.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub authz_details: Vec<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Sarif,
    Codequality,
    Markdown,
}

/// The severities, lowest first, as `--fail-on` takes them.
const SEVERITIES: [&str; 5] = ["info", "low", "medium", "high", "critical"];

fn parse_severity(s: String) -> Result<Severity, String> {
    Severity::parse(&s).ok_or_else(|| format!("unknown severity `{s}` ({})", SEVERITIES.join(", ")))
}

pub fn run(args: Args) -> CliResult {
    let (mut estate, topo) = load(&args.source)?;
    if let Some(p) = &args.scp {
        let text = read(p)?;
        input::add_scps(&mut estate, &p.display().to_string(), &text)
            .map_err(CliError::from_error)?;
    }
    if let Some(p) = &args.credential_report {
        let text = read(p)?;
        input::add_credential_report(&mut estate, &p.display().to_string(), &text)
            .map_err(CliError::from_error)?;
    }
    args.labels.apply(&mut estate)?;
    let now = match &args.now {
        Some(t) => input::parse_time(t).ok_or_else(|| {
            CliError::msg(Exit::Usage, format!("`--now {t}` is not an RFC 3339 time"))
        })?,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0),
    };
    // Every file is read before the audit runs: a bad waiver or baseline fails fast.
    let gates = match &args.gate {
        Some(p) => audit_gate::gate_rules(p)?,
        None => Vec::new(),
    };
    let waivers = args
        .waivers
        .as_deref()
        .map(audit_gate::waivers)
        .transpose()?;
    let base = args
        .baseline
        .as_deref()
        .map(audit_gate::baseline)
        .transpose()?;
    let prep = rolehop_audit::graph::Prepared::new(&estate);
    let mut report = rolehop_audit::audit_prepared(&prep, now);
    if let Some(source) = &args.gitlab {
        let wanted = gitlab_check::wanted_projects(&report.graph, &gates);
        let data = audit_gate::gitlab_data(source, &wanted, &ProcessEnv)?;
        report
            .findings
            .extend(gitlab_check::check(&estate, &report.graph, &data, &gates));
        rolehop_audit::sort_findings(&mut report.findings);
    }
    if let Some(w) = &waivers {
        rolehop_audit::waivers::apply(&mut report, w, now);
    }
    let delta = base.as_ref().map(|b| baseline::diff(&report, b));
    let names = audit_gate::account_names(topo.as_ref());
    match (args.format, &delta) {
        (Format::Table, None) => emit(&output::table(&report))?,
        (Format::Table | Format::Markdown, Some(d)) => {
            emit(&baseline::markdown(&report, d, &names))?;
        }
        (Format::Markdown, None) => emit(&output::markdown(&report))?,
        (Format::Json, _) => {
            let delta = delta
                .as_ref()
                .map(serde_json::to_value)
                .transpose()
                .map_err(|e| CliError::new(Exit::Internal, e))?;
            // Written as it is serialized: an organisation's report is tens of megabytes.
            emit_json(&output::json_report(&report, delta))?;
        }
        (Format::Sarif, _) => emit_json(&output::sarif(&report))?,
        (Format::Codequality, _) => emit_json(&output::codequality(&report))?,
    }
    let over = |limit: Option<Severity>, worst: Option<Severity>| matches!((limit, worst), (Some(l), Some(w)) if w >= l);
    let new_worst = delta.as_ref().and_then(baseline::Delta::worst_new);
    let exit = if over(args.fail_on, report.worst()) || over(args.fail_on_new, new_worst) {
        Exit::Findings
    } else {
        Exit::Ok
    };
    // The process ends with this command. An organisation's estate, parsed documents and
    // report are millions of small allocations; freeing them one by one took longer than the
    // OS takes to reclaim the whole heap at exit (0.2 s of 2.8 s at 10,000 accounts), and
    // glibc then spent as long again merging the freed chunks before the report's first large
    // allocation.
    std::mem::forget(report);
    std::mem::forget(prep);
    std::mem::forget(estate);
    Ok(exit)
}

/// Writes the report to stdout; a reader that went away (`| head`) is not an error.
pub fn emit(text: &str) -> CliResult<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    written(out.write_all(text.as_bytes()).and_then(|()| out.flush()))
}

/// Writes `v` as pretty JSON and a newline to stdout as it is serialized; a reader that went
/// away (`| head`) is not an error.
fn emit_json(v: &impl serde::Serialize) -> CliResult<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    written(match serde_json::to_writer_pretty(&mut out, v) {
        Err(e) if !e.is_io() => return Err(CliError::new(Exit::Internal, e)),
        r => r
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush()),
    })
}

/// The outcome of writing the report: a reader that went away is not an error.
fn written(r: std::io::Result<()>) -> CliResult<()> {
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::msg(
            Exit::Io,
            format!("cannot write the report: {e}"),
        )),
    }
}

fn read(p: &Path) -> CliResult<String> {
    crate::config::read_text(p, "")
}

/// The estate of a topology or of exports (shared with `rolehop graph`).
pub fn load_estate(source: &Source) -> CliResult<Estate> {
    load(source).map(|(e, _)| e)
}

/// The estate, and the topology it came from (by the one config rule, unless exports are given).
fn load(source: &Source) -> CliResult<(Estate, Option<Topology>)> {
    if source.authz_details.is_empty() {
        let cfg = crate::config::ConfigArg {
            config: source.config.clone(),
        }
        .path(&ProcessEnv);
        let topo = crate::config::load_topology(&cfg)?;
        return Ok((input::topology::estate_of(&topo), Some(topo)));
    }
    load_exports(source).map(|e| (e, None))
}

fn load_exports(source: &Source) -> CliResult<Estate> {
    let mut estate = Estate::default();
    let names: Vec<String> = source
        .authz_details
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    estate.source = names.join(",");
    // An organisation is thousands of files: read and parse them on every core, each worker
    // a contiguous run of files, merged in file order so the estate (and the first error
    // reported) is the one a single pass gives.
    let files = &source.authz_details;
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, 4);
    let chunk = files.len().div_ceil(workers).max(1);
    let parts: Vec<CliResult<Estate>> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|run| {
                scope.spawn(move || {
                    let mut part = Estate::default();
                    for p in run {
                        let text = read(p)?;
                        input::gaad::add_export(&mut part, &p.display().to_string(), &text)
                            .map_err(CliError::from_error)?;
                    }
                    Ok(part)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(CliError::msg(Exit::Internal, "an export reader panicked"))
                })
            })
            .collect()
    });
    for part in parts {
        let part = part?;
        estate.principals.extend(part.principals);
        estate.groups.extend(part.groups);
        estate.managed.extend(part.managed);
        estate.problems.extend(part.problems);
    }
    if estate.source.contains(',') {
        // Findings point at the export that listed their principal; the first export stands
        // for the rest (findings about policies or SCPs that no principal declares).
        estate.source = names.first().cloned().unwrap_or_default();
    }
    Ok(estate)
}
