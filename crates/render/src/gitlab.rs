//! The include-able GitLab pipeline: a hidden `.rolehop` template job that runs the deploy
//! command under `rolehop exec`, one deploy job per environment and target account, and (in
//! access-keys mode) a scheduled key-rotation job per environment.

use rolehop_core::topology::{Auth, ComponentSettings, Environment, Pipeline, RefType, Topology};
use serde_json::{Value, json};

use crate::yaml::{self, Entry};

/// The CI/CD variable holding the GitLab ID token in OIDC mode (read by `rolehop exec`).
pub const ID_TOKEN_VAR: &str = "ROLEHOP_ID_TOKEN";
/// The CI/CD variable holding the broker key, `<access key id>:<secret>` (access-keys mode).
pub const BROKER_KEY_VAR: &str = rolehop_core::broker_key::BROKER_KEY_VAR;
/// The CI/CD variable holding the rotation administrator's `<access key id>:<secret>`, read by
/// `rolehop rotate` in the rotation job (a name no AWS SDK reads).
pub const ROTATOR_KEY_VAR: &str = "ROLEHOP_ROTATOR_KEY";
/// The CI/CD variable holding the deploy command.
pub const DEPLOY_SCRIPT_VAR: &str = "ROLEHOP_DEPLOY_SCRIPT";
/// Where deploy jobs find their job files: the `jobs/` folder of the documented render output
/// folder `rolehop/`, relative to the repository's root (a job's working directory). A
/// pipeline rendered elsewhere sets `ROLEHOP_CONFIG` in its global `variables:`.
pub const JOB_FILES: &str = "rolehop/jobs";

fn job_name(kind: &str, env: &Environment, account: Option<&str>) -> String {
    match account {
        Some(a) => format!("rolehop:{kind}:{}:{a}", env.name),
        None => format!("rolehop:{kind}:{}", env.name),
    }
}

/// A regular expression literal for GitLab `=~` matching a ref glob (`*` = any characters).
fn ref_regex(glob: &str) -> String {
    let mut re = String::from("/^");
    for c in glob.chars() {
        match c {
            '*' => re.push_str(".*"),
            c if c.is_ascii_alphanumeric() || c == '_' || c == '-' => re.push(c),
            // RE2 (GitLab's regex engine) takes a backslash before ASCII punctuation only:
            // `\é` would make the whole `rules:if` invalid, and a letter needs no escape.
            c if c.is_ascii_punctuation() => {
                re.push('\\');
                re.push(c);
            }
            c => re.push(c),
        }
    }
    re.push_str("$/");
    re
}

/// The `if:` expressions (one per ref type declared) that admit the environment's branches
/// and tags, so a deploy job only appears in pipelines rolehop would let through.
fn ref_conditions(env: &Environment) -> Vec<String> {
    [
        (RefType::Branch, &env.gitlab.branches),
        (RefType::Tag, &env.gitlab.tags),
    ]
    .into_iter()
    .filter(|(_, names)| !names.is_empty())
    .map(|(t, names)| {
        let var = match t {
            RefType::Branch => "$CI_COMMIT_BRANCH",
            RefType::Tag => "$CI_COMMIT_TAG",
        };
        if names.iter().any(|r| r == "*") {
            var.to_owned()
        } else {
            let alts: Vec<String> = names
                .iter()
                .map(|r| format!("{var} =~ {}", ref_regex(r)))
                .collect();
            if alts.len() == 1 {
                alts.join("")
            } else {
                format!("({})", alts.join(" || "))
            }
        }
    })
    .collect()
}

fn deploy_rules(env: &Environment, access_keys: bool) -> Value {
    let mut rules = Vec::new();
    if access_keys {
        // Scheduled pipelines rotate keys; they must not deploy too.
        rules.push(json!({"if": "$CI_PIPELINE_SOURCE == \"schedule\"", "when": "never"}));
    }
    for cond in ref_conditions(env) {
        let cond = if env.protected {
            format!("$CI_COMMIT_REF_PROTECTED == \"true\" && {cond}")
        } else {
            cond
        };
        rules.push(json!({ "if": cond }));
    }
    Value::Array(rules)
}

/// The same rules as one `if:` expression, for the component's `run_if` input.
fn run_if(env: &Environment, access_keys: bool) -> String {
    let refs: Vec<String> = ref_conditions(env)
        .into_iter()
        .map(|c| format!("({c})"))
        .collect();
    let mut parts = Vec::new();
    if access_keys {
        parts.push("$CI_PIPELINE_SOURCE != \"schedule\"".to_owned());
    }
    if env.protected {
        parts.push("$CI_COMMIT_REF_PROTECTED == \"true\"".to_owned());
    }
    parts.push(if refs.len() == 1 {
        refs.concat()
    } else {
        format!("({})", refs.join(" || "))
    });
    parts.join(" && ")
}

