//! `rolehop rotate`: rotates an environment's broker user access key into the GitLab CI/CD
//! variables jobs read, through the resumable machine in `rolehop_core::rotation`, with IAM
//! (`rolehop_aws::iam`) and GitLab (`rolehop_gitlab`) as its two stores.
//!
//! Who rotate is, by construction: the rotation administrator whose `<id>:<secret>` is in
//! `ROLEHOP_ROTATOR_KEY` (required inside a GitLab job, where the ambient AWS variables may be
//! the very broker key being rotated), else locally the standard AWS chain; and never a broker
//! user of the topology (checked with sts:GetCallerIdentity before any change).

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use rolehop_core::broker_key::{BROKER_KEY_VAR, BrokerKey};
use rolehop_core::duration::parse_duration_secs;
use rolehop_core::endpoint::cleartext_off_machine;
use rolehop_core::gitlab_ctx::{Env, ProcessEnv};
use rolehop_core::rotation::{self, Clock, RotateError, Rotator, Settings, SystemClock, sim};
use rolehop_core::topology::{Auth, VariableTarget};
use rolehop_core::{Secret, Topology};

use rolehop_gitlab::{ClientOptions, GitlabClient, GitlabVariables, Target};
use time::OffsetDateTime;

use crate::exit::{CliError, CliResult, Exit, HasExit};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: crate::config::ConfigArg,
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
    /// The GitLab instance when the topology has no `[gitlab] url` (else it must match it); then
    /// `CI_SERVER_URL`. The token is read from `GITLAB_TOKEN`.
    #[arg(long, value_name = "URL")]
    gitlab_url: Option<String>,
    /// The variable holding the rotation administrator's `<access key id>:<secret>`; required
    /// inside a GitLab job (`GITLAB_CI`), else the standard AWS chain is used.
    #[arg(long, value_name = "VAR", default_value = ROTATOR_KEY_VAR)]
    rotator_key_var: String,
}

/// The rotation administrator's key, `<access key id>:<secret>`: a name no SDK reads, so the
/// job's identity is the one given here and never an ambient broker key.
pub const ROTATOR_KEY_VAR: &str = rolehop_render::gitlab::ROTATOR_KEY_VAR;

pub fn run(args: Args) -> CliResult {
    run_with(args, &ProcessEnv)
}

