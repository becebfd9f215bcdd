//! The rules: each finding has a stable id, a severity, the resource it is about, a one-line
//! title and a detail that explains the path. Findings are data; input problems become
//! findings (RH090/RH091) instead of being skipped.

use std::collections::{BTreeMap, BTreeSet};

use rolehop_policy::ast::{Block, PrincipalType};
use rolehop_policy::condition::BaseOp;
use rolehop_policy::{Effect, Statement};
use serde::Serialize;

use crate::graph::{Graph, NodeKind, Prepared, account_of_root, oidc_subjects};
use crate::model::{Kind, Part, ProblemKind};

/// How bad a finding is; `audit --fail-on` exits 10 at or above a level. The levels are in
/// increasing order (the derived `Ord` is what `--fail-on` compares); which rule has which
/// level is the rule table's business, so the variants carry no prose of their own.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// The name `--fail-on` and reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Reads `--fail-on`'s value (case-insensitive).
    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s.to_ascii_lowercase().as_str() {
            "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
}

/// One result of the audit: data, not an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule id (`RH001`...), stable across versions.
    pub id: &'static str,
    /// How bad it is.
    pub severity: Severity,
    /// The ARN (or file) it is about.
    pub resource: String,
    /// The rule's one-line title.
    pub title: String,
    /// What exactly was found, naming principals and policies.
    pub detail: String,
    /// What to do about it (the rule's fix, [`crate::fixes::fix`]).
    pub fix: String,
}

/// The rule catalogue: id, default title (for SARIF rule metadata and docs).
pub const RULES: [(&str, &str); 25] = [
    (
        "RH001",
        "broker principal holds more than sts:AssumeRole, sts:TagSession and sts:SetSourceIdentity",
    ),
    (
        "RH002",
        "an identity of one environment reaches a role of another",
    ),
    (
        "RH003",
        "deployment role trusted by something other than its environment's service role",
    ),
    ("RH004", "OIDC trust without an audience condition"),
    (
        "RH005",
        "StringEquals on an OIDC claim with a wildcard (matches literally)",
    ),
    (
        "RH006",
        "OIDC subject pattern admits any project, or unprotected refs for production",
    ),
    (
        "RH007",
        "chained role session longer than role chaining allows (1 h)",
    ),
    ("RH008", "deployment role does not require a SourceIdentity"),
    (
        "RH009",
        "admin-equivalent deployment role without a permissions boundary",
    ),
    ("RH010", "access key older than 90 days"),
    ("RH011", "access key unused"),
    ("RH012", "role trusted by any AWS principal (`*`)"),
    (
        "RH013",
        "role trusted by an account outside the audited estate",
    ),
    ("RH014", "admin-equivalent principal"),
    (
        "RH015",
        "OIDC subject of a production role admits every ref matching a glob",
    ),
    (
        "RH016",
        "OIDC subject of a production role admits every project matching a glob",
    ),
    (
        "RH017",
        "OIDC subject of a production role pairs a ref with a ref type it was not declared for",
    ),
    (
        "RH030",
        "a node reached from several environments (non-prod -> prod is critical)",
    ),
    (
        "RH031",
        "policy names an action that does not exist (grants or denies nothing)",
    ),
    ("RH090", "policy could not be evaluated"),
    ("RH091", "managed policy unknown: not evaluated"),
    (
        "RH092",
        "trust policy could not be evaluated: who may assume the role is unknown",
    ),
    (
        "RH093",
        "claim gate admits unprotected refs into a protected environment",
    ),
    (
        "RH094",
        "claim gate admits every project matching a path glob",
    ),
    ("RH095", "claim gate identifies projects by path only"),
];

/// Access keys older than this are reported (90 days, the usual rotation policy).
pub const KEY_MAX_AGE_SECS: i64 = 90 * 24 * 3600;

const BROKER_ACTIONS: [&str; 4] = [
    "sts:assumerole",
    "sts:tagsession",
    "sts:setsourceidentity",
    "sts:getcalleridentity",
];