/// The `aud` of the ID token a deploy job asks GitLab for: the trust policy's audience in OIDC
/// mode, the gate's in gate mode. Both land in the same variable, which the job side reads in
/// either mode; only the audience differs, so a token minted for AWS cannot be spent at the gate
/// and the reverse.
fn id_token_audience(auth: &Auth) -> Option<&str> {
    match auth {
        Auth::Oidc { audience, .. } | Auth::OidcGate { audience, .. } => Some(audience),
        Auth::AccessKeys => None,
    }
}

/// One `include: component:` per environment and account: the component writes the deploy
/// job (same name, environment, resource group and rules as the inline template would) and
/// installs the pinned rolehop in it.
fn component_includes(topo: &Topology, cs: &ComponentSettings, access_keys: bool) -> Value {
    let mut includes = Vec::new();
    for env in &topo.environments {
        for account in &env.accounts {
            let mut inputs = json!({
                "environment": env.name,
                "account": account.name,
                "gitlab_environment": env.gitlab.primary_environment(),
                "deployment_tier": env.tier.as_str(),
                "deploy_script": cs.deploy_script,
                "image": cs.image,
                "config": format!("{JOB_FILES}/{}.toml", env.name),
                "rolehop_version": cs.rolehop_version,
                "rolehop_sha256": cs.rolehop_sha256,
                "package_registry": cs.package_registry,
                "run_if": run_if(env, access_keys),
            });
            if let Some(audience) = id_token_audience(&topo.auth) {
                inputs["id_token_aud"] = json!(audience);
            }
            includes.push(json!({ "component": cs.component, "inputs": inputs }));
        }
    }
    Value::Array(includes)
}

