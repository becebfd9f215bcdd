//! `rolehop credential-process`: the chain as an AWS `credential_process`, so SDKs refresh
//! deployment credentials by re-running it when they near expiry.
//!
//! In a job, results are cached per job and chain inputs (`cred_cache`): a script that calls
//! the aws CLI 40 times runs the chain once per session instead of 40 times.

use secrecy::ExposeSecret;
use time::OffsetDateTime;

use rolehop_core::chain::FirstHop;
use rolehop_core::credential_cache::{self, CacheInputs};
use rolehop_core::credentials::{self, ChainOutcome, Format};
use rolehop_core::gitlab_ctx::{JobContext, ProcessEnv};
use rolehop_core::secret::secret;

use super::assume::print_stdout;
use super::cred_cache;
use super::selection::{self, Resolved, Selection};
use crate::exit::{CliResult, Exit};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub selection: Selection,
    /// Never read or write the per-job credential cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Read profile NAME from the endpoint of the `rolehop exec` this runs under (what the
    /// profiles `exec --profile` writes use).
    #[arg(long, value_name = "NAME", requires = "served_port", hide = true)]
    pub served: Option<String>,
    #[arg(long, value_name = "PORT", hide = true)]
    pub served_port: Option<u16>,
}

pub fn run(args: Args) -> CliResult {
    let env = ProcessEnv;
    if let (Some(name), Some(port)) = (&args.served, args.served_port) {
        print_stdout(&super::exec_served::fetch_served(name, port, &env)?)?;
        return Ok(Exit::Ok);
    }
    let now = OffsetDateTime::now_utc();
    let resolved = selection::resolve(&args.selection, &env, now)?;
    let job = JobContext::from_env(&env);
    // Outside a job there is no job for an entry to die with: no cache.
    let cache = (!args.no_cache && job.in_job())
        .then(|| match cred_cache::dir(&env) {
            Ok(d) => Some(d),
            Err(why) => {
                eprintln!("rolehop: warning: not caching credentials: {why}");
                None
            }
        })
        .flatten();
    let key = cache.as_ref().map(|_| cache_key(&resolved, &job));
    if let (Some(dir), Some(key)) = (&cache, &key)
        && let Some(credentials) = cred_cache::load(dir, key, now)
    {
        let outcome = ChainOutcome {
            credentials,
            hops: Vec::new(),
        };
        print_stdout(&credentials::render(Format::CredentialProcess, &outcome))?;
        return Ok(Exit::Ok);
    }
    let outcome = selection::execute(&resolved)?;
    if let (Some(dir), Some(key)) = (&cache, &key) {
        cred_cache::store(dir, key, &outcome.credentials);
    }
    print_stdout(&credentials::render(Format::CredentialProcess, &outcome))?;
    Ok(Exit::Ok)
}

/// Everything the chain's result depends on, the base secret included.
fn cache_key(r: &Resolved, job: &JobContext) -> credential_cache::CacheKey {
    let base = match &r.plan.first {
        FirstHop::AccessKeys { keys: k, .. } => secret(format!(
            "keys\n{}\n{}\n{}",
            k.access_key_id,
            k.secret_access_key.expose_secret(),
            k.session_token.as_ref().map_or("", |t| t.expose_secret())
        )),
        FirstHop::WebIdentity { token, .. } => secret(format!("oidc\n{}", token.expose_secret())),
        // The gate's address is part of the input: another gate may admit other claims.
        FirstHop::Gate { token, gate, .. } => {
            secret(format!("gate\n{gate:?}\n{}", token.expose_secret()))
        }
    };
    // Debug of the hops: secrets inside are redacted there, and covered by `base` above.
    let plan = format!("{:?}\n{:?}", r.plan.first, r.plan.deployment);
    let endpoint = r.settings.endpoint_url.clone().unwrap_or_default();
    let user = cred_cache::uid().to_string();
    let none = String::new();
    let job_ids = [
        job.job_id.as_ref().unwrap_or(&none).as_str(),
        job.pipeline_id.as_ref().unwrap_or(&none).as_str(),
        job.project_id.as_ref().unwrap_or(&none).as_str(),
    ];
    credential_cache::key(&CacheInputs {
        job: job_ids,
        plan: &plan,
        region: &r.settings.region,
        endpoint: &endpoint,
        base_secret: &base,
        user: &user,
    })
}
