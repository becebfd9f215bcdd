//! `rolehop rotate`: rotates an environment's broker user access key into the GitLab CI/CD
//! variables jobs read, through the resumable machine in `rolehop_core::rotation`, with IAM
//! (`rolehop_aws::iam`) and GitLab (`rolehop_gitlab`) as its two stores.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use rolehop_core::duration::parse_duration_secs;
use rolehop_core::rotation::{
    self, Clock, RotateError, Rotator, Settings, StoreErrorKind, SystemClock, sim,
};
use rolehop_core::topology::{Auth, VariableTarget};
use rolehop_core::{Secret, Topology};
use rolehop_gitlab::{ClientOptions, GitlabClient, GitlabVariables, Target};
use time::OffsetDateTime;

use crate::exit::{CliError, CliResult, Exit};

#[derive(clap::Args)]
pub struct Args {
    /// The topology file.
    #[arg(long, value_name = "FILE", default_value = "rolehop.toml")]
    config: PathBuf,
    /// The environment whose broker user's key to rotate.
    #[arg(long, value_name = "ENV")]
    env: String,
    /// Say what would be done and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// How long the deactivated old key is kept (reactivatable) before a later run deletes it.
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    delete_after: String,
    /// Delete an inactive access key GitLab does not hold, to free its quota slot.
    #[arg(long)]
    delete_inactive_extra: bool,
    /// The GitLab instance (default: `CI_SERVER_URL`, then `[gitlab] url`). The token is read
    /// from `GITLAB_TOKEN`.
    #[arg(long, value_name = "URL")]
    gitlab_url: Option<String>,
}

pub fn run(args: Args) -> CliResult {
    let delete_after = parse_duration_secs(&args.delete_after)
        .map_err(|m| CliError::msg(Exit::Usage, format!("--delete-after: {m}")))?;
    let topo = load_topology(&args.config)?;
    let env = topo
        .require_environment(&args.env)
        .map_err(|m| CliError::msg(Exit::Input, m))?;
    if let Auth::Oidc { .. } = topo.auth {
        return Err(CliError::msg(
            Exit::Input,
            format!(
                "{}: `[auth] mode = \"oidc\"` has no broker access keys to rotate (rotate applies to `mode = \"access-keys\"`)",
                topo.origin
            ),
        ));
    }
    let Some(gl) = &topo.gitlab else {
        return Err(CliError::msg(
            Exit::Input,
            format!(
                "{}: rotate needs a `[gitlab]` section with the `project` or `group` whose CI/CD variables hold the broker keys",
                topo.origin
            ),
        ));
    };
    let url = args
        .gitlab_url
        .clone()
        .or_else(|| non_empty_env("CI_SERVER_URL"))
        .or_else(|| gl.url.clone())
        .ok_or_else(|| {
            CliError::msg(
                Exit::Input,
                "no GitLab URL: pass `--gitlab-url`, run inside a job (`CI_SERVER_URL`) or set `[gitlab] url`",
            )
        })?;
    let token: Secret = non_empty_env("GITLAB_TOKEN")
        .map(rolehop_core::secret::secret)
        .ok_or_else(|| {
            CliError::msg(
                Exit::NoCredentials,
                "`GITLAB_TOKEN` is not set: rotate needs a GitLab access token with the `api` scope and the Maintainer role (a `CI_JOB_TOKEN` cannot manage CI/CD variables)",
            )
        })?;
    let target = match &gl.target {
        VariableTarget::Project(p) => Target::Project(p.clone()),
        VariableTarget::Group(g) => Target::Group(g.clone()),
    };
    let scope = env.gitlab.primary_environment().to_owned();
    let client = GitlabClient::new(&url, token, ClientOptions::default())
        .map_err(|e| CliError::new(Exit::Input, e))?
        .with_sleeper(Arc::new(std::thread::sleep));
    let mut vars = GitlabVariables::new(client, target, scope);
    let mut keys = rolehop_aws::iam::IamKeyStore::connect(&topo.broker.region, &env.broker_user)
        .map_err(|e| store_exit(e.kind, e.to_string()))?;

    let settings = Settings {
        user: env.broker_user.clone(),
        access_key_var: gl.access_key_var.clone(),
        secret_key_var: gl.secret_key_var.clone(),
        gitlab_place: vars.describe(),
        protected: env.protected,
        delete_after: Duration::from_secs(delete_after),
        delete_inactive_extra: args.delete_inactive_extra,
        verify_delays: verify_delays(),
    };
    let span = tracing::info_span!("rotate", env = %env.name, user = %env.broker_user);
    let _guard = span.enter();
    eprintln!(
        "rotate: environment `{}`, IAM user `{}`, GitLab {} `{}`/`{}`{}",
        env.name,
        env.broker_user,
        settings.gitlab_place,
        settings.access_key_var,
        settings.secret_key_var,
        if args.dry_run { " (dry run)" } else { "" }
    );

    if args.dry_run {
        let (mut sk, mut sv) = sim::snapshot(&mut keys, &mut vars, &settings)
            .map_err(|e| store_exit(e.kind, e.to_string()))?;
        let clock = DryClock(OffsetDateTime::now_utc());
        let mut plan = Vec::new();
        let result = Rotator::new(&mut sk, &mut sv, &clock, &settings)
            .run(|line| plan.push(line.to_owned()));
        println!("dry run: nothing was changed; rotate would:");
        for line in &plan {
            println!("  - {line}");
        }
        return match result {
            Ok(outcome) => {
                println!("and end with: {outcome}");
                Ok(Exit::Ok)
            }
            Err(e) => Err(rotate_exit(e, false)),
        };
    }

    let mut steps = 0;
    let outcome = Rotator::new(&mut keys, &mut vars, &SystemClock, &settings)
        .run(|line| {
            steps += 1;
            // The plain line is the progress report; tracing keeps it with the span's context
            // for -vv without doubling every line at -v.
            tracing::debug!("{line}");
            eprintln!("rotate: {line}");
        })
        .map_err(|e| rotate_exit(e, steps > 0))?;
    println!("{outcome}");
    Ok(Exit::Ok)
}

