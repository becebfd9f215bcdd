//! The merge-request gate: what a change adds, against a previous JSON report (`audit
//! --baseline FILE`). New findings (by id, resource and title, as the SARIF fingerprint),
//! new access edges, and new reach per credential holder (roles it did not reach before, or
//! admin-equivalence it did not have). The markdown form is a ready merge-request comment
//! ("`acme/shop@feature/*` now reaches **prod-eu**").

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::findings::{Finding, Severity};
use crate::graph::{Graph, NodeKind};
use crate::{InputError, Report};

/// A finding of the baseline report, as its JSON has it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct BaseFinding {
    /// The rule id: with `resource` and `title`, the key a finding is matched on across reports.
    pub id: String,
    /// The severity as the JSON spells it; kept for listing resolved findings, not for matching.
    pub severity: String,
    /// The resource the finding is about, part of the matching key.
    pub resource: String,
    /// The finding's title, part of the matching key: it tells apart findings of one rule on one
    /// resource.
    pub title: String,
}

/// A previous report, read back.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    /// The findings the previous report had; new findings are those not among them.
    pub findings: Vec<BaseFinding>,
    /// `(from, to)` node ids; `None` for a report written before reports listed edges.
    pub edges: Option<BTreeSet<(String, String)>>,
    /// Credential holder -> (roles reached, admin).
    pub reach: BTreeMap<String, (BTreeSet<String>, bool)>,
}

impl Baseline {
    /// Reads a report written by `rolehop audit --format json` (the full report; a report
    /// that also carries a `delta` is read the same way).
    pub fn parse(file: &str, text: &str) -> Result<Baseline, InputError> {
        let v: Value = serde_json::from_str(text).map_err(|e| InputError::Json {
            file: file.to_owned(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        let shape = |m: String| InputError::Shape {
            file: file.to_owned(),
            message: m,
        };
        let findings = v
            .get("findings")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                shape("not a rolehop audit JSON report: no `findings` list (write one with `rolehop audit --format json`)".into())
            })?;
        let text_of = |x: &Value, i: usize, key: &str, what: &str| {
            x.get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| shape(format!("{what}[{i}].{key} is missing or not a string")))
        };
        let mut out = Baseline::default();
        for (i, f) in findings.iter().enumerate() {
            out.findings.push(BaseFinding {
                id: text_of(f, i, "id", "findings")?,
                severity: text_of(f, i, "severity", "findings")?,
                resource: text_of(f, i, "resource", "findings")?,
                title: text_of(f, i, "title", "findings")?,
            });
        }
        if let Some(edges) = v.get("edges") {
            let edges = edges
                .as_array()
                .ok_or_else(|| shape("`edges` must be a list".into()))?;
            let mut set = BTreeSet::new();
            for (i, e) in edges.iter().enumerate() {
                set.insert((
                    text_of(e, i, "from", "edges")?,
                    text_of(e, i, "to", "edges")?,
                ));
            }
            out.edges = Some(set);
        }
        let radius = v
            .get("blast_radius")
            .and_then(Value::as_array)
            .ok_or_else(|| shape("no `blast_radius` list".into()))?;
        for (i, b) in radius.iter().enumerate() {
            let principal = text_of(b, i, "principal", "blast_radius")?;
            let reaches = b
                .get("reaches")
                .and_then(Value::as_array)
                .ok_or_else(|| shape(format!("blast_radius[{i}].reaches must be a list")))?
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            let admin = b.get("admin").and_then(Value::as_bool).unwrap_or(false);
            out.reach.insert(principal, (reaches, admin));
        }
        Ok(out)
    }
}

/// An access edge the baseline did not have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewEdge {
    /// The node id the new access starts from (a credential holder or a role).
    pub from: String,
    /// The node id of the role the new edge reaches.
    pub to: String,
    /// The STS action the edge takes (`sts:AssumeRole`, `...WithWebIdentity`, `...WithSAML`).
    pub action: &'static str,
    /// The conditions the new access depends on, so a reviewer sees how narrow it is.
    pub conditions: Vec<String>,
}

