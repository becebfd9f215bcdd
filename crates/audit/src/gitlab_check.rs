//! The GitLab cross-check (`audit --gitlab`): IAM cannot see whether a ref is protected, so a
//! production trust that admits `ref:release/*` is only as safe as GitLab's protection of
//! every matching branch. This module reads what GitLab protects (protected branches, tags and
//! environments per project, as the REST API returns them, from the API or an export of the
//! same shape) and flags every admitted ref GitLab does not protect: OIDC `sub` patterns of
//! roles that reach production, and claim-gate rules of protected environments.
//!
//! Matching follows each side's rules: IAM `StringLike` (`*` any run, `/` included; `?` one
//! character) for the trust, GitLab's wildcard protection (`*` any run, `/` included, nothing
//! else special) for the protection. A trusted pattern is covered when one protection rule
//! matches every ref it admits (decided exactly, by glob inclusion); a pattern that only
//! several rules together might cover is reported as unproven (medium), with no example.

use std::collections::{BTreeMap, BTreeSet};

use rolehop_policy::pattern::Glob;
use serde_json::Value;

use crate::InputError;
use crate::findings::{Finding, Severity};
use crate::graph::{Graph, NodeKind};
use crate::model::Estate;

/// The rules this module raises (id, title), for SARIF and the docs.
pub const RULES: [(&str, &str); 7] = [
    (
        "RH050",
        "OIDC subject of a production role admits refs GitLab does not protect",
    ),
    (
        "RH051",
        "claim-gate rule of a protected environment admits refs GitLab does not protect",
    ),
    (
        "RH052",
        "a protected ref the trust rests on may be pushed or created by Developers",
    ),
    (
        "RH053",
        "a project the trust names does not exist in GitLab",
    ),
    (
        "RH054",
        "a project the trust names is not in the GitLab data: its refs are not checked",
    ),
    (
        "RH055",
        "GitLab environment of a protected environment is not protected in GitLab",
    ),
    (
        "RH056",
        "GitLab did not list protected environments: environment protection not checked",
    ),
];

/// GitLab's access levels (`push_access_levels`, `create_access_levels`...).
pub const DEVELOPER: u64 = 30;

/// One entry of an access-level list: a role level, or a named user, group or deploy key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The role level (30 Developer, 40 Maintainer, ...); `None` for a named user, group or deploy
    /// key.
    pub level: Option<u64>,
    /// GitLab's `access_level_description`, as named in findings.
    pub description: String,
    /// A named user, group or deploy key rather than a role level.
    pub named: bool,
}

/// A protected branch or tag rule (the name may hold `*` wildcards).
#[derive(Debug, Clone)]
pub struct ProtectedRef {
    /// The branch or tag name the rule protects, as GitLab shows it.
    pub name: String,
    /// Who may push (branches) or create (tags).
    pub writers: Vec<Access>,
    /// Whoever may push may also force-push (rewrite history): protected, but not reviewed
    /// (RH052). Always false for tags.
    pub allow_force_push: bool,
    pattern: Glob,
}

impl ProtectedRef {
    fn new(name: &str, writers: Vec<Access>, allow_force_push: bool) -> ProtectedRef {
        ProtectedRef {
            name: name.to_owned(),
            writers,
            allow_force_push,
            pattern: gitlab_glob(name),
        }
    }

    /// Role levels below Maintainer that may write: who obtains the role besides maintainers.
    fn developer_writers(&self) -> Vec<&str> {
        self.writers
            .iter()
            .filter(|a| !a.named && a.level.is_some_and(|l| l > 0 && l <= DEVELOPER))
            .map(|a| a.description.as_str())
            .collect()
    }
}

/// GitLab's protection wildcard: `*` matches any run of characters (`/` included); every
/// other character, `?` too, is itself.
fn gitlab_glob(name: &str) -> Glob {
    let mut pieces = Vec::new();
    for (i, part) in name.split('*').enumerate() {
        if i > 0 {
            pieces.push(("*", true));
        }
        pieces.push((part, false));
    }
    Glob::from_pieces(pieces, false)
}

