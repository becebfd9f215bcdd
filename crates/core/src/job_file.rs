//! The job file: one environment's view of the topology, what a deploy job in an application
//! repository needs and nothing more (ARNs, region, mode, audience, the project/ref/GitLab
//! environment rules). `rolehop render` writes one per environment (`jobs/<env>.toml`);
//! `assume`, `exec`, `credential-process` and `doctor` read it where they read a topology, so
//! an application repository carries neither the platform team's topology nor its policy files.
//!
//! A job file cannot be rendered, rolled out, rotated or audited: it lacks what those need,
//! and rolling out one environment's view would tear the others down. The `[job]` table is what
//! tells the two kinds of file apart.

use indexmap::IndexMap;
use serde::Deserialize;

use crate::chain::Tag;
use crate::ids::{AccountId, Partition, Region, RoleArn};
use crate::span::Location;
use crate::topology::{
    Auth, Broker, Environment, GitlabAccess, PermissionModel, Permissions, Pipeline, RefType,
    Rollout, SessionPolicyDoc, SessionPolicyRule, TargetAccount, Tier, Topology, Unmatched,
};
use crate::topology::{Diagnostic, TopologyError};
use crate::validate;

/// The job file format this build writes and reads. A newer rolehop that changes its meaning
/// bumps it, so an old binary refuses a file it would misread instead of guessing.
pub const FORMAT: u32 = 2;

/// The format of job files without session policies or extra session tags: written for
/// them still, so rolehop releases before format 2 keep reading the files they understand,
/// and refuse (rather than run without its session policy) a file that has them.
pub const FORMAT_PLAIN: u32 = 1;

/// The folder of `render`'s output holding the job files.
pub const JOBS_DIR: &str = "jobs";