/// Waits between checks that a brand-new key works: IAM usually needs a few seconds; about a
/// minute in all before giving up.
fn verify_delays() -> Vec<Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(Duration::from_secs(10))
        .with_max_times(8)
        .with_jitter()
        .build()
        .collect()
}

/// The dry run replays the rotation in memory: time stands still and nothing waits.
struct DryClock(OffsetDateTime);

impl Clock for DryClock {
    fn now(&self) -> OffsetDateTime {
        self.0
    }
    fn sleep(&self, _: Duration) {}
}

fn non_empty_env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}

fn load_topology(path: &Path) -> Result<Topology, CliError> {
    let src = std::fs::read_to_string(path)
        .map_err(|e| CliError::msg(Exit::Io, format!("cannot read `{}`: {e}", path.display())))?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut read = |rel: &str| std::fs::read_to_string(dir.join(rel)).map_err(|e| e.to_string());
    Topology::parse(&path.display().to_string(), &src, &mut read)
        .map_err(|e| CliError::new(Exit::Input, e))
}

fn store_exit(kind: StoreErrorKind, message: String) -> CliError {
    let exit = match kind {
        StoreErrorKind::Denied | StoreErrorKind::NotFound | StoreErrorKind::Invalid => Exit::Denied,
        StoreErrorKind::Unavailable | StoreErrorKind::Other => Exit::Unavailable,
        StoreErrorKind::Quota => Exit::Refused,
        StoreErrorKind::NoCredentials => Exit::NoCredentials,
    };
    CliError::msg(exit, message)
}

/// `started`: this run changed something, so the recorded state is worth pointing at.
fn rotate_exit(e: RotateError, started: bool) -> CliError {
    let resume = if started {
        format!(
            "; the state recorded in the IAM user tag `{}` lets the next `rolehop rotate` complete or roll back",
            rotation::RECORD_TAG
        )
    } else {
        String::new()
    };
    match e {
        RotateError::Store(s) => {
            let kind = s.kind;
            store_exit(kind, format!("{}{resume}", s.message))
        }
        RotateError::Refused(m) => CliError::msg(Exit::Refused, m),
        e @ (RotateError::BadRecord { .. } | RotateError::Inconsistent(_)) => {
            CliError::new(Exit::Refused, e)
        }
        e @ RotateError::NewKeyRejected { .. } => CliError::msg(Exit::Unavailable, e),
    }
}
