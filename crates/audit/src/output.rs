//! The report's formats: a terminal table, JSON, SARIF 2.1.0, GitLab Code Quality, markdown
//! (with a mermaid graph, for merge-request comments), and the graph alone as mermaid or dot.
//! Everything iterates sorted data, so equal inputs give byte-equal outputs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::Report;
use crate::findings::{Finding, Severity};
use crate::graph::{Graph, NodeKind};
use crate::model::Part;

/// `{"findings": [...], "blast_radius": [...], "edges": [...], "waived": [...]}`; the edges
/// (sorted) let a later run say what a change adds (`audit --baseline`). As a `Value`, for
/// callers that inspect it; [`json_report`] writes the same text without building the tree.
pub fn json(r: &Report) -> Value {
    serde_json::to_value(json_report(r, None)).unwrap_or(Value::Null)
}

/// The JSON report (with `--baseline`, its `delta` last) as it is written. At 200,000 roles
/// the report holds 190,000 edges; a `serde_json::Value` tree of it cost about a tenth of the
/// audit's CPU to build and free before a byte was printed, so it is serialized directly, in
/// the key order the tree had.
pub fn json_report(r: &Report, delta: Option<Value>) -> JsonReport<'_> {
    JsonReport { report: r, delta }
}

/// The JSON report, serialized on demand (see [`json_report`]).
pub struct JsonReport<'r> {
    report: &'r Report,
    delta: Option<Value>,
}

#[derive(serde::Serialize)]
struct EdgeOut<'a> {
    from: &'a str,
    to: &'a str,
    action: &'a str,
    conditions: &'a [String],
}

/// A per-job or per-project reach with its sentence, as the tree had it (`summary` last).
#[derive(serde::Serialize)]
struct WithSummary<'a, T> {
    #[serde(flatten)]
    item: &'a T,
    summary: String,
}

impl serde::Serialize for JsonReport<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let r = self.report;
        let g = &r.graph;
        // Edges by (from, to) id. Node ids are unique, so ranking the nodes by id once and
        // sorting the edges by rank gives that order without comparing two ARNs per step
        // (most edges share a `from`, so each comparison read two equal ARNs to the end).
        // The ids sit beside their node numbers so that a comparison reads the two texts,
        // not first the two nodes (200,000 of them at 10,000 accounts, out of the cache).
        let mut by_id: Vec<(&str, usize)> = g
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.as_str(), i))
            .collect();
        by_id.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut rank = vec![0usize; g.nodes.len()];
        for (r, &(_, n)) in by_id.iter().enumerate() {
            rank[n] = r;
        }
        let mut sorted: Vec<&crate::graph::Edge> = g.edges.iter().collect();
        sorted.sort_unstable_by_key(|e| (rank[e.from], rank[e.to]));
        let edges: Vec<EdgeOut<'_>> = sorted
            .into_iter()
            .map(|e| EdgeOut {
                from: g.nodes[e.from].id.as_str(),
                to: g.nodes[e.to].id.as_str(),
                action: e.action,
                conditions: &e.conditions,
            })
            .collect();
        let jobs: Vec<WithSummary<'_, _>> = r
            .job_blast_radius
            .iter()
            .map(|j| WithSummary {
                item: j,
                summary: j.sentence(),
            })
            .collect();
        let projects: Vec<WithSummary<'_, _>> = r
            .project_blast_radius
            .iter()
            .map(|p| WithSummary {
                item: p,
                summary: p.sentence(),
            })
            .collect();
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("findings", &r.findings)?;
        m.serialize_entry("blast_radius", &r.blast_radius)?;
        m.serialize_entry("job_blast_radius", &jobs)?;
        m.serialize_entry("project_blast_radius", &projects)?;
        m.serialize_entry("edges", &edges)?;
        m.serialize_entry("waived", &r.waived)?;
        if let Some(d) = &self.delta {
            m.serialize_entry("delta", d)?;
        }
        m.end()
    }
}