/// What one credential holder reaches now and did not before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewReach {
    /// The credential holder's node id (an IAM user, an OIDC subject pattern, a claim set).
    pub principal: String,
    /// The holder is not in the baseline at all (a new user, a new OIDC subject pattern).
    pub new_principal: bool,
    /// Roles reached now and not before, sorted.
    pub roles: Vec<String>,
    /// Admin-equivalent now, and not before.
    pub became_admin: bool,
}

/// What the change adds (and what it fixes).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Delta {
    /// Findings of the current report that the baseline did not have: what `--fail-on-new` judges.
    pub new_findings: Vec<Finding>,
    /// Baseline findings the current report no longer has (what the change fixed), sorted, without
    /// duplicates.
    pub resolved_findings: Vec<BaseFinding>,
    /// Access edges the baseline did not list, sorted by `from` then `to`.
    pub new_edges: Vec<NewEdge>,
    /// False when the baseline predates edge lists: `new_edges` is then empty, not known.
    pub edges_compared: bool,
    /// Credential holders that reach roles, or admin equivalence, they did not before.
    pub new_reach: Vec<NewReach>,
}

impl Delta {
    /// The most severe new finding's severity.
    pub fn worst_new(&self) -> Option<Severity> {
        self.new_findings.iter().map(|f| f.severity).max()
    }

    /// Whether the change adds nothing: no new finding, edge or reach (resolved findings alone
    /// leave it empty).
    pub fn is_empty(&self) -> bool {
        self.new_findings.is_empty() && self.new_edges.is_empty() && self.new_reach.is_empty()
    }
}

/// What `report` adds to `base`.
pub fn diff(report: &Report, base: &Baseline) -> Delta {
    let key = |id: &str, resource: &str, title: &str| {
        (id.to_owned(), resource.to_owned(), title.to_owned())
    };
    let before: BTreeSet<(String, String, String)> = base
        .findings
        .iter()
        .map(|f| key(&f.id, &f.resource, &f.title))
        .collect();
    let now: BTreeSet<(String, String, String)> = report
        .findings
        .iter()
        .map(|f| key(f.id, &f.resource, &f.title))
        .collect();
    let new_findings = report
        .findings
        .iter()
        .filter(|f| !before.contains(&key(f.id, &f.resource, &f.title)))
        .cloned()
        .collect();
    let mut resolved_findings: Vec<BaseFinding> = base
        .findings
        .iter()
        .filter(|f| !now.contains(&key(&f.id, &f.resource, &f.title)))
        .cloned()
        .collect();
    resolved_findings.sort();
    resolved_findings.dedup();

    let g = &report.graph;
    let mut new_edges = Vec::new();
    if let Some(old) = &base.edges {
        for e in &g.edges {
            let (from, to) = (&g.nodes[e.from].id, &g.nodes[e.to].id);
            if !old.contains(&(from.clone(), to.clone())) {
                new_edges.push(NewEdge {
                    from: from.clone(),
                    to: to.clone(),
                    action: e.action,
                    conditions: e.conditions.clone(),
                });
            }
        }
        new_edges.sort_by(|a, b| (&a.from, &a.to).cmp(&(&b.from, &b.to)));
    }

    let mut new_reach = Vec::new();
    for b in &report.blast_radius {
        let old = base.reach.get(&b.principal);
        let roles: Vec<String> = b
            .reaches
            .iter()
            .filter(|r| old.is_none_or(|(o, _)| !o.contains(*r)))
            .cloned()
            .collect();
        let became_admin = b.admin && old.is_none_or(|(_, a)| !a);
        if !roles.is_empty() || became_admin {
            new_reach.push(NewReach {
                principal: b.principal.clone(),
                new_principal: old.is_none(),
                roles,
                became_admin,
            });
        }
    }
    Delta {
        new_findings,
        resolved_findings,
        new_edges,
        edges_compared: base.edges.is_some(),
        new_reach,
    }
}

