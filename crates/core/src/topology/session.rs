//! Per-project session policies (`[[environments.<name>.session_policies]]`) and the
//! environment's extra session tags (`[environments.<name>.session_tags]`).
//!
//! A session policy only narrows: AWS intersects it with the deployment role's own policies
//! on the deployment hop's AssumeRole. Which rule applies is decided job-side by rolehop from
//! the job's identity, so it is least privilege for honest jobs (and whatever runs inside
//! them), never a defence against the job's author, who holds credentials that can call
//! AssumeRole without it (docs/session-policies.md).

use indexmap::IndexMap;
use rolehop_policy::pattern::Glob;
use toml::Spanned;

use super::build::{Checker, ReadFile};
use super::checks::{dynamic_reference_in, inline_policy_problem, is_glob_char};
use super::gate::GATE_SESSION_TAG_KEYS;
use super::raw::{RawSessionPolicy, S};
use super::{Environment, RefType};
use crate::chain::{DeploymentSession, SESSION_TAG_KEYS, TAG_VALUE_MAX, Tag, is_tag_char};
use crate::exit::{Exit, HasExit};
use crate::validate;

/// STS's limit on an inline session policy, in characters without whitespace.
pub const SESSION_POLICY_MAX_CHARS: usize = 2048;
/// STS's limit on managed session policies (`PolicyArns`) per AssumeRole.
pub const SESSION_POLICY_ARNS_MAX: usize = 10;
/// STS's limit on session tags per session, rolehop's own included.
pub const SESSION_TAGS_MAX: usize = 50;
/// STS's limit on a session tag key, in characters.
pub const TAG_KEY_MAX: usize = 128;

/// One `[[environments.<name>.session_policies]]` rule: which jobs it is for and the session
/// policy they get on the deployment hop.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionPolicyRule {
    /// The line of the rule's `project`/`project_id` (1-based; 0 from a job file).
    pub line: usize,
    /// A project path or `*` glob (`acme/shop`, `acme/shop-*`).
    pub project: Option<String>,
    /// A GitLab project id (digits).
    pub project_id: Option<String>,
    /// Only jobs on this kind of ref.
    pub ref_type: Option<RefType>,
    /// Only jobs on refs matching this name or `*` glob.
    pub ref_name: Option<String>,
    /// The inline session policy (`Policy`), read from `policy_file`.
    pub policy: Option<SessionPolicyDoc>,
    /// Managed session policies (`PolicyArns`); `${AWS::AccountId}` is the target account.
    pub managed: Vec<String>,
}

/// An inline session policy file.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionPolicyDoc {
    /// The path as written in the topology, for messages.
    pub path: String,
    /// The document, accepted by rolehop's policy parser.
    pub document: serde_json::Value,
}

impl SessionPolicyDoc {
    /// The document as sent to STS: compact JSON, the form STS's size limit counts.
    pub fn compact(&self) -> String {
        self.document.to_string()
    }
}

/// What a job matching no rule gets, in an environment that has rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unmatched {
    /// Refuse the job before any AWS call (the default): an environment that lists session
    /// policies means least privilege, and a project forgotten in the list would otherwise
    /// silently get the role's full rights.
    #[default]
    Refuse,
    /// The deployment role's full rights, no session policy (for adopting rules one project
    /// at a time); the audit reports each project left so (RH063).
    FullRole,
}

impl Unmatched {
    /// The topology's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Unmatched::Refuse => "refuse",
            Unmatched::FullRole => "full-role",
        }
    }

    /// Reads the topology's spelling.
    pub fn parse(s: &str) -> Option<Unmatched> {
        match s {
            "refuse" => Some(Unmatched::Refuse),
            "full-role" => Some(Unmatched::FullRole),
            _ => None,
        }
    }
}

/// The job facts a rule is matched on, each `None` when unknown.
#[derive(Debug, Clone, Copy, Default)]
pub struct JobIdentity<'a> {
    /// The project's full path.
    pub project_path: Option<&'a str>,
    /// The project's numeric id.
    pub project_id: Option<&'a str>,
    /// Branch or tag.
    pub ref_type: Option<RefType>,
    /// The branch or tag name.
    pub ref_name: Option<&'a str>,
}

