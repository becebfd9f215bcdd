//! Blast radius per project inside an environment: what each group of jobs a topology's
//! `session_policies` name can do with the deployment role once AWS intersects the role's
//! policies with their session policy, and the rules RH060-RH064 about those policies.
//!
//! What a session can do is listed as actions on resources: every action the session policy
//! or the role's own Allow statements name (expanded through the IAM action data), tried on
//! every resource pattern either side names for it, each decided by the evaluator with the
//! session policy as its own layer.

use std::collections::{BTreeMap, BTreeSet};

use rolehop_policy::ast::Block;
use rolehop_policy::pattern::Glob;
use serde::Serialize;
use serde_json::{Value, json};

use crate::data::{ActionCheck, check_action, expand};
use crate::eval::{Doc, Identity, session_allows};
use crate::findings::{Finding, Severity, f};
use crate::graph::Prepared;
use crate::model::{SessionDocs, SessionScope};

/// The rules of this module: id and title.
pub const RULES: [(&str, &str); 5] = [
    (
        "RH060",
        "session policy grants nothing the deployment role can do",
    ),
    (
        "RH061",
        "session policy names an action that does not exist",
    ),
    (
        "RH062",
        "session policy narrows nothing: the deployment role grants no more than it",
    ),
    (
        "RH063",
        "project of an environment with session policies gets the deployment role's full rights",
    ),
    (
        "RH064",
        "managed session policy unknown: assumed to allow everything",
    ),
];

/// A pattern standing for more actions than this is not listed action by action (`s3:*` is
/// about 200); the other side's patterns then say what is reachable.
const MAX_EXPANSION: usize = 400;

/// One action and the resource patterns it is allowed on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    /// `service:Action`, or the pattern as written when it is not listed action by action.
    pub action: String,
    /// The resource patterns, sorted.
    pub resources: Vec<String>,
}

/// What one group of jobs of an environment reaches through its deployment roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectReach {
    /// The environment.
    pub environment: String,
    /// The jobs, in words (`project acme/shop on branch main`).
    pub jobs: String,
    /// The deployment roles (one per target account).
    pub roles: Vec<String>,
    /// `true`: no session policy applies, the role's full rights.
    pub full_role: bool,
    /// What the session can do, by action.
    pub grants: Vec<Grant>,
}

impl ProjectReach {
    /// "acme/shop in prod reaches 2 role(s) with s3:PutObject on arn:aws:s3:::shop/*; ...".
    pub fn sentence(&self) -> String {
        const SHOWN: usize = 12;
        let how = if self.full_role {
            " (no session policy: the role's full rights)"
        } else {
            ""
        };
        if self.grants.is_empty() {
            return format!(
                "{} in {} can do nothing with {} role(s){how}",
                self.jobs,
                self.environment,
                self.roles.len()
            );
        }
        let mut parts: Vec<String> = self
            .grants
            .iter()
            .take(SHOWN)
            .map(|g| format!("{} on {}", g.action, g.resources.join(", ")))
            .collect();
        if self.grants.len() > SHOWN {
            parts.push(format!("{} more action(s)", self.grants.len() - SHOWN));
        }
        format!(
            "{} in {} reaches {} role(s){how} with {}",
            self.jobs,
            self.environment,
            self.roles.len(),
            parts.join("; ")
        )
    }
}

/// The per-project blast radius of every session scope, and the findings about them.
pub fn analyse(prep: &Prepared<'_>, out: &mut Vec<Finding>) -> Vec<ProjectReach> {
    let mut reaches = Vec::new();
    for scope in &prep.estate.sessions {
        let Some(role) = scope
            .deployment_roles
            .iter()
            .find_map(|r| prep.by_arn.get(r.as_str()).copied())
        else {
            continue;
        };
        let id = prep.identity(role);
        let role_arn = &prep.estate.principals[role].arn;
        let account = prep.estate.principals[role].account.clone();
        let full = grants(&id, &account, None, &role_patterns(&id));
        let Some(docs) = &scope.session else {
            out.push(f(
                "RH063",
                Severity::Info,
                role_arn,
                format!(
                    "{} in `{}` matches no session policy rule and gets the deployment role's full rights",
                    scope.jobs, scope.env.name
                ),
                format!(
                    "environment `{}` lists session policies with `session_policy_default = \"full-role\"`; jobs of {} get everything the role grants ({} action(s))",
                    scope.env.name,
                    scope.jobs,
                    full.len()
                ),
            ));
            reaches.push(reach(scope, true, full));
            continue;
        };
        let Some(session) = session_doc(scope, docs, role_arn, out) else {
            continue;
        };
        unknown_actions(scope, &session, role_arn, out);
        let mut patterns = role_patterns(&id);
        patterns.extend(doc_patterns(&session));
        let narrowed = grants(&id, &account, Some(&session), &patterns);
        if narrowed.is_empty() {
            out.push(f(
                "RH060",
                Severity::Medium,
                role_arn,
                format!(
                    "the session policy of {} in `{}` grants nothing the deployment role can do",
                    scope.jobs, scope.env.name
                ),
                format!(
                    "no action the session policy allows is also allowed by the deployment role's policies (and boundary): every deploy of these jobs will be denied (line {} of {})",
                    scope.origin.line, scope.origin.file
                ),
            ));
        } else if narrowed == full {
            out.push(f(
                "RH062",
                Severity::Info,
                role_arn,
                format!(
                    "the session policy of {} in `{}` narrows nothing",
                    scope.jobs, scope.env.name
                ),
                format!(
                    "it allows everything the deployment role grants ({} action(s)), so these jobs keep the role's full rights (line {} of {})",
                    full.len(),
                    scope.origin.line,
                    scope.origin.file
                ),
            ));
        }
        reaches.push(reach(scope, false, narrowed));
    }
    reaches.sort_by(|a, b| (&a.environment, &a.jobs).cmp(&(&b.environment, &b.jobs)));
    reaches
}