/// What every rule reads.
pub struct Ctx<'a, 'e> {
    /// The estate's parsed documents.
    pub prep: &'a Prepared<'e>,
    /// The access graph.
    pub graph: &'a Graph,
    /// Per principal: why it is admin-equivalent.
    pub admin: &'a [Option<String>],
    /// The audit's notion of now (unix seconds), injected so key ages are testable.
    pub now: i64,
    /// Parts and environments as inferred (declared ones for a topology).
    pub inferred: &'a crate::infer::Inference,
}

/// Runs every rule, appending findings.
pub fn all(cx: &Ctx<'_, '_>, out: &mut Vec<Finding>) {
    problems(cx, out);
    broker_scope(cx, out);
    cross_environment(cx, out);
    trust_rules(cx, out);
    chaining(cx, out);
    admin(cx, out);
    keys(cx, out);
    crate::infer::shared_findings(cx.inferred, cx.graph, out);
    crate::actions::findings(cx.prep, out);
    crate::gate::findings(cx.prep.estate, out);
}

pub(crate) fn f(
    id: &'static str,
    severity: Severity,
    resource: &str,
    title: impl Into<String>,
    detail: impl Into<String>,
) -> Finding {
    Finding {
        id,
        severity,
        resource: resource.to_owned(),
        title: title.into(),
        detail: detail.into(),
        fix: crate::fixes::fix(id).to_owned(),
    }
}

fn problems(cx: &Ctx<'_, '_>, out: &mut Vec<Finding>) {
    for p in cx.prep.problems.iter().chain(&cx.prep.estate.problems) {
        let (id, sev, title) = match p.kind {
            ProblemKind::UnknownManaged => (
                "RH091",
                Severity::Low,
                "managed policy unknown: not evaluated",
            ),
            ProblemKind::Unreadable => ("RH090", Severity::Medium, "policy could not be evaluated"),
            // Who may assume the role is unknown: fail closed, as loud as the worst trust
            // finding a readable policy could have had short of `*`.
            ProblemKind::UnreadableTrust => (
                "RH092",
                Severity::High,
                "trust policy could not be evaluated: who may assume the role is unknown",
            ),
        };
        out.push(f(id, sev, &p.resource, title, p.message.clone()));
    }
}