/// A GitLab environment protected in a project: only its deployers may run jobs that deploy to it.
#[derive(Debug, Clone)]
pub struct ProtectedEnvironment {
    /// The GitLab environment's name, compared with the names the topology declares (RH055).
    pub name: String,
    /// Who may deploy to it (`deploy_access_levels`).
    pub deployers: Vec<Access>,
    /// Approvals a deployment waits for (`required_approval_count`; 0 when GitLab does not say).
    pub required_approvals: u64,
}

/// What GitLab protects in one project.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project's full path (`acme/shop`), as trusts and gate rules name it.
    pub path: String,
    /// The project's numeric id, to match gate rules that pin projects by `project_ids`.
    pub id: Option<u64>,
    /// The project's protected-branch rules (`protected_branches`).
    pub branches: Vec<ProtectedRef>,
    /// The project's protected-tag rules (`protected_tags`).
    pub tags: Vec<ProtectedRef>,
    /// `None`: GitLab did not list them (GitLab Free, an old version, or no rights).
    pub environments: Option<Vec<ProtectedEnvironment>>,
}

/// What GitLab protects, for the projects the trust names.
#[derive(Debug, Clone, Default)]
pub struct GitlabData {
    /// The API URL or the export file, for messages.
    pub source: String,
    /// What GitLab protects, per project it returned.
    pub projects: Vec<Project>,
    /// Projects GitLab answered `404 Project Not Found` for.
    pub missing: BTreeSet<String>,
    /// Every project path GitLab listed under a group (to expand project globs).
    pub listed: BTreeSet<String>,
}

/// A claim-gate rule set of one environment, as the audit needs it. Built by the CLI from
/// the gate's config (`gate.toml`); the topology's gate section, once it exists, feeds the
/// same type.
#[derive(Debug, Clone, Default)]
pub struct GateRule {
    /// The environment's name, and where it is declared (for messages).
    pub environment: String,
    /// Where the rule set is declared (file and section), for messages.
    pub origin: String,
    /// The service role the gate assumes for it: it is protected when that role reaches
    /// production in the audited estate (or when `protected` says so).
    pub service_role_arn: Option<String>,
    /// Declared protected whatever its service role reaches (the topology's `protected`).
    pub protected: bool,
    /// Project paths or globs the gate admits; their refs are checked against GitLab's protection.
    pub project_paths: Vec<String>,
    /// Project ids the gate admits, looked up in the GitLab data by id.
    pub project_ids: Vec<String>,
    /// Branch names or globs the gate admits, each checked against the projects' protected
    /// branches.
    pub branches: Vec<String>,
    /// Tag names or globs the gate admits, each checked against the projects' protected tags.
    pub tags: Vec<String>,
    /// The gate checks GitLab's own `ref_protected` claim: unprotected refs never pass.
    pub ref_protected: bool,
    /// The gate requires `environment_protected`: only the environment's deployers run it.
    pub environment_protected: bool,
}