/// A stable fingerprint of a finding (FNV-1a over id, resource and title), so dashboards
/// track one finding across runs.
pub fn fingerprint(f: &Finding) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in
        f.id.bytes()
            .chain([0])
            .chain(f.resource.bytes())
            .chain([0])
            .chain(f.title.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's and GitLab's dashboards read this 0-10 score.
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

/// SARIF 2.1.0, one run, rules from the catalogue.
pub fn sarif(r: &Report) -> Value {
    let rules: Vec<Value> = crate::all_rules()
        .map(|(id, title)| {
            // The help travels inline: a reader of the SARIF file (a code-scanning page, an
            // IDE) has the fix without a link to follow.
            let fix = crate::fixes::fix(id);
            json!({
                "id": id,
                "name": id,
                "shortDescription": {"text": title},
                "fullDescription": {"text": title},
                "help": {
                    "text": format!("{title}\n\nFix: {fix}"),
                    "markdown": format!("**{id}**: {title}\n\n**Fix:** {fix}"),
                },
            })
        })
        .collect();
    let results: Vec<Value> = r
        .findings
        .iter()
        .map(|f| {
            let (file, line) = r.origin_of(&f.resource);
            json!({
                "ruleId": f.id,
                "ruleIndex": crate::all_rules().position(|(id, _)| id == f.id).unwrap_or(0),
                "level": sarif_level(f.severity),
                "message": {"text": format!("{}: {}\nfix: {}", f.title, f.detail, f.fix)},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": file},
                        "region": {"startLine": line}
                    },
                    "logicalLocations": [{"fullyQualifiedName": f.resource, "kind": "resource"}]
                }],
                "partialFingerprints": {"rolehopFinding/v1": fingerprint(f)},
                "properties": {
                    "fix": f.fix,
                    "severity": f.severity.as_str(),
                    "security-severity": security_severity(f.severity),
                }
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "rolehop",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }]
    })
}

/// GitLab Code Quality report (an array of issues).
pub fn codequality(r: &Report) -> Value {
    let issues: Vec<Value> = r
        .findings
        .iter()
        .map(|f| {
            let sev = match f.severity {
                Severity::Info => "info",
                Severity::Low => "minor",
                Severity::Medium => "major",
                Severity::High => "critical",
                Severity::Critical => "blocker",
            };
            let (file, line) = r.origin_of(&f.resource);
            json!({
                // GitLab's merge request widget shows only the description: the fix goes there,
                // the detail in the body the full report shows.
                "description": format!("{} {} ({}); fix: {}", f.id, f.title, f.resource, f.fix),
                "content": {"body": format!("{}\n\n**Fix:** {}", f.detail, f.fix)},
                "check_name": f.id,
                "fingerprint": fingerprint(f),
                "severity": sev,
                "location": {"path": file, "lines": {"begin": line}},
            })
        })
        .collect();
    Value::Array(issues)
}

/// A plain table for terminals.
pub fn table(r: &Report) -> String {
    let mut s = String::new();
    if r.findings.is_empty() {
        s.push_str("no findings\n");
    } else {
        let w_res = r
            .findings
            .iter()
            .map(|f| f.resource.len())
            .max()
            .unwrap_or(8)
            .max(8);
        let _ = writeln!(
            s,
            "{:<9} {:<6} {:<w_res$} TITLE",
            "SEVERITY", "ID", "RESOURCE"
        );
        for f in &r.findings {
            let _ = writeln!(
                s,
                "{:<9} {:<6} {:<w_res$} {}",
                f.severity.as_str(),
                f.id,
                f.resource,
                f.title
            );
            let _ = writeln!(s, "{:<17}{}", "", f.detail);
            let _ = writeln!(s, "{:<17}fix: {}", "", f.fix);
        }
    }
    let mut counts: BTreeMap<Severity, usize> = BTreeMap::new();
    for f in &r.findings {
        *counts.entry(f.severity).or_default() += 1;
    }
    let summary: Vec<String> = counts
        .iter()
        .rev()
        .map(|(k, v)| format!("{v} {}", k.as_str()))
        .collect();
    if !summary.is_empty() {
        let _ = writeln!(s, "\n{} findings: {}", r.findings.len(), summary.join(", "));
    }
    s.push_str("\nBLAST RADIUS\n");
    for b in &r.blast_radius {
        let _ = writeln!(
            s,
            "{}{}: {} role(s)",
            b.principal,
            if b.admin { " [ADMIN]" } else { "" },
            b.reaches.len()
        );
        for role in &b.reaches {
            let _ = writeln!(s, "  -> {role}");
        }
    }
    if !r.job_blast_radius.is_empty() {
        s.push_str(
            "\nBLAST RADIUS PER JOB (one token can match the patterns of several environments)\n",
        );
        for j in &r.job_blast_radius {
            let _ = writeln!(s, "{}", j.sentence());
        }
    }
    if !r.project_blast_radius.is_empty() {
        s.push_str("\nBLAST RADIUS PER PROJECT (deployment role within each session policy)\n");
        for p in &r.project_blast_radius {
            let _ = writeln!(s, "{}", p.sentence());
        }
    }
    s
}

