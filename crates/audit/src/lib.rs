//! rolehop's offline IAM auditor (pure): reads a topology (through render's IAM documents) or
//! `get-account-authorization-details` exports into one [`Estate`], builds the access graph
//! with the policy evaluator, and reports findings and each credential holder's blast radius.
//!
//! ```text
//! input::{topology, gaad, scps, credential report} -> model::Estate
//!   -> graph::Prepared (parsed documents) -> admin / graph::build + passrole edges
//!   -> infer (parts, environments) -> findings -> report
//! ```
//!
//! Findings are data, never errors; only input that is not what it claims is an
//! [`InputError`] (exit 3). CI denies warnings, so every public item is documented
//! (`missing_docs`) and nothing is `pub` that the crate does not export (`unreachable_pub`).

#![warn(missing_docs, unreachable_pub)]

pub mod actions;
pub mod admin;
pub mod baseline;
pub mod data;
pub mod eval;
pub mod fasthash;
pub mod findings;
pub mod fixes;
pub mod gate;
pub mod gitlab_check;
pub mod graph;
pub mod infer;
pub mod input;
pub mod jobs;
pub mod managed;
pub mod model;
pub mod output;
pub mod passrole;
pub mod session;
pub mod waivers;

use serde::Serialize;

pub use findings::{Finding, Severity};
pub use graph::Graph;
pub use model::Estate;

/// An input that is not what it claims to be (not JSON, not an export).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Not JSON: serde_json's error with its position.
    #[error("{file}:{line}:{column}: invalid JSON: {message}")]
    Json {
        /// The file as the user named it.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// serde_json's message.
        message: String,
    },
    /// JSON, but not the document it claims to be (an export without `UserDetailList`...).
    #[error("{file}: {message}")]
    Shape {
        /// The file as the user named it.
        file: String,
        /// What is missing or of the wrong shape.
        message: String,
    },
}

impl rolehop_core::exit::HasExit for InputError {
    /// Not JSON, or not the export it claims to be: malformed input.
    fn exit(&self) -> rolehop_core::exit::Exit {
        rolehop_core::exit::Exit::Input
    }
}

/// What a credential holder can reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlastRadius {
    /// The user (or OIDC subject pattern) holding the credential.
    pub principal: String,
    /// Role ARNs reached, transitively, sorted.
    pub reaches: Vec<String>,
    /// The principal itself or a role it reaches is admin-equivalent.
    pub admin: bool,
}

/// The audit's result: findings (sorted, most severe first), blast radii and the graph.
#[derive(Debug, Clone)]
pub struct Report {
    /// Every finding, most severe first.
    pub findings: Vec<Finding>,
    /// One per credential holder.
    pub blast_radius: Vec<BlastRadius>,
    /// What a token of each project and ref the OIDC trusts name reaches (one token can match
    /// the patterns of several environments).
    pub job_blast_radius: Vec<jobs::JobReach>,
    /// What each project (group of jobs) of an environment with session policies can do
    /// through its deployment roles (`--config` only).
    pub project_blast_radius: Vec<session::ProjectReach>,
    /// The access graph (`rolehop graph` draws it).
    pub graph: Graph,
    /// Where the estate came from (for report locations).
    pub source: String,
    /// A finding's resource ARN -> the file and line declaring it (only looked up: an
    /// organisation's report has tens of thousands, and a tree compared ARNs to build it).
    pub origins: fasthash::FastMap<String, model::Origin>,
    /// Findings a waiver accepted (`waivers::apply`), no longer in `findings`.
    pub waived: Vec<waivers::Waived>,
}

/// Every rule of the catalogue, its title: the findings module's and those of the GitLab
/// cross-check and the waivers.
pub fn all_rules() -> impl Iterator<Item = (&'static str, &'static str)> {
    findings::RULES
        .iter()
        .chain(gitlab_check::RULES.iter())
        .chain(waivers::RULES.iter())
        .chain(session::RULES.iter())
        .copied()
}