/// How a reader names a credential holder: `acme/shop@feature/*` for a GitLab subject
/// pattern (with `(tag)` or `(any ref type)` when it is not a branch), `user rolehop-dev
/// (111111111111)` for an IAM user.
pub fn holder_name(g: &Graph, id: &str) -> String {
    let node = g.find(id).map(|i| &g.nodes[i]);
    match node.map(|n| n.kind) {
        Some(NodeKind::OidcSubject) => {
            let sub = id
                .strip_prefix("oidc:")
                .and_then(|r| r.split_once(':'))
                .map_or(id, |(_, sub)| sub);
            gitlab_subject_name(sub)
        }
        Some(NodeKind::User) => {
            let (account, name) = crate::model::split_arn(id);
            format!("user {name} ({account})")
        }
        _ => id.to_owned(),
    }
}

/// `project_path:acme/shop:ref_type:branch:ref:feature/*` -> `acme/shop@feature/*`.
pub fn gitlab_subject_name(sub: &str) -> String {
    let Some(rest) = sub.strip_prefix("project_path:") else {
        return sub.to_owned();
    };
    let (project, tail) = rest.split_once(':').unwrap_or((rest, ""));
    let reff = tail
        .split_once("ref:")
        .filter(|(before, _)| before.is_empty() || before.ends_with(':'))
        .map(|(_, r)| r.split(":ref_type:").next().unwrap_or(r));
    let ref_type = tail
        .split_once("ref_type:")
        .map(|(_, t)| t.split(':').next().unwrap_or(t));
    let kind = match ref_type {
        Some("branch") => "",
        Some("tag") => " (tag)",
        _ => " (any ref type)",
    };
    match reff {
        Some(r) => format!("{project}@{r}{kind}"),
        None => format!("{project}@*{kind}"),
    }
}

/// A role as a reader knows it: the account's name when one is known (`prod-eu`), else the
/// role's name and account.
fn role_place(g: &Graph, arn: &str, names: &BTreeMap<String, String>) -> (String, String) {
    let (account, name) = crate::model::split_arn(arn);
    let env = g.find(arn).and_then(|i| g.nodes[i].env.as_ref()).map(|e| {
        if e.prod {
            format!("{}, production", e.name)
        } else {
            e.name.clone()
        }
    });
    let place = names.get(&account).cloned().unwrap_or(account);
    let what = match env {
        Some(e) => format!("{e}: role `{}`", code(&name)),
        None => format!("role `{}`", code(&name)),
    };
    (place, what)
}

/// Text safe inside a markdown code span and a table cell.
fn code(t: &str) -> String {
    t.replace('`', "'").replace('|', "\\|").replace('\n', " ")
}

fn cell(t: &str) -> String {
    t.replace('|', "\\|").replace('\n', " ")
}

