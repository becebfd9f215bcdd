//! `rolehop gate lambda`: the claim gate as an AWS Lambda function behind a function URL.
//!
//! rolehop implements Lambda's custom-runtime protocol itself (the Runtime API, plain HTTP to
//! `AWS_LAMBDA_RUNTIME_API`): `GET /2018-06-01/runtime/invocation/next` blocks until a request
//! arrives, the event is a function URL event (payload format 2.0) handed to the same
//! `exchange` as `gate serve`, and the answer goes back with `POST .../invocation/<id>/response`.
//! So the function is this binary alone (`bootstrap` in the zip, on `provided.al2023`): no
//! Web Adapter layer whose ARN would have to be pinned per region, no second async runtime.
//! The JWKS cache and the replay store live as long as the execution environment.

use std::path::PathBuf;
use std::time::Duration;

use rolehop_core::gitlab_ctx::{Env, ProcessEnv};
use rolehop_gate::lambda::{parse_event, response};
use rolehop_gate::{GateConfig, Status};

use crate::commands::gate::{build, exchange, fail, route};
use crate::config::read_text;
use crate::exit::{CliError, CliResult, Exit};

/// Where the rendered function's config is: gate.toml's text in an environment variable.
pub const CONFIG_ENV: &str = "ROLEHOP_GATE_CONFIG";

/// The largest invocation event read: Lambda's own request payload limit (6 MB) and a margin.
const MAX_EVENT_BYTES: u64 = 7 * 1024 * 1024;

#[derive(clap::Args)]
pub struct LambdaArgs {
    /// The gate's config file (default: the text of the ROLEHOP_GATE_CONFIG environment
    /// variable, as `rolehop render` sets it on the function).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Timeout of one discovery/JWKS fetch.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub fetch_timeout: u64,
}

struct RuntimeApi {
    base: String,
    agent: ureq::Agent,
}

impl RuntimeApi {
    fn io(what: &str, e: impl std::fmt::Display) -> CliError {
        CliError::msg(
            Exit::Io,
            format!("the Lambda Runtime API failed ({what}): {e}"),
        )
    }

    /// The next invocation: its request id and event.
    fn next(&self) -> CliResult<(String, Vec<u8>)> {
        let mut resp = self
            .agent
            .get(format!("{}/invocation/next", self.base))
            .call()
            .map_err(|e| Self::io("invocation/next", e))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(Self::io("invocation/next", format!("HTTP {status}")));
        }
        let id = resp
            .headers()
            .get("Lambda-Runtime-Aws-Request-Id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        // It goes into a URL path: only what request ids are made of.
        if id.is_empty()
            || id.len() > 128
            || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(Self::io(
                "invocation/next",
                "no usable Lambda-Runtime-Aws-Request-Id",
            ));
        }
        let event = resp
            .body_mut()
            .with_config()
            .limit(MAX_EVENT_BYTES)
            .read_to_vec()
            .map_err(|e| Self::io("invocation/next body", e))?;
        Ok((id, event))
    }

    fn post(&self, path: &str, body: String) -> CliResult<()> {
        let resp = self
            .agent
            .post(format!("{}/{path}", self.base))
            .header("Content-Type", "application/json")
            .send(body)
            .map_err(|e| Self::io(path, e))?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            s => Err(Self::io(path, format!("HTTP {s}"))),
        }
    }
}

pub fn run(args: LambdaArgs) -> CliResult {
    let env = ProcessEnv;
    let api = env.var("AWS_LAMBDA_RUNTIME_API").ok_or_else(|| {
        CliError::msg(
            Exit::Usage,
            "AWS_LAMBDA_RUNTIME_API is not set: `rolehop gate lambda` runs inside AWS Lambda (use `rolehop gate serve` elsewhere)",
        )
    })?;
    // The runtime API is Lambda's own loopback endpoint: `host:port`, plain http.
    if api.is_empty() || !api.bytes().all(|b| b.is_ascii_graphic()) || api.contains('/') {
        return Err(CliError::msg(
            Exit::Usage,
            format!("AWS_LAMBDA_RUNTIME_API `{api}` is not `host:port`"),
        ));
    }
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            // `invocation/next` blocks until a request arrives: no global timeout; posting
            // an answer is quick.
            .timeout_connect(Some(Duration::from_secs(5)))
            .build(),
    );
    let api = RuntimeApi {
        base: format!("http://{api}/2018-06-01/runtime"),
        agent,
    };

    let gate = match load(&args, &env) {
        Ok(gate) => gate,
        Err(e) => {
            // Lambda shows an init error in the invocation's answer and the function's log.
            let body = serde_json::json!({
                "errorMessage": format!("{:#}", e.error),
                "errorType": "Rolehop.GateConfig",
            });
            let _ = api.post("init/error", body.to_string());
            return Err(e);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(Exit::Internal, e))?;
    eprintln!(
        "rolehop gate: Lambda runtime ready for {} ({} environments)",
        gate.config.verifier.issuer,
        gate.config.environments.len()
    );
    loop {
        let (id, event) = api.next()?;
        let (status, body, log) = match parse_event(&event) {
            Err(e) => fail(Status(400), &e.to_string(), format!("event: {e}")),
            Ok(req) => route(&req.path).unwrap_or_else(|| {
                exchange(
                    &gate,
                    &rt,
                    &req.method,
                    req.authorization.as_deref(),
                    req.body,
                    req.body_too_large,
                )
            }),
        };
        eprintln!("rolehop gate: {} {log}", status.0);
        api.post(
            &format!("invocation/{id}/response"),
            response(status.0, &body).to_string(),
        )?;
    }
}

fn load(args: &LambdaArgs, env: &dyn Env) -> CliResult<crate::commands::gate::Gate> {
    let (text, name) = match &args.config {
        Some(path) => (
            read_text(path, "gate config")?,
            path.display().to_string(),
        ),
        None => (
            env.var(CONFIG_ENV).ok_or_else(|| {
                CliError::msg(
                    Exit::Usage,
                    format!("no gate config: set {CONFIG_ENV} (the rendered function does) or pass --config"),
                )
            })?,
            CONFIG_ENV.to_owned(),
        ),
    };
    let config = GateConfig::from_toml(&text, &name).map_err(|e| CliError::new(Exit::Input, e))?;
    build(config, false, args.fetch_timeout)
}