/// Which session policy a job gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SessionChoice<'a> {
    /// The environment has no session policies: the role's full rights.
    NoRules,
    /// The first rule (in file order) that matches the job.
    Rule(&'a SessionPolicyRule),
    /// No rule matches and `session_policy_default = "full-role"`.
    FullRole,
    /// No rule matches and unmatched jobs are refused.
    Refused,
}

impl SessionPolicyRule {
    /// Whether the job is one this rule is for; a fact the rule names but the job does not
    /// know never matches.
    pub fn matches(&self, job: &JobIdentity<'_>) -> bool {
        let glob = |pattern: &Option<String>, value: Option<&str>| match pattern {
            None => true,
            Some(p) => value.is_some_and(|v| Glob::new(p, false).matches(v)),
        };
        glob(&self.project, job.project_path)
            && self
                .project_id
                .as_ref()
                .is_none_or(|id| job.project_id == Some(id.as_str()))
            && self.ref_type.is_none_or(|t| job.ref_type == Some(t))
            && glob(&self.ref_name, job.ref_name)
    }

    /// `project acme/shop on branch main`, for messages and the audit.
    pub fn describe(&self) -> String {
        let mut s = match (&self.project, &self.project_id) {
            (Some(p), Some(id)) => format!("project {p} (id {id})"),
            (Some(p), None) => format!("project {p}"),
            (None, Some(id)) => format!("project id {id}"),
            (None, None) => "any project".to_owned(),
        };
        match (self.ref_type, &self.ref_name) {
            (Some(t), Some(r)) => s.push_str(&format!(" on {} {r}", t.as_str())),
            (Some(t), None) => s.push_str(&format!(" on any {}", t.as_str())),
            (None, Some(r)) => s.push_str(&format!(" on ref {r}")),
            (None, None) => {}
        }
        s
    }

    /// Whether every job `later` matches is matched by `self` too (so `later`, after it in
    /// file order, could never apply).
    fn shadows(&self, later: &SessionPolicyRule) -> bool {
        let covers = |a: &Option<String>, b: &Option<String>| match (a, b) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => Glob::new(a, false).covers(&Glob::new(b, false)),
        };
        covers(&self.project, &later.project)
            && (self.project_id.is_none() || self.project_id == later.project_id)
            && (self.ref_type.is_none() || self.ref_type == later.ref_type)
            && covers(&self.ref_name, &later.ref_name)
    }
}

impl Environment {
    /// The session policy of a job of this environment: the first rule in file order that
    /// matches it, else what `session_policy_default` says.
    pub fn session_policy_for(&self, job: &JobIdentity<'_>) -> SessionChoice<'_> {
        if self.session_policies.is_empty() {
            return SessionChoice::NoRules;
        }
        match self.session_policies.iter().find(|r| r.matches(job)) {
            Some(r) => SessionChoice::Rule(r),
            None => match self.session_policy_default {
                Unmatched::Refuse => SessionChoice::Refused,
                Unmatched::FullRole => SessionChoice::FullRole,
            },
        }
    }
}

/// A job no session policy rule matches, in an environment that refuses such jobs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "environment `{environment}` has session policies and none matches this job ({job}, from {source_}); `session_policy_default = \"refuse\"` refuses it before any AWS call: add a rule for it to the topology, or set `session_policy_default = \"full-role\"`"
)]
pub struct SessionRefusal {
    /// The environment.
    pub environment: String,
    /// The job's identity as read (`project acme/web (id 7) on branch main`).
    pub job: String,
    /// Where the identity was read from (the ID token's claims, or CI_* variables).
    pub source_: String,
}

impl HasExit for SessionRefusal {
    fn exit(&self) -> Exit {
        Exit::Refused
    }
}

impl JobIdentity<'_> {
    fn describe(&self) -> String {
        let mut s = format!("project {}", self.project_path.unwrap_or("(unknown)"));
        if let Some(id) = self.project_id {
            s.push_str(&format!(" (id {id})"));
        }
        match (self.ref_type, self.ref_name) {
            (Some(t), Some(r)) => s.push_str(&format!(" on {} {r}", t.as_str())),
            (None, Some(r)) => s.push_str(&format!(" on ref {r}")),
            _ => {}
        }
        s
    }
}

