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

use std::borrow::Cow;
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
///
/// The reasons are kept as indices and written out only for the findings that cite them
/// ([`explain`]): an organisation of 10,000 accounts has 200,000 principals and a handful of
/// such findings, and writing every reason up front cost a tenth of its audit.
#[derive(Debug, Clone, Default)]
pub struct Inference {
    /// Per principal.
    pub part: Vec<Part>,
    /// Per principal: why it plays its part (`None` when declared by a topology or `Other`).
    part_why: Vec<Option<PartWhy>>,
    /// Per graph node: why it is in its environment (`None` when declared by a topology).
    env_why: Vec<Option<EnvWhy>>,
    /// Nodes reached from several environments: node, and per environment the path from
    /// the labelled node it came from.
    pub shared: Vec<Shared>,
    /// The propagation, kept to retrace a node's path when a finding explains it.
    trail: Trail,
}

/// A node reached from several environments: the node, and per environment the path (node
/// indices) from the labelled node it came from.
pub type Shared = (usize, Vec<(Env, Vec<usize>)>);

/// Why a principal plays its part; graph node indices, written out by [`Inference::why`].
#[derive(Debug, Clone, Copy)]
enum PartWhy {
    /// Its `rolehop:part` tag.
    Tag,
    /// A broker user: the role it assumes, or none when most of its grants are `sts:` ones.
    Broker(Option<usize>),
    /// A service role: entered from `from`, assumes `onward` in another account.
    Service { from: usize, onward: usize },
    /// A deployment role: assumed across accounts by `from`.
    Deployment { from: usize },
}

/// Why a node is in its environment.
#[derive(Debug, Clone)]
enum EnvWhy {
    /// Its own label (read again when explained).
    Label,
    /// One environment (an index into `Trail::names`) propagated forward into it.
    Forward(usize),
    /// Several propagated into it: the sentence, written at once (each is an RH030 finding).
    Shared(String),
    /// One environment from the labelled nodes it reaches, first through `via`.
    Backward { env: usize, via: usize },
}

/// The environments' propagation: per node its own label and, per environment, the node it
/// came from (forward) or leads to (backward).
#[derive(Debug, Clone, Default)]
struct Trail {
    names: Vec<Env>,
    own: Vec<Option<usize>>,
    fwd: Vec<Vec<(usize, usize)>>,
    bwd: Vec<Vec<(usize, usize)>>,
}

impl Trail {
    /// The path by which environment `e` reached node `n`, from its labelled node.
    fn path_fwd(&self, mut n: usize, e: usize) -> Vec<usize> {
        let mut path = vec![n];
        while self.own[n].is_none() {
            match self.fwd[n].iter().find(|&&(x, _)| x == e) {
                Some(&(_, p)) if !path.contains(&p) => {
                    path.push(p);
                    n = p;
                }
                _ => break,
            }
        }
        path.reverse();
        path
    }

    /// The labelled node environment `e` came to node `n` from, backward, first through `via`.
    fn source_bwd(&self, via: usize, e: usize) -> usize {
        let mut t = via;
        let mut hops = 0;
        while self.own[t].is_none() && hops < self.own.len() {
            match self.bwd[t].iter().find(|&&(x, _)| x == e) {
                Some(&(_, next)) => t = next,
                None => break,
            }
            hops += 1;
        }
        t
    }
}

impl Inference {
    /// The inferred part of principal `i` (`Other` when nothing placed it).
    pub fn part(&self, i: usize) -> Part {
        self.part.get(i).copied().unwrap_or(Part::Other)
    }

