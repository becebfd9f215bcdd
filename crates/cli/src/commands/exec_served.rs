//! `rolehop exec` when the command may outlive one session, or needs several accounts:
//! rolehop stays, serves the credentials on loopback (`serve_creds`) and renews them, and the
//! command reads them as the AWS SDKs read a container's credentials. One AWS profile per
//! extra target account (`--profile NAME`) reads the same endpoint through
//! `rolehop credential-process --served NAME`.

use std::io::Write as _;
use std::path::Path;

use clap::ValueEnum;
use time::OffsetDateTime;

use rolehop_core::Secret;
use rolehop_core::credentials::{self, shell_quote};
use rolehop_core::gitlab_ctx::Env;
use rolehop_core::refresh::{self, Limits};
use secrecy::ExposeSecret;

use super::exec::{Args, SCRUBBED, scrub, set_region};
use super::selection::{self, Resolved, Selection};
use super::serve_creds::{self, DEFAULT_PATH, PROFILE_PREFIX, SHADOWING, Source};
use crate::exit::{CliError, CliResult, Exit};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RefreshMode {
    /// Serve and renew when the job can outlive one session (CI_JOB_TIMEOUT) or --profile is
    /// given; otherwise hand CMD fixed credentials and replace rolehop with it.
    Auto,
    /// Always serve and renew.
    On,
    /// Never: fixed credentials in CMD's environment.
    Off,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RefreshArgs {
    /// Serve renewing credentials to CMD on loopback (AWS_CONTAINER_CREDENTIALS_FULL_URI).
    #[arg(long, value_enum, default_value_t = RefreshMode::Auto)]
    pub refresh: RefreshMode,
    /// Renew each session this long before it expires (`20m`, `90s`) [default: 20m].
    #[arg(long, value_name = "DURATION")]
    pub refresh_before: Option<String>,
    /// Also serve an AWS profile for this target account of the environment (repeatable;
    /// `AWS_PROFILE=NAME` selects it; each renews on its own). Needs --config.
    #[arg(long = "profile", value_name = "ACCOUNT", requires = "config")]
    pub profiles: Vec<String>,
}

/// What a served run needs beyond the resolved chain.
pub struct ServePlan {
    limits: Limits,
    /// Whether the window was given explicitly (then a window as long as the session is an
    /// error; the default is fitted to what STS issues).
    explicit_window: bool,
}

/// `Some` when `exec` should serve rather than replace itself.
pub fn plan(
    args: &RefreshArgs,
    sel: &Selection,
    resolved: &Resolved,
    env: &dyn Env,
    now: OffsetDateTime,
) -> CliResult<Option<ServePlan>> {
    if args.refresh == RefreshMode::Off {
        if !args.profiles.is_empty() {
            return Err(CliError::msg(
                Exit::Usage,
                "--profile needs the credentials endpoint: drop --refresh off",
            ));
        }
        return Ok(None);
    }
    let deadline = refresh::job_deadline(env, now).map_err(CliError::from_error)?;
    let planned = planned_secs(resolved);
    let outlives = deadline.is_some_and(|d| (d.at - now).whole_seconds() > planned as i64);
    if args.refresh == RefreshMode::Auto && args.profiles.is_empty() && !outlives {
        return Ok(None);
    }
    let window_secs = match &args.refresh_before {
        Some(w) => rolehop_core::duration::parse_duration_secs(w)
            .map_err(|m| CliError::msg(Exit::Usage, format!("--refresh-before: {m}")))?,
        None => refresh::DEFAULT_WINDOW_SECS,
    };
    let explicit_window = args.refresh_before.is_some();
    if sel.config.is_none() && !args.profiles.is_empty() {
        return Err(CliError::msg(Exit::Usage, "--profile needs --config"));
    }
    Ok(Some(ServePlan {
        limits: Limits {
            job_deadline: deadline,
            token_expiry: resolved.claims.as_ref().and_then(|c| c.expires_at()),
            window_secs,
        },
        explicit_window,
    }))
}

fn planned_secs(r: &Resolved) -> u64 {
    r.plan.deployment.duration_secs
}

fn name_of(sel: &Selection) -> String {
    sel.account
        .clone()
        .or_else(|| sel.env.clone())
        .unwrap_or_else(|| "default".into())
}

/// Serves, runs CMD as a child, and exits as it did.
pub fn run(
    args: Args,
    resolved: Resolved,
    plan: ServePlan,
    names: &[String],
    values: &[Secret],
) -> CliResult {
    let env = rolehop_core::gitlab_ctx::ProcessEnv;
    let now = OffsetDateTime::now_utc();
    let region = resolved.settings.region.clone();
    let mut sources = vec![Source {
        name: name_of(&args.selection),
        planned_secs: planned_secs(&resolved),
        resolved,
    }];
    for p in &args.refresh.profiles {
        credentials::profile_name(p)
            .map_err(|m| CliError::msg(Exit::Usage, format!("--profile: {m}")))?;
        let mut sel = args.selection.clone();
        sel.account = Some(p.clone());
        let r = selection::resolve(&sel, &env, now)?;
        sources.push(Source {
            name: p.clone(),
            planned_secs: planned_secs(&r),
            resolved: r,
        });
    }
    let profiles: Vec<String> = sources.iter().skip(1).map(|s| s.name.clone()).collect();
    let endpoint = serve_creds::start(sources, plan.limits, !plan.explicit_window)?;

    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| CliError::msg(Exit::Usage, "exec needs a command after `--`"))?;
    let mut cmd = std::process::Command::new(program);
    cmd.args(rest);
    for k in SCRUBBED.iter().chain(SHADOWING) {
        cmd.env_remove(k);
    }
    scrub(&mut cmd, names, values);
    cmd.env(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        endpoint.url(DEFAULT_PATH),
    )
    .env(
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        endpoint.token.expose_secret(),
    );
    set_region(&mut cmd, &env, &region);
    // Kept until CMD has ended: the profiles' config file lives in it.
    let dir = tempfile::Builder::new()
        .prefix("rolehop-exec-")
        .tempdir()
        .map_err(|e| CliError::msg(Exit::Io, format!("cannot create a private directory: {e}")))?;
    if !profiles.is_empty() {
        let path = write_profiles(dir.path(), &env, &profiles, &region, endpoint.port)?;
        cmd.env("AWS_CONFIG_FILE", path);
    }
    let code = serve_creds::run_child(cmd, &program.to_string_lossy());
    endpoint.stop();
    drop(dir);
    let code = code?;
    let _ = std::io::stdout().flush();
    std::process::exit(i32::from(code))
}