/// Markdown for merge-request comments: a summary, the findings and a mermaid graph.
pub fn markdown(r: &Report) -> String {
    let mut s = String::from("## rolehop audit\n\n");
    if r.findings.is_empty() {
        s.push_str("No findings.\n");
    } else {
        s.push_str("| severity | id | resource | finding |\n|---|---|---|---|\n");
        for f in &r.findings {
            let _ = writeln!(
                s,
                "| {} | {} | `{}` | {}<br>{}<br>**fix:** {} |",
                f.severity.as_str(),
                f.id,
                f.resource,
                md_escape(&f.title),
                md_escape(&f.detail),
                md_escape(&f.fix)
            );
        }
    }
    s.push_str("\n### Blast radius\n\n| principal | admin | reaches |\n|---|---|---|\n");
    for b in &r.blast_radius {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} |",
            b.principal,
            if b.admin { "**yes**" } else { "no" },
            b.reaches
                .iter()
                .map(|x| format!("`{x}`"))
                .collect::<Vec<_>>()
                .join("<br>")
        );
    }
    if !r.job_blast_radius.is_empty() {
        s.push_str("\n### Blast radius per job\n\n");
        for j in &r.job_blast_radius {
            let _ = writeln!(s, "- {}", md_escape(&j.sentence()));
        }
    }
    if !r.project_blast_radius.is_empty() {
        s.push_str("\n### Blast radius per project (session policies)\n\n");
        for p in &r.project_blast_radius {
            let _ = writeln!(s, "- {}", md_escape(&p.sentence()));
        }
    }
    s.push_str("\n### Access graph\n\n```mermaid\n");
    s.push_str(&mermaid(&r.graph));
    s.push_str("```\n");
    s
}

fn md_escape(t: &str) -> String {
    t.replace('|', "\\|").replace('\n', " ")
}

/// Nodes worth drawing (with at least one edge), in a stable order, with their drawing ids.
fn drawable(g: &Graph) -> Vec<usize> {
    let mut v: Vec<usize> = (0..g.nodes.len())
        .filter(|&i| !g.out[i].is_empty() || !g.inbound[i].is_empty())
        .collect();
    v.sort_by(|&a, &b| (rank(g, a), &g.nodes[a].id).cmp(&(rank(g, b), &g.nodes[b].id)));
    v
}

/// Left-to-right order: GitLab subjects, other entries, broker identities, service roles,
/// deployment roles, other roles.
fn rank(g: &Graph, i: usize) -> u8 {
    let n = &g.nodes[i];
    match (n.kind, n.part) {
        (NodeKind::OidcSubject | NodeKind::ClaimSet, _) => 0,
        (_, Part::GateRole) => 2,
        (NodeKind::Saml | NodeKind::Anyone | NodeKind::External | NodeKind::Service, _) => 1,
        (_, Part::BrokerUser) => 2,
        (NodeKind::User, _) => 2,
        (_, Part::ServiceRole) => 3,
        (_, Part::DeploymentRole) => 4,
        _ => 5,
    }
}