    /// What was inferred about node `n` (principal `principal`) and from what, or `None` if
    /// nothing was.
    fn why(
        &self,
        prep: &Prepared<'_>,
        g: &Graph,
        n: usize,
        principal: Option<usize>,
    ) -> Option<String> {
        let mut parts = Vec::new();
        if let Some((i, w)) =
            principal.and_then(|i| Some((i, self.part_why.get(i).copied().flatten()?)))
        {
            parts.push(self.part_text(prep, g, i, w));
        }
        if let Some(w) = self.env_why.get(n).and_then(Option::as_ref) {
            parts.extend(self.env_text(prep, g, n, w));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    fn part_text(&self, prep: &Prepared<'_>, g: &Graph, i: usize, w: PartWhy) -> String {
        let account = |x: usize| account_of(g, x);
        match w {
            PartWhy::Tag => format!(
                "{} by its tag `rolehop:part={}`",
                part_name(self.part(i)),
                prep.estate.principals[i]
                    .tags
                    .get("rolehop:part")
                    .map_or("", String::as_str)
            ),
            PartWhy::Broker(target) => {
                let evidence = match target {
                    Some(to) => format!("which assumes `{}`", g.nodes[to].id),
                    None => "at least half of whose granted actions are `sts:` ones".to_owned(),
                };
                format!(
                    "broker user: an IAM user (long-lived keys) whose policies grant `sts:AssumeRole` by name and {evidence} (tag it `rolehop:part=none` if it is not)"
                )
            }
            PartWhy::Service { from, onward } => format!(
                "service role: entered from `{}` and assumes `{}` in account `{}`",
                g.nodes[from].id,
                g.nodes[onward].id,
                account(onward)
            ),
            PartWhy::Deployment { from } => format!(
                "deployment role: assumed from account `{}` by the {} `{}`",
                account(from),
                part_name(
                    g.nodes[from]
                        .principal
                        .map_or(Part::Other, |p| self.part(p))
                ),
                g.nodes[from].id
            ),
        }
    }

    fn env_text(&self, prep: &Prepared<'_>, g: &Graph, n: usize, w: &EnvWhy) -> Option<String> {
        let t = &self.trail;
        let why_of = |x: usize| {
            label(prep, g, x)
                .and_then(|(_, w)| w.text())
                .unwrap_or_else(|| "the topology".to_owned())
        };
        Some(match w {
            EnvWhy::Label => {
                let (e, w) = label(prep, g, n)?;
                format!("environment `{}` from {}", e.name, w.text()?)
            }
            EnvWhy::Forward(e) => {
                let path = t.path_fwd(n, *e);
                let src = path[0];
                format!(
                    "environment `{}` propagated from `{}` ({}) along {}",
                    t.names[*e].name,
                    g.nodes[src].id,
                    why_of(src),
                    path_ids(g, &path)
                )
            }
            EnvWhy::Shared(s) => s.clone(),
            EnvWhy::Backward { env, via } => {
                let src = t.source_bwd(*via, *env);
                let name = &t.names[*env].name;
                format!(
                    "environment `{name}` because every labelled role it reaches is `{name}`, e.g. `{}` ({})",
                    g.nodes[src].id,
                    why_of(src)
                )
            }
        })
    }
}

/// Node `n`'s account (empty for nodes without one).
fn account_of(g: &Graph, n: usize) -> &str {
    g.nodes[n].account.as_deref().unwrap_or("")
}

fn path_ids(g: &Graph, path: &[usize]) -> String {
    path.iter()
        .map(|&n| format!("`{}`", g.nodes[n].id))
        .collect::<Vec<_>>()
        .join(" -> ")
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
    let mut part = vec![Part::Other; n];
    let mut part_why: Vec<Option<PartWhy>> = vec![None; n];
    // Decided by a declaration or a tag: structure does not override.
    let mut fixed = vec![false; n];
    for (i, p) in estate.principals.iter().enumerate() {
        if p.exact {
            part[i] = p.part;
            fixed[i] = true;
        } else if let Some(t) = part_tag(p) {
            part[i] = t;
            fixed[i] = true;
            part_why[i] = Some(PartWhy::Tag);
        }
    }
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
        let target = g.out[g.principal_node[i]]
            .iter()
            .map(|&e| &g.edges[e])
            .find(|e| e.action == "sts:AssumeRole" && g.nodes[e.to].kind == NodeKind::Role);
        if target.is_none() && share < 0.5 {
            continue;
        }
        part[i] = Part::BrokerUser;
        part_why[i] = Some(PartWhy::Broker(target.map(|e| e.to)));
    }
    let principal_part = |node_ix: usize, part: &[Part], g: &Graph| {
        g.nodes[node_ix].principal.map_or(Part::Other, |i| part[i])
    };
    // Service roles.
    for (i, p) in estate.principals.iter().enumerate() {
        if fixed[i] || p.kind != Kind::Role {
            continue;
        }
        let me = g.principal_node[i];
        let from = g.inbound[me].iter().map(|&e| &g.edges[e]).find(|e| {
            is_sts(e.action)
                && (matches!(g.nodes[e.from].kind, NodeKind::OidcSubject | NodeKind::Saml)
                    || principal_part(e.from, &part, g) == Part::BrokerUser)
        });
        let onward = g.out[me].iter().map(|&e| &g.edges[e]).find(|e| {
            e.action == "sts:AssumeRole"
                && g.nodes[e.to].kind == NodeKind::Role
                && account_of(g, e.to) != p.account
        });
        if let (Some(f), Some(o)) = (from, onward) {
            part[i] = Part::ServiceRole;
            part_why[i] = Some(PartWhy::Service {
                from: f.from,
                onward: o.to,
            });
        }
    }
    // Deployment roles.
    for (i, p) in estate.principals.iter().enumerate() {
        if fixed[i] || p.kind != Kind::Role || part[i] != Part::Other {
            continue;
        }
        let from = g.inbound[g.principal_node[i]]
            .iter()
            .map(|&e| &g.edges[e])
            .find(|e| {
                e.action == "sts:AssumeRole"
                    && matches!(
                        principal_part(e.from, &part, g),
                        Part::BrokerUser | Part::ServiceRole
                    )
                    && account_of(g, e.from) != p.account
            });
        if let Some(f) = from {
            part[i] = Part::DeploymentRole;
            part_why[i] = Some(PartWhy::Deployment { from: f.from });
        }
    }
    let (env, env_why, shared, trail) = environments(prep, g);
    for (i, &ni) in g.principal_node.iter().enumerate() {
        g.nodes[ni].part = part[i];
    }
    // The graph's nodes hold the environments; the inference keeps only why.
    for (ni, e) in env.into_iter().enumerate() {
        g.nodes[ni].env = e;
    }
    Inference {
        part,
        part_why,
        env_why,
        shared,
        trail,
    }
}

type Envs = (Vec<Option<Env>>, Vec<Option<EnvWhy>>, Vec<Shared>, Trail);

/// Where a node's own label came from; written out only when a finding explains it.
enum LabelWhy<'a> {
    /// Declared by a topology: nothing to explain.
    Topology,
    /// `--env-map` or an Organizations export, as its source says.
    Given(&'a str),
    /// An environment tag, key and value.
    Tag(&'a str, &'a str),
    /// A token of the principal's name.
    Name(&'a str),
}

impl LabelWhy<'_> {
    fn text(&self) -> Option<String> {
        match self {
            LabelWhy::Topology => None,
            LabelWhy::Given(s) => Some((*s).to_owned()),
            LabelWhy::Tag(k, v) => Some(format!("its tag `{k}={v}`")),
            LabelWhy::Name(n) => Some(format!("a token of its name `{n}`")),
        }
    }
}

/// Node `n`'s own label, if any, and where it came from.
fn label<'a>(
    prep: &'a Prepared<'_>,
    g: &'a Graph,
    n: usize,
) -> Option<(Cow<'a, Env>, LabelWhy<'a>)> {
    let l = &prep.estate.labels;
    let n = &g.nodes[n];
    let p = n.principal.map(|i| &prep.estate.principals[i]);
    if let Some(p) = p.filter(|p| p.exact) {
        return p
            .env
            .as_ref()
            .map(|e| (Cow::Borrowed(e), LabelWhy::Topology));
    }
    if let Some(x) = l.nodes.get(&n.id) {
        return Some((Cow::Borrowed(&x.env), LabelWhy::Given(&x.source)));
    }
    if let Some((k, v)) = p.and_then(|p| env_tag(&p.tags)) {
        return Some((Cow::Owned(env_from_word(v)), LabelWhy::Tag(k, v)));
    }
    let acct = n.account.as_deref().unwrap_or("");
    if let Some(x) = l.accounts.get(acct).or_else(|| l.org_accounts.get(acct)) {
        return Some((Cow::Borrowed(&x.env), LabelWhy::Given(&x.source)));
    }
    let name = p.map(|p| p.name.as_str())?;
    guess_env(name, &BTreeMap::new()).map(|e| (Cow::Owned(e), LabelWhy::Name(name)))
}