/// The pipeline file.
pub fn pipeline(topo: &Topology) -> String {
    let access_keys = matches!(topo.auth, Auth::AccessKeys);
    let mut out = String::new();
    let mut head = vec![
        crate::cfn::GENERATED.to_owned(),
        "Do not edit: change the topology and render again.".to_owned(),
        String::new(),
        "Include it from .gitlab-ci.yml:".to_owned(),
        "  include:".to_owned(),
        "    - local: rolehop/gitlab-ci.yml".to_owned(),
        format!(
            "Deploy jobs read their environment's job file from {JOB_FILES}/ (render into rolehop/, or"
        ),
        "set ROLEHOP_CONFIG): commit this folder; it holds no secret and no policy.".to_owned(),
    ];
    match &topo.pipeline {
        Pipeline::Inline => head.extend(
            [
                "and say how to deploy:",
                "  variables:",
                &format!("    {DEPLOY_SCRIPT_VAR}: ./deploy.sh"),
                "",
                "The deploy command runs with the deployment role's credentials in AWS_* variables;",
                "GitLab expands `$VAR` in the variable's value before the job starts, so write `$$VAR`",
                "for what must be read at deploy time (or call a script).",
                "`rolehop` must be on the runner's PATH (or add `image:`/`before_script:` to `.rolehop`",
                "in your .gitlab-ci.yml: keys there merge with these).",
            ]
            .map(str::to_owned),
        ),
        Pipeline::Component(cs) => head.extend([
            String::new(),
            format!("Deploy jobs come from the CI/CD component {}:", cs.component),
            format!(
                "it installs rolehop {} and checks its pinned SHA-256 before running it, then runs",
                cs.rolehop_version
            ),
            "the topology's `[pipeline] deploy_script` with the deployment role's credentials.".to_owned(),
        ]),
    }
    if access_keys && !matches!(topo.pipeline, Pipeline::Inline) {
        head.push(
            "The key-rotation jobs below still need `rolehop` on the runner's PATH.".to_owned(),
        );
    }
    if access_keys {
        head.push(String::new());
        head.push(format!(
            "Access-keys mode: each environment's broker key is ONE masked, protected variable {BROKER_KEY_VAR}"
        ));
        head.push(
            "(`<access key id>:<secret>`) scoped to its GitLab environment; `rolehop rotate` keeps it fresh"
                .to_owned(),
        );
        head.push(format!(
            "as the rotation administrator, from {ROTATOR_KEY_VAR} and GITLAB_TOKEN (masked, protected)."
        ));
    } else if let Auth::OidcGate { gate_url, .. } = &topo.auth {
        head.push(String::new());
        head.push(format!(
            "Claim-gate mode: each deploy job asks GitLab for an ID token in {ID_TOKEN_VAR} for the gate's"
        ));
        head.push(
            "audience and posts it to its environment's gate, which checks the signed claims before it"
                .to_owned(),
        );
        head.push("assumes the service role; no secret is stored.".to_owned());
        head.push(match gate_url {
            Some(url) => format!(
                "The gate's URL is in the job files ({url}); ROLEHOP_GATE_URL in `variables:` overrides it."
            ),
            None => "Set each environment's gate URL as a CI/CD variable ROLEHOP_GATE_URL scoped to its"
                .to_owned(),
        });
        if gate_url.is_none() {
            head.push(
                "GitLab environment (`aws lambda get-function-url-config --function-name rolehop-<env>-gate`)."
                    .to_owned(),
            );
        }
    } else {
        head.push(String::new());
        head.push(format!(
            "OIDC mode: each deploy job asks GitLab for an ID token in {ID_TOKEN_VAR}; no secret is stored."
        ));
    }
    yaml::comment(&mut out, 0, &head);

    let template = json!({
        "stage": "deploy",
        // Neither ROLEHOP_DEPLOY_SCRIPT nor ROLEHOP_CONFIG is defined here: a job-level value
        // would shadow the one the including pipeline sets in its global `variables:`. The job
        // reads the job file rendered beside this pipeline, never the platform topology, which
        // an application repository does not have.
        "script": [
            format!("test -n \"${DEPLOY_SCRIPT_VAR}\" || {{ echo \"rolehop: set {DEPLOY_SCRIPT_VAR} to the deploy command\" >&2; exit 1; }}"),
            format!("rolehop exec --config \"${{ROLEHOP_CONFIG:-{JOB_FILES}/$ROLEHOP_ENV.toml}}\" --env \"$ROLEHOP_ENV\" --account \"$ROLEHOP_ACCOUNT\" -- sh -c \"${DEPLOY_SCRIPT_VAR}\""),
        ],
    });
    let inline = matches!(topo.pipeline, Pipeline::Inline);
    let mut jobs = match &topo.pipeline {
        Pipeline::Inline => vec![Entry::new(".rolehop", template).with_comment(&[
            "",
            "The deploy template: jobs set ROLEHOP_ENV and ROLEHOP_ACCOUNT; override `script:` through",
            "`extends: .rolehop` for more than one command.",
        ])],
        Pipeline::Component(cs) => vec![
            Entry::new("include", component_includes(topo, cs, access_keys)).with_comment(&[
                "",
                "One deploy job per environment and target account, from the component.",
            ]),
        ],
    };

    for env in &topo.environments {
        // In component mode the component writes these jobs.
        if inline {
            for (i, account) in env.accounts.iter().enumerate() {
                let mut job = json!({
                    "extends": ".rolehop",
                    "variables": {
                        "ROLEHOP_ENV": env.name,
                        "ROLEHOP_ACCOUNT": account.name,
                    },
                });
                if let Some(audience) = id_token_audience(&topo.auth) {
                    job["id_tokens"] = json!({ ID_TOKEN_VAR: { "aud": audience } });
                }
                job["environment"] = json!({
                    "name": env.gitlab.primary_environment(),
                    "deployment_tier": env.tier.as_str(),
                });
                job["resource_group"] = json!(format!("rolehop-{}", env.name));
                job["rules"] = deploy_rules(env, access_keys);
                let mut entry = Entry::new(job_name("deploy", env, Some(&account.name)), job);
                if i == 0 {
                    let mut c = vec![
                        String::new(),
                        format!(
                            "Environment `{}` ({}{}): one job per target account; the resource group keeps",
                            env.name,
                            env.tier.as_str(),
                            if env.protected { ", protected" } else { "" }
                        ),
                        "its deploys from overlapping.".to_owned(),
                    ];
                    if env.protected {
                        c.push("Protected: only pipelines of protected refs run it.".to_owned());
                    }
                    entry.comment = c;
                }
                jobs.push(entry);
            }
        }
        if access_keys {
            let mut rule = "$CI_PIPELINE_SOURCE == \"schedule\"".to_owned();
            if env.protected {
                rule.push_str(" && $CI_COMMIT_REF_PROTECTED == \"true\"");
            }
            // No `environment:`: an environment would hand this job the environment-scoped
            // broker key it rotates, and AWS SDKs read AWS_* variables first. rotate takes its
            // identity only from ROLEHOP_ROTATOR_KEY in a job and refuses a broker identity.
            let job = json!({
                "stage": "deploy",
                // Rotation needs the platform topology: its schedule belongs to the platform
                // repository, and application repositories, which have no schedule, never run it.
                "script": [format!("rolehop rotate --config \"${{ROLEHOP_CONFIG:-rolehop.toml}}\" --env {}", env.name)],
                "resource_group": format!("rolehop-{}", env.name),
                "rules": [{ "if": rule }],
            });
            jobs.push(
                Entry::new(job_name("rotate-keys", env, None), job).with_comment(&[
                    "",
                    &format!(
                        "Rotates the broker key of `{}` in scheduled pipelines (CI/CD > Schedules) as the",
                        env.name
                    ),
                    &format!(
                        "rotation administrator: {ROTATOR_KEY_VAR} (`<access key id>:<secret>`) and GITLAB_TOKEN,"
                    ),
                    "masked and protected. No `environment:`, so it never receives the broker key it rotates.",
                ]),
            );
        }
    }
    yaml::entries(&mut out, 0, &jobs);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn ref_globs_become_anchored_regexes() {
        assert_eq!(ref_regex("main"), "/^main$/");
        assert_eq!(ref_regex("v*"), "/^v.*$/");
        assert_eq!(ref_regex("release/1.2"), "/^release\\/1\\.2$/");
        assert_eq!(ref_regex("déploiement+x"), "/^déploiement\\+x$/");
    }
}