fn broker_scope(cx: &Ctx<'_, '_>, out: &mut Vec<Finding>) {
    let prep = cx.prep;
    for (i, p) in prep.estate.principals.iter().enumerate() {
        if !matches!(cx.inferred.part(i), Part::BrokerUser | Part::ServiceRole) {
            continue;
        }
        let mut extra = BTreeSet::new();
        for &d in &prep.policies[i] {
            for (not, pats) in prep.docs[d].allowed_action_patterns() {
                if not {
                    extra.insert(format!("`NotAction {}`", pats.join(",")));
                    continue;
                }
                for a in pats {
                    if BROKER_ACTIONS.contains(&a.to_ascii_lowercase().as_str()) {
                        continue;
                    }
                    // A wildcard is judged by the actions it stands for (IAM action data):
                    // `sts:AssumeRol?` is only AssumeRole, `sts:*` also GetFederationToken.
                    let beyond: Vec<String> = crate::data::expand(&a)
                        .into_iter()
                        .filter(|x| !BROKER_ACTIONS.contains(&x.to_ascii_lowercase().as_str()))
                        .collect();
                    let wild = a.contains(['*', '?']);
                    match beyond.as_slice() {
                        [] if wild && a.contains(':') && !crate::data::expand(&a).is_empty() => {}
                        [] => {
                            extra.insert(format!("`{a}`"));
                        }
                        some if wild => {
                            let shown: Vec<&str> =
                                some.iter().take(4).map(String::as_str).collect();
                            let more = if some.len() > 4 { ", ..." } else { "" };
                            extra.insert(format!("`{a}` (so `{}`{more})", shown.join("`, `")));
                        }
                        _ => {
                            extra.insert(format!("`{a}`"));
                        }
                    }
                }
            }
        }
        if extra.is_empty() {
            continue;
        }
        let sev = if cx.admin[i].is_some() {
            Severity::Critical
        } else {
            Severity::High
        };
        let what = match cx.inferred.part(i) {
            Part::BrokerUser => "broker user",
            _ => "service role",
        };
        out.push(f(
            "RH001",
            sev,
            &p.arn,
            format!("{what} `{}` holds more than AssumeRole/TagSession/SetSourceIdentity", p.name),
            format!(
                "its policies also allow {}; a broker principal's leaked credentials should reach nothing but the next hop",
                extra.into_iter().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
}

fn describe_path(g: &Graph, path: &[usize]) -> String {
    path.iter()
        .map(|&n| g.nodes[n].id.as_str())
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// Every credential holder (user, OIDC subject, SAML provider) and every labelled role: a role
/// of another environment reached is a finding. For entries without an environment, reaching
/// roles of two environments is.
fn cross_environment(cx: &Ctx<'_, '_>, out: &mut Vec<Finding>) {
    let g = cx.graph;
    let mut seen = BTreeSet::new();
    // Hops already shown on an entry's path need no finding of their own.
    let mut covered: BTreeSet<(usize, usize)> = BTreeSet::new();
    for (start, node) in g.nodes.iter().enumerate() {
        let entry = matches!(
            node.kind,
            NodeKind::User | NodeKind::OidcSubject | NodeKind::Saml | NodeKind::ClaimSet
        );
        if !entry {
            continue;
        }
        let reached = g.reach(start);
        let mut envs: BTreeMap<String, (bool, usize)> = BTreeMap::new();
        for &(n, _) in &reached {
            if let Some(e) = &g.nodes[n].env {
                envs.entry(e.name.clone()).or_insert((e.prod, n));
            }
        }
        match &node.env {
            Some(own) => {
                for (name, &(prod, n)) in &envs {
                    if *name != own.name && seen.insert((start, n)) {
                        let path = g.path(start, n, &reached);
                        covered.extend(path.windows(2).map(|w| (w[0], w[1])));
                        out.push(cross_finding(g, &path, own.prod, prod, &own.name, name));
                    }
                }
            }
            None if envs.len() > 1 => {
                let names: Vec<&str> = envs.keys().map(String::as_str).collect();
                let prod = envs.values().any(|(p, _)| *p);
                let paths: Vec<String> = envs
                    .values()
                    .map(|&(_, n)| {
                        let path = g.path(start, n, &reached);
                        covered.extend(path.windows(2).map(|w| (w[0], w[1])));
                        describe_path(g, &path)
                    })
                    .collect();
                out.push(f(
                    "RH002",
                    if prod {
                        Severity::Critical
                    } else {
                        Severity::High
                    },
                    &node.id,
                    format!(
                        "`{}` reaches roles of several environments ({})",
                        node.id,
                        names.join(", ")
                    ),
                    format!(
                        "one credential reaches {}: {}",
                        names.join(" and "),
                        paths.join("; ")
                    ),
                ));
            }
            None => {}
        }
    }
    // Labelled principals' own hops into another environment (paths through them from an
    // entry were reported above).
    for (start, node) in g.nodes.iter().enumerate() {
        let Some(a) = &node.env else { continue };
        if matches!(
            node.kind,
            NodeKind::User | NodeKind::OidcSubject | NodeKind::Saml | NodeKind::ClaimSet
        ) {
            continue;
        }
        for &e in &g.out[start] {
            let to = g.edges[e].to;
            let Some(b) = &g.nodes[to].env else { continue };
            if a.name != b.name && !covered.contains(&(start, to)) && seen.insert((start, to)) {
                out.push(cross_finding(
                    g,
                    &[start, to],
                    a.prod,
                    b.prod,
                    &a.name,
                    &b.name,
                ));
            }
        }
    }
}

fn cross_finding(
    g: &Graph,
    path: &[usize],
    from_prod: bool,
    to_prod: bool,
    from: &str,
    to: &str,
) -> Finding {
    let first = path.first().copied().unwrap_or(0);
    let last = path.last().copied().unwrap_or(0);
    let sev = if to_prod && !from_prod {
        Severity::Critical
    } else {
        Severity::High
    };
    f(
        "RH002",
        sev,
        &g.nodes[last].id,
        format!("`{}` ({from}) reaches a role of `{to}`", g.nodes[first].id),
        format!("path: {}", describe_path(g, path)),
    )
}

fn allows_assume(st: &Statement) -> bool {
    st.effect == Effect::Allow
        && match &st.action {
            Block::Not(_) => true,
            Block::Is(globs) => globs.iter().any(|g| g.matches("sts:AssumeRole")),
        }
}

fn trust_rules(cx: &Ctx<'_, '_>, out: &mut Vec<Finding>) {
    let estate = cx.prep.estate;
    let accounts: BTreeSet<&str> = estate
        .principals
        .iter()
        .map(|p| p.account.as_str())
        .collect();
    for (i, p) in estate.principals.iter().enumerate() {
        // A trust policy the parser refused is reported as RH092 and judged no further.
        let Some(trust) = cx.prep.trust_doc(i) else {
            continue;
        };
        let deploy = cx.inferred.part(i) == Part::DeploymentRole;
        let env_name = |i: usize| cx.graph.principal_env(i).map(|e| &e.name);
        let mut requires_source_identity = true;
        let mut any_assume = false;
        for st in trust.statements() {
            let cond = Some(crate::eval::condition_text(&st.conditions)).filter(|c| !c.is_empty());
            let cond_note = cond
                .as_ref()
                .map_or_else(|| "no condition".to_owned(), |c| format!("condition: {c}"));
            let is_allow = st.effect == Effect::Allow;
            if allows_assume(st) {
                any_assume = true;
                // `Null: true` demands that there be no SourceIdentity.
                if !st.conditions.iter().any(|c| {
                    c.key_lower() == "sts:sourceidentity"
                        && !(c.operator.base == BaseOp::Null
                            && c.values.iter().any(|v| v.raw.eq_ignore_ascii_case("true")))
                }) {
                    requires_source_identity = false;
                }
            }
            let not_principal = st.principal.as_ref().is_some_and(Block::is_not);
            let entries = st.principal.iter().flat_map(|p| p.items().entries());
            for (kind, value) in entries {
                if !is_allow {
                    continue;
                }
                let anyone = not_principal || value == "*";
                if deploy && kind != PrincipalType::Federated {
                    let own_service = cx.prep.by_arn.get(value).is_some_and(|&s| {
                        cx.inferred.part(s) == Part::ServiceRole && env_name(s) == env_name(i)
                    });
                    if !own_service {
                        let (sev, what) = if anyone {
                            (Severity::Critical, "any AWS principal (`*`)".to_owned())
                        } else if let Some(a) = account_of_root(value) {
                            (Severity::High, format!("the whole account `{a}`"))
                        } else if kind == PrincipalType::Service {
                            (Severity::High, format!("the service `{value}`"))
                        } else {
                            (Severity::High, format!("`{value}`"))
                        };
                        out.push(f(
                            "RH003",
                            sev,
                            &p.arn,
                            format!("deployment role `{}` is trusted by {what}", p.name),
                            format!("only its environment's service role should be able to assume it ({cond_note})"),
                        ));
                    }
                } else if deploy {
                    out.push(f(
                        "RH003",
                        Severity::High,
                        &p.arn,
                        format!("deployment role `{}` is trusted by the federated provider `{value}`", p.name),
                        format!("deployment roles are reached through the service role only ({cond_note})"),
                    ));
                }
                if !deploy && kind != PrincipalType::Federated && kind != PrincipalType::Service {
                    if anyone {
                        out.push(f(
                            "RH012",
                            if cond.is_none() { Severity::Critical } else { Severity::Medium },
                            &p.arn,
                            format!("role `{}` is trusted by any AWS principal (`*`)", p.name),
                            format!("anyone with AWS credentials in any account may assume it ({cond_note})"),
                        ));
                    } else if let Some(a) = account_of_root(value).or_else(|| {
                        let a = crate::model::arn_account(value);
                        (!a.is_empty() && !a.eq("aws")).then_some(a)
                    }) && !accounts.contains(a)
                    {
                        out.push(f(
                            "RH013",
                            Severity::Low,
                            &p.arn,
                            format!("role `{}` is trusted by account `{a}`, outside the audited estate", p.name),
                            format!("`{value}` may assume it if that account allows ({cond_note}); audit that account too or confirm it is a known third party"),
                        ));
                    }
                }
                if kind == PrincipalType::Federated && value.contains(":oidc-provider/") {
                    let prod = cx.graph.principal_env(i).is_some_and(|e| e.prod);
                    oidc_rules(p, prod, st, value, out);
                }
            }
        }
        if deploy && any_assume && !requires_source_identity {
            out.push(f(
                "RH008",
                Severity::Medium,
                &p.arn,
                format!("deployment role `{}` does not require a SourceIdentity", p.name),
                "its trust policy allows sts:AssumeRole without a condition on `sts:SourceIdentity`, so sessions need not carry who deployed (add `\"Null\": {\"sts:SourceIdentity\": \"false\"}`)".to_owned(),
            ));
        }
    }
}

fn oidc_rules(
    role: &crate::model::Principal,
    prod: bool,
    st: &Statement,
    provider: &str,
    out: &mut Vec<Finding>,
) {
    let host = provider.split(":oidc-provider/").nth(1).unwrap_or("");
    let aud_key = format!("{host}:aud");
    let sub_key = format!("{host}:sub");
    // IAM compares condition keys and operator names case-insensitively.
    let (aud_lower, sub_lower) = (aud_key.to_ascii_lowercase(), sub_key.to_ascii_lowercase());
    let has_aud = st.conditions.iter().any(|c| {
        let k = c.key_lower();
        (k == aud_lower || k.ends_with(":aud") || k.ends_with(":azp"))
            && c.operator.base != BaseOp::Null
    });
    if !has_aud {
        out.push(f(
            "RH004",
            Severity::High,
            &role.arn,
            format!("OIDC trust of `{}` has no audience condition", role.name),
            format!("any ID token from `{host}` (for any audience, minted for another service) is accepted; add `StringEquals` on `{aud_key}`"),
        ));
    }
    for c in &st.conditions {
        let k = &c.key;
        if (c.key_lower() == aud_lower || c.key_lower() == sub_lower)
            && c.operator.base == BaseOp::StringEquals
            && !c.operator.if_exists
        {
            for v in c.values.iter().map(|v| &v.raw) {
                if !(v.contains('*') || v.contains('?')) {
                    continue;
                }
                out.push(f(
                    "RH005",
                    Severity::Medium,
                    &role.arn,
                    format!("`{k}` compared with StringEquals to the wildcard `{v}`"),
                    format!("StringEquals matches `{v}` literally, so this never admits the jobs it was meant for; use StringLike"),
                ));
            }
        }
    }
    for sub in oidc_subjects(st, host) {
        let project = sub
            .strip_prefix("project_path:")
            .map(|r| r.split(":ref_type:").next().unwrap_or(r));
        let any_project = sub == "*"
            || match project {
                Some(p) => {
                    p.starts_with('*')
                        || !p.contains('/')
                        || p.split('/').next().is_some_and(|g| g.contains('*'))
                }
                None => sub.starts_with('*'),
            };
        if any_project {
            out.push(f(
                "RH006",
                Severity::Critical,
                &role.arn,
                format!("OIDC subject `{sub}` of `{}` admits any project", role.name),
                format!("every project on `{host}` (any group) can obtain this role; name the group and project in `{sub_key}`"),
            ));
            continue;
        }
        let reff = sub.rsplit_once(":ref:").map(|(_, r)| r);
        let any_ref = match reff {
            Some(r) => r == "*" || r.starts_with('*'),
            None => sub.ends_with('*'),
        };
        if prod && any_ref {
            out.push(f(
                "RH006",
                Severity::High,
                &role.arn,
                format!("OIDC subject `{sub}` of production role `{}` admits any ref", role.name),
                "pipelines of unprotected branches (anyone with push access) can obtain a production role; IAM cannot check `ref_protected`, so name the protected refs".to_owned(),
            ));
            continue;
        }
        if prod {
            glob_rules(role, &sub, out);
        }
    }
    if prod {
        ref_type_rules(role, &oidc_subjects(st, host), out);
    }
}

/// The parts of a GitLab `sub` pattern, in any order GitLab can be configured to emit
/// (`project_path:P:ref_type:T:ref:R`, `project_path:P:ref:R:ref_type:T`, without either).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SubParts<'a> {
    /// The `project_path` claim, as written (a path or a glob).
    pub(crate) project: &'a str,
    /// The `ref_type` claim, as written; `None` when the pattern has none.
    pub(crate) ref_type: Option<&'a str>,
    /// The `ref` claim, as written; `None` when the pattern has none.
    pub(crate) reff: Option<&'a str>,
}

/// Splits a `project_path:...` subject into its claims; `None` for a `sub` that does not
/// start with `project_path:` (a customised one). Shared by the trust findings and the GitLab
/// cross-check, so both read a pattern the same way.
pub(crate) fn sub_parts(sub: &str) -> Option<SubParts<'_>> {
    let rest = sub.strip_prefix("project_path:")?;
    let (project, mut tail) = rest.split_once(':').unwrap_or((rest, ""));
    let (mut ref_type, mut reff) = (None, None);
    while !tail.is_empty() {
        if let Some(t) = tail.strip_prefix("ref_type:") {
            let (v, next) = t.split_once(':').unwrap_or((t, ""));
            ref_type = Some(v);
            tail = next;
        } else if let Some(t) = tail.strip_prefix("ref:") {
            // Git refuses `:` in ref names: a ref ends where the next claim starts.
            let (v, next) = t
                .split_once(":ref_type:")
                .map_or((t, ""), |(v, _)| (v, &t[v.len() + 1..]));
            reff = Some(v);
            tail = next;
        } else {
            break;
        }
    }
    Some(SubParts {
        project,
        ref_type,
        reff,
    })
}

fn has_wildcard(s: &str) -> bool {
    s.contains('*') || s.contains('?')
}

/// `tag`, `branch`, or `branch or tag` when the pattern does not pin the ref type.
fn ref_kind(ref_type: Option<&str>) -> &'static str {
    match ref_type {
        Some("branch") => "branch",
        Some("tag") => "tag",
        _ => "branch or tag",
    }
}

/// `acme/shop`, or `every project matching acme/shop-*`.
fn project_text(project: &str) -> String {
    if has_wildcard(project) {
        format!("every project matching `{project}`")
    } else {
        format!("`{project}`")
    }
}

/// RH015 (wildcard refs) and RH016 (project globs) for one `sub` of a production role: high,
/// or low when the topology acknowledges the glob, saying what the trust then rests on.
fn glob_rules(role: &crate::model::Principal, sub: &str, out: &mut Vec<Finding>) {
    let Some(parts) = sub_parts(sub) else { return };
    let declared = role.declared.as_ref();
    if let Some(r) = parts.reff.filter(|r| has_wildcard(r)) {
        let kind = ref_kind(parts.ref_type);
        let in_project = project_text(parts.project);
        let declared_as = |t: &str| {
            declared.is_some_and(|d| {
                d.refs().any(|(dt, dr)| dt.as_str() == t && dr == r)
                    && d.protected_ref_globs.iter().any(|g| g == r)
            })
        };
        if parts.ref_type.is_some_and(declared_as) {
            out.push(f(
                "RH015",
                Severity::Low,
                &role.arn,
                format!("GitLab must protect every {kind} matching `{r}` in {in_project}: the trust of production role `{}` rests on it", role.name),
                format!("the topology acknowledges it (`protected_ref_globs`); IAM cannot check `ref_protected`, so if anyone who is not allowed to deploy may create a {kind} matching `{r}` (a missing or narrower protection rule, a wider \"allowed to create\"), their pipeline obtains this role (subject `{sub}`)"),
            ));
        } else {
            out.push(f(
                "RH015",
                Severity::High,
                &role.arn,
                format!("OIDC subject `{sub}` of production role `{}` admits every {kind} matching `{r}`", role.name),
                format!("IAM's `*` matches any characters (`/` included) and cannot check `ref_protected`, so anyone who can push a {kind} named like `{r}` in {in_project} obtains a production role; name exact refs, or protect every matching {kind} in GitLab and acknowledge it in the topology (`protected_ref_globs`)"),
            ));
        }
    }
    if has_wildcard(parts.project) {
        let p = parts.project;
        let group = p.split('*').next().unwrap_or(p);
        let accepted = declared.is_some_and(|d| d.accept_project_globs.iter().any(|a| a == p));
        if accepted {
            out.push(f(
                "RH016",
                Severity::Low,
                &role.arn,
                format!("whoever can create a project matching `{p}` reaches production role `{}`", role.name),
                format!("the topology accepts the glob (`accept_project_globs`): IAM's `*` matches `/` too, so a new project `{group}...` in any subgroup below qualifies; its members' pipelines obtain this role"),
            ));
        } else {
            out.push(f(
                "RH016",
                Severity::High,
                &role.arn,
                format!("OIDC subject pattern of production role `{}` admits every project matching `{p}`", role.name),
                format!("IAM's `*` matches `/` too: every project whose path starts with `{group}`, in any subgroup, qualifies, and whoever may create one there (a new project, a fork into the group) obtains a production role; name the projects exactly, or accept the glob in the topology (`accept_project_globs`)"),
            ));
        }
    }
}

/// RH017: a production role's `sub` patterns pairing a ref with a ref type it was not
/// declared for (`--config`), or, from what the trust alone shows, a ref trusted as both a
/// branch and a tag, or with any ref type.
fn ref_type_rules(role: &crate::model::Principal, subs: &[String], out: &mut Vec<Finding>) {
    let mut types: BTreeMap<(&str, &str), BTreeSet<Option<&str>>> = BTreeMap::new();
    for sub in subs {
        let Some(p) = sub_parts(sub) else { continue };
        let Some(r) = p.reff else { continue };
        if r == "*" || r.starts_with('*') {
            // Any ref at all: RH006 already says so.
            continue;
        }
        if let (Some(d), Some(t)) = (&role.declared, p.ref_type)
            && !d.refs().any(|(dt, dr)| dt.as_str() == t && dr == r)
            && d.refs().any(|(_, dr)| dr == r)
        {
            out.push(f(
                "RH017",
                Severity::High,
                &role.arn,
                format!("OIDC subject `{sub}` of production role `{}` trusts `{r}` as a {t}, which the topology does not declare", role.name),
                format!("the topology lists `{r}` only as another ref type; a {t} named `{r}` may not be protected, so whoever can create one obtains this role"),
            ));
        }
        types.entry((p.project, r)).or_default().insert(p.ref_type);
    }
    for ((project, r), ts) in types {
        let both = ts.contains(&Some("branch")) && ts.contains(&Some("tag"));
        let any = ts.iter().any(|t| t.is_none_or(has_wildcard));
        if !(both || any) {
            continue;
        }
        let how = if any {
            "with any ref type"
        } else {
            "both as a branch and as a tag"
        };
        out.push(f(
            "RH017",
            Severity::High,
            &role.arn,
            format!("production role `{}` trusts `{r}` in {} {how}", role.name, project_text(project)),
            format!("GitLab protects branches and tags separately: a tag named like a protected branch (`{r}`), or a branch named like a protected tag glob, is usually unprotected, and anyone who can push it obtains this role; pair each ref with the one ref type it is (`ref_type:branch` for branches, `ref_type:tag` for tags)"),
        ));
    }
}

fn chaining(cx: &Ctx<'_, '_>, out: &mut Vec<Finding>) {
    let g = cx.graph;
    for (i, p) in cx.prep.estate.principals.iter().enumerate() {
        if p.kind != Kind::Role {
            continue;
        }
        let n = g.principal_node[i];
        // Only AssumeRole from a role session is chaining; a role passed to a service is not.
        let chained = g.inbound[n].iter().any(|&e| {
            g.nodes[g.edges[e].from].kind == NodeKind::Role && g.edges[e].action == "sts:AssumeRole"
        }) || cx.inferred.part(i) == Part::DeploymentRole;
        if !chained {
            continue;
        }
        if let Some(s) = p.requested_session_secs.filter(|&s| s > 3600) {
            out.push(f(
                "RH007",
                Severity::Medium,
                &p.arn,
                format!(
                    "sessions of chained role `{}` are requested for {s} s",
                    p.name
                ),
                "it is reached by role chaining, which AWS caps at 3600 s: such requests fail"
                    .to_owned(),
            ));
        } else if let Some(s) = p.max_session_secs.filter(|&s| s > 3600) {
            out.push(f(
                "RH007",
                Severity::Info,
                &p.arn,
                format!("chained role `{}` has MaxSessionDuration {s} s", p.name),
                "it is reached by role chaining, which caps sessions at 3600 s whatever MaxSessionDuration says".to_owned(),
            ));
        }
    }
}

fn admin(cx: &Ctx<'_, '_>, out: &mut Vec<Finding>) {
    for (i, p) in cx.prep.estate.principals.iter().enumerate() {
        let Some(why) = &cx.admin[i] else { continue };
        if cx.inferred.part(i) == Part::DeploymentRole && p.boundary.is_none() {
            out.push(f(
                "RH009",
                Severity::High,
                &p.arn,
                format!(
                    "admin-equivalent deployment role `{}` has no permissions boundary",
                    p.name
                ),
                format!(
                    "it {why}; a boundary keeps a compromised pipeline from taking over the account"
                ),
            ));
        } else if p.kind == Kind::User && cx.inferred.part(i) != Part::BrokerUser {
            out.push(f(
                "RH014",
                Severity::Medium,
                &p.arn,
                format!("user `{}` is admin-equivalent", p.name),
                format!(
                    "it {why}; long-lived user credentials with admin rights are a standing risk"
                ),
            ));
        }
    }
}

fn keys(cx: &Ctx<'_, '_>, out: &mut Vec<Finding>) {
    for k in &cx.prep.estate.access_keys {
        if !k.active {
            continue;
        }
        let day = 24 * 3600;
        if let Some(r) = k.last_rotated {
            let age = cx.now - r;
            if age > KEY_MAX_AGE_SECS {
                out.push(f(
                    "RH010",
                    Severity::Medium,
                    &k.user_arn,
                    format!("access key {} is {} days old", k.slot, age / day),
                    "keys older than 90 days should be rotated (`rolehop rotate`)".to_owned(),
                ));
            }
        }
        match k.last_used {
            None => out.push(f(
                "RH011",
                Severity::Low,
                &k.user_arn,
                format!("access key {} has never been used", k.slot),
                "an active key nobody uses is only a liability: deactivate or delete it".to_owned(),
            )),
            Some(u) if cx.now - u > KEY_MAX_AGE_SECS => out.push(f(
                "RH011",
                Severity::Low,
                &k.user_arn,
                format!(
                    "access key {} unused for {} days",
                    k.slot,
                    (cx.now - u) / day
                ),
                "an active key nobody uses is only a liability: deactivate or delete it".to_owned(),
            )),
            Some(_) => {}
        }
    }
}
