//! The flags that pick a chain (shared by assume, exec, credential-process and doctor), and
//! their resolution into a plan, a base identity and STS settings.

use std::path::PathBuf;

use clap::ValueEnum;
use time::OffsetDateTime;

use rolehop_aws::chain::{ChainError, Origin};
use rolehop_aws::sts::{StaticKeys, StsSettings};
use rolehop_core::chain::{
    self, Base, ChainPlan, ChainRequest, FirstHop, GateTarget, GateUrl, HopRole,
};
use rolehop_core::credentials::ChainOutcome;
use rolehop_core::gitlab_ctx::{Env, JobContext};
use rolehop_core::id_token::{self, Claims};
use rolehop_core::job_check;
use rolehop_core::secret::secret;
use rolehop_core::topology::{Auth, JobIdentity, RefType};
use rolehop_core::{Secret, Topology, duration};

use crate::config::{CONFIG_VAR, DEFAULT_CONFIG, load_for_job};
use crate::exit::{CliError, CliResult, Exit, HasExit};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BaseArg {
    /// The topology's auth mode, else OIDC when an ID token is present, else access keys.
    Auto,
    /// AWS credentials from the environment (AWS_ACCESS_KEY_ID, ...).
    AccessKeys,
    /// A GitLab ID token exchanged with AssumeRoleWithWebIdentity.
    Oidc,
    /// A GitLab ID token posted to the claim gate (`rolehop gate serve`), which checks
    /// GitLab's signature and the environment's claim rules and returns service-role
    /// credentials.
    Gate,
}

/// How the chain enters AWS, once the flag, the topology and the token have been weighed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    AccessKeys,
    Oidc,
    Gate,
}

/// Which deployment role to reach, and how.
#[derive(Debug, Clone, clap::Args)]
pub struct Selection {
    /// The platform topology, or the job file `rolehop render` wrote for the environment
    /// (`rolehop/jobs/<env>.toml`, no policy files needed); --env and --account pick the role
    /// in it [default: $ROLEHOP_CONFIG, else rolehop.toml, unless role ARNs are given].
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Environment name in the topology.
    #[arg(long, value_name = "ENV", env = "ROLEHOP_ENV")]
    pub env: Option<String>,
    /// Target account name in that environment (may be omitted when it has only one).
    #[arg(long, value_name = "NAME", env = "ROLEHOP_ACCOUNT")]
    pub account: Option<String>,
    /// Service role ARN in the broker account (without --config).
    #[arg(
        long,
        value_name = "ARN",
        env = "ROLEHOP_SERVICE_ROLE_ARN",
        hide_env_values = true,
        conflicts_with = "config"
    )]
    pub service_role_arn: Option<String>,
    /// Deployment role ARN in the target account (without --config).
    #[arg(
        long,
        value_name = "ARN",
        env = "ROLEHOP_DEPLOY_ROLE_ARN",
        hide_env_values = true,
        conflicts_with = "config"
    )]
    pub deploy_role_arn: Option<String>,
    /// External id for the deployment role (without --config; with it, the topology's).
    #[arg(
        long,
        value_name = "ID",
        env = "ROLEHOP_EXTERNAL_ID",
        hide_env_values = true
    )]
    pub external_id: Option<String>,
    /// Treat the environment as protected (without --config; with it, the topology decides).
    #[arg(long, env = "ROLEHOP_PROTECTED")]
    pub protected: bool,
    /// How the job enters AWS.
    #[arg(long, value_enum, default_value_t = BaseArg::Auto)]
    pub base: BaseArg,
    /// Variable holding the GitLab ID token (OIDC).
    #[arg(long, value_name = "VAR", default_value = "ROLEHOP_ID_TOKEN")]
    pub id_token_var: String,
    /// File holding the GitLab ID token (OIDC), instead of a variable.
    #[arg(long, value_name = "FILE")]
    pub id_token_file: Option<PathBuf>,
    /// The claim gate's URL (gate mode) [default: the topology's `auth.gate_url`].
    #[arg(long, value_name = "URL", env = "ROLEHOP_GATE_URL")]
    pub gate_url: Option<String>,
    /// The environment to ask the claim gate for (gate mode, without --config; with it, --env).
    #[arg(long, value_name = "ENV", env = "ROLEHOP_GATE_ENV")]
    pub gate_env: Option<String>,
    /// AWS region for the regional STS endpoint [default: AWS_REGION, AWS_DEFAULT_REGION, the topology's].
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Deployment session length (`1h`, `45m`, `900`); chained sessions cap at 1h.
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// Do not pass session tags (for trust policies without sts:TagSession).
    #[arg(long)]
    pub no_tags: bool,
    /// Do not set a SourceIdentity (for trust policies without sts:SetSourceIdentity).
    #[arg(long)]
    pub no_source_identity: bool,
    /// Allow a protected environment from an unprotected ref. For local use only.
    #[arg(long)]
    pub allow_unprotected_ref: bool,
    /// Skip the job check (`doctor` reports it itself, then still tries the hops).
    #[arg(skip)]
    pub skip_job_check: bool,
}