fn levels(v: &Value, key: &str) -> Vec<Access> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| {
                    let id = |k: &str| x.get(k).is_some_and(|v| !v.is_null());
                    Access {
                        level: x.get("access_level").and_then(Value::as_u64),
                        description: x
                            .get("access_level_description")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                        named: id("user_id") || id("group_id") || id("deploy_key_id"),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

impl GitlabData {
    /// Reads the export: `{"projects": [{"path", "id", "protected_branches": [...],
    /// "protected_tags": [...], "protected_environments": [...] or null}], "missing_projects":
    /// [...], "group_projects": [...]}`, each list as GitLab's REST API returns it.
    pub fn parse(file: &str, text: &str) -> Result<GitlabData, InputError> {
        let v: Value = serde_json::from_str(text).map_err(|e| InputError::Json {
            file: file.to_owned(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        GitlabData::from_value(file, &v)
    }

    /// Reads an already parsed export (the same shape as `parse`); `file` names the source in
    /// errors.
    pub fn from_value(file: &str, v: &Value) -> Result<GitlabData, InputError> {
        let shape = |m: String| InputError::Shape {
            file: file.to_owned(),
            message: m,
        };
        let projects = v.get("projects").and_then(Value::as_array).ok_or_else(|| {
            shape("expected `{\"projects\": [...]}` (GitLab protection export)".into())
        })?;
        let mut out = GitlabData {
            source: file.to_owned(),
            ..GitlabData::default()
        };
        for (i, p) in projects.iter().enumerate() {
            let path = p
                .get("path")
                .and_then(Value::as_str)
                .ok_or_else(|| shape(format!("projects[{i}].path is missing")))?;
            let list = |key: &str| -> Result<Vec<Value>, InputError> {
                match p.get(key) {
                    None | Some(Value::Null) => Ok(Vec::new()),
                    Some(Value::Array(a)) => Ok(a.clone()),
                    Some(_) => Err(shape(format!("projects[{i}].{key} must be a list"))),
                }
            };
            let mut branches = Vec::new();
            for (j, b) in list("protected_branches")?.iter().enumerate() {
                let name = b.get("name").and_then(Value::as_str).ok_or_else(|| {
                    shape(format!(
                        "projects[{i}].protected_branches[{j}].name is missing"
                    ))
                })?;
                branches.push(ProtectedRef::new(
                    name,
                    levels(b, "push_access_levels"),
                    // Absent before GitLab 13.10: force pushes were never allowed then.
                    b.get("allow_force_push")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                ));
            }
            let mut tags = Vec::new();
            for (j, t) in list("protected_tags")?.iter().enumerate() {
                let name = t.get("name").and_then(Value::as_str).ok_or_else(|| {
                    shape(format!("projects[{i}].protected_tags[{j}].name is missing"))
                })?;
                tags.push(ProtectedRef::new(
                    name,
                    levels(t, "create_access_levels"),
                    false,
                ));
            }
            let environments = match p.get("protected_environments") {
                None | Some(Value::Null) => None,
                Some(Value::Array(a)) => Some(
                    a.iter()
                        .filter_map(|e| {
                            Some(ProtectedEnvironment {
                                name: e.get("name")?.as_str()?.to_owned(),
                                deployers: levels(e, "deploy_access_levels"),
                                // Absent before GitLab 13.x / on older answers: none required.
                                required_approvals: e
                                    .get("required_approval_count")
                                    .and_then(Value::as_u64)
                                    .unwrap_or(0),
                            })
                        })
                        .collect(),
                ),
                Some(_) => {
                    return Err(shape(format!(
                        "projects[{i}].protected_environments must be a list or null"
                    )));
                }
            };
            out.listed.insert(path.to_owned());
            out.projects.push(Project {
                path: path.to_owned(),
                id: p.get("id").and_then(Value::as_u64),
                branches,
                tags,
                environments,
            });
        }
        for key in ["missing_projects", "group_projects"] {
            for m in v.get(key).and_then(Value::as_array).into_iter().flatten() {
                if let Some(m) = m.as_str() {
                    if key == "missing_projects" {
                        out.missing.insert(m.to_owned());
                    } else {
                        out.listed.insert(m.to_owned());
                    }
                }
            }
        }
        Ok(out)
    }

    fn project(&self, path: &str) -> Option<&Project> {
        self.projects.iter().find(|p| p.path == path)
    }
}

/// The exact projects and the project globs a set of trusts and gate rules names: what to
/// fetch from the API (globs need their group's project list).
pub fn wanted_projects(graph: &Graph, gates: &[GateRule]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for n in &graph.nodes {
        if n.kind != NodeKind::OidcSubject {
            continue;
        }
        if let Some(s) = SubPattern::parse(subject_of(&n.id)) {
            out.insert(s.project.to_owned());
        }
    }
    for g in gates {
        out.extend(g.project_paths.iter().cloned());
    }
    out
}

/// `oidc:<host>:<sub>` -> `<sub>`.
fn subject_of(id: &str) -> &str {
    id.strip_prefix("oidc:")
        .and_then(|r| r.split_once(':'))
        .map_or(id, |(_, s)| s)
}

/// A GitLab `sub` pattern's parts (any order GitLab can emit them in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubPattern<'a> {
    /// The `project_path` claim: a project path, or a glob that admits every matching project.
    pub project: &'a str,
    /// `None` when the pattern does not pin it (a customised `sub`, or `ref_type:*`).
    pub ref_type: Option<&'a str>,
    /// `None` when the pattern does not name the ref (a customised `sub`): any ref.
    pub reff: Option<&'a str>,
}

impl<'a> SubPattern<'a> {
    /// Splits a `project_path:...` subject into its claims; `None` for a `sub` that does not start
    /// with `project_path:` (a customised one).
    pub fn parse(sub: &'a str) -> Option<SubPattern<'a>> {
        let p = crate::findings::sub_parts(sub)?;
        // A project glob whose trailing `*` swallowed the rest (`project_path:acme/*`)
        // admits any ref of any type; so does a wildcard ref type.
        Some(SubPattern {
            project: p.project,
            ref_type: p.ref_type.filter(|t| !t.contains(['*', '?'])),
            reff: p.reff,
        })
    }
}

/// Which GitLab ref kinds a trusted pattern admits.
fn kinds(ref_type: Option<&str>) -> &'static [&'static str] {
    match ref_type {
        Some("branch") => &["branch"],
        Some("tag") => &["tag"],
        _ => &["branch", "tag"],
    }
}

/// How well GitLab's rules protect the refs a pattern admits.
enum Cover<'p> {
    /// One rule covers every admitted ref.
    Covered(&'p ProtectedRef),
    /// No rule covers them all; `example` is an admitted ref no rule protects, when one is
    /// easy to name.
    Open { example: Option<String> },
}

fn cover<'p>(reff: &str, rules: &'p [ProtectedRef]) -> Cover<'p> {
    let trusted = Glob::new(reff, false);
    if let Some(r) = rules.iter().find(|r| r.pattern.covers(&trusted)) {
        return Cover::Covered(r);
    }
    // Name a ref the pattern admits that nothing protects: the wildcards filled in with a few
    // plain names. None found means only several rules together might cover it.
    for fill in ["rolehop-unprotected", "x", "", "a/b"] {
        let candidate: String = reff
            .chars()
            .map(|c| match c {
                '*' => fill.to_owned(),
                '?' => "x".to_owned(),
                c => c.to_string(),
            })
            .collect();
        if !candidate.is_empty() && !rules.iter().any(|r| r.pattern.matches(&candidate)) {
            return Cover::Open {
                example: Some(candidate),
            };
        }
    }
    Cover::Open { example: None }
}

fn names(rules: &[ProtectedRef]) -> String {
    if rules.is_empty() {
        return "none".to_owned();
    }
    rules
        .iter()
        .map(|r| format!("`{}`", r.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Who admits a ref: an OIDC trust or a gate rule, phrased for findings.
struct Admitter<'a> {
    id: &'static str,
    resource: String,
    /// `OIDC subject `...` of `role``, `gate rule of environment `prod``.
    what: String,
    /// The production place it leads to, for the reader.
    leads_to: String,
    /// Why an open ref matters less (the gate requires a protected environment).
    softened: Option<&'a str>,
}

fn check_ref(a: &Admitter<'_>, project: &Project, kind: &str, reff: &str, out: &mut Vec<Finding>) {
    let rules = if kind == "branch" {
        &project.branches
    } else {
        &project.tags
    };
    let path = &project.path;
    let plural = if kind == "branch" { "branches" } else { "tags" };
    match cover(reff, rules) {
        Cover::Covered(rule) => {
            let devs = rule.developer_writers();
            if !devs.is_empty() || rule.allow_force_push {
                let who = if devs.is_empty() {
                    "anyone who may push it can force-push (`allow_force_push`)".to_owned()
                } else {
                    format!(
                        "{} may {} it",
                        devs.join(", "),
                        if kind == "branch" { "push" } else { "create" }
                    )
                };
                out.push(Finding {
                    id: "RH052",
                    fix: crate::fixes::fix("RH052").to_owned(),
                    severity: Severity::Medium,
                    resource: a.resource.clone(),
                    title: format!(
                        "{kind} `{reff}` of `{path}` is protected by `{}`, but {who}",
                        rule.name
                    ),
                    detail: format!(
                        "{} admits it and {}; every such user's pipeline obtains that access. Allow only Maintainers (or no one, merging through reviewed merge requests) to write `{}`",
                        a.what, a.leads_to, rule.name
                    ),
                });
            }
        }
        Cover::Open { example } => {
            let (severity, how) = match (&example, a.softened) {
                (_, Some(why)) => (Severity::Low, why.to_owned()),
                (Some(e), None) => (
                    if a.id == "RH050" {
                        Severity::Critical
                    } else {
                        Severity::High
                    },
                    format!(
                        "for example a {kind} named `{e}`, which anyone with push access can create, since no protection rule matches it"
                    ),
                ),
                (None, None) => (
                    Severity::Medium,
                    "no single protection rule covers the pattern; rolehop cannot prove that several together do".to_owned(),
                ),
            };
            out.push(Finding {
                id: a.id,
                fix: crate::fixes::fix(a.id).to_owned(),
                severity,
                resource: a.resource.clone(),
                title: format!(
                    "{} admits {plural} matching `{reff}` in `{path}` that GitLab does not protect",
                    a.what
                ),
                detail: format!(
                    "it {}; {how}. GitLab protects these {plural} in `{path}`: {}. Protect every matching {kind} (Settings > Repository), or trust exact protected refs only",
                    a.leads_to,
                    names(rules)
                ),
            });
        }
    }
}

/// The projects a (possibly globbed) project pattern means in the GitLab data, or a finding
/// saying why it cannot be checked.
fn projects_for<'d>(
    a: &Admitter<'_>,
    pattern: &str,
    data: &'d GitlabData,
    out: &mut Vec<Finding>,
) -> Vec<&'d Project> {
    if !pattern.contains(['*', '?']) {
        if let Some(p) = data.project(pattern) {
            return vec![p];
        }
        if data.missing.contains(pattern) {
            out.push(Finding {
                id: "RH053",
                fix: crate::fixes::fix("RH053").to_owned(),
                severity: Severity::High,
                resource: a.resource.clone(),
                title: format!("{} names project `{pattern}`, which does not exist in GitLab", a.what),
                detail: format!(
                    "GitLab ({}) answered 404 for `{pattern}`: whoever creates that project (or takes the namespace) obtains the access it {}. Remove it from the trust, or create and protect the project",
                    data.source, a.leads_to
                ),
            });
        } else {
            out.push(not_checked(a, pattern, data));
        }
        return Vec::new();
    }
    let glob = Glob::new(pattern, false);
    let found: Vec<&Project> = data
        .projects
        .iter()
        .filter(|p| glob.matches(&p.path))
        .collect();
    let unfetched: Vec<&String> = data
        .listed
        .iter()
        .filter(|p| glob.matches(p) && data.project(p).is_none())
        .collect();
    for p in unfetched {
        out.push(not_checked(a, p, data));
    }
    if found.is_empty() {
        out.push(not_checked(a, pattern, data));
    }
    found
}

fn not_checked(a: &Admitter<'_>, project: &str, data: &GitlabData) -> Finding {
    Finding {
        id: "RH054",
        fix: crate::fixes::fix("RH054").to_owned(),
        severity: Severity::Medium,
        resource: a.resource.clone(),
        title: format!(
            "{} admits `{project}`, which the GitLab data does not cover: its refs are not checked",
            a.what
        ),
        detail: format!(
            "`{}` holds no protection data for `{project}`; fetch it (`--gitlab <url>` lists every project the trust names, and the projects of a glob's group) so the audit can say whether the refs it admits are protected",
            data.source
        ),
    }
}

/// Whether node `i` reaches (or is) a production role, and the first such role.
fn production_reached(g: &Graph, i: usize) -> Option<usize> {
    if g.nodes[i].env.as_ref().is_some_and(|e| e.prod) {
        return Some(i);
    }
    g.reach(i).into_iter().map(|(n, _)| n).find(|&n| {
        g.nodes[n].kind == NodeKind::Role && g.nodes[n].env.as_ref().is_some_and(|e| e.prod)
    })
}

/// Every finding of the cross-check.
pub fn check(
    estate: &Estate,
    graph: &Graph,
    data: &GitlabData,
    gates: &[GateRule],
) -> Vec<Finding> {
    let mut out = Vec::new();
    // OIDC subjects that lead to production.
    for (i, n) in graph.nodes.iter().enumerate() {
        if n.kind != NodeKind::OidcSubject {
            continue;
        }
        let Some(prod) = production_reached(graph, i) else {
            continue;
        };
        let sub = subject_of(&n.id);
        let Some(s) = SubPattern::parse(sub) else {
            continue;
        };
        let entry: Vec<&str> = graph.out[i]
            .iter()
            .map(|&e| graph.nodes[graph.edges[e].to].id.as_str())
            .collect();
        let resource = entry.first().map_or(n.id.clone(), |r| (*r).to_owned());
        let a = Admitter {
            id: "RH050",
            resource,
            what: format!("OIDC subject `{sub}`"),
            leads_to: format!("reaches production role `{}`", graph.nodes[prod].id),
            softened: None,
        };
        let reff = s.reff.unwrap_or("*");
        for project in projects_for(&a, s.project, data, &mut out) {
            for kind in kinds(s.ref_type) {
                check_ref(&a, project, kind, reff, &mut out);
            }
        }
    }
    // Gate rules of protected environments.
    for gate in gates {
        let protected = gate.protected
            || gate.service_role_arn.as_ref().is_some_and(|arn| {
                graph
                    .find(arn)
                    .is_some_and(|i| production_reached(graph, i).is_some())
            });
        if !protected || gate.ref_protected {
            // The gate checks `ref_protected` itself: an unprotected ref never passes.
            continue;
        }
        let soft = "the gate requires `environment_protected`, so only the GitLab environment's deployers can run such a job, but the ref itself is open to anyone with push access";
        let a = Admitter {
            id: "RH051",
            resource: format!("gate:{}", gate.environment),
            what: format!(
                "claim-gate rule of environment `{}` ({})",
                gate.environment, gate.origin
            ),
            leads_to: format!(
                "gets the credentials of environment `{}` without `ref_protected = true`",
                gate.environment
            ),
            softened: gate.environment_protected.then_some(soft),
        };
        let mut projects: Vec<&Project> = Vec::new();
        for p in &gate.project_paths {
            projects.extend(projects_for(&a, p, data, &mut out));
        }
        for id in &gate.project_ids {
            match data
                .projects
                .iter()
                .find(|p| p.id.is_some_and(|x| x.to_string() == *id))
            {
                Some(p) => projects.push(p),
                None => out.push(not_checked(&a, &format!("project id {id}"), data)),
            }
        }
        projects.sort_by(|a, b| a.path.cmp(&b.path));
        projects.dedup_by(|a, b| a.path == b.path);
        for project in projects {
            for b in &gate.branches {
                check_ref(&a, project, "branch", b, &mut out);
            }
            for t in &gate.tags {
                check_ref(&a, project, "tag", t, &mut out);
            }
        }
    }
    environments(estate, data, &mut out);
    out
}

/// RH055/RH056: a protected environment's GitLab environments (`--config` only, where the
/// topology names them) must be protected environments of each project.
fn environments(estate: &Estate, data: &GitlabData, out: &mut Vec<Finding>) {
    let mut seen = BTreeMap::new();
    for p in &estate.principals {
        let (Some(env), Some(declared)) = (&p.env, &p.declared) else {
            continue;
        };
        if !env.prod || declared.environments.is_empty() {
            continue;
        }
        for path in declared.projects.iter().filter(|x| !x.contains('*')) {
            let Some(project) = data.project(path) else {
                continue;
            };
            let Some(protected) = &project.environments else {
                if seen.insert(path.clone(), ()).is_none() {
                    out.push(Finding {
                        id: "RH056",
                        fix: crate::fixes::fix("RH056").to_owned(),
                        severity: Severity::Low,
                        resource: p.arn.clone(),
                        title: format!("GitLab did not list the protected environments of `{path}`"),
                        detail: "protected environments need GitLab Premium and a token with Maintainer rights; without them the audit cannot say whether the environments below are protected".to_owned(),
                    });
                }
                continue;
            };
            for name in &declared.environments {
                if protected.iter().any(|e| e.name == *name) {
                    continue;
                }
                out.push(Finding {
                    id: "RH055",
                    fix: crate::fixes::fix("RH055").to_owned(),
                    severity: Severity::High,
                    resource: p.arn.clone(),
                    title: format!(
                        "GitLab environment `{name}` of protected environment `{}` is not protected in `{path}`",
                        env.name
                    ),
                    detail: format!(
                        "anyone who may run a pipeline in `{path}` may deploy to `{name}`: protect it (Settings > CI/CD > Protected environments, allowed to deploy: Maintainers); GitLab protects {}",
                        if protected.is_empty() {
                            "no environment there".to_owned()
                        } else {
                            protected
                                .iter()
                                .map(|e| format!("`{}`", e.name))
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    ),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn rules(names: &[&str]) -> Vec<ProtectedRef> {
        names
            .iter()
            .map(|n| ProtectedRef::new(n, vec![], false))
            .collect()
    }

    #[test]
    fn a_trusted_glob_is_covered_only_by_a_rule_matching_every_ref_it_admits() {
        let r = rules(&["main", "release/*"]);
        assert!(matches!(cover("main", &r), Cover::Covered(_)));
        assert!(matches!(cover("release/v1*", &r), Cover::Covered(_)));
        // `release/*` is covered by `release/*`; `release*` admits `release-x` too.
        match cover("release*", &r) {
            Cover::Open { example } => {
                assert_eq!(example.as_deref(), Some("releaserolehop-unprotected"))
            }
            Cover::Covered(_) => panic!("release* is not covered"),
        }
        match cover("feature/*", &r) {
            Cover::Open { example } => {
                assert_eq!(example.as_deref(), Some("feature/rolehop-unprotected"))
            }
            Cover::Covered(_) => panic!(),
        }
        // `?` is one character for IAM but a literal for GitLab: `v?` is not covered by `v?`.
        assert!(matches!(cover("v1", &rules(&["v?"])), Cover::Open { .. }));
        assert!(matches!(cover("v?", &rules(&["v*"])), Cover::Covered(_)));
        // GitLab's `*` crosses `/`.
        assert!(matches!(cover("a/b/c", &rules(&["a*"])), Cover::Covered(_)));
    }

    #[test]
    fn sub_patterns_in_every_order() {
        let s = SubPattern::parse("project_path:acme/shop:ref_type:branch:ref:main").unwrap();
        assert_eq!(
            (s.project, s.ref_type, s.reff),
            ("acme/shop", Some("branch"), Some("main"))
        );
        let s = SubPattern::parse("project_path:acme/shop:ref:v1:ref_type:tag").unwrap();
        assert_eq!((s.ref_type, s.reff), (Some("tag"), Some("v1")));
        let s = SubPattern::parse("project_path:acme/shop:ref_type:*:ref:main").unwrap();
        assert_eq!(s.ref_type, None);
        let s = SubPattern::parse("project_path:acme/*").unwrap();
        assert_eq!((s.project, s.reff), ("acme/*", None));
        assert!(SubPattern::parse("*").is_none());
    }
}