/// Most severe first, then by id, resource, title and detail: equal inputs give equal
/// reports.
pub fn sort_findings(findings: &mut Vec<Finding>) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.id.cmp(b.id))
            .then_with(|| a.resource.cmp(&b.resource))
            .then_with(|| a.title.cmp(&b.title))
            .then_with(|| a.detail.cmp(&b.detail))
    });
    findings.dedup();
}

impl Report {
    /// The file and line a finding about `resource` points at: where it was declared, else
    /// the first line of the input.
    pub fn origin_of(&self, resource: &str) -> (&str, usize) {
        self.origins
            .get(resource)
            .map_or((self.source.as_str(), 1), |o| (o.file.as_str(), o.line))
    }
}

impl Report {
    /// The most severe finding's severity.
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

/// Audits `estate`; `now` (Unix seconds) dates access keys.
pub fn audit(estate: &Estate, now: i64) -> Report {
    audit_prepared(&graph::Prepared::new(estate), now)
}

/// Audits the estate `prep` parsed. A caller that exits right after the report (the CLI) can
/// then let the process reclaim the parsed documents, millions of small allocations at
/// 10,000 accounts, instead of freeing them one by one.
pub fn audit_prepared(prep: &graph::Prepared<'_>, now: i64) -> Report {
    let estate = prep.estate;
    let admin = admin::reasons(prep);
    let is_admin: Vec<bool> = admin.iter().map(Option::is_some).collect();
    let mut g = graph::build(prep, &is_admin);
    passrole::add_edges(prep, &mut g);
    let inferred = infer::infer(prep, &mut g);

    let mut findings = Vec::new();
    findings::all(
        &findings::Ctx {
            prep,
            graph: &g,
            admin: &admin,
            now,
            inferred: &inferred,
        },
        &mut findings,
    );
    infer::explain(&inferred, prep, &g, &mut findings);
    let project_blast_radius = session::analyse(prep, &mut findings);
    sort_findings(&mut findings);

    let mut blast_radius = Vec::new();
    for (i, n) in g.nodes.iter().enumerate() {
        if !matches!(
            n.kind,
            graph::NodeKind::User
                | graph::NodeKind::OidcSubject
                | graph::NodeKind::Saml
                | graph::NodeKind::ClaimSet
        ) {
            continue;
        }
        let reached = g.reach(i);
        let mut reaches: Vec<String> = reached
            .iter()
            .filter(|(r, _)| g.nodes[*r].kind == graph::NodeKind::Role)
            .map(|(r, _)| g.nodes[*r].id.clone())
            .collect();
        reaches.sort();
        let admin = n.admin || reached.iter().any(|(r, _)| g.nodes[*r].admin);
        blast_radius.push(BlastRadius {
            principal: n.id.clone(),
            reaches,
            admin,
        });
    }
    blast_radius.sort_by(|a, b| a.principal.cmp(&b.principal));

    // Only the findings' resources are ever looked up. A resource that is no principal (an
    // OIDC subject pattern) points where the role trusting it is declared, not at line 1.
    let origin_of_principal = |arn: &str| {
        let &i = prep.by_arn.get(arn)?;
        estate.principals[i].origin.clone()
    };
    let origins = findings
        .iter()
        .filter_map(|f| {
            let origin = origin_of_principal(&f.resource).or_else(|| {
                let n = g.find(&f.resource)?;
                g.out[n]
                    .iter()
                    .filter_map(|&e| origin_of_principal(&g.nodes[g.edges[e].to].id))
                    .min_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)))
            })?;
            Some((f.resource.clone(), origin))
        })
        .collect();
    let job_blast_radius = jobs::job_reach(&g);
    Report {
        findings,
        blast_radius,
        job_blast_radius,
        project_blast_radius,
        graph: g,
        source: estate.source.clone(),
        origins,
        waived: Vec::new(),
    }
}