fn reach(scope: &SessionScope, full_role: bool, grants: Vec<Grant>) -> ProjectReach {
    ProjectReach {
        environment: scope.env.name.clone(),
        jobs: scope.jobs.clone(),
        roles: scope.deployment_roles.clone(),
        full_role,
        grants,
    }
}

/// The inline and managed session policies as one document: AWS allows what any of them
/// allows (and the role allows), so their statements together are the session layer. A
/// managed policy the audit does not know is taken as allowing everything, the cautious
/// reading for a blast radius, and reported (RH064).
fn session_doc(
    scope: &SessionScope,
    docs: &SessionDocs,
    role_arn: &str,
    out: &mut Vec<Finding>,
) -> Option<Doc> {
    let mut statements: Vec<Value> = Vec::new();
    let mut add = |v: &Value| match v.get("Statement") {
        Some(Value::Array(a)) => statements.extend(a.iter().cloned()),
        Some(one) => statements.push(one.clone()),
        None => {}
    };
    if let Some(d) = &docs.inline
        && let Ok(v) = serde_json::from_str::<Value>(d.as_str())
    {
        add(&v);
    }
    for arn in &docs.managed {
        match crate::managed::aws_managed(arn) {
            Some(v) => add(&v),
            None => {
                out.push(f(
                    "RH064",
                    Severity::Low,
                    role_arn,
                    format!("managed session policy `{arn}` is not known to the audit"),
                    format!(
                        "the session policy of {} in `{}` names it; it is taken as allowing everything, so the blast radius shown is an upper bound",
                        scope.jobs, scope.env.name
                    ),
                ));
                add(&json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}));
            }
        }
    }
    Doc::parse(&json!({ "Version": "2012-10-17", "Statement": statements })).ok()
}

/// RH061: an action name no AWS service has, in the session policy.
fn unknown_actions(scope: &SessionScope, session: &Doc, role_arn: &str, out: &mut Vec<Finding>) {
    for st in session.statements() {
        let globs = match &st.action {
            Block::Is(g) | Block::Not(g) => g,
        };
        for g in globs {
            let a = g.as_str();
            if matches!(check_action(a), ActionCheck::Known) {
                continue;
            }
            out.push(f(
                "RH061",
                Severity::Medium,
                role_arn,
                format!(
                    "the session policy of {} in `{}` names `{a}`, which no AWS service has",
                    scope.jobs, scope.env.name
                ),
                "a misspelt action in a session policy grants nothing: the deploy step needing it will be denied".to_owned(),
            ));
        }
    }
}

/// Action patterns of the role's Allow statements (NotAction ones say nothing listable).
fn role_patterns(id: &Identity<'_>) -> BTreeSet<String> {
    id.policies.iter().flat_map(|d| doc_patterns(d)).collect()
}

fn doc_patterns(d: &Doc) -> BTreeSet<String> {
    d.allowed_action_patterns()
        .into_iter()
        .filter(|(not, _)| !not)
        .flat_map(|(_, p)| p)
        .collect()
}

/// What `id` may do (within `session`, when given) among `patterns`, by action.
fn grants(
    id: &Identity<'_>,
    account: &str,
    session: Option<&Doc>,
    patterns: &BTreeSet<String>,
) -> Vec<Grant> {
    let mut actions: BTreeSet<String> = BTreeSet::new();
    for p in patterns {
        let listed = expand(p);
        if listed.is_empty() || listed.len() > MAX_EXPANSION {
            actions.insert(p.clone());
        } else {
            actions.extend(listed);
        }
    }
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for a in &actions {
        let role: BTreeSet<String> = id
            .policies
            .iter()
            .flat_map(|d| d.resources_for(a))
            .collect();
        // A pattern request is allowed when a policy pattern only overlaps it, so each pair
        // of role and session patterns is asked as the narrower of the two: what both allow.
        let candidates: BTreeSet<String> = match session {
            None => role,
            Some(s) => {
                let mut c = BTreeSet::new();
                for q in s.resources_for(a) {
                    let gq = Glob::new(&q, false);
                    for r in &role {
                        let gr = Glob::new(r, false);
                        if gq.covers(&gr) {
                            c.insert(r.clone());
                        } else if gr.intersects(&gq) {
                            c.insert(q.clone());
                        }
                    }
                }
                c
            }
        };
        for r in candidates {
            if session_allows(id, session, a, &r, account).is_allowed() {
                out.entry(a.clone()).or_default().insert(r);
            }
        }
    }
    out.into_iter()
        .map(|(action, resources)| Grant {
            action,
            resources: resources.into_iter().collect(),
        })
        .collect()
}
