//! `rolehop init`: writes a commented starting topology. Mode, broker, accounts and projects
//! come from flags; what is missing is asked for on a terminal and is a usage error otherwise
//! (a CI job or script never waits for input). What is written is parsed with the same rules
//! as every other command first, so `init` never leaves a topology `validate` refuses.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use clap::ValueEnum;
use rolehop_core::Topology;
use rolehop_core::gitlab_ctx::ProcessEnv;

use crate::config::ConfigArg;
use crate::exit::{CliError, CliResult, Exit};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// GitLab ID tokens exchanged for the service role: no stored secret (recommended).
    Oidc,
    /// One broker IAM user per environment, its key in a masked GitLab variable.
    AccessKeys,
}

#[derive(clap::Args)]
pub struct Args {
    /// Where to write the topology [default: $ROLEHOP_CONFIG, else rolehop.toml].
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// How jobs enter AWS.
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// The broker account's id (12 digits).
    #[arg(long, value_name = "ID")]
    pub broker: Option<String>,
    /// The broker's region.
    #[arg(long, value_name = "REGION", default_value = "eu-west-1")]
    pub region: String,
    /// A target account, `ENV:NAME=ID` (repeat it; e.g. `prod:prod-eu=222222222222`). An
    /// environment named `prod` or `production` is protected.
    #[arg(long = "account", value_name = "ENV:NAME=ID")]
    pub accounts: Vec<String>,
    /// A GitLab project allowed to deploy, `group/project` (repeat it).
    #[arg(long = "project", value_name = "PATH")]
    pub projects: Vec<String>,
    /// The GitLab instance (OIDC issuer and audience).
    #[arg(long, value_name = "URL", default_value = "https://gitlab.com")]
    pub gitlab_url: String,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
}

/// One target account of the starting topology.
struct Target {
    env: String,
    name: String,
    id: String,
}

fn usage(m: impl std::fmt::Display) -> CliError {
    CliError::msg(Exit::Usage, m)
}

pub fn run(args: Args) -> CliResult {
    let path = ConfigArg {
        config: args.config.clone(),
    }
    .path(&ProcessEnv);
    if path.exists() && !args.force {
        return Err(usage(format!(
            "`{}` exists: pass --force to replace it, or -c another file",
            path.display()
        )));
    }
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let mut ask = Asker {
        interactive,
        missing: Vec::new(),
    };
    let mode = match args.mode {
        Some(m) => m,
        None => match ask
            .ask("--mode", "mode (oidc or access-keys)", Some("oidc"))
            .as_deref()
        {
            Some("access-keys") => Mode::AccessKeys,
            Some("oidc") | None => Mode::Oidc,
            Some(other) => return Err(usage(format!("unknown mode `{other}`"))),
        },
    };
    let broker = args
        .broker
        .clone()
        .or_else(|| ask.ask("--broker", "broker account id (12 digits)", None))
        .unwrap_or_default();
    let mut accounts = args.accounts.clone();
    if accounts.is_empty()
        && let Some(a) = ask.ask(
            "--account",
            "target accounts, `ENV:NAME=ID` separated by spaces",
            None,
        )
    {
        accounts = a.split_whitespace().map(str::to_owned).collect();
    }
    let mut projects = args.projects.clone();
    if projects.is_empty()
        && let Some(p) = ask.ask(
            "--project",
            "GitLab projects that deploy, `group/project` separated by spaces",
            None,
        )
    {
        projects = p.split_whitespace().map(str::to_owned).collect();
    }
    if !ask.missing.is_empty() {
        return Err(usage(format!(
            "not on a terminal, so nothing is asked: give {}",
            ask.missing.join(", ")
        )));
    }
    let targets = accounts
        .iter()
        .map(|a| parse_target(a))
        .collect::<Result<Vec<_>, _>>()?;
    let text = starting_topology(
        mode,
        &broker,
        &args.region,
        &targets,
        &projects,
        &args.gitlab_url,
    );
    // Refuse before writing: the same rules, with the policy file the text names in memory.
    let policy = POLICY.to_owned();
    Topology::parse(&path.display().to_string(), &text, &mut |rel| {
        if rel == POLICY_FILE {
            Ok(policy.clone())
        } else {
            Err(format!("no file `{rel}`"))
        }
    })
    .map_err(CliError::from_error)?;

    let dir = path.parent().unwrap_or_else(|| Path::new(""));
    let policy_path = dir.join(POLICY_FILE);
    let io = |p: &Path, e: std::io::Error| {
        CliError::msg(Exit::Io, format!("cannot write `{}`: {e}", p.display()))
    };
    let mut out = std::io::stdout().lock();
    if !policy_path.exists() {
        if let Some(d) = policy_path.parent() {
            std::fs::create_dir_all(d).map_err(|e| io(d, e))?;
        }
        std::fs::write(&policy_path, POLICY).map_err(|e| io(&policy_path, e))?;
        let _ = writeln!(out, "wrote {}", policy_path.display());
    }
    std::fs::write(&path, text).map_err(|e| io(&path, e))?;
    let _ = writeln!(out, "wrote {}", path.display());
    let _ = writeln!(
        out,
        "next: edit it, then `rolehop validate`, `rolehop render -o rolehop`, `rolehop rollout --dry-run`"
    );
    Ok(Exit::Ok)
}