impl Environment {
    /// The deployment hop's session policy and extra tags for `job` in target account
    /// `account_id` (`${AWS::AccountId}` in managed ARNs is that account), with a note saying
    /// which rule applied; `source` names where `job` was read from, for the refusal.
    pub fn deployment_session(
        &self,
        account_id: &str,
        job: &JobIdentity<'_>,
        source: &str,
    ) -> Result<(DeploymentSession, Option<String>), SessionRefusal> {
        let mut out = DeploymentSession {
            optional_tags: self.session_tags.clone(),
            ..DeploymentSession::default()
        };
        let note = match self.session_policy_for(job) {
            SessionChoice::NoRules => None,
            SessionChoice::FullRole => Some(format!(
                "no session policy rule matches {} ({source}): the deployment role's full rights (`session_policy_default = \"full-role\"`)",
                job.describe()
            )),
            SessionChoice::Refused => {
                return Err(SessionRefusal {
                    environment: self.name.clone(),
                    job: job.describe(),
                    source_: source.to_owned(),
                });
            }
            SessionChoice::Rule(r) => {
                out.policy = r.policy.as_ref().map(SessionPolicyDoc::compact);
                out.policy_arns = r
                    .managed
                    .iter()
                    .map(|a| a.replace(validate::ACCOUNT_ID_VAR, account_id))
                    .collect();
                Some(format!(
                    "session policy for {} applied to the deployment session{}",
                    r.describe(),
                    if r.line > 0 {
                        format!(" (topology line {})", r.line)
                    } else {
                        String::new()
                    }
                ))
            }
        };
        Ok((out, note))
    }
}

/// Builds and checks an environment's session policy rules.
pub(super) fn build_rules(
    c: &mut Checker<'_>,
    env: &str,
    raw: Vec<S<RawSessionPolicy>>,
    read: &mut ReadFile<'_>,
) -> Vec<SessionPolicyRule> {
    let mut out: Vec<SessionPolicyRule> = Vec::new();
    for r in raw {
        let span = r.span();
        let r = r.into_inner();
        if r.project.is_none() && r.project_id.is_none() {
            c.report(span.clone(), "session-policy", format!("a session policy rule of `{env}` needs `project` (a path or `*` glob) or `project_id`: a rule for every project is the deployment role itself, narrow the role instead"));
        }
        if let Some(p) = &r.project {
            c.check(p, "session-policy", |s| {
                if !s.is_empty() && s.chars().all(is_glob_char) && s.contains('/') {
                    Ok(())
                } else {
                    Err(format!("`{s}` is not a GitLab project path or `*` glob (`group/project`, letters, digits, `_`, `.`, `-`, `/`, `*`)"))
                }
            });
        }
        if let Some(id) = &r.project_id {
            c.check(id, "session-policy", |s| {
                if !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) {
                    Ok(())
                } else {
                    Err(format!(
                        "`{s}` is not a GitLab project id (digits, as a string)"
                    ))
                }
            });
        }
        let ref_type = r
            .ref_type
            .as_ref()
            .and_then(|t| match t.get_ref().as_str() {
                "branch" => Some(RefType::Branch),
                "tag" => Some(RefType::Tag),
                other => {
                    c.report(
                        t.span(),
                        "session-policy",
                        format!("unknown `ref_type` `{other}`: use `branch` or `tag`"),
                    );
                    None
                }
            });
        if let Some(rf) = &r.ref_name {
            c.check(rf, "session-policy", |s| {
                if !s.is_empty() && s.chars().all(|ch| ch.is_ascii_graphic() && ch != '?') {
                    Ok(())
                } else {
                    Err(format!(
                        "`{s}` is not a ref name or `*` glob (printable, no spaces, no `?`)"
                    ))
                }
            });
        }
        let policy = r.policy_file.as_ref().and_then(|path| {
            let text = match read(path.get_ref()) {
                Ok(t) => t,
                Err(m) => {
                    c.report(
                        path.span(),
                        "session-policy-file",
                        format!("cannot read session policy `{}`: {m}", path.get_ref()),
                    );
                    return None;
                }
            };
            let doc = match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(d) => d,
                Err(err) => {
                    c.report(
                        path.span(),
                        "session-policy-file",
                        format!("session policy `{}` is not JSON: {err}", path.get_ref()),
                    );
                    return None;
                }
            };
            // The same parser the audit evaluates with: a document it refuses, STS refuses.
            let problem = dynamic_reference_in(&doc).or_else(|| inline_policy_problem(&doc));
            if let Some(m) = problem {
                c.report(
                    path.span(),
                    "session-policy-file",
                    format!("session policy `{}` {m}", path.get_ref()),
                );
                return None;
            }
            let d = SessionPolicyDoc {
                path: path.get_ref().clone(),
                document: doc,
            };
            let n = d.compact().chars().count();
            if n > SESSION_POLICY_MAX_CHARS {
                c.report(path.span(), "session-policy-size", format!("session policy `{}` is {n} characters without whitespace; STS takes at most {SESSION_POLICY_MAX_CHARS}: move grants into managed session policies (`managed`) or narrow the deployment role", path.get_ref()));
            }
            Some(d)
        });
        if r.policy_file.is_none() && r.managed.is_empty() {
            c.report(span.clone(), "session-policy", "a session policy rule needs `policy_file` and/or `managed`: without either it would narrow nothing");
        }
        let mut seen: Vec<&str> = Vec::new();
        for a in &r.managed {
            c.check(a, "session-policy-arn", validate::managed_policy_arn);
            if seen.contains(&a.get_ref().as_str()) {
                c.report(
                    a.span(),
                    "session-policy-arn",
                    format!("`{}` is listed twice", a.get_ref()),
                );
            }
            seen.push(a.get_ref());
        }
        if let Some(extra) = r.managed.get(SESSION_POLICY_ARNS_MAX) {
            c.report(extra.span(), "session-policy-arn", format!("STS takes at most {SESSION_POLICY_ARNS_MAX} managed session policies per AssumeRole"));
        }
        let rule = SessionPolicyRule {
            line: c.line(
                r.project
                    .as_ref()
                    .or(r.project_id.as_ref())
                    .map_or(span.clone(), Spanned::span),
            ),
            project: r.project.map(Spanned::into_inner),
            project_id: r.project_id.map(Spanned::into_inner),
            ref_type,
            ref_name: r.ref_name.map(Spanned::into_inner),
            policy,
            managed: r.managed.into_iter().map(Spanned::into_inner).collect(),
        };
        // First match wins, so a rule an earlier one covers could never apply: refusing it
        // keeps the file meaning what it reads as.
        if let Some(prev) = out.iter().find(|p| p.shadows(&rule)) {
            c.report(span, "session-policy-order", format!("this rule ({}) can never apply: the rule on line {} ({}) comes first and matches every job it matches (the first matching rule wins); put the narrower rule first", rule.describe(), prev.line, prev.describe()));
        }
        out.push(rule);
    }
    out
}