/// The merge-request comment: the change's new reach in sentences, then the new findings,
/// the new edges and what it fixed. `names` maps account ids to names (`prod-eu`).
pub fn markdown(report: &Report, delta: &Delta, names: &BTreeMap<String, String>) -> String {
    let g = &report.graph;
    let mut s = String::from("## rolehop audit: what this change adds\n\n");
    if delta.is_empty() {
        s.push_str("Nothing new: no new findings, no new access.\n");
    } else {
        let mut counts: BTreeMap<Severity, usize> = BTreeMap::new();
        for f in &delta.new_findings {
            *counts.entry(f.severity).or_default() += 1;
        }
        let by_sev: Vec<String> = counts
            .iter()
            .rev()
            .map(|(k, v)| format!("{v} {}", k.as_str()))
            .collect();
        let _ = writeln!(
            s,
            "**{} new finding(s)**{}, {} credential(s) with new reach, {} new access edge(s).\n",
            delta.new_findings.len(),
            if by_sev.is_empty() {
                String::new()
            } else {
                format!(" ({})", by_sev.join(", "))
            },
            delta.new_reach.len(),
            delta.new_edges.len()
        );
    }
    if !delta.new_reach.is_empty() {
        s.push_str("### New reach\n\n");
        for r in &delta.new_reach {
            let who = code(&holder_name(g, &r.principal));
            let mut places: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for role in &r.roles {
                let (place, what) = role_place(g, role, names);
                places.entry(place).or_default().push(what);
            }
            let list: Vec<String> = places
                .iter()
                .map(|(p, w)| format!("**{}** ({})", cell(p), w.join("; ")))
                .collect();
            let new = if r.new_principal { " (new)" } else { "" };
            if !list.is_empty() {
                let _ = writeln!(s, "- `{who}`{new} now reaches {}", list.join(", "));
            }
            if r.became_admin {
                let _ = writeln!(s, "- `{who}`{new} is now **admin-equivalent**");
            }
        }
        s.push('\n');
    }
    if !delta.new_findings.is_empty() {
        s.push_str(
            "### New findings\n\n| severity | id | resource | finding |\n|---|---|---|---|\n",
        );
        for f in &delta.new_findings {
            let _ = writeln!(
                s,
                "| {} | {} | `{}` | {}<br>{} |",
                f.severity.as_str(),
                f.id,
                code(&f.resource),
                cell(&f.title),
                cell(&f.detail)
            );
        }
        s.push('\n');
    }
    if !delta.new_edges.is_empty() {
        s.push_str("### New access edges\n\n| from | to | if |\n|---|---|---|\n");
        for e in &delta.new_edges {
            let _ = writeln!(
                s,
                "| `{}` | `{}` | {} |",
                code(&e.from),
                code(&e.to),
                cell(&e.conditions.join("; "))
            );
        }
        s.push('\n');
    } else if !delta.edges_compared {
        s.push_str("_The baseline report lists no edges (written by an older rolehop): new edges were not compared._\n\n");
    }
    if !delta.resolved_findings.is_empty() {
        s.push_str("### Fixed by this change\n\n");
        for f in &delta.resolved_findings {
            let _ = writeln!(
                s,
                "- ~~{} {} `{}`~~: {}",
                f.severity,
                f.id,
                code(&f.resource),
                cell(&f.title)
            );
        }
        s.push('\n');
    }
    if !report.waived.is_empty() {
        let _ = writeln!(
            s,
            "{} finding(s) waived (see the waivers file).",
            report.waived.len()
        );
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn gitlab_subjects_read_as_project_at_ref() {
        assert_eq!(
            gitlab_subject_name("project_path:acme/shop:ref_type:branch:ref:feature/*"),
            "acme/shop@feature/*"
        );
        assert_eq!(
            gitlab_subject_name("project_path:acme/shop:ref_type:tag:ref:v*"),
            "acme/shop@v* (tag)"
        );
        assert_eq!(
            gitlab_subject_name("project_path:acme/shop:ref:main:ref_type:branch"),
            "acme/shop@main"
        );
        assert_eq!(
            gitlab_subject_name("project_path:acme/*"),
            "acme/*@* (any ref type)"
        );
        assert_eq!(gitlab_subject_name("*"), "*");
    }

    #[test]
    fn a_report_without_findings_is_refused_with_the_file_name() {
        let e = Baseline::parse("base.json", r#"{"blast_radius": []}"#).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("base.json: not a rolehop audit JSON report"),
            "{e}"
        );
        let e = Baseline::parse("base.json", "{").unwrap_err();
        assert!(e.to_string().starts_with("base.json:1:1"), "{e}");
        let b = Baseline::parse("b", r#"{"findings": [], "blast_radius": []}"#).unwrap();
        assert!(b.edges.is_none());
    }
}
