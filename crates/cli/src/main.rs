//! The `rolehop` binary: parses the command line, sets up logging, dispatches to a command and
//! maps its error to a documented exit code. Nothing else lives here.

mod commands;
mod config;
mod exit;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::exit::Exit;

/// Deploy from GitLab CI/CD to AWS through a broker account, without long-lived powerful secrets.
#[derive(Parser)]
#[command(name = "rolehop", version, about, propagate_version = true)]
struct Cli {
    /// More logging on stderr (-v info, -vv debug, -vvv trace). Secrets are never logged.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Turn the job's base identity into deployment-role credentials and print them.
    Assume(commands::assume::Args),
    /// Run a command with deployment-role credentials in its environment.
    Exec(commands::exec::Args),
    /// Print credentials as an AWS `credential_process` document (for ~/.aws/config).
    CredentialProcess(commands::credential_process::Args),
    /// Write a commented starting topology (asks for what flags do not give, on a terminal).
    Init(commands::init::Args),
    /// Check the topology as render and rollout would, writing nothing.
    Validate(commands::validate::Args),
    /// Write the CloudFormation templates, the GitLab pipeline and the per-environment job files.
    Render(commands::render::Args),
    /// Deploy the broker stack and the target StackSets.
    Rollout(commands::rollout::Args),
    /// Decide IAM requests offline (conformance case files).
    Simulate(commands::simulate::Args),
    /// Audit a topology or IAM exports: findings and blast radius.
    Audit(commands::audit::Args),
    /// Draw the access graph (mermaid or dot).
    Graph(commands::graph::Args),
    /// Rotate a broker user's access keys into GitLab CI/CD variables.
    Rotate(commands::rotate::Args),
    /// Explain a broken setup from inside a job.
    Doctor(commands::doctor::Args),
    /// The claim gate: GitLab ID tokens verified and checked against claim rules, then
    /// exchanged for service-role credentials.
    Gate(commands::gate::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(commands::completions::Args),
}

fn main() -> ExitCode {
    let args = commands::gate::bootstrap_args(std::env::args_os().collect());
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage.into()
            } else {
                Exit::Ok.into()
            };
        }
    };
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Assume(a) => commands::assume::run(a),
        Command::Exec(a) => commands::exec::run(a),
        Command::CredentialProcess(a) => commands::credential_process::run(a),
        Command::Init(a) => commands::init::run(a),
        Command::Validate(a) => commands::validate::run(a),
        Command::Render(a) => commands::render::run(a),
        Command::Rollout(a) => commands::rollout::run(a),
        Command::Simulate(a) => commands::simulate::run(a),
        Command::Audit(a) => commands::audit::run(a),
        Command::Graph(a) => commands::graph::run(a),
        Command::Rotate(a) => commands::rotate::run(a),
        Command::Doctor(a) => commands::doctor::run(a),
        Command::Gate(a) => commands::gate::run(a),
        Command::Completions(a) => commands::completions::run::<Cli>(a),
    };
    match result {
        Ok(code) => code.into(),
        Err(e) => {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "rolehop: error: {:#}", e.error);
            e.exit.into()
        }
    }
}

/// Logs go to stderr so stdout stays the requested output. `ROLEHOP_LOG` takes an
/// env-filter directive and wins over `-v`.
fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("ROLEHOP_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "rolehop={default},rolehop_aws={default},rolehop_gitlab={default},warn"
        ))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .try_init();
}
