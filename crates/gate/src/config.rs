//! The gate's config file (`gate.toml`), until the topology gets a gate mode that renders it.
//!
//! ```toml
//! issuer = "https://gitlab.example.com"          # exact `iss`; https (http only on loopback)
//! audience = "https://gate.rolehop.example.com"  # the `aud` of the jobs' `id_tokens:`
//! region = "eu-west-1"                           # STS region (else AWS_REGION)
//! algorithms = ["RS256"]                         # default; at most RS256/RS384/RS512/ES256
//! leeway = "60s"                                 # clock skew on exp/nbf/iat
//! max_token_age = "1h"                           # by `iat`, whatever `exp` says
//! replay = false                                 # true: each `jti` gets credentials once
//! replay_capacity = 100000
//! jwks_ttl = "10m"
//! jwks_refetch_interval = "1m"                   # at most one JWKS fetch per interval
//!
//! [environments.prod]
//! service_role_arn = "arn:aws:iam::111111111111:role/rolehop-prod-service"
//!
//! [environments.prod.rules]                      # see rules::RulesSpec
//! project_ids = ["42"]
//! branches = ["main"]
//! ref_protected = true
//! ```
//!
//! Parsed once into validated types; every broken key is reported at once, by its path.

use std::collections::BTreeMap;

use rolehop_core::{Region, RoleArn};
use serde::Deserialize;

use crate::jwks::JwksSettings;
use crate::jwt::Alg;
use crate::rules::{Rules, RulesSpec};
use crate::verify::VerifierSettings;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    issuer: String,
    audience: String,
    region: Option<String>,
    algorithms: Option<Vec<String>>,
    leeway: Option<toml::Value>,
    max_token_age: Option<toml::Value>,
    #[serde(default)]
    replay: bool,
    replay_capacity: Option<usize>,
    jwks_ttl: Option<toml::Value>,
    jwks_refetch_interval: Option<toml::Value>,
    #[serde(default)]
    environments: BTreeMap<String, RawEnvironment>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvironment {
    service_role_arn: String,
    rules: RulesSpec,
}

/// One environment behind the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentGate {
    /// The environment's name, which jobs ask for and the config's table is keyed by.
    pub name: String,
    /// The role the gate assumes for a job whose claims pass `rules`.
    pub service_role_arn: RoleArn,
    /// The claim rules a job must satisfy to get this environment's credentials.
    pub rules: Rules,
}

/// The validated config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateConfig {
    /// The issuer, audience, algorithms and time limits tokens are checked against.
    pub verifier: VerifierSettings,
    /// How long fetched keys are kept and how often an unknown `kid` may trigger a refetch.
    pub jwks: JwksSettings,
    /// The STS region to call; `None` falls back to `AWS_REGION`.
    pub region: Option<Region>,
    /// The environments the gate serves, by name.
    pub environments: BTreeMap<String, EnvironmentGate>,
}

/// Everything wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct ConfigError(pub Vec<String>);

impl rolehop_core::exit::HasExit for ConfigError {
    /// The gate refuses to start on a broken config file: malformed input.
    fn exit(&self) -> rolehop_core::exit::Exit {
        rolehop_core::exit::Exit::Input
    }
}

fn loopback_http(url: &str) -> bool {
    ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| {
            url.strip_prefix(p)
                .is_some_and(|r| r.is_empty() || r.starts_with([':', '/']))
        })
}

fn secs(v: Option<&toml::Value>, key: &str, default: i64, errs: &mut Vec<String>) -> i64 {
    let parsed = match v {
        None => return default,
        Some(toml::Value::Integer(n)) if *n >= 0 => Ok(*n as u64),
        Some(toml::Value::String(s)) => rolehop_core::duration::parse_duration_secs(s),
        Some(other) => Err(format!("expected a duration like \"60s\", got {other}")),
    };
    match parsed.map(i64::try_from) {
        Ok(Ok(n)) => n,
        Ok(Err(_)) => {
            errs.push(format!("{key}: too large"));
            default
        }
        Err(e) => {
            errs.push(format!("{key}: {e}"));
            default
        }
    }
}

impl GateConfig {
    /// Parses `text` (the file named `file` in messages).
    pub fn from_toml(text: &str, file: &str) -> Result<GateConfig, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| ConfigError(vec![format!("{file}: {e}")]))?;
        let mut errs = Vec::new();
        let issuer = raw.issuer.trim_end_matches('/').to_owned();
        if !(issuer.starts_with("https://") || loopback_http(&issuer)) {
            errs.push(format!(
                "issuer: `{issuer}` must be an https URL (plain http only on loopback, for tests)"
            ));
        }
        if raw.audience.is_empty() {
            errs.push("audience: must not be empty".into());
        }
        let mut algorithms = Vec::new();
        for a in raw.algorithms.unwrap_or_else(|| vec!["RS256".into()]) {
            match Alg::parse(&a) {
                Some(alg) => algorithms.push(alg),
                None => errs.push(format!("algorithms: `{a}` is not allowed (RS256, RS384, RS512 or ES256; never `none` or HS*)")),
            }
        }
        if algorithms.is_empty() {
            errs.push("algorithms: at least one is needed".into());
        }
        let mut verifier = VerifierSettings::new(issuer, raw.audience);
        verifier.algorithms = algorithms;
        verifier.leeway_secs = secs(raw.leeway.as_ref(), "leeway", 60, &mut errs);
        if verifier.leeway_secs > 300 {
            errs.push("leeway: at most 5m (it extends every token's life)".into());
        }
        verifier.max_token_age_secs =
            secs(raw.max_token_age.as_ref(), "max_token_age", 3600, &mut errs);
        verifier.replay_capacity = raw.replay.then(|| raw.replay_capacity.unwrap_or(100_000));
        let jwks = JwksSettings {
            ttl_secs: secs(raw.jwks_ttl.as_ref(), "jwks_ttl", 600, &mut errs),
            refetch_interval_secs: secs(
                raw.jwks_refetch_interval.as_ref(),
                "jwks_refetch_interval",
                60,
                &mut errs,
            ),
        };
        if !(60..=86_400).contains(&jwks.ttl_secs) {
            errs.push("jwks_ttl: between 1m and 1d".into());
        }
        if !(1..=3600).contains(&jwks.refetch_interval_secs) {
            errs.push("jwks_refetch_interval: between 1s and 1h".into());
        }
        let region = raw.region.and_then(|r| {
            r.parse::<Region>()
                .map_err(|e| errs.push(format!("region: {e}")))
                .ok()
        });
        let mut environments = BTreeMap::new();
        if raw.environments.is_empty() {
            errs.push("environments: the gate serves no environment".into());
        }
        for (name, env) in raw.environments {
            let at = format!("environments.{name}");
            let arn = env
                .service_role_arn
                .parse::<RoleArn>()
                .map_err(|e| errs.push(format!("{at}.service_role_arn: {e}")));
            match env.rules.into_rules(&format!("{at}.rules")) {
                Ok(rules) => {
                    let Ok(service_role_arn) = arn else { continue };
                    environments.insert(
                        name.clone(),
                        EnvironmentGate {
                            name,
                            service_role_arn,
                            rules,
                        },
                    );
                }
                Err(es) => errs.extend(es.into_iter().map(|e| e.to_string())),
            }
        }
        if !errs.is_empty() {
            return Err(ConfigError(
                errs.into_iter().map(|e| format!("{file}: {e}")).collect(),
            ));
        }
        Ok(GateConfig {
            verifier,
            jwks,
            region,
            environments,
        })
    }
}
