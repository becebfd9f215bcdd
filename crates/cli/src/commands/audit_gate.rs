//! `rolehop audit`'s merge-request and GitLab side: the GitLab cross-check's data (from the
//! API with `GITLAB_TOKEN`, or an export file), the claim gate's rules (`--gate gate.toml`),
//! waivers and the baseline. The audit logic itself is `rolehop_audit::{gitlab_check,
//! waivers, baseline}`; this module only reads files, talks to GitLab and maps errors to exit
//! codes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use rolehop_audit::baseline::Baseline;
use rolehop_audit::gitlab_check::{GateRule, GitlabData};
use rolehop_audit::waivers::Waivers;
use rolehop_core::gitlab_ctx::Env;
use rolehop_gitlab::{ClientOptions, GitlabClient, GitlabError};

use crate::exit::{CliError, CliResult, Exit};

fn read(p: &Path) -> CliResult<String> {
    crate::config::read_text(p, "")
}

/// `--gitlab`: an `https://` (or loopback `http://`) URL is the GitLab API, anything else an
/// export file of the same shape.
pub fn gitlab_data(
    source: &str,
    wanted: &std::collections::BTreeSet<String>,
    env: &dyn Env,
) -> CliResult<GitlabData> {
    if !(source.starts_with("https://") || source.starts_with("http://")) {
        let text = read(Path::new(source))?;
        return GitlabData::parse(source, &text).map_err(|e| CliError::new(Exit::Input, e));
    }
    let token = env
        .var("GITLAB_TOKEN")
        .filter(|t| !t.is_empty())
        .map(rolehop_core::secret::secret)
        .ok_or_else(|| {
            CliError::msg(
                Exit::NoCredentials,
                "`GITLAB_TOKEN` is not set: `audit --gitlab <url>` reads protected branches, tags and environments with a token of the `read_api` scope and the Maintainer role on each project",
            )
        })?;
    let client = GitlabClient::new(source, token, ClientOptions::default())
        .map_err(|e| CliError::new(Exit::Input, e))?
        .with_sleeper(Arc::new(std::thread::sleep));
    let export = rolehop_gitlab::protection::fetch(&client, wanted).map_err(gitlab_exit)?;
    GitlabData::from_value(client.base(), &export).map_err(|e| CliError::new(Exit::Unavailable, e))
}

fn gitlab_exit(e: GitlabError) -> CliError {
    let code = match &e {
        GitlabError::Unauthorized { .. }
        | GitlabError::Forbidden { .. }
        | GitlabError::NotFound { .. }
        | GitlabError::Invalid { .. } => Exit::Denied,
        GitlabError::Unavailable { .. } | GitlabError::Unexpected { .. } => Exit::Unavailable,
        GitlabError::Config(_) => Exit::Input,
    };
    CliError::new(code, e)
}

/// The claim gate's rules from its config file. When the topology grows a gate section
/// (`[environments.X.gate]`), its rules become `GateRule`s here the same way.
pub fn gate_rules(path: &Path) -> CliResult<Vec<GateRule>> {
    let text = read(path)?;
    let file = path.display().to_string();
    let cfg = rolehop_gate::GateConfig::from_toml(&text, &file)
        .map_err(|e| CliError::new(Exit::Input, e))?;
    let strs = |g: &[rolehop_gate::Glob]| g.iter().map(|x| x.as_str().to_owned()).collect();
    Ok(cfg
        .environments
        .values()
        .map(|env| GateRule {
            environment: env.name.clone(),
            origin: format!("{file} [environments.{}.rules]", env.name),
            service_role_arn: Some(env.service_role_arn.to_string()),
            protected: false,
            project_paths: strs(&env.rules.project_paths),
            project_ids: env.rules.project_ids.clone(),
            branches: strs(&env.rules.branches),
            tags: strs(&env.rules.tags),
            ref_protected: env.rules.ref_protected,
            environment_protected: env.rules.environment_protected,
        })
        .collect())
}

pub fn waivers(path: &Path) -> CliResult<Waivers> {
    let text = read(path)?;
    Waivers::parse(&path.display().to_string(), &text, |id| {
        rolehop_audit::all_rules().any(|(r, _)| r == id)
    })
    .map_err(|e| CliError::new(Exit::Input, e))
}

pub fn baseline(path: &Path) -> CliResult<Baseline> {
    let text = read(path)?;
    Baseline::parse(&path.display().to_string(), &text).map_err(|e| CliError::new(Exit::Input, e))
}

/// Account id -> name, from the topology (`prod-eu = "222222222222"`), for the MR comment.
pub fn account_names(topo: Option<&rolehop_core::Topology>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for env in topo.iter().flat_map(|t| &t.environments) {
        for a in &env.accounts {
            out.insert(a.id.to_string(), a.name.clone());
        }
    }
    out
}