fn label(g: &Graph, i: usize) -> String {
    let n = &g.nodes[i];
    let short = |id: &str| id.rsplit('/').next().unwrap_or(id).to_owned();
    let base = match n.kind {
        NodeKind::OidcSubject => format!("OIDC {}", n.id.trim_start_matches("oidc:")),
        NodeKind::ClaimSet => format!("GitLab jobs {}", n.id.trim_start_matches("gate:")),
        NodeKind::User => format!("user {}", short(&n.id)),
        NodeKind::Role => format!("role {}", short(&n.id)),
        NodeKind::Saml => format!("SAML {}", short(&n.id)),
        NodeKind::Service => n.id.clone(),
        NodeKind::Anyone => "anyone (*)".to_owned(),
        NodeKind::External => format!("external {}", n.id),
    };
    let mut l = base;
    if let Some(a) = &n.account {
        let _ = write!(l, " @{a}");
    }
    if let Some(e) = &n.env {
        let _ = write!(l, " [{}]", e.name);
    }
    if n.admin {
        l.push_str(" ADMIN");
    }
    l
}

fn is_prod(g: &Graph, i: usize) -> bool {
    g.nodes[i].env.as_ref().is_some_and(|e| e.prod)
}

/// The graph as a mermaid flowchart; edges into production roles and production nodes red.
pub fn mermaid(g: &Graph) -> String {
    let nodes = drawable(g);
    let pos: BTreeMap<usize, usize> = nodes.iter().enumerate().map(|(k, &n)| (n, k)).collect();
    let ids: BTreeMap<usize, String> = pos.iter().map(|(&n, k)| (n, format!("n{k}"))).collect();
    let mut s = String::from("flowchart LR\n");
    let mut accounts: BTreeSet<String> = BTreeSet::new();
    for &n in &nodes {
        let text = label(g, n).replace('"', "'");
        let _ = writeln!(s, "  {}[\"{}\"]", ids[&n], text);
        if g.nodes[n].part == Part::DeploymentRole
            && let Some(a) = &g.nodes[n].account
        {
            accounts.insert(a.clone());
        }
    }
    for a in &accounts {
        let _ = writeln!(s, "  acct{a}[(\"account {a}\")]");
    }
    let mut link = 0usize;
    let mut prod_links = Vec::new();
    let mut edges: Vec<usize> = (0..g.edges.len()).collect();
    edges.sort_by_key(|&e| (pos[&g.edges[e].from], pos[&g.edges[e].to]));
    for e in edges {
        let ed = &g.edges[e];
        let arrow = if ed.conditions.is_empty() {
            "-->".to_owned()
        } else {
            format!(
                "-->|\"{}\"|",
                requires(&ed.conditions).replace('"', "#quot;")
            )
        };
        let _ = writeln!(s, "  {} {} {}", ids[&ed.from], arrow, ids[&ed.to]);
        if is_prod(g, ed.to) {
            prod_links.push(link);
        }
        link += 1;
    }
    for &n in &nodes {
        if g.nodes[n].part == Part::DeploymentRole
            && let Some(a) = &g.nodes[n].account
        {
            let _ = writeln!(s, "  {} -.-> acct{a}", ids[&n]);
            if is_prod(g, n) {
                prod_links.push(link);
            }
            link += 1;
        }
    }
    s.push_str("  classDef prod fill:#fdd,stroke:#c00,stroke-width:2px\n");
    s.push_str("  classDef admin fill:#fc9,stroke:#960\n");
    let prod: Vec<&str> = nodes
        .iter()
        .filter(|&&n| is_prod(g, n))
        .map(|n| ids[n].as_str())
        .collect();
    if !prod.is_empty() {
        let _ = writeln!(s, "  class {} prod", prod.join(","));
    }
    let admin: Vec<&str> = nodes
        .iter()
        .filter(|&&n| g.nodes[n].admin && !is_prod(g, n))
        .map(|n| ids[n].as_str())
        .collect();
    if !admin.is_empty() {
        let _ = writeln!(s, "  class {} admin", admin.join(","));
    }
    for l in prod_links {
        let _ = writeln!(s, "  linkStyle {l} stroke:#c00,stroke-width:2px");
    }
    s
}