/// Builds and checks an environment's extra session tags against STS's rules.
pub(super) fn build_tags(
    c: &mut Checker<'_>,
    env: &str,
    raw: IndexMap<S<String>, S<String>>,
) -> Vec<Tag> {
    let mut out: Vec<Tag> = Vec::new();
    // The most tags one session of this environment carries besides the extras: the gate's.
    let own = GATE_SESSION_TAG_KEYS.len().max(SESSION_TAG_KEYS.len());
    for (i, (k, v)) in raw.into_iter().enumerate() {
        let key = k.get_ref();
        let lower = key.to_ascii_lowercase();
        let problem = if key.is_empty() || key.chars().count() > TAG_KEY_MAX {
            Some(format!(
                "session tag key `{key}` must be 1 to {TAG_KEY_MAX} characters"
            ))
        } else if !key.chars().all(is_tag_char) {
            Some(format!(
                "session tag key `{key}` has a character STS refuses (letters, digits, spaces and `_.:/=+-@` only)"
            ))
        } else if lower.starts_with("aws:") {
            Some(format!(
                "session tag key `{key}` starts with `aws:`, which AWS reserves"
            ))
        } else if SESSION_TAG_KEYS
            .iter()
            .chain(GATE_SESSION_TAG_KEYS.iter())
            .any(|r| r.eq_ignore_ascii_case(key))
        {
            Some(format!(
                "session tag key `{key}` is one of rolehop's own identity tags; pick another key"
            ))
        } else if lower.starts_with("gitlab:") || lower.starts_with("rolehop:") {
            Some(format!(
                "session tag key `{key}` uses a prefix rolehop keeps for its own tags (`gitlab:`, `rolehop:`)"
            ))
        } else if out.iter().any(|t| t.key.eq_ignore_ascii_case(key)) {
            Some(format!(
                "session tag key `{key}` is given twice (STS compares keys without case)"
            ))
        } else {
            None
        };
        if let Some(m) = problem {
            c.report(k.span(), "session-tag", m);
        }
        let value = v.get_ref();
        if value.chars().count() > TAG_VALUE_MAX || !value.chars().all(is_tag_char) {
            c.report(v.span(), "session-tag", format!("session tag value `{value}` must be at most {TAG_VALUE_MAX} of letters, digits, spaces and `_.:/=+-@`"));
        }
        if own + i + 1 == SESSION_TAGS_MAX + 1 {
            c.report(k.span(), "session-tag", format!("environment `{env}` has too many session tags: with rolehop's own {own} a session may carry at most {SESSION_TAGS_MAX}"));
        }
        out.push(Tag {
            key: k.into_inner(),
            value: v.into_inner(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::Topology;

    const BASE: &str = r#"
[broker]
account_id = "111111111111"
region = "eu-west-1"

[auth]
mode = "oidc"
issuer = "https://gitlab.example.com"
audience = "https://gitlab.example.com"

[environments.prod]
protected = true
SETTINGS
[environments.prod.gitlab]
projects = ["acme/shop", "acme/shop-api", "acme/billing"]
branches = ["main"]
tags = ["v*"]
protected_ref_globs = ["v*"]
environments = ["production"]
[environments.prod.accounts]
prod-eu = "222222222222"
"#;

    const WEB: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::acme-shop-web/*"}]}"#;

    fn parse(settings: &str, rules: &str) -> Result<Topology, String> {
        let src = format!("{}{rules}", BASE.replace("SETTINGS", settings));
        Topology::parse("rolehop.toml", &src, &mut |p: &str| match p {
            "web.json" => Ok(WEB.to_owned()),
            "big.json" => Ok(format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:PutObject","Resource":["{}"]}}]}}"#,
                vec!["arn:aws:s3:::acme-shop-web-with-a-long-name/*"; 50].join("\",\"")
            )),
            "broken.json" => Ok("{\"Statement\": [".to_owned()),
            other => Err(format!("no file {other}")),
        })
        .map_err(|e| e.to_string())
    }

    fn job<'a>(project: &'a str, t: RefType, r: &'a str) -> JobIdentity<'a> {
        JobIdentity {
            project_path: Some(project),
            project_id: None,
            ref_type: Some(t),
            ref_name: Some(r),
        }
    }

    #[test]
    fn the_first_matching_rule_wins_and_unmatched_jobs_are_refused_by_default() {
        let topo = parse(
            "session_tags = { team = \"payments\" }",
            r#"
[[environments.prod.session_policies]]
project = "acme/shop"
ref_type = "tag"
ref = "v*"
policy_file = "web.json"
[[environments.prod.session_policies]]
project = "acme/shop*"
managed = ["arn:aws:iam::${AWS::AccountId}:policy/shop-deploy"]
"#,
        )
        .unwrap();
        let env = &topo.environments[0];
        assert_eq!(env.session_policy_default, Unmatched::Refuse);
        assert_eq!(env.session_tags[0].key, "team");
        let tagged = env.session_policy_for(&job("acme/shop", RefType::Tag, "v1.2"));
        assert!(matches!(tagged, SessionChoice::Rule(r) if r.policy.is_some()));
        let main = env.session_policy_for(&job("acme/shop", RefType::Branch, "main"));
        assert!(matches!(main, SessionChoice::Rule(r) if r.policy.is_none()));
        let api = job("acme/shop-api", RefType::Branch, "main");
        let (s, note) = env
            .deployment_session("222222222222", &api, "claims")
            .unwrap();
        assert_eq!(
            s.policy_arns,
            ["arn:aws:iam::222222222222:policy/shop-deploy"]
        );
        assert!(s.policy.is_none() && s.optional_tags.len() == 1);
        assert!(note.unwrap().contains("line"), "the note names the rule");
        let billing = job("acme/billing", RefType::Branch, "main");
        let e = env
            .deployment_session("222222222222", &billing, "the ID token's claims")
            .unwrap_err();
        assert_eq!(e.exit(), Exit::Refused);
        assert!(e.to_string().contains("acme/billing"), "{e}");
    }

    #[test]
    fn full_role_lets_unmatched_jobs_through_with_a_note() {
        let topo = parse(
            "session_policy_default = \"full-role\"",
            "[[environments.prod.session_policies]]\nproject = \"acme/shop\"\npolicy_file = \"web.json\"\n",
        )
        .unwrap();
        let env = &topo.environments[0];
        let billing = job("acme/billing", RefType::Branch, "main");
        let (s, note) = env
            .deployment_session("222222222222", &billing, "CI_*")
            .unwrap();
        assert_eq!(s, DeploymentSession::default());
        assert!(note.unwrap().contains("full rights"));
    }

    #[test]
    fn every_broken_rule_and_tag_is_reported_where_it_is_written() {
        let e = parse(
            r#"session_tags = { "aws:team" = "x", "gitlab:project" = "y", Team = "a", team = "b", "bad!" = "c", long = "ok" }"#,
            r#"
[[environments.prod.session_policies]]
project = "acme/shop"
policy_file = "big.json"
managed = ["arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::aws:policy/ReadOnlyAccess", "not-an-arn"]
[[environments.prod.session_policies]]
project = "acme/shop"
ref = "main"
policy_file = "broken.json"
[[environments.prod.session_policies]]
policy_file = "missing.json"
[[environments.prod.session_policies]]
project_id = "12a"
ref_type = "merge_request"
"#,
        )
        .unwrap_err();
        for want in [
            "starts with `aws:`",
            "one of rolehop's own identity tags",
            "given twice",
            "has a character STS refuses",
            "STS takes at most 2048",
            "is listed twice",
            "is not an IAM managed policy ARN",
            "can never apply",
            "is not JSON",
            "cannot read session policy `missing.json`",
            "needs `project`",
            "is not a GitLab project id",
            "unknown `ref_type` `merge_request`",
            "needs `policy_file` and/or `managed`",
        ] {
            assert!(e.contains(want), "missing {want:?} in:\n{e}");
        }
        assert!(e.contains("rolehop.toml:"), "{e}");
    }

    #[test]
    fn a_mistyped_key_in_a_rule_gets_its_did_you_mean_and_the_other_errors_still_show() {
        let e = parse(
            "session_policy_default = \"nope\"",
            "[[environments.prod.session_policies]]\nproject = \"acme/shop\"\npolcy_file = \"web.json\"\n",
        )
        .unwrap_err();
        assert!(e.contains("did you mean `policy_file`?"), "{e}");
        assert!(e.contains("unknown `session_policy_default` `nope`"), "{e}");
    }

    #[test]
    fn more_than_ten_managed_session_policies_are_refused() {
        let arns: Vec<String> = (0..11)
            .map(|i| format!("\"arn:aws:iam::aws:policy/P{i}\""))
            .collect();
        let e = parse(
            "",
            &format!(
                "[[environments.prod.session_policies]]\nproject = \"acme/shop\"\nmanaged = [{}]\n",
                arns.join(", ")
            ),
        )
        .unwrap_err();
        assert!(e.contains("at most 10 managed session policies"), "{e}");
    }

    #[test]
    fn the_job_file_carries_rules_and_tags_and_says_format_2() {
        let topo = parse(
            "session_policy_default = \"full-role\"\nsession_tags = { team = \"payments\" }",
            "[[environments.prod.session_policies]]\nproject = \"acme/shop\"\nref_type = \"branch\"\nref = \"main\"\npolicy_file = \"web.json\"\nmanaged = [\"arn:aws:iam::aws:policy/ReadOnlyAccess\"]\n",
        )
        .unwrap();
        let env = &topo.environments[0];
        let text = crate::job_file::render(&topo, env);
        assert!(text.contains("format = 2"), "{text}");
        let back = crate::job_file::parse("jobs/prod.toml", &text).unwrap();
        let b = &back.environments[0];
        assert_eq!(b.session_policy_default, Unmatched::FullRole);
        assert_eq!(b.session_tags, env.session_tags);
        assert_eq!(b.session_policies.len(), 1);
        let (r, o) = (&b.session_policies[0], &env.session_policies[0]);
        assert_eq!(
            (&r.project, r.ref_type, &r.ref_name, &r.managed),
            (&o.project, o.ref_type, &o.ref_name, &o.managed)
        );
        assert_eq!(
            r.policy.as_ref().unwrap().compact(),
            o.policy.as_ref().unwrap().compact()
        );
        // An older rolehop reads format 1 only: it refuses this file instead of running
        // without the session policy; and a format 1 file cannot smuggle rules in.
        let e = crate::job_file::parse("j.toml", &text.replace("format = 2", "format = 1"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("render it again"), "{e}");
    }
}
