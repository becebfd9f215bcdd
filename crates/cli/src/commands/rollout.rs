//! `rolehop rollout`: deploys the broker stack and one StackSet per environment with the
//! broker account's administrator credentials. Prints the plan first; `--dry-run` stops there.
//! Progress goes to stderr (a bar on a terminal, plain lines in CI), the summary to stdout.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use rolehop_aws::rollout::artifact;
use rolehop_aws::rollout::{
    Account, AccountResult, Change, Outcome, Plan, Progress, Report, Rollout, RolloutError,
    RolloutInput, StackSetPlan, Timing, broker_config, organizational_units_text, real_sleep,
};

use crate::config::load_topology;
use crate::exit::{CliError, CliResult, Exit};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub config: crate::config::ConfigArg,
    /// Show what would change and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The region of the broker stack and the StackSets: only the topology's `[broker]
    /// region` is accepted (IAM names are global, so a second broker stack elsewhere would
    /// collide with the first); to move, change `region` in the topology.
    #[arg(long, value_name = "REGION")]
    pub region: Option<rolehop_core::Region>,
    /// Gate mode: the rolehop binary the claim gates run on Lambda (Linux x86_64, glibc at
    /// most 2.34, e.g. scripts/build-portable.sh's); zipped as `bootstrap` and uploaded.
    /// Needed on the first rollout; later ones keep the deployed code without it.
    #[arg(long, value_name = "FILE")]
    pub gate_code: Option<std::path::PathBuf>,
    /// Gate mode: the S3 bucket in the broker account for the gate's code (created, private,
    /// if missing). Default: rolehop-gate-code-<account>-<region>.
    #[arg(long, value_name = "BUCKET")]
    pub gate_bucket: Option<String>,
}

/// The gate's code for this rollout: where it goes and, when a binary was given, the zip.
struct GateCode {
    bucket: String,
    zip: Option<Vec<u8>>,
}

