//! `rolehop gate serve`: the claim gate as a plain HTTP service (a container or VM behind a
//! TLS-terminating proxy). A thin layer: everything decided about a request lives in
//! `rolehop_gate` (parse, verify, rules, attested session, statuses); this module reads the
//! socket, fetches keys through `rolehop_gitlab::IssuerKeySource`, calls STS through the
//! chain in `rolehop_aws`, and writes one access-log line per request to stderr. Neither the
//! token nor the credentials are ever logged.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::json;

use rolehop_aws::chain::FailureKind;
use rolehop_aws::sts::{StaticKeys, StsSettings};
use rolehop_core::chain::{Hop, HopRole, SERVICE_HOP_SECS};
use rolehop_core::credentials::{ChainOutcome, Format, render};
use rolehop_core::gitlab_ctx::{Env, ProcessEnv};
use rolehop_core::secret::secret;
use rolehop_gate::request::{MAX_BODY_BYTES, error_body, parse_request, verify_status};
use rolehop_gate::{
    AttestedSession, Decision, GateConfig, JwksCache, Status, SystemClock, Verified, Verifier,
};

use crate::commands::selection::{sts_endpoint, sts_settings};
use crate::config::read_text;
use crate::exit::{CliError, CliResult, Exit};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: GateCommand,
}

#[derive(clap::Subcommand)]
pub enum GateCommand {
    /// Serve the gate over HTTP: POST {"environment", "token"} -> service-role credentials.
    Serve(ServeArgs),
    /// Run as an AWS Lambda function behind a function URL (the `provided.al2023` custom
    /// runtime; the zip's `bootstrap` is this binary, which runs this command).
    Lambda(crate::commands::gate_lambda::LambdaArgs),
}

#[derive(clap::Args)]
pub struct ServeArgs {
    /// The address to listen on (plain HTTP: put TLS in front of it off loopback).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// The gate's config file (issuer, audience, environments with service role and rules).
    #[arg(long, value_name = "FILE", default_value = "gate.toml")]
    pub config: PathBuf,
    /// Requests handled at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: u16,
    /// Verify and evaluate rules, never call STS: answers 200 with the attested session and no
    /// credentials (for trying rules, and for measuring the gate without STS).
    #[arg(long)]
    pub dry_run: bool,
    /// Timeout of one discovery/JWKS fetch.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub fetch_timeout: u64,
}

pub(crate) struct Gate {
    pub(crate) config: GateConfig,
    verifier: Verifier,
    sts: Option<(StsSettings, StaticKeys)>,
}

pub fn run(args: Args) -> CliResult {
    match args.command {
        GateCommand::Serve(a) => serve(a),
        GateCommand::Lambda(a) => crate::commands::gate_lambda::run(a),
    }
}

/// The arguments to parse: Lambda's custom runtimes execute `bootstrap` without arguments,
/// and the gate's zip holds this binary under that name, so it then runs `gate lambda`.
pub fn bootstrap_args(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let is_bootstrap = args.len() == 1
        && std::path::Path::new(&args[0])
            .file_name()
            .is_some_and(|n| n == "bootstrap");
    if is_bootstrap {
        let mut out = args;
        out.extend(["gate".into(), "lambda".into()]);
        out
    } else {
        args
    }
}

fn env_keys(env: &dyn Env) -> Option<StaticKeys> {
    Some(StaticKeys {
        access_key_id: env.var("AWS_ACCESS_KEY_ID")?,
        secret_access_key: secret(env.var("AWS_SECRET_ACCESS_KEY")?),
        session_token: env.var("AWS_SESSION_TOKEN").map(secret),
    })
}