/// The job's own AWS config (if any), plus one profile per extra account that reads
/// rolehop's endpoint through `credential-process --served`. Written 0600 in a 0700
/// directory of rolehop's own.
fn write_profiles(
    dir: &Path,
    env: &dyn Env,
    profiles: &[String],
    region: &str,
    port: u16,
) -> CliResult<std::path::PathBuf> {
    let own = env
        .var("AWS_CONFIG_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| env.var("HOME").map(|h| Path::new(&h).join(".aws/config")));
    let mut text = own
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let exe = std::env::current_exe()
        .map_err(|e| CliError::msg(Exit::Io, format!("cannot find rolehop's own path: {e}")))?;
    for p in profiles {
        let process = format!(
            "{} credential-process --served {} --served-port {port}",
            shell_quote(&exe.display().to_string()),
            shell_quote(p)
        );
        text = credentials::upsert_ini_section(
            &text,
            &format!("profile {p}"),
            &[
                ("credential_process", process),
                ("region", region.to_owned()),
            ],
        );
    }
    let path = dir.join("config");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode_0600()
        .open(&path)
        .map_err(|e| CliError::msg(Exit::Io, format!("cannot write `{}`: {e}", path.display())))?;
    f.write_all(text.as_bytes())
        .map_err(|e| CliError::msg(Exit::Io, format!("cannot write `{}`: {e}", path.display())))?;
    Ok(path)
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.mode(0o600)
    }
}

/// `rolehop credential-process --served NAME`: one profile's credentials from the endpoint
/// of the `rolehop exec` this process runs under, as a `credential_process` document.
pub fn fetch_served(name: &str, port: u16, env: &dyn Env) -> CliResult<String> {
    let token = env.var("AWS_CONTAINER_AUTHORIZATION_TOKEN").ok_or_else(|| {
        CliError::msg(
            Exit::NoCredentials,
            "--served reads the endpoint of the `rolehop exec` it runs under, and AWS_CONTAINER_AUTHORIZATION_TOKEN is not set",
        )
    })?;
    let path = format!("{PROFILE_PREFIX}{name}");
    let (status, body) = loopback_get(port, &path, &token)
        .map_err(|e| CliError::msg(Exit::Unavailable, format!("cannot reach rolehop's credentials endpoint on 127.0.0.1:{port} (has `rolehop exec` ended?): {e}")))?;
    let doc: serde_json::Value = serde_json::from_str(&body).map_err(|_| {
        CliError::msg(
            Exit::Unavailable,
            format!(
                "the credentials endpoint answered HTTP {status} with something other than JSON"
            ),
        )
    })?;
    if status != 200 {
        return Err(CliError::msg(
            Exit::Unavailable,
            format!(
                "the credentials endpoint refused profile `{name}` (HTTP {status}): {}",
                doc["message"].as_str().unwrap_or("?")
            ),
        ));
    }
    Ok(format!(
        "{}\n",
        serde_json::json!({
            "Version": 1,
            "AccessKeyId": doc["AccessKeyId"],
            "SecretAccessKey": doc["SecretAccessKey"],
            "SessionToken": doc["Token"],
            "Expiration": doc["Expiration"],
        })
    ))
}

/// A GET to rolehop's own endpoint: loopback only, so no HTTP stack is needed.
fn loopback_get(port: u16, path: &str, token: &str) -> std::io::Result<(u16, String)> {
    use std::io::Read as _;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: {token}\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status"))?;
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