/// Everything needed to run a chain.
pub struct Resolved {
    /// The chain, with the base credential its first hop spends.
    pub plan: ChainPlan,
    pub settings: StsSettings,
    /// The ID token's claims (OIDC), decoded without trust, for messages.
    pub claims: Option<Claims>,
    /// Said on stderr before the chain runs (an endpoint that sends in clear text).
    pub warnings: Vec<String>,
}

fn usage(msg: impl std::fmt::Display) -> CliError {
    CliError::msg(Exit::Usage, msg)
}

/// The file the chain is picked from, by the rule every command follows (`--config`, else
/// `ROLEHOP_CONFIG`, else `rolehop.toml`), except that role ARNs given instead select the
/// chain without any file. `None`: ARNs.
pub fn config_path(sel: &Selection, env: &dyn Env) -> CliResult<Option<PathBuf>> {
    if let Some(p) = &sel.config {
        return Ok(Some(p.clone()));
    }
    let by_arn = sel.service_role_arn.is_some() || sel.deploy_role_arn.is_some();
    match (env.var(CONFIG_VAR).filter(|v| !v.is_empty()), by_arn) {
        (Some(p), true) => Err(usage(format!(
            "both {CONFIG_VAR} (`{p}`) and a role ARN (--service-role-arn/--deploy-role-arn or their ROLEHOP_*_ARN variables) pick the chain: unset one"
        ))),
        (Some(p), false) => Ok(Some(PathBuf::from(p))),
        (None, true) => Ok(None),
        (None, false) => Ok(Some(PathBuf::from(DEFAULT_CONFIG))),
    }
}

/// Loads the file [`config_path`] names, if any.
pub fn load_selected(sel: &Selection, env: &dyn Env) -> CliResult<Option<Topology>> {
    config_path(sel, env)?
        .as_deref()
        .map(load_for_job)
        .transpose()
}