fn environments(prep: &Prepared<'_>, g: &Graph) -> Envs {
    let count = g.nodes.len();
    let mut names: Vec<Env> = Vec::new();
    let mut ix: HashMap<String, usize> = HashMap::new();
    // Per node: its own label's environment, and whether the label has a reason to give.
    let mut env: Vec<Option<Env>> = vec![None; count];
    let mut explained = vec![false; count];
    let own: Vec<Option<usize>> = (0..count)
        .map(|n| {
            let (e, why) = label(prep, g, n)?;
            explained[n] = !matches!(why, LabelWhy::Topology);
            let i = match ix.get(&e.name) {
                Some(&i) => i,
                None => {
                    names.push(e.clone().into_owned());
                    ix.insert(e.name.clone(), names.len() - 1);
                    names.len() - 1
                }
            };
            env[n] = Some(e.into_owned());
            Some(i)
        })
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
    let trail = Trail {
        names,
        own,
        fwd,
        bwd,
    };
    let names = &trail.names;
    let why_of = |n: usize| {
        label(prep, g, n)
            .and_then(|(_, w)| w.text())
            .unwrap_or_else(|| "the topology".to_owned())
    };

    let mut why = vec![None; count];
    let mut shared = Vec::new();
    for n in 0..count {
        if trail.own[n].is_some() {
            why[n] = explained[n].then_some(EnvWhy::Label);
            continue;
        }
        match trail.fwd[n].as_slice() {
            [] => {}
            [(e, _)] => {
                env[n] = Some(names[*e].clone());
                why[n] = Some(EnvWhy::Forward(*e));
                continue;
            }
            several => {
                let mut per: Vec<(Env, Vec<usize>)> = several
                    .iter()
                    .map(|&(e, _)| (names[e].clone(), trail.path_fwd(n, e)))
                    .collect();
                per.sort_by(|a, b| a.0.cmp(&b.0));
                // Findings judge a shared node by its most sensitive environment.
                let pick = per
                    .iter()
                    .find(|(e, _)| e.prod)
                    .unwrap_or(&per[0])
                    .0
                    .clone();
                why[n] = Some(EnvWhy::Shared(format!(
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
                )));
                env[n] = Some(pick);
                shared.push((n, per));
                continue;
            }
        }
        if let [(e, via)] = trail.bwd[n].as_slice() {
            env[n] = Some(names[*e].clone());
            why[n] = Some(EnvWhy::Backward { env: *e, via: *via });
        }
    }
    (env, why, shared, trail)
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
pub fn explain(inf: &Inference, prep: &Prepared<'_>, g: &Graph, findings: &mut [Finding]) {
    const DEPENDS: [&str; 12] = [
        "RH001", "RH002", "RH003", "RH006", "RH007", "RH008", "RH009", "RH014", "RH015", "RH016",
        "RH017", "RH030",
    ];
    for f in findings.iter_mut().filter(|f| DEPENDS.contains(&f.id)) {
        let Some(n) = g.find(&f.resource) else {
            continue;
        };
        if let Some(why) = inf.why(prep, g, n, g.nodes[n].principal) {
            f.detail.push_str(&format!(" [inferred: {why}]"));
        }
    }
}