fn run_with(args: Args, envv: &dyn Env) -> CliResult {
    let delete_after = parse_duration_secs(&args.delete_after)
        .map_err(|m| CliError::msg(Exit::Usage, format!("--delete-after: {m}")))?;
    let topo = crate::config::load_topology(&args.config.path(envv))?;
    let env = topo
        .require_environment(&args.env)
        .map_err(|m| CliError::msg(Exit::Input, m))?;
    let mode = match topo.auth {
        Auth::AccessKeys => None,
        Auth::Oidc { .. } => Some("oidc"),
        Auth::OidcGate { .. } => Some("oidc-gate"),
    };
    if let Some(mode) = mode {
        return Err(CliError::msg(
            Exit::Input,
            format!(
                "{}: `[auth] mode = \"{mode}\"` has no broker access keys to rotate (rotate applies to `mode = \"access-keys\"`)",
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
    let url = gitlab_url(
        &topo.origin,
        gl.url.as_deref(),
        args.gitlab_url.as_deref(),
        envv,
    )?;
    // A secret write: refused outright over plain http off this machine (the token and the new
    // secret would cross the network in clear text), before anything is created.
    if let Some(host) = cleartext_off_machine(&url) {
        return Err(CliError::msg(
            Exit::Refused,
            format!(
                "refusing to write a fresh secret to GitLab `{url}` over plain http: `{host}` is not this machine, so the token and the secret would travel in clear text; use the https URL"
            ),
        ));
    }
    let iam_endpoint = envv
        .var("AWS_ENDPOINT_URL_IAM")
        .or_else(|| envv.var("AWS_ENDPOINT_URL"));
    if let Some(ep) = &iam_endpoint
        && let Some(host) = cleartext_off_machine(ep)
    {
        return Err(CliError::msg(
            Exit::Refused,
            format!(
                "refusing to create an access key through `{ep}` over plain http: `{host}` is not this machine, and IAM answers CreateAccessKey with the secret; use an https endpoint"
            ),
        ));
    }
    let token: Secret = non_empty(envv, "GITLAB_TOKEN")
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
        .map_err(CliError::from_error)?
        .with_sleeper(Arc::new(std::thread::sleep));
    let mut vars = GitlabVariables::new(client, target, scope);
    let rotator = rotator_key(&args.rotator_key_var, envv)?;
    let mut keys = rolehop_aws::iam::IamKeyStore::connect_with(
        &topo.broker.region,
        &env.broker_user,
        iam_endpoint.as_deref(),
        rotator.as_ref().map(|k| (k.id.as_str(), &k.secret)),
    )
    .map_err(|e| CliError::msg(e.exit(), e))?;
    refuse_broker_identity(&topo, &keys, &args.rotator_key_var, rotator.is_some())?;

    let settings = Settings {
        user: env.broker_user.clone(),
        key_var: BROKER_KEY_VAR.to_owned(),
        legacy_vars: Some((gl.access_key_var.clone(), gl.secret_key_var.clone())),
        gitlab_place: vars.describe(),
        protected: env.protected,
        delete_after: Duration::from_secs(delete_after),
        delete_inactive_extra: args.delete_inactive_extra,
        verify_delays: verify_delays(),
    };
    let span = tracing::info_span!("rotate", env = %env.name, user = %env.broker_user);
    let _guard = span.enter();
    eprintln!(
        "rotate: environment `{}`, IAM user `{}`, GitLab {} `{}` (migrating from `{}`/`{}` where present){}",
        env.name,
        env.broker_user,
        settings.gitlab_place,
        settings.key_var,
        gl.access_key_var,
        gl.secret_key_var,
        if args.dry_run { " (dry run)" } else { "" }
    );

    if args.dry_run {
        let (mut sk, mut sv) = sim::snapshot(&mut keys, &mut vars, &settings)
            .map_err(|e| CliError::msg(e.exit(), e))?;
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

fn non_empty(env: &dyn Env, key: &str) -> Option<String> {
    env.var(key).filter(|v| !v.trim().is_empty())
}

/// The topology's `[gitlab] url` wins: a pipeline variable (`CI_SERVER_URL` can be set like any
/// other) must not send `PRIVATE-TOKEN` and the new secret elsewhere, so a differing
/// `--gitlab-url` or `CI_SERVER_URL` is refused. Without one in the topology: the flag, then
/// `CI_SERVER_URL`.
fn gitlab_url(
    origin: &str,
    topo: Option<&str>,
    flag: Option<&str>,
    env: &dyn Env,
) -> Result<String, CliError> {
    let ci = non_empty(env, "CI_SERVER_URL");
    let Some(want) = topo else {
        return flag.map(str::to_owned).or(ci).ok_or_else(|| {
            CliError::msg(
                Exit::Input,
                "no GitLab URL: set `[gitlab] url` in the topology (or pass `--gitlab-url`, or run inside a job: `CI_SERVER_URL`)",
            )
        });
    };
    let same = |other: &str| match (
        rolehop_gitlab::api_base(want),
        rolehop_gitlab::api_base(other),
    ) {
        (Ok(a), Ok(b)) => a.eq_ignore_ascii_case(&b),
        _ => want
            .trim_end_matches('/')
            .eq_ignore_ascii_case(other.trim_end_matches('/')),
    };
    for (what, other) in [
        ("--gitlab-url", flag.map(str::to_owned)),
        ("CI_SERVER_URL", ci),
    ] {
        if let Some(other) = other
            && !same(&other)
        {
            return Err(CliError::msg(
                Exit::Refused,
                format!(
                    "{origin}: `[gitlab] url` is `{want}` but {what} is `{other}`: rotate writes only to the GitLab the topology names, so a variable or flag cannot send the token and the new secret elsewhere. Fix whichever is wrong"
                ),
            ));
        }
    }
    Ok(want.to_owned())
}

/// The rotation administrator's key from `var`. Inside a GitLab job it is required: the job may
/// hold the broker key in the AWS SDK's own variables, and rotate must not run as what it rotates.
fn rotator_key(var: &str, env: &dyn Env) -> Result<Option<BrokerKey>, CliError> {
    match env.var(var) {
        Some(v) => BrokerKey::parse(var, &rolehop_core::secret::secret(v))
            .map(Some)
            .map_err(CliError::from_error),
        None if env.var("GITLAB_CI").is_some() => Err(CliError::msg(
            Exit::NoCredentials,
            format!(
                "`{var}` is not set: in a GitLab job rotate takes its AWS identity only from it (`<access key id>:<secret>` of the rotation administrator, a masked, protected variable), never from AWS_ACCESS_KEY_ID, which may be the broker key being rotated"
            ),
        )),
        None => Ok(None),
    }
}

/// Refuses to run as any broker user of the topology: a broker key can neither manage itself
/// (it has no IAM rights) nor be trusted to rotate the key it is.
fn refuse_broker_identity(
    topo: &Topology,
    keys: &rolehop_aws::iam::IamKeyStore,
    var: &str,
    explicit: bool,
) -> Result<(), CliError> {
    let arn = keys
        .caller_arn()
        .map_err(|e| CliError::msg(e.exit(), e.message))?;
    if let Some(e) = topo
        .environments
        .iter()
        .find(|e| arn.contains(":user/") && arn.ends_with(&format!("/{}", e.broker_user)))
    {
        let from = if explicit {
            format!("`{var}`")
        } else {
            "the ambient AWS credentials".to_owned()
        };
        return Err(CliError::msg(
            Exit::Refused,
            format!(
                "refusing to rotate as `{arn}`: {from} are environment `{}`'s broker key, not the rotation administrator's. Give the administrator's `<access key id>:<secret>` in `{ROTATOR_KEY_VAR}`",
                e.name
            ),
        ));
    }
    tracing::debug!(%arn, "rotating as");
    Ok(())
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
    let exit = e.exit();
    match e {
        RotateError::Store(s) => CliError::msg(exit, format!("{}{resume}", s.message)),
        RotateError::Refused(m) => CliError::msg(exit, m),
        e => CliError::new(exit, e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::collections::BTreeMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_topologys_url_wins_over_the_flag_and_ci_server_url() {
        let topo = Some("https://gitlab.example.com");
        let same = env(&[("CI_SERVER_URL", "https://GITLAB.example.com/")]);
        assert_eq!(
            gitlab_url("t.toml", topo, None, &same).unwrap(),
            "https://gitlab.example.com"
        );
        for (flag, ci) in [
            (None, "https://evil.example"),
            (Some("https://evil.example"), "https://gitlab.example.com"),
            (None, "https://gitlab.example.com.evil.example"),
        ] {
            let e = gitlab_url("t.toml", topo, flag, &env(&[("CI_SERVER_URL", ci)])).unwrap_err();
            assert_eq!(e.exit, Exit::Refused, "{flag:?} {ci}");
        }
        // Without one in the topology: the flag, then CI_SERVER_URL, else an input error.
        let ci = env(&[("CI_SERVER_URL", "https://ci.example")]);
        assert_eq!(
            gitlab_url("t.toml", None, Some("https://flag.example"), &ci).unwrap(),
            "https://flag.example"
        );
        assert_eq!(
            gitlab_url("t.toml", None, None, &ci).unwrap(),
            "https://ci.example"
        );
        let e = gitlab_url("t.toml", None, None, &env(&[])).unwrap_err();
        assert_eq!(e.exit, Exit::Input);
    }

    #[test]
    fn the_rotator_key_is_required_in_a_job_and_never_shown() {
        assert!(rotator_key(ROTATOR_KEY_VAR, &env(&[])).unwrap().is_none());
        let e = rotator_key(ROTATOR_KEY_VAR, &env(&[("GITLAB_CI", "true")])).unwrap_err();
        assert_eq!(e.exit, Exit::NoCredentials);
        let e = rotator_key(
            ROTATOR_KEY_VAR,
            &env(&[(ROTATOR_KEY_VAR, "secret-ish value")]),
        )
        .unwrap_err();
        assert_eq!(e.exit, Exit::Input);
        assert!(!e.error.to_string().contains("secret-ish"));
        let k = rotator_key(
            ROTATOR_KEY_VAR,
            &env(&[(
                ROTATOR_KEY_VAR,
                "AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG",
            )]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(k.id, "AKIAIOSFODNN7EXAMPLE");
    }
}