/// The job file's path inside `render`'s output folder.
pub fn job_file_name(env: &str) -> String {
    format!("{JOBS_DIR}/{env}.toml")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJobFile {
    job: RawJob,
    broker: RawBroker,
    auth: RawAuth,
    environment: RawEnvironment,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    format: u32,
    environment: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBroker {
    account_id: String,
    region: String,
}

/// `mode` plus the fields that mode needs; a further mode (a claim gate's URL) is one more
/// optional field here.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    mode: String,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    audience: Option<String>,
    /// Gate mode: where the job posts its ID token (jobs may override it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gate_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvironment {
    protected: bool,
    tier: String,
    max_session_secs: u64,
    #[serde(default)]
    external_id: Option<String>,
    service_role_arn: String,
    gitlab: RawGitlab,
    accounts: Vec<RawAccount>,
    #[serde(default)]
    session_policy_default: Option<String>,
    #[serde(default)]
    session_policies: Vec<RawSessionPolicy>,
    #[serde(default)]
    session_tags: IndexMap<String, String>,
}

/// A session policy rule with its inline document embedded (compact JSON), since the job's
/// repository does not have the topology's policy files.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSessionPolicy {
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    ref_type: Option<String>,
    #[serde(default, rename = "ref")]
    ref_name: Option<String>,
    #[serde(default)]
    policy_file: Option<String>,
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    managed: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGitlab {
    projects: Vec<String>,
    branches: Vec<String>,
    tags: Vec<String>,
    environments: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    name: String,
    deploy_role_arn: String,
}

/// True when `src` is a job file rather than a topology: it has a top-level `[job]` table.
/// A file that is not TOML at all is left to the topology parser, which says where it breaks.
pub fn is_job_file(src: &str) -> bool {
    src.parse::<toml::Table>()
        .map(|t| t.contains_key("job"))
        .unwrap_or(false)
}

/// The job file of `env`, as `render` writes it.
pub fn render(topo: &Topology, env: &Environment) -> String {
    let (mode, issuer, audience, gate_url) = match &topo.auth {
        Auth::AccessKeys => ("access-keys", None, None, None),
        Auth::Oidc { issuer, audience } => {
            ("oidc", Some(issuer.clone()), Some(audience.clone()), None)
        }
        Auth::OidcGate {
            issuer,
            audience,
            gate_url,
        } => (
            "oidc-gate",
            Some(issuer.clone()),
            Some(audience.clone()),
            gate_url.clone(),
        ),
    };
    let plain = env.session_policies.is_empty() && env.session_tags.is_empty();
    let raw = RawJobFile {
        job: RawJob {
            format: if plain { FORMAT_PLAIN } else { FORMAT },
            environment: env.name.clone(),
        },
        broker: RawBroker {
            account_id: topo.broker.account_id.to_string(),
            region: topo.broker.region.to_string(),
        },
        auth: RawAuth {
            mode: mode.to_owned(),
            issuer,
            audience,
            gate_url,
        },
        environment: RawEnvironment {
            protected: env.protected,
            tier: env.tier.as_str().to_owned(),
            max_session_secs: env.max_session_secs,
            external_id: env.external_id.clone(),
            service_role_arn: topo.service_role_arn(env).to_string(),
            gitlab: RawGitlab {
                projects: env.gitlab.projects.clone(),
                branches: env.gitlab.branches.clone(),
                tags: env.gitlab.tags.clone(),
                environments: env.gitlab.environments.clone(),
            },
            accounts: env
                .accounts
                .iter()
                .map(|a| RawAccount {
                    name: a.name.clone(),
                    deploy_role_arn: topo.deployment_role_arn(env, a).to_string(),
                })
                .collect(),
            session_policy_default: (!env.session_policies.is_empty())
                .then(|| env.session_policy_default.as_str().to_owned()),
            session_policies: env
                .session_policies
                .iter()
                .map(|r| RawSessionPolicy {
                    project: r.project.clone(),
                    project_id: r.project_id.clone(),
                    ref_type: r.ref_type.map(|t| t.as_str().to_owned()),
                    ref_name: r.ref_name.clone(),
                    policy_file: r.policy.as_ref().map(|p| p.path.clone()),
                    policy: r.policy.as_ref().map(SessionPolicyDoc::compact),
                    managed: r.managed.clone(),
                })
                .collect(),
            session_tags: env
                .session_tags
                .iter()
                .map(|t| (t.key.clone(), t.value.clone()))
                .collect(),
        },
    };
    let body = emit(&raw);
    let mut out = String::new();
    for line in [
        "# Generated by `rolehop render` from the topology. Do not edit: change the topology and render again.",
        "#",
        &format!(
            "# What a deploy job of environment `{}` needs, and nothing more: `rolehop exec`, `assume`,",
            crate::span::printable(&env.name)
        ),
        "# `credential-process` and `doctor` read it with --config (or ROLEHOP_CONFIG). It holds no",
        if plain {
            "# secret and no policy; the trust policies in AWS decide, the rules below only let rolehop"
        } else {
            "# secret; the trust policies in AWS decide, the rules below only let rolehop"
        },
        "# refuse a job early and explain why.",
        "",
    ] {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&body);
    out
}

/// A TOML basic string. Written by hand rather than by the toml serializer, which leaves line
/// separators and bidirectional controls raw (harmless to TOML, not to a terminal or a job log
/// showing the file) and may pick literal strings, where no escape is possible.
fn q(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control()
                || matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
                )
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c) =>
            {
                out.push_str(&format!("\\u{:04X}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|i| q(i)).collect();
    format!("[{}]", items.join(", "))
}

/// The file's tables, in reading order.
fn emit(raw: &RawJobFile) -> String {
    let mut o = String::new();
    let mut line = |l: String| {
        o.push_str(&l);
        o.push('\n');
    };
    line("[job]".into());
    line(format!("format = {}", raw.job.format));
    line(format!("environment = {}", q(&raw.job.environment)));
    line(String::new());
    line("[broker]".into());
    line(format!("account_id = {}", q(&raw.broker.account_id)));
    line(format!("region = {}", q(&raw.broker.region)));
    line(String::new());
    line("[auth]".into());
    line(format!("mode = {}", q(&raw.auth.mode)));
    if let Some(i) = &raw.auth.issuer {
        line(format!("issuer = {}", q(i)));
    }
    if let Some(a) = &raw.auth.audience {
        line(format!("audience = {}", q(a)));
    }
    // Jobs read the job file, never the topology: without this line `auth.gate_url` would
    // reach no job.
    if let Some(u) = &raw.auth.gate_url {
        line(format!("gate_url = {}", q(u)));
    }
    let e = &raw.environment;
    line(String::new());
    line("[environment]".into());
    line(format!("protected = {}", e.protected));
    line(format!("tier = {}", q(&e.tier)));
    line(format!("max_session_secs = {}", e.max_session_secs));
    if let Some(x) = &e.external_id {
        line(format!("external_id = {}", q(x)));
    }
    line(format!("service_role_arn = {}", q(&e.service_role_arn)));
    if let Some(d) = &e.session_policy_default {
        // The session policies below: the first rule matching the job wins.
        line(format!("session_policy_default = {}", q(d)));
    }
    line(String::new());
    line("[environment.gitlab]".into());
    line(format!("projects = {}", list(&e.gitlab.projects)));
    line(format!("branches = {}", list(&e.gitlab.branches)));
    line(format!("tags = {}", list(&e.gitlab.tags)));
    line(format!("environments = {}", list(&e.gitlab.environments)));
    for a in &e.accounts {
        line(String::new());
        line("[[environment.accounts]]".into());
        line(format!("name = {}", q(&a.name)));
        line(format!("deploy_role_arn = {}", q(&a.deploy_role_arn)));
    }
    if !e.session_policies.is_empty() {
        line(String::new());
        line(
            "# Session policies: the deployment hop of a job that uses rolehop is narrowed to them"
                .into(),
        );
        line(
            "# (least privilege for honest jobs; a job's author could call STS without them)."
                .into(),
        );
    }
    for r in &e.session_policies {
        line(String::new());
        line("[[environment.session_policies]]".into());
        let opt = [
            ("project", &r.project),
            ("project_id", &r.project_id),
            ("ref_type", &r.ref_type),
            ("ref", &r.ref_name),
            ("policy_file", &r.policy_file),
            ("policy", &r.policy),
        ];
        for (k, v) in opt {
            if let Some(v) = v {
                line(format!("{k} = {}", q(v)));
            }
        }
        if !r.managed.is_empty() {
            line(format!("managed = {}", list(&r.managed)));
        }
    }
    if !e.session_tags.is_empty() {
        line(String::new());
        line("[environment.session_tags]".into());
        for (k, v) in &e.session_tags {
            line(format!("{} = {}", q(k), q(v)));
        }
    }
    o
}

/// Reads a job file into a topology holding only its environment (no permissions, no
/// rollout or rotation settings), which the chain commands use like any topology.
pub fn parse(file: &str, src: &str) -> Result<Topology, TopologyError> {
    let raw: RawJobFile = toml::from_str(src).map_err(|e| TopologyError {
        diagnostics: vec![Diagnostic {
            location: e.span().map_or_else(
                || Location::file_only(file),
                |s| Location::from_span(file, src, s),
            ),
            rule: "job-file",
            message: e.message().trim().to_owned(),
        }],
    })?;
    let mut problems: Vec<String> = Vec::new();
    let mut check = |what: &str, r: Result<(), String>| {
        if let Err(m) = r {
            problems.push(format!("`{what}`: {m}"));
        }
    };
    let has_session = raw.environment.session_policy_default.is_some()
        || !raw.environment.session_policies.is_empty()
        || !raw.environment.session_tags.is_empty();
    if raw.job.format == FORMAT_PLAIN && has_session {
        check(
            "job.format",
            Err("format 1 has no session policies or session tags, yet this file lists some: render it again".into()),
        );
    } else if raw.job.format != FORMAT && raw.job.format != FORMAT_PLAIN {
        check(
            "job.format",
            Err(format!(
                "format {} is not the one this rolehop reads ({FORMAT}); render it again with this rolehop's version, or use the rolehop that wrote it",
                raw.job.format
            )),
        );
    }
    let broker_account = raw
        .broker
        .account_id
        .parse::<AccountId>()
        .unwrap_or_else(|e| {
            check("broker.account_id", Err(e.to_string()));
            AccountId::invalid(raw.broker.account_id.clone())
        });
    let broker_region = raw.broker.region.parse::<Region>().unwrap_or_else(|e| {
        check("broker.region", Err(e.to_string()));
        Region::invalid(raw.broker.region.clone())
    });
    let auth = match (
        raw.auth.mode.as_str(),
        raw.auth.issuer,
        raw.auth.audience,
        raw.auth.gate_url,
    ) {
        ("access-keys", None, None, None) => Auth::AccessKeys,
        ("oidc", Some(issuer), Some(audience), None) => {
            check("auth.issuer", validate::issuer_url(&issuer));
            Auth::Oidc { issuer, audience }
        }
        ("oidc-gate", Some(issuer), Some(audience), gate_url) => {
            check("auth.issuer", validate::gate_issuer_url(&issuer));
            Auth::OidcGate {
                issuer,
                audience,
                gate_url,
            }
        }
        (mode, ..) => {
            check(
                "auth.mode",
                Err(format!(
                    "`{mode}` with these fields is not a mode this rolehop knows: `access-keys` (no issuer or audience), `oidc` (with both) or `oidc-gate` (with both, and optionally `gate_url`)"
                )),
            );
            Auth::AccessKeys
        }
    };
    let tier = match raw.environment.tier.as_str() {
        "production" => Tier::Production,
        "staging" => Tier::Staging,
        "testing" => Tier::Testing,
        "development" => Tier::Development,
        "other" => Tier::Other,
        t => {
            check(
                "environment.tier",
                Err(format!(
                    "unknown tier `{t}` (production, staging, testing, development, other)"
                )),
            );
            Tier::Other
        }
    };
    let mut partition = Partition::Aws;
    let mut service_role = String::new();
    match raw.environment.service_role_arn.parse::<RoleArn>() {
        Ok(arn) => {
            let (p, account, name) = (
                arn.partition(),
                arn.account_id().clone(),
                arn.path_and_name().to_owned(),
            );
            if account != broker_account {
                check(
                    "environment.service_role_arn",
                    Err(format!(
                        "the service role is in account `{account}`, not the broker account `{}`",
                        raw.broker.account_id
                    )),
                );
            }
            partition = p;
            service_role = name;
        }
        Err(m) => check("environment.service_role_arn", Err(m.to_string())),
    }
    if let Some(x) = &raw.environment.external_id {
        check("environment.external_id", validate::external_id(x));
    }
    let mut deployment_role: Option<String> = None;
    let mut accounts = Vec::new();
    for (i, a) in raw.environment.accounts.iter().enumerate() {
        let key = format!("environment.accounts[{i}].deploy_role_arn");
        match a.deploy_role_arn.parse::<RoleArn>() {
            Ok(arn) => {
                let (p, id, name) = (
                    arn.partition(),
                    arn.account_id().clone(),
                    arn.path_and_name().to_owned(),
                );
                // One template deploys the same role to every account of an environment.
                if p != partition || deployment_role.as_ref().is_some_and(|d| *d != name) {
                    check(
                        &key,
                        Err("every account of an environment has the same deployment role, in the broker's partition".into()),
                    );
                }
                deployment_role.get_or_insert(name);
                accounts.push(TargetAccount {
                    name: a.name.clone(),
                    id,
                    line: 0,
                });
            }
            Err(m) => check(&key, Err(m.to_string())),
        }
    }
    let session_policy_default = match raw.environment.session_policy_default.as_deref() {
        None => Unmatched::default(),
        Some(d) => Unmatched::parse(d).unwrap_or_else(|| {
            check(
                "environment.session_policy_default",
                Err(format!("unknown `{d}`: `refuse` or `full-role`")),
            );
            Unmatched::default()
        }),
    };
    let mut session_policies = Vec::new();
    for (i, r) in raw.environment.session_policies.into_iter().enumerate() {
        let key = format!("environment.session_policies[{i}]");
        let ref_type = match r.ref_type.as_deref() {
            None => None,
            Some("branch") => Some(RefType::Branch),
            Some("tag") => Some(RefType::Tag),
            Some(t) => {
                check(&key, Err(format!("unknown ref_type `{t}`")));
                None
            }
        };
        let policy = match (r.policy, r.policy_file) {
            (Some(text), path) => match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(document) => Some(SessionPolicyDoc {
                    path: path.unwrap_or_default(),
                    document,
                }),
                Err(e) => {
                    check(&key, Err(format!("`policy` is not JSON: {e}")));
                    None
                }
            },
            (None, _) => None,
        };
        if r.project.is_none() && r.project_id.is_none() {
            check(&key, Err("names neither `project` nor `project_id`".into()));
        }
        if policy.is_none() && r.managed.is_empty() {
            check(&key, Err("has neither `policy` nor `managed`".into()));
        }
        for a in &r.managed {
            check(&key, validate::managed_policy_arn(a));
        }
        session_policies.push(SessionPolicyRule {
            line: 0,
            project: r.project,
            project_id: r.project_id,
            ref_type,
            ref_name: r.ref_name,
            policy,
            managed: r.managed,
        });
    }
    let session_tags = raw
        .environment
        .session_tags
        .into_iter()
        .map(|(key, value)| Tag { key, value })
        .collect();
    if accounts.is_empty() && problems.is_empty() {
        problems.push("`environment.accounts`: no target account".into());
    }
    if !problems.is_empty() {
        return Err(TopologyError {
            diagnostics: problems
                .into_iter()
                .map(|message| Diagnostic {
                    location: Location::file_only(file),
                    rule: "job-file",
                    message,
                })
                .collect(),
        });
    }
    let g = raw.environment.gitlab;
    let environment = Environment {
        name: raw.job.environment,
        line: 0,
        protected: raw.environment.protected,
        tier,
        service_role,
        deployment_role: deployment_role.unwrap_or_default(),
        broker_user: String::new(),
        max_session_secs: raw.environment.max_session_secs,
        external_id: raw.environment.external_id,
        gitlab: GitlabAccess {
            projects: g.projects,
            branches: g.branches,
            tags: g.tags,
            protected_ref_globs: Vec::new(),
            accept_project_globs: Vec::new(),
            environments: g.environments,
        },
        accounts,
        permissions: Permissions {
            managed_policies: Vec::new(),
            inline_policies: Vec::new(),
            boundary: None,
        },
        organizational_units: Vec::new(),
        // The gate enforces its rules; the job needs only to know where the gate is.
        gate: None,
        session_policies,
        session_policy_default,
        session_tags,
    };
    Ok(Topology {
        origin: file.to_owned(),
        broker: Broker {
            account_id: broker_account,
            region: broker_region,
            partition,
            stack_name: String::new(),
        },
        auth,
        gitlab: None,
        rollout: Rollout {
            stack_set_prefix: String::new(),
            permission_model: PermissionModel::SelfManaged {
                administration_role_arn: None,
                execution_role_name: String::new(),
            },
        },
        pipeline: Pipeline::Inline,
        environments: vec![environment],
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn topology() -> Topology {
        let src = r#"
[broker]
account_id = "111111111111"
region = "eu-west-1"

[auth]
mode = "oidc"
issuer = "https://gitlab.example.com"
audience = "https://gitlab.example.com"

[environments.prod]
protected = true
external_id = "ext-1234"
[environments.prod.gitlab]
projects = ["acme/shop"]
branches = ["main"]
environments = ["production"]
[environments.prod.accounts]
prod-eu = "222222222222"
prod-us = "333333333333"
"#;
        Topology::parse("rolehop.toml", src, &mut |p| Err(format!("no file {p}"))).unwrap()
    }

    #[test]
    fn a_job_file_reads_back_as_its_environment_with_the_same_arns_and_rules() {
        let topo = topology();
        let env = &topo.environments[0];
        let text = render(&topo, env);
        assert!(is_job_file(&text) && !is_job_file("[broker]\naccount_id = \"1\"\n"));
        let view = parse("rolehop/jobs/prod.toml", &text).unwrap();
        let v = &view.environments[0];
        assert_eq!(view.service_role_arn(v), topo.service_role_arn(env));
        for (a, b) in v.accounts.iter().zip(&env.accounts) {
            assert_eq!(
                view.deployment_role_arn(v, a),
                topo.deployment_role_arn(env, b)
            );
        }
        assert_eq!(view.auth, topo.auth);
        assert_eq!(view.broker.region, "eu-west-1");
        assert_eq!(
            (v.protected, v.tier, v.max_session_secs, &v.external_id),
            (
                env.protected,
                env.tier,
                env.max_session_secs,
                &env.external_id
            )
        );
        assert_eq!(v.gitlab.sub_patterns(), env.gitlab.sub_patterns());
        assert_eq!(v.gitlab.environments, env.gitlab.environments);
    }

    /// Gate mode accepts a plain-http issuer on loopback (a local gate, the demo): the job file
    /// rendered from such a topology must read back, or every job of it fails before its hop.
    #[test]
    fn a_gate_mode_job_file_with_a_loopback_issuer_reads_back() {
        let mut topo = topology();
        topo.auth = Auth::OidcGate {
            issuer: "http://127.0.0.1:8080".into(),
            audience: "https://gate.example.com".into(),
            gate_url: Some("http://127.0.0.1:9090/".into()),
        };
        let text = render(&topo, &topo.environments[0]);
        assert_eq!(parse("j.toml", &text).unwrap().auth, topo.auth);
        // Off loopback plain http stays refused, as in the topology.
        let e = parse(
            "j.toml",
            &text.replace("http://127.0.0.1:8080", "http://gitlab.example.com"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`auth.issuer`"), "{e}");
    }

    #[test]
    fn strings_are_escaped_so_no_value_adds_a_key_or_moves_a_terminal_cursor() {
        let mut topo = topology();
        topo.environments[0].gitlab.projects = vec!["a\"\n[job]\u{2028}\u{202e}\\x".to_owned()];
        let text = render(&topo, &topo.environments[0]);
        assert!(!text.contains('\u{2028}') && !text.contains('\u{202e}'));
        let view = parse("j.toml", &text).unwrap();
        assert_eq!(
            view.environments[0].gitlab.projects,
            topo.environments[0].gitlab.projects
        );
    }

    #[test]
    fn a_broken_job_file_names_every_bad_key() {
        let topo = topology();
        let text = render(&topo, &topo.environments[0])
            .replace("eu-west-1", "moon-1")
            .replace(
                "arn:aws:iam::333333333333:role/",
                "arn:aws:iam::333333333333:role/other-",
            );
        let e = parse("j.toml", &text).unwrap_err().to_string();
        assert!(e.contains("`broker.region`"), "{e}");
        assert!(
            e.contains("`environment.accounts[1].deploy_role_arn`"),
            "{e}"
        );
        let e = parse("j.toml", &text.replace("format = 1", "format = 9"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("format 9"), "{e}");
        let e = parse("j.toml", "[job]\nformat = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("j.toml"), "{e}");
    }
}