pub fn run(args: Args) -> CliResult {
    let topo = load_topology(&args.config.path(&rolehop_core::gitlab_ctx::ProcessEnv))?;
    crate::config::deployable(&topo)?;
    if let Some(r) = args.region.as_deref() {
        other_region(r, &topo.broker.region, &topo.broker.stack_name)?;
    }
    let rendered = rolehop_render::render(&topo);
    let file = |name: &str| rendered.file(name).unwrap_or_default().to_owned();
    let mut input = RolloutInput::new(
        &topo,
        args.region.as_ref(),
        file(rolehop_render::BROKER_FILE),
        |env| file(&rolehop_render::target_file(&env.name)),
    );
    let gate = match topo.auth {
        rolehop_core::topology::Auth::OidcGate { .. } => Some(GateCode {
            bucket: args
                .gate_bucket
                .clone()
                .unwrap_or_else(|| artifact::default_bucket(&input.broker_account, &input.region)),
            zip: args.gate_code.as_deref().map(read_gate_code).transpose()?,
        }),
        _ => {
            if args.gate_code.is_some() || args.gate_bucket.is_some() {
                return Err(CliError::msg(
                    Exit::Usage,
                    "--gate-code and --gate-bucket apply to `[auth] mode = \"oidc-gate\"` only",
                ));
            }
            None
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(Exit::Internal, e))?;
    rt.block_on(rollout(&mut input, args.dry_run, gate))
}

/// Refuses a `--region` other than the broker's before any AWS call: the broker stack and the
/// StackSets live in the topology's region, and the IAM roles and users they create have
/// account-wide names, so a second broker stack in another region would try to create the same
/// roles again (and fail), or, had it worked, leave two stacks owning one role.
fn other_region(asked: &str, broker: &str, stack: &str) -> CliResult<()> {
    if asked == broker {
        return Ok(());
    }
    Err(CliError::msg(
        Exit::Usage,
        format!(
            "`--region {asked}` is not the topology's broker region `{broker}`: stack `{stack}` and the StackSets live in `{broker}`, and the IAM roles and users they create are global, so a second broker stack in `{asked}` would collide with the first. To move rolehop to `{asked}`, delete stack `{stack}` and the StackSets in `{broker}` first (jobs cannot assume roles until the new rollout), then set `region = \"{asked}\"` under `[broker]` and roll out"
        ),
    ))
}

/// The binary zipped for Lambda. Checked to be a Linux ELF executable, the only thing
/// `provided.al2023` can run, so a macOS or Windows build is refused here, not at the first
/// request.
fn read_gate_code(path: &std::path::Path) -> CliResult<Vec<u8>> {
    let binary = std::fs::read(path).map_err(|e| {
        CliError::msg(
            Exit::Input,
            format!("cannot read --gate-code `{}`: {e}", path.display()),
        )
    })?;
    // ELF magic, 64-bit, little endian, machine x86-64 (62).
    let elf_x86_64 = binary.len() > 20
        && binary.starts_with(b"\x7fELF")
        && binary[4] == 2
        && binary[5] == 1
        && binary[18] == 62;
    if !elf_x86_64 {
        return Err(CliError::msg(
            Exit::Input,
            format!(
                "--gate-code `{}` is not a Linux x86_64 executable: the gate runs on Lambda's provided.al2023 (x86_64); build it with scripts/build-portable.sh",
                path.display()
            ),
        ));
    }
    artifact::lambda_zip(&binary).map_err(|m| CliError::msg(Exit::Input, m))
}

async fn rollout(input: &mut RolloutInput, dry_run: bool, gate: Option<GateCode>) -> CliResult {
    let config = broker_config(&input.region).await;
    let r = Rollout::new(&config, real_sleep(), Timing::default());
    r.check_account(input).await.map_err(to_cli)?;
    let mut upload = None;
    if let Some(g) = gate {
        let (bucket, key) = match g.zip {
            Some(zip) => {
                let key = artifact::code_key(&zip);
                upload = Some((g.bucket.clone(), key.clone(), zip));
                (g.bucket, key)
            }
            // Without a binary the deployed code stays: its parameters are reused as they are.
            None => {
                let deployed = r
                    .stack_parameters(&input.broker_stack)
                    .await
                    .map_err(to_cli)?;
                let get = |k: &str| {
                    deployed
                        .iter()
                        .find(|(n, _)| n == k)
                        .map(|(_, v)| v.clone())
                };
                match (
                    get(artifact::CODE_BUCKET_PARAM),
                    get(artifact::CODE_KEY_PARAM),
                ) {
                    (Some(bucket), Some(key)) => (bucket, key),
                    _ => {
                        return Err(CliError::msg(
                            Exit::Usage,
                            format!(
                                "gate mode: stack {} has no gate code yet; pass --gate-code FILE (the rolehop binary for Linux x86_64, e.g. from scripts/build-portable.sh)",
                                input.broker_stack
                            ),
                        ));
                    }
                }
            }
        };
        input.broker_parameters = vec![
            (artifact::CODE_BUCKET_PARAM.to_owned(), bucket),
            (artifact::CODE_KEY_PARAM.to_owned(), key),
        ];
    }
    let input = &*input;
    let plan = r.plan(input).await.map_err(to_cli)?;
    let mut out = std::io::stdout().lock();
    if plan.is_noop() {
        let accounts: usize = plan.stack_sets.iter().map(|s| s.current.len()).sum();
        let _ = writeln!(
            out,
            "nothing to change: stack {} and {} stack set(s) on {accounts} account(s) are up to date",
            plan.broker_stack,
            plan.stack_sets.len()
        );
        for s in &plan.stack_sets {
            print_unlisted(&mut out, s);
        }
        return Ok(Exit::Ok);
    }
    print_plan(&mut out, input, &plan);
    if dry_run {
        let _ = writeln!(out, "dry run: nothing was changed");
        return Ok(Exit::Ok);
    }
    let _ = out.flush();
    drop(out);

    let total: usize = plan
        .stack_sets
        .iter()
        .map(|s| s.current.len() + s.add.len() + s.retry.len() + s.remove.len())
        .sum::<usize>()
        + plan
            .remove_stack_sets
            .iter()
            .map(|o| o.accounts.len())
            .sum::<usize>();
    let progress = Reporter::new(total);
    // The code goes up before the stack that names it; if the stack then fails, CloudFormation
    // rolls the functions back to their previous code and the uploaded zip is only reused.
    if let Some((bucket, key, zip)) = upload
        && plan.broker != Change::Unchanged
        && let Err(e) = r.upload_gate_code(&bucket, &key, zip, &progress).await
    {
        progress.finish();
        return Err(to_cli(e));
    }
    let report = r.apply(input, &plan, &progress).await;
    progress.finish();
    let report = report.map_err(to_cli)?;
    Ok(summarize(&report))
}

fn print_plan(out: &mut impl Write, input: &RolloutInput, plan: &Plan) {
    // Removals first: that is the order they are carried out in.
    for o in &plan.remove_stack_sets {
        let _ = writeln!(
            out,
            "stack set {} (environment {}): remove, the topology no longer declares it",
            o.name, o.environment
        );
        for id in &o.accounts {
            let _ = writeln!(out, "  remove    {id}: its deployment role is deleted");
        }
    }
    let _ = writeln!(
        out,
        "stack {} (account {}, {}): {}",
        plan.broker_stack, input.broker_account, input.region, plan.broker
    );
    print_changes(out, &plan.broker_changes);
    for s in &plan.stack_sets {
        let _ = writeln!(
            out,
            "stack set {} (environment {}): {}",
            s.name, s.environment, s.set
        );
        print_changes(out, &s.changes);
        let set_verb = if s.set == Change::Update {
            "update"
        } else {
            "unchanged"
        };
        for a in &s.current {
            let _ = writeln!(out, "  {set_verb:<9} {} ({})", a.name, a.id);
        }
        for a in &s.retry {
            let _ = writeln!(
                out,
                "  redeploy  {} ({}): its instance is outdated or inoperable",
                a.name, a.id
            );
        }
        for ou in &s.add_organizational_units {
            let _ = writeln!(out, "  deploy    organizational unit {ou}");
        }
        for a in &s.add {
            if s.organizational_units.is_empty() {
                let _ = writeln!(out, "  create    {} ({})", a.name, a.id);
            } else {
                let _ = writeln!(
                    out,
                    "  create    {} ({}) through {}",
                    a.name,
                    a.id,
                    organizational_units_text(&s.organizational_units)
                );
            }
        }
        for ou in &s.remove_organizational_units {
            let _ = writeln!(
                out,
                "  remove    organizational unit {ou}: no longer a target of {}",
                s.environment
            );
        }
        for id in &s.remove {
            let _ = writeln!(
                out,
                "  remove    {id}: no longer a target of {}",
                s.environment
            );
        }
        print_unlisted(out, s);
    }
}

/// What a template update changes, indented under its stack (see `template_changes`).
fn print_changes(out: &mut impl Write, changes: &[String]) {
    for c in changes {
        let _ = writeln!(out, "    {c}");
    }
}

/// Accounts an OU gave the deployment role that the topology does not list: not an error
/// (auto-deployment does this for every new member), but jobs cannot pick them.
fn print_unlisted(out: &mut impl Write, s: &StackSetPlan) {
    for id in &s.unlisted {
        let _ = writeln!(
            out,
            "  note      {id} has the deployment role through {} but is not among the accounts of environment {}",
            organizational_units_text(&s.organizational_units),
            s.environment
        );
    }
}

fn summarize(report: &Report) -> Exit {
    let mut out = std::io::stdout().lock();
    let failed: Vec<&AccountResult> = report.failures().collect();
    let changed = report
        .accounts
        .iter()
        .filter(|a| !matches!(a.outcome, Outcome::Unchanged | Outcome::Failed(_)))
        .count();
    let _ = writeln!(
        out,
        "broker stack: {}; accounts: {} changed, {} unchanged, {} failed",
        report.broker,
        changed,
        report.accounts.len() - changed - failed.len(),
        failed.len()
    );
    if failed.is_empty() {
        return Exit::Ok;
    }
    let mut err = std::io::stderr().lock();
    for a in &failed {
        let _ = writeln!(
            err,
            "rolehop: error: environment `{}` account `{}` ({}): {}",
            a.environment, a.name, a.id, a.outcome
        );
    }
    Exit::PartialFailure
}

/// The error names its own exit code (see `RolloutError`'s `HasExit`).
fn to_cli(e: RolloutError) -> CliError {
    CliError::from_error(e)
}

/// A progress bar on an interactive terminal; plain lines otherwise (CI logs keep every line).
struct Reporter {
    bar: Option<ProgressBar>,
    lines: Mutex<()>,
}

impl Reporter {
    fn new(total: usize) -> Self {
        let interactive = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        let bar = interactive.then(|| {
            let b = ProgressBar::new(total as u64);
            if let Ok(style) =
                ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} accounts  {msg}")
            {
                b.set_style(style.progress_chars("=> "));
            }
            b.enable_steady_tick(std::time::Duration::from_millis(120));
            b
        });
        Reporter {
            bar,
            lines: Mutex::new(()),
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(b) => b.println(text),
            None => {
                let _guard = self.lines.lock();
                let _ = writeln!(std::io::stderr().lock(), "{text}");
            }
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Progress for Reporter {
    fn step(&self, message: &str) {
        match &self.bar {
            Some(b) => b.set_message(message.to_owned()),
            None => self.line(message),
        }
    }

    fn accounts_started(&self, environment: &str, accounts: &[Account], action: &str) {
        if self.bar.is_none() {
            for a in accounts {
                let who = if a.name == a.id {
                    a.id.clone()
                } else {
                    format!("{} ({})", a.name, a.id)
                };
                self.line(&format!("  [{environment}] {who}: {action}..."));
            }
        }
    }

    fn account_done(&self, r: &AccountResult) {
        let who = if r.name == r.id {
            r.id.clone()
        } else {
            format!("{} ({})", r.name, r.id)
        };
        self.line(&format!("  [{}] {who}: {}", r.environment, r.outcome));
        if let Some(b) = &self.bar {
            b.inc(1);
        }
    }
}