/// Resolves the selection against the environment `env` at time `now`.
pub fn resolve(sel: &Selection, env: &dyn Env, now: OffsetDateTime) -> CliResult<Resolved> {
    let job = JobContext::from_env(env);
    let topo = load_selected(sel, env)?;

    let token = read_token(sel, env)?;
    // The protected-ref refusal names what should already have kept the job out: that
    // depends on the mode.
    let refusal_oidc = topo
        .as_ref()
        .map(|t| matches!(t.auth, Auth::Oidc { .. } | Auth::OidcGate { .. }));
    let topo_mode = topo.as_ref().map(|t| topology_mode(&t.auth));
    let mode = pick_mode(sel.base, topo_mode, token.is_some());

    let (service_role_arn, deploy_role_arn, external_id, protected, env_max, env_name) = match &topo
    {
        Some(t) => {
            let name = sel.env.as_deref().ok_or_else(|| {
                usage(format!(
                    "pick the environment of `{}` with --env ENV (or ROLEHOP_ENV): {}",
                    t.origin,
                    t.environments
                        .iter()
                        .map(|e| e.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            let e = t.require_environment(name).map_err(usage)?;
            let account = match (&sel.account, e.accounts.as_slice()) {
                (Some(a), _) => e.require_account(a).map_err(usage)?,
                (None, [only]) => only,
                (None, _) => {
                    let names: Vec<&str> = e.accounts.iter().map(|a| a.name.as_str()).collect();
                    return Err(usage(format!(
                        "environment `{name}` has several accounts; pick one with --account ({})",
                        names.join(", ")
                    )));
                }
            };
            (
                Some(t.service_role_arn(e).to_string()),
                t.deployment_role_arn(e, account).to_string(),
                e.external_id.clone(),
                e.protected,
                Some(e.max_session_secs),
                Some(e.name.clone()),
            )
        }
        None => {
            let d = sel.deploy_role_arn.clone();
            let s = sel.service_role_arn.clone();
            // Behind the gate, the gate picks the service role: only the deployment role is
            // the job's to name.
            let d = match (mode, s.is_some(), d) {
                (Mode::Gate, _, Some(d)) | (_, true, Some(d)) => d,
                (Mode::Gate, _, None) => {
                    return Err(usage(
                        "gate mode without --config needs --deploy-role-arn (or ROLEHOP_DEPLOY_ROLE_ARN)",
                    ));
                }
                (_, false, _) => {
                    return Err(usage(
                        "no chain selected: pass --config F --env E [--account A], or --service-role-arn and --deploy-role-arn (or ROLEHOP_SERVICE_ROLE_ARN / ROLEHOP_DEPLOY_ROLE_ARN)",
                    ));
                }
                (_, true, None) => {
                    return Err(usage(
                        "--service-role-arn needs --deploy-role-arn (or ROLEHOP_DEPLOY_ROLE_ARN)",
                    ));
                }
            };
            (s, d, None, sel.protected, None, None)
        }
    };
    let external_id = sel.external_id.clone().or(external_id);

    chain::check_protected(
        env_name.as_deref().unwrap_or("(selected by ARN)"),
        protected,
        &job,
        sel.allow_unprotected_ref,
    )
    .map_err(|r| CliError::from_error(r.in_mode(refusal_oidc)))?;
    if !sel.skip_job_check
        && let Some(e) = topo
            .as_ref()
            .zip(env_name.as_deref())
            .and_then(|(t, n)| t.environment(n))
    {
        job_check::check_job(e, &job).map_err(|r| CliError::new(Exit::Refused, r))?;
    }

    let (base, claims) = match mode {
        Mode::AccessKeys => (Base::AccessKeys(env_keys(env)?), None),
        Mode::Oidc | Mode::Gate => {
            let token = token.ok_or_else(|| {
                CliError::msg(
                    Exit::NoCredentials,
                    format!(
                        "{} mode needs a GitLab ID token in `{}` (declare it under `id_tokens:` in .gitlab-ci.yml) or --id-token-file",
                        if mode == Mode::Gate { "gate" } else { "OIDC" },
                        sel.id_token_var
                    ),
                )
            })?;
            let claims =
                id_token::decode_unverified(&token).map_err(|e| CliError::new(Exit::Input, e))?;
            id_token::check_not_expired(&claims, now)
                .map_err(|e| CliError::new(Exit::Denied, e))?;
            let base = if mode == Mode::Gate {
                let gate = gate_target(sel, topo.as_ref(), env_name.as_deref())?;
                Base::Gate { gate, token }
            } else {
                Base::WebIdentity(token)
            };
            (base, Some(claims))
        }
    };

    let (deployment_session, session_note) = deployment_session(
        topo.as_ref(),
        env_name.as_deref(),
        &deploy_role_arn,
        &job,
        claims.as_ref(),
    )?;
    let duration_secs = sel
        .duration
        .as_deref()
        .map(duration::parse_duration_secs)
        .transpose()
        .map_err(|m| usage(format!("--duration: {m}")))?;
    let req = ChainRequest {
        base,
        service_role_arn,
        deploy_role_arn,
        duration_secs,
        environment_max_secs: env_max,
        external_id,
        tags: !sel.no_tags,
        source_identity: !sel.no_source_identity,
        deployment_session,
    };
    let mut plan = chain::plan(&req, &job).map_err(CliError::from_error)?;
    plan.notes.extend(session_note);

    let region = pick_region(sel, env, topo.as_ref()).ok_or_else(|| {
        usage("no AWS region: pass --region or set AWS_REGION (STS tokens from the regional endpoint work everywhere)")
    })?;
    let region: rolehop_core::Region = region.parse().map_err(usage)?;
    let endpoint = sts_endpoint(env);
    let warnings = endpoint
        .as_deref()
        .and_then(|url| cleartext_warning(url, mode == Mode::Oidc))
        .into_iter()
        .collect();
    Ok(Resolved {
        plan,
        settings: sts_settings(region, endpoint, env)?,
        claims,
        warnings,
    })
}

/// The topology's auth mode.
fn topology_mode(auth: &Auth) -> Mode {
    match auth {
        Auth::AccessKeys => Mode::AccessKeys,
        Auth::Oidc { .. } => Mode::Oidc,
        Auth::OidcGate { .. } => Mode::Gate,
    }
}

/// The topology's gate URL, if it names one.
fn topology_gate_url(auth: &Auth) -> Option<String> {
    match auth {
        Auth::OidcGate { gate_url, .. } => gate_url.clone(),
        Auth::AccessKeys | Auth::Oidc { .. } => None,
    }
}

/// The gate and the environment to ask it for: `--gate-url` / `ROLEHOP_GATE_URL`, else the
/// topology's `auth.gate_url`; `--env` with a topology, else `--gate-env`.
fn gate_target(
    sel: &Selection,
    topo: Option<&Topology>,
    env_name: Option<&str>,
) -> CliResult<GateTarget> {
    let raw = sel
        .gate_url
        .clone()
        .or_else(|| topo.and_then(|t| topology_gate_url(&t.auth)))
        .ok_or_else(|| {
            usage("gate mode needs the gate's URL: pass --gate-url or set ROLEHOP_GATE_URL (or `gate_url` under [auth] in the topology)")
        })?;
    let url = GateUrl::parse(&raw).map_err(|e| CliError::new(Exit::Usage, e))?;
    let environment = env_name
        .map(str::to_owned)
        .or_else(|| sel.gate_env.clone())
        .ok_or_else(|| {
            usage("gate mode without --config needs --gate-env ENV (or ROLEHOP_GATE_ENV): the environment the gate's config names")
        })?;
    Ok(GateTarget { url, environment })
}

/// STS over plain http to another machine carries the issued credentials (and, with OIDC,
/// the ID token, which anyone on the way could replay to real STS) in clear text. Local
/// emulators on another host are legitimate, so this warns rather than refuses.
pub fn cleartext_warning(url: &str, oidc: bool) -> Option<String> {
    let host = rolehop_core::endpoint::cleartext_off_machine(url)?;
    let what = if oidc {
        "the GitLab ID token and the issued credentials"
    } else {
        "the issued credentials"
    };
    Some(format!(
        "the STS endpoint `{url}` (AWS_ENDPOINT_URL) is plain http to `{host}`: {what} cross the network unencrypted; use https, or plain http only to 127.0.0.1"
    ))
}

/// The base: the flag, else the topology's mode, else OIDC when an ID token is present.
pub fn pick_mode(base: BaseArg, topology: Option<Mode>, token_present: bool) -> Mode {
    match base {
        BaseArg::AccessKeys => Mode::AccessKeys,
        BaseArg::Oidc => Mode::Oidc,
        BaseArg::Gate => Mode::Gate,
        BaseArg::Auto => topology.unwrap_or(if token_present {
            Mode::Oidc
        } else {
            Mode::AccessKeys
        }),
    }
}

/// Whether the base is an ID token (OIDC or the gate) rather than access keys.
pub fn wants_oidc(base: BaseArg, topology_says_oidc: Option<bool>, token_present: bool) -> bool {
    let topology = topology_says_oidc.map(|o| if o { Mode::Oidc } else { Mode::AccessKeys });
    pick_mode(base, topology, token_present) != Mode::AccessKeys
}

/// `--region`, else `AWS_REGION`, `AWS_DEFAULT_REGION`, the topology's broker region.
pub fn pick_region(sel: &Selection, env: &dyn Env, topo: Option<&Topology>) -> Option<String> {
    sel.region
        .clone()
        .or_else(|| env.var("AWS_REGION"))
        .or_else(|| env.var("AWS_DEFAULT_REGION"))
        .or_else(|| topo.map(|t| t.broker.region.to_string()))
}

/// `AWS_ENDPOINT_URL_STS`, else `AWS_ENDPOINT_URL` (moto in tests); `None` is AWS itself.
/// STS settings for `region` and `endpoint` with the network of `env` (`HTTPS_PROXY`,
/// `NO_PROXY`, `AWS_CA_BUNDLE`), read once here for STS and the claim gate alike. The CA
/// bundle is read when the first call is made (`execute`), not here.
pub fn sts_settings(
    region: impl Into<String>,
    endpoint: Option<String>,
    env: &dyn Env,
) -> CliResult<StsSettings> {
    let mut settings = StsSettings::new(region, endpoint);
    settings.network = rolehop_aws::net::Network::from_env(env).map_err(CliError::from_error)?;
    Ok(settings)
}

pub fn sts_endpoint(env: &dyn Env) -> Option<String> {
    env.var("AWS_ENDPOINT_URL_STS")
        .or_else(|| env.var("AWS_ENDPOINT_URL"))
}

pub fn read_token(sel: &Selection, env: &dyn Env) -> CliResult<Option<Secret>> {
    if let Some(path) = &sel.id_token_file {
        let t = crate::config::read_text(path, "ID token file")?;
        return Ok(Some(secret(t.trim().to_owned())));
    }
    Ok(env
        .var(&sel.id_token_var)
        .map(|t| secret(t.trim().to_owned())))
}

/// The broker key: `ROLEHOP_BROKER_KEY` (`<id>:<secret>`), else the legacy two variables.
fn env_keys(env: &dyn Env) -> CliResult<StaticKeys> {
    use rolehop_core::broker_key::{self, KeySource};
    match broker_key::from_env(env).map_err(|e| CliError::new(Exit::Input, e))? {
        Some((k, source)) => Ok(StaticKeys {
            access_key_id: k.id,
            secret_access_key: k.secret,
            session_token: (source == KeySource::Legacy)
                .then(|| env.var("AWS_SESSION_TOKEN").map(secret))
                .flatten(),
        }),
        None => Err(CliError::msg(
            Exit::NoCredentials,
            "no base AWS credentials: neither ROLEHOP_BROKER_KEY (`<access key id>:<secret>`, what `rolehop rotate` stores) nor \
             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are set. In GitLab they are masked, protected variables, so jobs \
             on unprotected refs do not get them; or use OIDC (--base oidc)",
        )),
    }
}

/// Runs the chain on a single-threaded runtime: two sequential calls need no more, and it
/// starts faster than a multi-threaded one.
pub fn execute(resolved: &Resolved) -> CliResult<ChainOutcome> {
    // Read only now, when a call is about to be made: a cache hit never parses the bundle.
    resolved
        .settings
        .network
        .load_ca()
        .map_err(CliError::from_error)?;
    execute_raw(resolved).map_err(|e| chain_error(e, &resolved.plan, resolved.claims.as_ref()))
}

/// Like [`execute`], keeping the chain's own error (for `doctor`, which reports partial progress).
#[allow(clippy::result_large_err)] // built once, on the way out
pub fn execute_raw(resolved: &Resolved) -> Result<ChainOutcome, ChainError> {
    for warning in &resolved.warnings {
        eprintln!("rolehop: warning: {warning}");
    }
    for note in &resolved.plan.notes {
        eprintln!("rolehop: note: {note}");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ChainError {
            aws_message: Some(format!("cannot start the async runtime: {e}")),
            ..ChainError::unexpected(HopRole::Service, "", "this is a rolehop bug")
        })?;
    rt.block_on(rolehop_aws::chain::run(&resolved.plan, &resolved.settings))
}

/// The chain's error for the user: with an ID token refused by STS itself, what the token
/// says (sub, aud), which is what trust policies compare.
fn chain_error(e: ChainError, plan: &ChainPlan, claims: Option<&Claims>) -> CliError {
    let exit = e.exit();
    let mut msg = e.to_string();
    let web = matches!(plan.first, FirstHop::WebIdentity { .. });
    if let (Some(c), true, HopRole::Service, Origin::Sts) = (claims, web, e.hop, &e.origin) {
        msg.push_str(&format!(
            "\n  the token says: sub `{}`, aud `{}`",
            c.sub.as_deref().unwrap_or("?"),
            c.aud
                .as_ref()
                .map_or_else(|| "?".to_owned(), ToString::to_string)
        ));
    }
    CliError::msg(exit, msg)
}

/// The deployment hop's session policy and extra tags from the topology, chosen by the job's
/// identity: the ID token's claims when the chain spends a token (STS or the gate verifies
/// that token, so a job cannot claim another project's rule with it), else GitLab's CI_*
/// variables, which the job's author controls (least privilege for honest jobs only).
fn deployment_session(
    topo: Option<&Topology>,
    env_name: Option<&str>,
    deploy_role_arn: &str,
    job: &JobContext,
    claims: Option<&Claims>,
) -> CliResult<(chain::DeploymentSession, Option<String>)> {
    let Some(e) = topo.zip(env_name).and_then(|(t, n)| t.environment(n)) else {
        return Ok((chain::DeploymentSession::default(), None));
    };
    let account_id = deploy_role_arn
        .parse::<rolehop_core::RoleArn>()
        .map(|a| a.account_id().to_string())
        .unwrap_or_default();
    let (identity, source) = match claims {
        Some(c) => (
            JobIdentity {
                project_path: c.project_path.as_deref(),
                project_id: c.project_id.as_deref(),
                ref_type: match c.ref_type.as_deref() {
                    Some("branch") => Some(RefType::Branch),
                    Some("tag") => Some(RefType::Tag),
                    _ => None,
                },
                ref_name: c.ref_name.as_deref(),
            },
            "the ID token's claims",
        ),
        None => (
            JobIdentity {
                project_path: job.project_path.as_deref(),
                project_id: job.project_id.as_deref(),
                ref_type: if job.commit_tag.is_some() {
                    Some(RefType::Tag)
                } else if job.commit_branch.is_some() {
                    Some(RefType::Branch)
                } else {
                    None
                },
                ref_name: job.ref_name.as_deref(),
            },
            "CI_PROJECT_PATH, CI_PROJECT_ID and CI_COMMIT_*",
        ),
    };
    e.deployment_session(&account_id, &identity, source)
        .map_err(CliError::from_error)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::cleartext_warning;

    #[test]
    fn plain_http_sts_off_the_machine_is_warned_about_and_loopback_is_not() {
        assert_eq!(cleartext_warning("http://127.0.0.1:5000", true), None);
        assert_eq!(cleartext_warning("https://sts.example.com", true), None);
        let w = cleartext_warning("http://10.0.0.5:4566", true).unwrap();
        assert!(
            w.contains("`10.0.0.5`") && w.contains("GitLab ID token"),
            "{w}"
        );
        let w = cleartext_warning("http://10.0.0.5:4566", false).unwrap();
        assert!(
            !w.contains("ID token") && w.contains("issued credentials"),
            "{w}"
        );
    }
}
