//! `rolehop exec -- CMD ARGS...`: replace rolehop with CMD, credentials in its environment.
//!
//! rolehop `exec(2)`s rather than spawning a child: CMD gets rolehop's PID, so the runner's
//! signals reach it directly and its exit status is the job's, with nothing in between.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;

use time::OffsetDateTime;

use rolehop_core::Secret;
use rolehop_core::broker_key::{self, BROKER_KEY_VAR};
use rolehop_core::credentials;
use rolehop_core::gitlab_ctx::{Env, ProcessEnv};
use rolehop_core::secret::secret;
use secrecy::ExposeSecret;

use super::selection::{self, Selection};
use crate::exit::{CliError, CliResult};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub selection: Selection,
    #[command(flatten)]
    pub refresh: super::exec_served::RefreshArgs,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// Variables removed from CMD's environment: a profile would shadow the credentials.
pub const SCRUBBED: &[&str] = &[
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
];

/// Variables rolehop consumes by name: the deploy command never needs them.
const CONSUMED: &[&str] = &[
    BROKER_KEY_VAR,
    broker_key::LEGACY_ACCESS_KEY_VAR,
    broker_key::LEGACY_SECRET_KEY_VAR,
    "GITLAB_TOKEN",
    crate::commands::rotate::ROTATOR_KEY_VAR,
];

/// Every variable of `vars` the deploy command must not inherit: the ones rolehop consumes by
/// name (including the topology's own names for the broker key pair, `extra_names`), any whose
/// name says it is an ID token, and any holding a value rolehop used as a secret or as the ID
/// token's file, whatever the job called it (`MY_KEY: $ROLEHOP_BROKER_KEY` copies it).
pub fn consumed_vars(
    vars: &[(String, String)],
    extra_names: &[String],
    used_values: &[Secret],
) -> Vec<String> {
    vars.iter()
        .filter(|(k, v)| {
            CONSUMED.contains(&k.as_str())
                || extra_names.iter().any(|n| n == k)
                || k.to_ascii_uppercase().contains("ID_TOKEN")
                || used_values.iter().any(|u| {
                    let u = u.expose_secret();
                    !u.is_empty() && v.trim() == u
                })
        })
        .map(|(k, _)| k.clone())
        .collect()
}

/// The values rolehop read as secrets (broker key, ID token) or paths to them, and the
/// topology's names for the key pair variables.
pub fn used_by_rolehop(sel: &Selection, env: &dyn Env) -> (Vec<String>, Vec<Secret>) {
    let mut values = Vec::new();
    if let Ok(Some((k, _))) = broker_key::from_env(env) {
        values.push(secret(k.id.clone()));
        values.push(k.encode());
        values.push(k.secret);
    }
    if let Ok(Some(t)) = selection::read_token(sel, env) {
        values.push(t);
    }
    if let Some(p) = &sel.id_token_file {
        values.push(secret(p.display().to_string()));
        if let Ok(abs) = std::fs::canonicalize(p) {
            values.push(secret(abs.display().to_string()));
        }
    }
    let mut names = vec![sel.id_token_var.clone()];
    if let Ok(Some(t)) = selection::load_selected(sel, env)
        && let Some(g) = &t.gitlab
    {
        names.push(g.access_key_var.clone());
        names.push(g.secret_key_var.clone());
    }
    (names, values)
}

pub fn run(args: Args) -> CliResult {
    let env = ProcessEnv;
    let now = OffsetDateTime::now_utc();
    let resolved = selection::resolve(&args.selection, &env, now)?;
    // Read before the chain runs: the same values the chain read.
    let (names, values) = used_by_rolehop(&args.selection, &env);
    if let Some(plan) =
        super::exec_served::plan(&args.refresh, &args.selection, &resolved, &env, now)?
    {
        return super::exec_served::run(args, resolved, plan, &names, &values);
    }
    let outcome = selection::execute(&resolved)?;
    let (program, rest) = args.command.split_first().ok_or_else(|| {
        CliError::msg(crate::exit::Exit::Usage, "exec needs a command after `--`")
    })?;
    let mut cmd = std::process::Command::new(program);
    cmd.args(rest);
    for k in SCRUBBED {
        cmd.env_remove(k);
    }
    scrub(&mut cmd, &names, &values);
    // Set after the removals: the deployment role's credentials replace the broker key's.
    for (k, v) in credentials::environment(&outcome.credentials) {
        cmd.env(k, v);
    }
    set_region(&mut cmd, &env, &resolved.settings.region);
    // Only returns on failure.
    let err = cmd.exec();
    let code = match err.kind() {
        std::io::ErrorKind::NotFound => 127,
        std::io::ErrorKind::PermissionDenied => 126,
        _ => 126,
    };
    eprintln!(
        "rolehop: error: cannot run `{}`: {err}",
        program.to_string_lossy()
    );
    std::process::exit(code)
}

/// Removes from CMD's environment every variable rolehop consumed (see [`consumed_vars`]).
pub fn scrub(cmd: &mut std::process::Command, names: &[String], values: &[Secret]) {
    let all: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().unwrap_or_default())))
        .collect();
    for k in consumed_vars(&all, names, values) {
        cmd.env_remove(k);
    }
}

/// SDKs and the aws CLI need a region: fills in whichever of the two variables the job left
/// unset (the aws CLI v1 reads only AWS_DEFAULT_REGION, newer SDKs AWS_REGION first), with
/// the job's own region if it has one, else the chain's.
pub fn set_region(cmd: &mut std::process::Command, env: &dyn Env, chain_region: &str) {
    let (region, default_region) = (env.var("AWS_REGION"), env.var("AWS_DEFAULT_REGION"));
    let chosen = region
        .clone()
        .or_else(|| default_region.clone())
        .unwrap_or_else(|| chain_region.to_owned());
    if region.is_none() {
        cmd.env("AWS_REGION", &chosen);
    }
    if default_region.is_none() {
        cmd.env("AWS_DEFAULT_REGION", &chosen);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn whatever_the_job_named_them_consumed_secrets_are_stripped() {
        let vars: Vec<(String, String)> = [
            ("ROLEHOP_BROKER_KEY", "AKIAIOSFODNN7EXAMPLE:c2VjcmV0"),
            ("MY_PROD_KEY", "AKIAIOSFODNN7EXAMPLE:c2VjcmV0"),
            ("PROD_SECRET", "c2VjcmV0"),
            ("DEPLOY_KEY_ID", "AKIAOTHER"),
            ("GITLAB_TOKEN", "glpat-x"),
            ("VAULT_ID_TOKEN", "eyJhbGciOi.x.y"),
            ("JWT_COPY", "eyJ.used.token"),
            ("TOKEN_FILE", "/builds/tmp/ID_TOKEN_FILE"),
            ("PATH", "/usr/bin"),
            ("APP_SETTING", "keep me"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let got = consumed_vars(
            &vars,
            &["DEPLOY_KEY_ID".to_owned()],
            &[
                secret("c2VjcmV0"),
                secret("AKIAIOSFODNN7EXAMPLE:c2VjcmV0"),
                secret("eyJ.used.token"),
                secret("/builds/tmp/ID_TOKEN_FILE"),
            ],
        );
        assert_eq!(
            got,
            [
                "ROLEHOP_BROKER_KEY",
                "MY_PROD_KEY",
                "PROD_SECRET",
                "DEPLOY_KEY_ID",
                "GITLAB_TOKEN",
                "VAULT_ID_TOKEN",
                "JWT_COPY",
                "TOKEN_FILE"
            ]
        );
    }
}