/// Asks on a terminal; elsewhere records the flag that should have been given.
struct Asker {
    interactive: bool,
    missing: Vec<&'static str>,
}

impl Asker {
    fn ask(&mut self, flag: &'static str, prompt: &str, default: Option<&str>) -> Option<String> {
        if !self.interactive {
            if default.is_none() {
                self.missing.push(flag);
            }
            return default.map(str::to_owned);
        }
        let mut err = std::io::stderr().lock();
        let _ = match default {
            Some(d) => write!(err, "{prompt} [{d}]: "),
            None => write!(err, "{prompt}: "),
        };
        let _ = err.flush();
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        let line = line.trim();
        if line.is_empty() {
            default.map(str::to_owned).or_else(|| {
                self.missing.push(flag);
                None
            })
        } else {
            Some(line.to_owned())
        }
    }
}

fn parse_target(s: &str) -> CliResult<Target> {
    let bad = || {
        usage(format!(
            "--account `{s}`: expected ENV:NAME=ID, e.g. prod:prod-eu=222222222222"
        ))
    };
    let (env, rest) = s.split_once(':').ok_or_else(bad)?;
    let (name, id) = rest.split_once('=').ok_or_else(bad)?;
    // Both become TOML keys; the topology's own rules are narrower still and checked after.
    let key = |k: &str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if !key(env) || !key(name) || id.is_empty() {
        return Err(bad());
    }
    Ok(Target {
        env: env.to_owned(),
        name: name.to_owned(),
        id: id.to_owned(),
    })
}

const POLICY_FILE: &str = "policies/deploy.json";
/// A deliberately narrow start: reading CloudFormation, so a first deploy shows the chain
/// works before anyone grants more.
const POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "StartHereThenGrantWhatYourDeployNeeds",
      "Effect": "Allow",
      "Action": ["cloudformation:Describe*", "cloudformation:List*"],
      "Resource": "*"
    }
  ]
}
"#;