/// The graph in Graphviz dot; production paths red.
pub fn dot(g: &Graph) -> String {
    let nodes = drawable(g);
    let mut s = String::from(
        "digraph rolehop {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n",
    );
    let q = |t: &str| format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\""));
    for &n in &nodes {
        let style = if is_prod(g, n) {
            ", color=red, style=filled, fillcolor=\"#ffdddd\""
        } else if g.nodes[n].admin {
            ", color=orange"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "  {} [label={}{style}];",
            q(&g.nodes[n].id),
            q(&label(g, n))
        );
    }
    let mut edges: Vec<&crate::graph::Edge> = g.edges.iter().collect();
    edges.sort_by_key(|e| (&g.nodes[e.from].id, &g.nodes[e.to].id));
    for e in edges {
        let mut attrs = Vec::new();
        if !e.conditions.is_empty() {
            attrs.push(format!("label={}", q(&e.conditions.join("; "))));
        }
        if is_prod(g, e.to) {
            attrs.push("color=red, penwidth=2".to_owned());
        }
        let a = if attrs.is_empty() {
            String::new()
        } else {
            format!(" [{}]", attrs.join(", "))
        };
        let _ = writeln!(
            s,
            "  {} -> {}{a};",
            q(&g.nodes[e.from].id),
            q(&g.nodes[e.to].id)
        );
    }
    for &n in &nodes {
        if g.nodes[n].part == Part::DeploymentRole
            && let Some(a) = &g.nodes[n].account
        {
            let prod = if is_prod(g, n) { ", color=red" } else { "" };
            let _ = writeln!(
                s,
                "  {} -> {} [style=dashed{prod}];",
                q(&g.nodes[n].id),
                q(&format!("account {a}"))
            );
        }
    }
    s.push_str("}\n");
    s
}

/// What an edge requires, short enough for a diagram: `SourceIdentity like acme.shop@*,
/// ExternalId = acme-prod, TagKeys in [gitlab:project +4]`. The dot output and the JSON keep
/// the conditions whole.
pub fn requires(conditions: &[String]) -> String {
    let short_key = |k: &str| -> String {
        let k = k.rsplit(':').next().unwrap_or(k);
        k.to_owned()
    };
    let short_value = |v: &str| -> String {
        let v = v.trim();
        if let Some(list) = v.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let items: Vec<&str> = list.split(", ").collect();
            return match items.as_slice() {
                [one] => format!("[{one}]"),
                [first, rest @ ..] => format!("[{first} +{}]", rest.len()),
                [] => "[]".to_owned(),
            };
        }
        if v.chars().count() > 48 {
            format!("{}...", v.chars().take(45).collect::<String>())
        } else {
            v.to_owned()
        }
    };
    let mut parts: Vec<String> = Vec::new();
    let mut keys_with_values = BTreeSet::new();
    let parsed: Vec<(String, String, String, String)> = conditions
        .iter()
        .flat_map(|c| c.split("; "))
        .filter_map(|c| {
            let (op, rest) = c.split_once(' ')?;
            let (key, sep, value) = if let Some((k, v)) = rest.split_once(" = ") {
                (k, "=", v)
            } else {
                let (k, v) = rest.split_once(" in ")?;
                (k, "in", v)
            };
            Some((
                op.to_owned(),
                key.to_owned(),
                sep.to_owned(),
                value.to_owned(),
            ))
        })
        .collect();
    for (op, key, _, _) in &parsed {
        if !op.starts_with("Null") {
            keys_with_values.insert(key.clone());
        }
    }
    for (op, key, sep, value) in &parsed {
        // An OIDC edge starts at its `sub` pattern's node, which already shows it.
        if key.ends_with(":sub") {
            continue;
        }
        let k = short_key(key);
        let text = if op.starts_with("Null") {
            // `Null x = false` (x must be present) says nothing more when x is also compared.
            if keys_with_values.contains(key) {
                continue;
            }
            if value.trim() == "false" {
                format!("{k} set")
            } else {
                format!("no {k}")
            }
        } else if op.contains("Like") {
            format!("{k} like {}", short_value(value))
        } else if sep == "in" {
            format!("{k} in {}", short_value(value))
        } else {
            format!("{k} = {}", short_value(value))
        };
        if !parts.contains(&text) {
            parts.push(text);
        }
    }
    if parts.is_empty() {
        // Conditions this reader does not know how to shorten: shown whole.
        return conditions.join("; ");
    }
    parts.join(", ")
}