fn serve(args: ServeArgs) -> CliResult {
    let text = read_text(&args.config, "gate config")?;
    let config = GateConfig::from_toml(&text, &args.config.display().to_string())
        .map_err(|e| CliError::new(Exit::Input, e))?;
    let gate = Arc::new(build(config, args.dry_run, args.fetch_timeout)?);
    let server = tiny_http::Server::http(&args.listen)
        .map_err(|e| CliError::msg(Exit::Io, format!("cannot listen on `{}`: {e}", args.listen)))?;
    let server = Arc::new(server);
    eprintln!(
        "rolehop gate: listening on http://{}{} for {} ({} environments)",
        server
            .server_addr()
            .to_ip()
            .map_or_else(|| args.listen.clone(), |a| a.to_string()),
        if args.dry_run {
            " (dry run: no STS)"
        } else {
            ""
        },
        gate.config.verifier.issuer,
        gate.config.environments.len()
    );
    let workers: Vec<_> = (0..args.threads)
        .map(|_| {
            let (server, gate) = (server.clone(), gate.clone());
            std::thread::spawn(move || worker(&server, &gate))
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    Ok(Exit::Ok)
}

/// The gate of `config`: its verifier with a JWKS cache fetching from the issuer, and (unless
/// a dry run) the STS settings and its own keys from the environment.
pub(crate) fn build(config: GateConfig, dry_run: bool, fetch_timeout: u64) -> CliResult<Gate> {
    let env = ProcessEnv;
    let sts = if dry_run {
        None
    } else {
        let region = config
            .region
            .as_ref()
            .map(ToString::to_string)
            .or_else(|| env.var("AWS_REGION"))
            .or_else(|| env.var("AWS_DEFAULT_REGION"))
            .ok_or_else(|| {
                CliError::msg(
                    Exit::Usage,
                    "no region: set `region` in the gate config or AWS_REGION",
                )
            })?;
        let keys = env_keys(&env).ok_or_else(|| {
            CliError::msg(
                Exit::NoCredentials,
                "no AWS credentials for the gate itself: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) must hold the gate's execution role",
            )
        })?;
        let settings = sts_settings(region, sts_endpoint(&env), &env)?;
        // The gate serves for a long time: a bad bundle fails at start, not at the first job.
        settings.network.load_ca().map_err(CliError::from_error)?;
        Some((settings, keys))
    };
    let clock = Arc::new(SystemClock);
    let cache = JwksCache::new(
        config.verifier.issuer.clone(),
        config.verifier.algorithms.clone(),
        config.jwks,
        Box::new(rolehop_gitlab::IssuerKeySource::new(Duration::from_secs(
            fetch_timeout.max(1),
        ))),
        clock.clone(),
    );
    let verifier = Verifier::new(config.verifier.clone(), cache, clock);
    Ok(Gate {
        config,
        verifier,
        sts,
    })
}

fn worker(server: &tiny_http::Server, gate: &Gate) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        eprintln!("rolehop gate: cannot start a worker's async runtime");
        return;
    };
    while let Ok(mut req) = server.recv() {
        let (status, body, log) = handle(gate, &rt, &mut req);
        eprintln!("rolehop gate: {} {log}", status.0);
        let mut resp = tiny_http::Response::from_string(body).with_status_code(status.0);
        for (k, v) in [
            ("Content-Type", "application/json"),
            ("Cache-Control", "no-store"),
        ] {
            if let Ok(h) = tiny_http::Header::from_bytes(k, v) {
                resp = resp.with_header(h);
            }
        }
        let _ = req.respond(resp);
    }
}

/// (status, JSON body, access-log line)
pub(crate) type Answer = (Status, String, String);

pub(crate) fn fail(status: Status, message: &str, log: String) -> Answer {
    (status, error_body(status, message, None), log)
}

fn handle(gate: &Gate, rt: &tokio::runtime::Runtime, req: &mut tiny_http::Request) -> Answer {
    let path = req.url().split('?').next().unwrap_or("").to_owned();
    if let Some(answer) = route(&path) {
        return answer;
    }
    let method = req.method().as_str().to_owned();
    let authorization = req
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .map(|h| h.value.as_str().to_owned());
    // One byte more than allowed tells an oversized body from one exactly at the limit.
    let mut body = Vec::new();
    let read = req
        .as_reader()
        .take(MAX_BODY_BYTES as u64 + 1)
        .read_to_end(&mut body);
    if let Err(e) = read {
        return fail(
            Status(400),
            "the request body could not be read",
            format!("body: {e}"),
        );
    }
    let too_big = body.len() > MAX_BODY_BYTES;
    exchange(gate, rt, &method, authorization.as_deref(), body, too_big)
}

/// The answer for paths other than the gate's own (`/healthz`, 404); `None` for `/` and
/// `/v1/credentials`.
pub(crate) fn route(path: &str) -> Option<Answer> {
    if path == "/healthz" {
        return Some((Status(200), "{\"status\":\"ok\"}\n".into(), "health".into()));
    }
    if path != "/" && path != "/v1/credentials" {
        return Some(fail(
            Status(404),
            "no such path (POST / or /v1/credentials)",
            format!("path {path:?}"),
        ));
    }
    None
}