/// A TOML basic string: quotes, backslashes and control characters escaped, so no answer can
/// add a key to the file.
fn q(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn starting_topology(
    mode: Mode,
    broker: &str,
    region: &str,
    targets: &[Target],
    projects: &[String],
    gitlab_url: &str,
) -> String {
    let mut t = String::new();
    t.push_str("# rolehop topology, written by `rolehop init`: the one input of validate, render, rollout,\n");
    t.push_str("# audit and rotate. Check it with `rolehop validate`; every key is explained in the README.\n\n");
    t.push_str("# The broker account holds nothing but IAM: jobs enter AWS only through it.\n");
    t.push_str(&format!(
        "[broker]\naccount_id = {}\nregion = {}\n\n",
        q(broker),
        q(region)
    ));
    match mode {
        Mode::Oidc => {
            t.push_str("# OIDC: each job asks GitLab for an ID token with this audience and exchanges it for\n");
            t.push_str("# its environment's service role. No secret is stored anywhere.\n");
            t.push_str(&format!(
                "[auth]\nmode = \"oidc\"\nissuer = {}\naudience = {}\n",
                q(gitlab_url),
                q(gitlab_url)
            ));
        }
        Mode::AccessKeys => {
            t.push_str("# Access keys: one broker IAM user per environment, its key in ONE masked, protected\n");
            t.push_str("# GitLab variable that `rolehop rotate` keeps fresh.\n");
            t.push_str("[auth]\nmode = \"access-keys\"\n");
        }
    }
    let mut envs: Vec<&str> = Vec::new();
    for tg in targets {
        if !envs.contains(&tg.env.as_str()) {
            envs.push(&tg.env);
        }
    }
    let projects: Vec<String> = projects.iter().map(|p| q(p)).collect();
    for env in envs {
        let prod = env == "prod" || env == "production";
        t.push_str(&format!("\n[environments.{env}]\n"));
        if prod {
            t.push_str("protected = true          # only protected refs may deploy here\n");
            t.push_str("tier = \"production\"\n");
        } else {
            t.push_str("tier = \"staging\"\n");
        }
        t.push_str("\n# Who may deploy: the ID token's project and ref. `*` matches any characters, `/` included.\n");
        t.push_str(&format!("[environments.{env}.gitlab]\n"));
        t.push_str(&format!("projects = [{}]\n", projects.join(", ")));
        t.push_str("branches = [\"main\"]        # trusted as ref_type:branch only\n");
        t.push_str(&format!(
            "environments = [{}]   # the GitLab environment of the deploy job\n",
            q(if prod { "production" } else { env })
        ));
        t.push_str(
            "\n# The target accounts, name = id: each gets this environment's deployment role.\n",
        );
        t.push_str(&format!("[environments.{env}.accounts]\n"));
        for tg in targets.iter().filter(|tg| tg.env == env) {
            t.push_str(&format!("{} = {}\n", tg.name, q(&tg.id)));
        }
        t.push_str("\n# What the deployment role may do: start narrow, then grant what the deploy needs.\n");
        t.push_str(&format!("[environments.{env}.permissions]\n"));
        t.push_str(&format!("inline_policies = [{}]\n", q(POLICY_FILE)));
    }
    t
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn targets() -> Vec<Target> {
        ["prod:prod-eu=222222222222", "staging:stage=333333333333"]
            .iter()
            .map(|t| parse_target(t).unwrap())
            .collect()
    }

    fn parses(text: &str) -> Topology {
        Topology::parse("rolehop.toml", text, &mut |rel| {
            assert_eq!(rel, POLICY_FILE);
            Ok(POLICY.to_owned())
        })
        .unwrap()
    }

    #[test]
    fn the_starting_topologies_match_their_snapshots_and_parse() {
        let projects = ["northwind/web".to_owned(), "northwind/api".to_owned()];
        for (mode, name) in [(Mode::Oidc, "oidc"), (Mode::AccessKeys, "access-keys")] {
            let text = starting_topology(
                mode,
                "111111111111",
                "eu-west-1",
                &targets(),
                &projects,
                "https://gitlab.example.com",
            );
            let topo = parses(&text);
            assert_eq!(topo.environments.len(), 2);
            assert!(topo.environments[0].protected && !topo.environments[1].protected);
            insta::assert_snapshot!(format!("init-{name}"), text);
        }
    }

    #[test]
    fn an_answer_cannot_add_a_key_to_the_topology() {
        let evil = ["a\"\nmode = \"access-keys".to_owned()];
        let text = starting_topology(
            Mode::Oidc,
            "111111111111",
            "eu-west-1",
            &targets(),
            &evil,
            "https://gitlab.example.com",
        );
        // Refused by the topology's own rules (not a project path), never read as a key.
        let e = Topology::parse("rolehop.toml", &text, &mut |_| Ok(POLICY.to_owned()))
            .unwrap_err()
            .to_string();
        assert!(!e.contains("syntax"), "{e}");
        assert!(parse_target("prod]\n[x:a=1").is_err());
        assert!(parse_target("prod:a").is_err());
    }
}
