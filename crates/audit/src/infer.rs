//! Structural inference: which principals play the broker pattern's parts, and which
//! environment each node of the access graph belongs to, from effective rights and the graph
//! rather than from names. Names and tags are hints; a topology's declarations are kept as is.
//!
//! Parts, in this order (each step uses the previous ones):
//! - **broker user**: an IAM user (long-lived keys) whose policies grant `sts:AssumeRole` by
//!   name (an `sts:` action pattern, not `*`) and which assumes some role;
//! - **service role**: a role entered from a broker user or an OIDC/SAML subject that assumes
//!   roles in another account;
//! - **deployment role**: a role assumed across accounts by a broker user or a service role.
//!
//! A `rolehop:part` tag (`broker-user`, `service-role`, `deployment-role`, `none`) overrides
//! the structure; names play no part (an export's `rolehop-*-deploy` with nothing assuming it
//! across accounts is not a deployment role).
//!
//! Environments: a node is labelled by, in this order, `--env-map` naming it, an environment
//! tag, `--env-map` naming its account, an Organizations export's account tag or name, or a
//! token of its own name. Labels propagate forward along edges into unlabelled nodes (a node
//! reached from a `nonprod` user is `nonprod`); a node reached from two environments is
//! finding RH030. Nodes still unlabelled take the environment of the labelled nodes they
//! reach, when that is one environment.

use std::collections::{BTreeMap, HashMap, VecDeque};

use rolehop_policy::pattern::Glob;

use crate::findings::{Finding, Severity};
use crate::graph::{Graph, NodeKind, Prepared};
use crate::model::{Env, Kind, Part, env_from_word, env_tag, guess_env};

/// An environment label the user handed in, with where it came from (for explanations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// The environment.
    pub env: Env,
    /// `--env-map envs.json`, `Organizations export org.json: account name `shop-prod``.
    pub source: String,
}

/// Environment labels from outside the IAM data.
#[derive(Debug, Clone, Default)]
pub struct EnvLabels {
    /// Principal ARNs or graph node ids (`oidc:...`) -> label (`--env-map`).
    pub nodes: BTreeMap<String, Label>,
    /// Account id -> label (`--env-map`).
    pub accounts: BTreeMap<String, Label>,
    /// Account id -> label (an Organizations export: weaker than `--env-map`).
    pub org_accounts: BTreeMap<String, Label>,
}

/// What the inference decided, per principal and per graph node, and why.
#[derive(Debug, Clone, Default)]
pub struct Inference {
    /// Per principal.
    pub part: Vec<Part>,
    /// Per principal: why it plays its part (`None` when declared by a topology or `Other`).
    pub part_why: Vec<Option<String>>,
    /// Per principal: its graph node.
    pub node: Vec<usize>,
    /// Per graph node.
    pub env: Vec<Option<Env>>,
    /// Per graph node: why it is in its environment (`None` when declared by a topology).
    pub env_why: Vec<Option<String>>,
    /// Nodes reached from several environments: node, and per environment the path from
    /// the labelled node it came from.
    pub shared: Vec<Shared>,
}

/// A node reached from several environments: the node, and per environment the path (node
/// indices) from the labelled node it came from.
pub type Shared = (usize, Vec<(Env, Vec<usize>)>);

impl Inference {
    /// The inferred part of principal `i` (`Other` when nothing placed it).
    pub fn part(&self, i: usize) -> Part {
        self.part.get(i).copied().unwrap_or(Part::Other)
    }

    /// The environment of principal `i`.
    pub fn env(&self, i: usize) -> Option<&Env> {
        self.node.get(i).and_then(|&n| self.env[n].as_ref())
    }