/// One exchange, whatever carried the request (the HTTP server or a Lambda function URL).
pub(crate) fn exchange(
    gate: &Gate,
    rt: &tokio::runtime::Runtime,
    method: &str,
    authorization: Option<&str>,
    body: Vec<u8>,
    too_big: bool,
) -> Answer {
    let parsed = parse_request(method, authorization, &body, too_big);
    drop(body);
    let request = match parsed {
        Ok(r) => r,
        Err(e) => return fail(e.status(), &e.to_string(), format!("bad request: {e}")),
    };
    let env_name = request.environment.clone();
    let verified = match gate.verifier.verify(request.token.expose_secret()) {
        Ok(v) => v,
        Err(e) => {
            let status = verify_status(&e);
            return fail(
                status,
                &e.to_string(),
                format!("env={env_name:?} token refused: {e}"),
            );
        }
    };
    let c = &verified.claims;
    let who = format!(
        "env={env_name:?} project={:?} ({}) ref={:?} ({}, protected={}) pipeline={} job={}",
        c.project_path,
        c.project_id,
        c.ref_name,
        c.ref_type,
        c.ref_protected,
        c.pipeline_id,
        c.job_id
    );
    let Some(env) = gate.config.environments.get(&env_name) else {
        return fail(
            Status(404),
            "the gate serves no such environment",
            format!("{who} unknown environment"),
        );
    };
    if let Decision::Refused(r) = env.rules.evaluate(c) {
        let status = Status(403);
        return (
            status,
            error_body(status, &r.to_string(), Some(&r)),
            format!("{who} refused by rule `{}`", r.rule),
        );
    }
    let session = AttestedSession::from_claims(c);
    let Some((settings, keys)) = &gate.sts else {
        let tags: serde_json::Map<String, serde_json::Value> = session
            .tags
            .iter()
            .map(|t| (t.key.clone(), json!(t.value)))
            .collect();
        let doc = json!({
            "dry_run": true,
            "environment": env_name,
            "service_role_arn": env.service_role_arn,
            "session_name": session.session_name,
            "source_identity": session.source_identity,
            "session_tags": tags,
        });
        return (
            Status(200),
            format!("{doc}\n"),
            format!("{who} allowed (dry run)"),
        );
    };
    assume(
        gate,
        rt,
        &verified,
        &env.service_role_arn,
        &session,
        settings,
        keys,
        who,
    )
}

#[allow(clippy::too_many_arguments)]
fn assume(
    gate: &Gate,
    rt: &tokio::runtime::Runtime,
    verified: &Verified,
    role_arn: &str,
    session: &AttestedSession,
    settings: &StsSettings,
    keys: &StaticKeys,
    who: String,
) -> Answer {
    let hop = Hop {
        role_arn: role_arn.to_owned(),
        session_name: session.session_name.clone(),
        // The job only needs it for its deployment hop: STS's minimum, 15 minutes.
        duration_secs: SERVICE_HOP_SECS,
        source_identity: Some(session.source_identity.clone()),
        tags: session.tags.clone(),
        transitive_tag_keys: session.transitive_keys(),
        external_id: None,
        policy: None,
        policy_arns: Vec::new(),
        optional_tags: Vec::new(),
    };
    match rt.block_on(rolehop_aws::chain::assume_one(
        &hop,
        HopRole::Service,
        keys,
        settings,
    )) {
        Ok((credentials, outcome)) => (
            Status(200),
            render(
                Format::Json,
                &ChainOutcome {
                    credentials,
                    hops: vec![outcome],
                },
            ),
            format!("{who} issued session {:?}", session.session_name),
        ),
        Err(e) => {
            // Nothing was handed out: the job may retry with the same token.
            gate.verifier.release(verified);
            let status = match e.kind {
                FailureKind::Unavailable => Status(503),
                _ => Status(502),
            };
            let message = format!("the gate could not assume the service role: {e}");
            let log = format!(
                "{who} STS failed: {}",
                e.code.as_deref().unwrap_or("no code")
            );
            fail(status, &message, log)
        }
    }
}