    /// What was inferred about principal node `n` and from what, or `None` if nothing was.
    pub fn why_node(&self, n: usize, principal: Option<usize>) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(w) = principal
            .and_then(|i| self.part_why.get(i))
            .and_then(Option::as_ref)
        {
            parts.push(w.clone());
        }
        if let Some(w) = self.env_why.get(n).and_then(Option::as_ref) {
            parts.push(w.clone());
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

const STS_EDGES: [&str; 3] = [
    "sts:AssumeRole",
    "sts:AssumeRoleWithWebIdentity",
    "sts:AssumeRoleWithSAML",
];

fn is_sts(action: &str) -> bool {
    STS_EDGES.contains(&action)
}

/// How principal `i`'s Allow statements name actions: whether an `sts:` pattern grants
/// `sts:AssumeRole`, and the share of all patterns that are `sts:` ones.
fn sts_grants(prep: &Prepared<'_>, i: usize) -> (bool, f64) {
    let (mut assume, mut sts, mut all) = (false, 0usize, 0usize);
    for &d in &prep.policies[i] {
        for (not, pats) in prep.docs[d].allowed_action_patterns() {
            all += pats.len();
            if not {
                continue;
            }
            for p in pats {
                if p.to_ascii_lowercase().starts_with("sts:") {
                    sts += 1;
                    assume |= Glob::new(&p, true).matches("sts:AssumeRole");
                }
            }
        }
    }
    #[allow(clippy::cast_precision_loss)] // counts of policy entries are small
    let share = if all == 0 {
        0.0
    } else {
        sts as f64 / all as f64
    };
    (assume, share)
}

fn part_tag(p: &crate::model::Principal) -> Option<Part> {
    Some(match p.tags.get("rolehop:part")?.as_str() {
        "broker-user" => Part::BrokerUser,
        "service-role" => Part::ServiceRole,
        "deployment-role" => Part::DeploymentRole,
        "none" | "other" => Part::Other,
        _ => return None,
    })
}

fn part_name(p: Part) -> &'static str {
    match p {
        Part::BrokerUser => "broker user",
        Part::ServiceRole => "service role",
        Part::DeploymentRole => "deployment role",
        Part::GateRole => "claim gate role",
        Part::Other => "no part",
    }
}

/// Infers parts and environments and writes them onto the graph's nodes.
pub fn infer(prep: &Prepared<'_>, g: &mut Graph) -> Inference {
    let estate = prep.estate;
    let n = estate.principals.len();
    let node: Vec<usize> = estate
        .principals
        .iter()
        .map(|p| g.index.get(p.arn.as_str()).copied().unwrap_or(0))
        .collect();
    let mut part = vec![Part::Other; n];
    let mut part_why: Vec<Option<String>> = vec![None; n];
    // Decided by a declaration or a tag: structure does not override.
    let mut fixed = vec![false; n];
    for (i, p) in estate.principals.iter().enumerate() {
        if p.exact {
            part[i] = p.part;
            fixed[i] = true;
        } else if let Some(t) = part_tag(p) {
            part[i] = t;
            fixed[i] = true;
            part_why[i] = Some(format!(
                "{} by its tag `rolehop:part={}`",
                part_name(t),
                p.tags.get("rolehop:part").map_or("", String::as_str)
            ));
        }
    }
    let account = |node: usize, g: &Graph| g.nodes[node].account.clone().unwrap_or_default();
    // Broker users: a grant of `sts:AssumeRole` by name, and either a role reached with it
    // or rights that are mostly `sts:` (the roles may be in accounts not audited).
    for (i, p) in estate.principals.iter().enumerate() {
        if fixed[i] || p.kind != Kind::User {
            continue;
        }
        let (assume, share) = sts_grants(prep, i);
        if !assume {
            continue;
        }
        let target = g.out[node[i]]
            .iter()
            .map(|&e| &g.edges[e])
            .find(|e| e.action == "sts:AssumeRole" && g.nodes[e.to].kind == NodeKind::Role);
        let evidence = match target {
            Some(e) => format!("which assumes `{}`", g.nodes[e.to].id),
            None if share >= 0.5 => {
                "at least half of whose granted actions are `sts:` ones".to_owned()
            }
            None => continue,
        };
        part[i] = Part::BrokerUser;
        part_why[i] = Some(format!(
            "broker user: an IAM user (long-lived keys) whose policies grant `sts:AssumeRole` by name and {evidence} (tag it `rolehop:part=none` if it is not)"
        ));
    }
    let principal_part = |node_ix: usize, part: &[Part], g: &Graph| {
        g.nodes[node_ix].principal.map_or(Part::Other, |i| part[i])
    };
    // Service roles.
    for (i, p) in estate.principals.iter().enumerate() {
        if fixed[i] || p.kind != Kind::Role {
            continue;
        }
        let me = node[i];
        let from = g.inbound[me].iter().map(|&e| &g.edges[e]).find(|e| {
            is_sts(e.action)
                && (matches!(g.nodes[e.from].kind, NodeKind::OidcSubject | NodeKind::Saml)
                    || principal_part(e.from, &part, g) == Part::BrokerUser)
        });
        let onward = g.out[me].iter().map(|&e| &g.edges[e]).find(|e| {
            e.action == "sts:AssumeRole"
                && g.nodes[e.to].kind == NodeKind::Role
                && account(e.to, g) != p.account
        });
        if let (Some(f), Some(o)) = (from, onward) {
            part[i] = Part::ServiceRole;
            part_why[i] = Some(format!(
                "service role: entered from `{}` and assumes `{}` in account `{}`",
                g.nodes[f.from].id,
                g.nodes[o.to].id,
                account(o.to, g)
            ));
        }
    }
    // Deployment roles.
    for (i, p) in estate.principals.iter().enumerate() {
        if fixed[i] || p.kind != Kind::Role || part[i] != Part::Other {
            continue;
        }
        let from = g.inbound[node[i]].iter().map(|&e| &g.edges[e]).find(|e| {
            e.action == "sts:AssumeRole"
                && matches!(
                    principal_part(e.from, &part, g),
                    Part::BrokerUser | Part::ServiceRole
                )
                && account(e.from, g) != p.account
        });
        if let Some(f) = from {
            part[i] = Part::DeploymentRole;
            part_why[i] = Some(format!(
                "deployment role: assumed from account `{}` by the {} `{}`",
                account(f.from, g),
                part_name(principal_part(f.from, &part, g)),
                g.nodes[f.from].id
            ));
        }
    }
    let (env, env_why, shared) = environments(prep, g);
    for (i, &ni) in node.iter().enumerate() {
        g.nodes[ni].part = part[i];
    }
    for (ni, e) in env.iter().enumerate() {
        g.nodes[ni].env = e.clone();
    }
    Inference {
        part,
        part_why,
        node,
        env,
        env_why,
        shared,
    }
}

type Envs = (Vec<Option<Env>>, Vec<Option<String>>, Vec<Shared>);

/// The label of each node, if any: `(env, why)`; `why` is `None` for a topology's.
fn labels(prep: &Prepared<'_>, g: &Graph) -> Vec<Option<(Env, Option<String>)>> {
    let l = &prep.estate.labels;
    g.nodes
        .iter()
        .map(|n| {
            let p = n.principal.map(|i| &prep.estate.principals[i]);
            if let Some(p) = p.filter(|p| p.exact) {
                return p.env.clone().map(|e| (e, None));
            }
            if let Some(x) = l.nodes.get(&n.id) {
                return Some((x.env.clone(), Some(x.source.clone())));
            }
            if let Some((k, v)) = p.and_then(|p| env_tag(&p.tags)) {
                return Some((env_from_word(v), Some(format!("its tag `{k}={v}`"))));
            }
            let acct = n.account.as_deref().unwrap_or("");
            if let Some(x) = l.accounts.get(acct).or_else(|| l.org_accounts.get(acct)) {
                return Some((x.env.clone(), Some(x.source.clone())));
            }
            let name = p.map(|p| p.name.as_str())?;
            guess_env(name, &BTreeMap::new())
                .map(|e| (e, Some(format!("a token of its name `{name}`"))))
        })
        .collect()
}

fn environments(prep: &Prepared<'_>, g: &Graph) -> Envs {
    let count = g.nodes.len();
    let label = labels(prep, g);
    let mut names: Vec<Env> = Vec::new();
    let mut ix: HashMap<String, usize> = HashMap::new();
    let mut intern = |e: &Env| {
        *ix.entry(e.name.clone()).or_insert_with(|| {
            names.push(e.clone());
            names.len() - 1
        })
    };
    let own: Vec<Option<usize>> = label
        .iter()
        .map(|l| l.as_ref().map(|(e, _)| intern(e)))
        .collect();
    // Forward: (env, the node it came from) per unlabelled node.
    let mut fwd: Vec<Vec<(usize, usize)>> = vec![Vec::new(); count];
    let mut q: VecDeque<(usize, usize)> = own
        .iter()
        .enumerate()
        .filter_map(|(n, e)| e.map(|e| (n, e)))
        .collect();
    while let Some((n, e)) = q.pop_front() {
        for &ed in &g.out[n] {
            let t = g.edges[ed].to;
            if own[t].is_some() || fwd[t].iter().any(|&(x, _)| x == e) {
                continue;
            }
            fwd[t].push((e, n));
            q.push_back((t, e));
        }
    }
    // Backward: (env, the node it leads to) per unlabelled node without a forward label.
    let mut bwd: Vec<Vec<(usize, usize)>> = vec![Vec::new(); count];
    let mut q: VecDeque<(usize, usize)> = own
        .iter()
        .enumerate()
        .filter_map(|(n, e)| e.map(|e| (n, e)))
        .collect();
    while let Some((n, e)) = q.pop_front() {
        for &ed in &g.inbound[n] {
            let f = g.edges[ed].from;
            let entry_or_principal = matches!(
                g.nodes[f].kind,
                NodeKind::User | NodeKind::Role | NodeKind::OidcSubject | NodeKind::Saml
            );
            if !entry_or_principal
                || own[f].is_some()
                || !fwd[f].is_empty()
                || bwd[f].iter().any(|&(x, _)| x == e)
            {
                continue;
            }
            bwd[f].push((e, n));
            q.push_back((f, e));
        }
    }

    let path_fwd = |mut n: usize, e: usize| {
        let mut path = vec![n];
        while own[n].is_none() {
            match fwd[n].iter().find(|&&(x, _)| x == e) {
                Some(&(_, p)) if !path.contains(&p) => {
                    path.push(p);
                    n = p;
                }
                _ => break,
            }
        }
        path.reverse();
        path
    };
    let ids = |path: &[usize]| {
        path.iter()
            .map(|&n| format!("`{}`", g.nodes[n].id))
            .collect::<Vec<_>>()
            .join(" -> ")
    };
    let why_of = |n: usize| -> String {
        label[n]
            .as_ref()
            .and_then(|(_, w)| w.clone())
            .unwrap_or_else(|| "the topology".to_owned())
    };

    let mut env = vec![None; count];
    let mut why = vec![None; count];
    let mut shared = Vec::new();
    for n in 0..count {
        if let Some((e, w)) = &label[n] {
            env[n] = Some(e.clone());
            why[n] = w
                .as_ref()
                .map(|w| format!("environment `{}` from {w}", e.name));
            continue;
        }
        match fwd[n].as_slice() {
            [] => {}
            [(e, _)] => {
                let path = path_fwd(n, *e);
                let src = path[0];
                env[n] = Some(names[*e].clone());
                why[n] = Some(format!(
                    "environment `{}` propagated from `{}` ({}) along {}",
                    names[*e].name,
                    g.nodes[src].id,
                    why_of(src),
                    ids(&path)
                ));
                continue;
            }
            several => {
                let mut per: Vec<(Env, Vec<usize>)> = several
                    .iter()
                    .map(|&(e, _)| (names[e].clone(), path_fwd(n, e)))
                    .collect();
                per.sort_by(|a, b| a.0.cmp(&b.0));
                // Findings judge a shared node by its most sensitive environment.
                let pick = per
                    .iter()
                    .find(|(e, _)| e.prod)
                    .unwrap_or(&per[0])
                    .0
                    .clone();
                why[n] = Some(format!(
                    "environments {} propagated into it (judged as `{}`)",
                    per.iter()
                        .map(|(e, p)| format!(
                            "`{}` from `{}` ({})",
                            e.name,
                            g.nodes[p[0]].id,
                            why_of(p[0])
                        ))
                        .collect::<Vec<_>>()
                        .join(" and "),
                    pick.name
                ));
                env[n] = Some(pick);
                shared.push((n, per));
                continue;
            }
        }
        if let [(e, via)] = bwd[n].as_slice() {
            // The labelled node the environment came from, through `via`.
            let mut t = *via;
            let mut hops = 0;
            while own[t].is_none() && hops < count {
                match bwd[t].iter().find(|&&(x, _)| x == *e) {
                    Some(&(_, next)) => t = next,
                    None => break,
                }
                hops += 1;
            }
            env[n] = Some(names[*e].clone());
            why[n] = Some(format!(
                "environment `{}` because every labelled role it reaches is `{}`, e.g. `{}` ({})",
                names[*e].name,
                names[*e].name,
                g.nodes[t].id,
                why_of(t)
            ));
        }
    }
    (env, why, shared)
}

/// RH030: a node reached from two environments joins them.
pub fn shared_findings(inf: &Inference, g: &Graph, out: &mut Vec<Finding>) {
    for (n, per) in &inf.shared {
        let prod = per.iter().any(|(e, _)| e.prod);
        let nonprod = per.iter().any(|(e, _)| !e.prod);
        let names: Vec<String> = per.iter().map(|(e, _)| format!("`{}`", e.name)).collect();
        let paths: Vec<String> = per
            .iter()
            .map(|(e, p)| {
                format!(
                    "{}: {}",
                    e.name,
                    p.iter()
                        .map(|&x| g.nodes[x].id.as_str())
                        .collect::<Vec<_>>()
                        .join(" -> ")
                )
            })
            .collect();
        out.push(Finding {
            id: "RH030",
            severity: if prod && nonprod {
                Severity::Critical
            } else {
                Severity::High
            },
            resource: g.nodes[*n].id.clone(),
            title: format!(
                "`{}` is reached from several environments ({})",
                g.nodes[*n].id,
                names.join(", ")
            ),
            detail: format!(
                "whoever holds the credentials of one environment reaches what the other reaches through it; paths: {}",
                paths.join("; ")
            ),
            fix: crate::fixes::fix("RH030").to_owned(),
        });
    }
}

/// Findings whose rule rests on a part or an environment say what was inferred and from
/// what, so a reader can correct it (`--env-map`, tags).
pub fn explain(inf: &Inference, g: &Graph, findings: &mut [Finding]) {
    const DEPENDS: [&str; 12] = [
        "RH001", "RH002", "RH003", "RH006", "RH007", "RH008", "RH009", "RH014", "RH015", "RH016",
        "RH017", "RH030",
    ];
    for f in findings.iter_mut().filter(|f| DEPENDS.contains(&f.id)) {
        let Some(&n) = g.index.get(f.resource.as_str()) else {
            continue;
        };
        if let Some(why) = inf.why_node(n, g.nodes[n].principal) {
            f.detail.push_str(&format!(" [inferred: {why}]"));
        }
    }
}
