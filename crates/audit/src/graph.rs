//! The access graph: who can assume which role, across accounts, each edge decided by the
//! evaluator (trust side and identity side, with boundaries and SCPs) and carrying the
//! conditions that must hold. Candidates come from what trust policies name (an ARN, an
//! account, `*`) and an index of who may assume anything at all, so the work grows with the
//! trust relations, not with principals x roles.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::OnceLock;

use hashbrown::HashTable;
use rolehop_policy::ast::PrincipalType;
use rolehop_policy::condition::BaseOp;
use rolehop_policy::pattern::Glob;
use rolehop_policy::{Effect, Statement};
use serde_json::Value;

use crate::eval::session_role_arn as session_role_arn_of;
use crate::eval::{self, Doc, Identity, Verdict, Who};
use crate::fasthash::{FastMap, FxHasher};
use crate::model::{
    Document, Env, Estate, Kind, Part, Principal, Problem, ProblemKind, arn_account, split_arn,
};

/// What a node of the access graph stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeKind {
    /// An IAM user (holds keys: a credential someone can leak).
    User,
    /// An IAM role.
    Role,
    /// A GitLab (or other OIDC) `sub` pattern admitted by a federated trust.
    OidcSubject,
    /// A SAML provider.
    Saml,
    /// GitLab jobs whose signed claims pass a claim gate's rules (gate mode).
    ClaimSet,
    /// An AWS service principal.
    Service,
    /// A principal outside the audited estate: another account, an unknown ARN.
    External,
    /// `"AWS": "*"`: any principal of any account.
    Anyone,
}

/// One principal (or pseudo-principal) of the access graph.
#[derive(Debug, Clone)]
pub struct Node {
    /// ARN, or `oidc:<provider host>:<sub pattern>`, `service:<name>`, `*`.
    pub id: String,
    /// What it is.
    pub kind: NodeKind,
    /// Its account, when it has one.
    pub account: Option<String>,
    /// Its environment, if known.
    pub env: Option<Env>,
    /// Its part in the broker pattern.
    pub part: Part,
    /// Admin-equivalent on its own (IAM principals only).
    pub admin: bool,
    /// Index into `Estate::principals`.
    pub principal: Option<usize>,
}

/// "`from` can become `to`": one assume-role (or web-identity) step.
#[derive(Debug, Clone)]
pub struct Edge {
    /// Index of the node that assumes.
    pub from: usize,
    /// Index of the node assumed.
    pub to: usize,
    /// The STS action of the step (`sts:AssumeRole`, `...WithWebIdentity`, `...WithSAML`).
    pub action: &'static str,
    /// Conditions the step depends on, as policies write them.
    pub conditions: Vec<String>,
}

/// Who can become whom: the estate's assume-role relations, for blast radius and findings.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// Every node.
    pub nodes: Vec<Node>,
    /// Every edge.
    pub edges: Vec<Edge>,
    /// Node numbers, hashed by their nodes' ids ([`Graph::find`]): each id is stored once, in
    /// its node, instead of again as a map key (200,000 ARNs at 10,000 accounts).
    index: HashTable<usize>,
    /// Per principal of the estate: its node. The passes over principals use it rather than
    /// `index`: at 10,000 accounts that map no longer fits the cache, and each lookup hashes
    /// and compares an ARN.
    pub principal_node: Vec<usize>,
    /// Per node: its outgoing edges.
    pub out: Vec<Vec<usize>>,
    /// Per node: its incoming edges.
    pub inbound: Vec<Vec<usize>>,
    /// (from, to) -> edge.
    pairs: FastMap<(usize, usize), usize>,
}

/// Parsed documents of the estate, shared by the graph and the findings.
pub struct Prepared<'e> {
    /// The estate the documents came from.
    pub estate: &'e Estate,
    /// Every parsed document, once.
    pub docs: Vec<Doc>,
    /// Per doc: who declares it (a principal, group or policy ARN) and what it is there
    /// (`inline policy `x``, `managed policy`, `trust policy`), for findings about documents.
    pub doc_origin: Vec<(String, String)>,
    /// Per principal: its identity policy doc ids (inline, managed, groups').
    pub policies: Vec<Vec<usize>>,
    /// Per principal: its permissions boundary's doc id.
    pub boundary: Vec<Option<usize>>,
    /// Per principal: its trust policy's doc id (roles).
    pub trust: Vec<Option<usize>>,
    /// Per principal: the SCP levels that apply (doc ids per level).
    pub scps: Vec<Vec<Vec<usize>>>,
    /// What did not parse: becomes RH090/RH092 findings.
    pub problems: Vec<Problem>,
    /// Principal index by ARN.
    pub by_arn: FastMap<&'e str, usize>,
    /// Principal index by unique id ([`Prepared::by_id`]), built on first use.
    by_id: OnceLock<FastMap<&'e str, usize>>,
    /// Roles by (account, name) ([`Prepared::by_role_name`]), built on first use.
    by_role_name: OnceLock<FastMap<(&'e str, &'e str), usize>>,
}

impl<'e> Prepared<'e> {
    /// Parses every document of `estate` once.
    pub fn new(estate: &'e Estate) -> Prepared<'e> {
        Prepared::new_with(estate, workers_for(estate) > 1)
    }

    /// [`Prepared::new`], with the ARN index built on a second thread if `threaded`. It needs
    /// nothing from the documents, so a large estate builds it on a second core while this
    /// one parses (at 200,000 principals, inserts that miss the cache). The result is the
    /// same either way.
    pub fn new_with(estate: &'e Estate, threaded: bool) -> Prepared<'e> {
        let arn_index = || principal_index(estate, |p| Some(p.arn.as_str()));
        if !threaded {
            return Prepared::with_arns(estate, arn_index());
        }
        std::thread::scope(|scope| {
            let by_arn = scope.spawn(arn_index);
            let mut prep = Prepared::with_arns(estate, FastMap::default());
            // A panic in the index is a bug; it surfaces here as it would on one thread.
            prep.by_arn = by_arn
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            prep
        })
    }

    /// Principal index by unique id: trust policies show a deleted principal as its unique
    /// id. Built on first use, as few trust policies need it.
    pub fn by_id(&self) -> &FastMap<&'e str, usize> {
        self.by_id
            .get_or_init(|| principal_index(self.estate, |p| p.unique_id.as_deref()))
    }

    /// Roles by (account, name), for session principals, which omit the role's path. Built on
    /// first use, as few trust policies name a session.
    pub fn by_role_name(&self) -> &FastMap<(&'e str, &'e str), usize> {
        self.by_role_name.get_or_init(|| {
            principal_index(self.estate, |p| {
                (p.kind == Kind::Role).then_some((p.account.as_str(), p.name.as_str()))
            })
        })
    }

    fn with_arns(estate: &'e Estate, by_arn: FastMap<&'e str, usize>) -> Prepared<'e> {
        let mut a = Arena {
            estate,
            docs: Vec::new(),
            doc_origin: Vec::new(),
            problems: Vec::new(),
            managed: FastMap::default(),
            texts: FastMap::default(),
            by_address: FastMap::default(),
        };
        let mut scp_levels: Vec<(Vec<String>, Vec<usize>)> = Vec::new();
        for l in &estate.scps {
            let ids = l
                .policies
                .iter()
                .filter_map(|p| a.add(p, &l.id, "service control policy"))
                .collect();
            scp_levels.push((l.accounts.clone(), ids));
        }
        let n = estate.principals.len();
        let mut policies = Vec::with_capacity(n);
        let mut boundary = Vec::with_capacity(n);
        let mut trust = Vec::with_capacity(n);
        let mut scps = Vec::with_capacity(n);
        for p in &estate.principals {
            let mut ids = Vec::new();
            for d in &p.inline {
                ids.extend(a.add_doc(&d.doc, &p.arn, || format!("inline policy `{}`", d.name)));
            }
            for m in &p.managed {
                ids.extend(a.managed_id(m, &p.arn));
            }
            for g in &p.groups {
                if let Some(group) = estate.groups.get(g) {
                    for d in &group.inline {
                        ids.extend(
                            a.add_doc(&d.doc, &group.arn, || format!("group policy `{}`", d.name)),
                        );
                    }
                    for m in &group.managed {
                        ids.extend(a.managed_id(m, &group.arn));
                    }
                }
            }
            policies.push(ids);
            boundary.push(p.boundary.as_ref().and_then(|b| a.managed_id(b, &p.arn)));
            trust.push(
                p.trust
                    .as_ref()
                    .and_then(|t| a.add_doc(t, &p.arn, || TRUST_POLICY.to_owned())),
            );
            scps.push(
                scp_levels
                    .iter()
                    .filter(|(accts, _)| accts.is_empty() || accts.contains(&p.account))
                    .map(|(_, ids)| ids.clone())
                    .collect(),
            );
        }
        let Arena {
            docs,
            doc_origin,
            mut problems,
            ..
        } = a;
        problems.sort_by(|a, b| (&a.resource, &a.message).cmp(&(&b.resource, &b.message)));
        problems.dedup_by(|a, b| a.resource == b.resource && a.message == b.message);
        Prepared {
            by_role_name: OnceLock::new(),
            estate,
            docs,
            doc_origin,
            policies,
            boundary,
            trust,
            scps,
            problems,
            by_arn,
            by_id: OnceLock::new(),
        }
    }

    /// The identity side of principal `i` for the evaluator.
    pub fn identity(&self, i: usize) -> Identity<'_> {
        Identity {
            arn: match self.estate.principals[i].kind {
                Kind::Role => eval::session_of(&self.estate.principals[i].arn),
                Kind::User => self.estate.principals[i].arn.clone(),
            },
            policies: self.policies[i].iter().map(|&d| &self.docs[d]).collect(),
            boundary: self.boundary[i].map(|d| &self.docs[d]),
            scps: self.scps[i]
                .iter()
                .map(|l| l.iter().map(|&d| &self.docs[d]).collect())
                .collect(),
        }
    }

    /// The parsed trust policy of principal `i`, if it has one.
    pub fn trust_doc(&self, i: usize) -> Option<&Doc> {
        self.trust[i].map(|d| &self.docs[d])
    }
}

/// Principals by a key of theirs (those that have one; a later principal wins a key). Reserved
/// for every principal: grown entry by entry, the map would be rehashed a dozen times on the
/// way to 200,000.
fn principal_index<'e, K: std::hash::Hash + Eq>(
    estate: &'e Estate,
    key: impl Fn(&'e Principal) -> Option<K>,
) -> FastMap<K, usize> {
    let mut index = FastMap::with_capacity_and_hasher(estate.principals.len(), Default::default());
    for (i, p) in estate.principals.iter().enumerate() {
        if let Some(k) = key(p) {
            index.insert(k, i);
        }
    }
    index
}

/// How many threads a pass over `estate`'s principals is worth: below a few thousand
/// principals a thread costs more than it saves.
fn workers_for(estate: &Estate) -> usize {
    if estate.principals.len() < 2_000 {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .clamp(1, 4)
    }
}

/// Parses each document once; managed policies are shared by everyone attaching them, and
/// so are documents of the same text (the trust of every Lambda role, a policy copied into
/// each account): large organisations repeat them by the thousand.
struct Arena<'e> {
    estate: &'e Estate,
    docs: Vec<Doc>,
    doc_origin: Vec<(String, String)>,
    problems: Vec<Problem>,
    managed: FastMap<String, Option<usize>>,
    /// Document text -> its doc id, or why it cannot be parsed.
    texts: FastMap<&'e str, Result<usize, String>>,
    /// The same by the text's address ([`Document::address`]): a repeat read through one
    /// `Texts` is found without hashing its text.
    by_address: FastMap<usize, Result<usize, String>>,
}

impl<'e> Arena<'e> {
    fn add(&mut self, v: &Value, owner: &str, what: &str) -> Option<usize> {
        self.push(Doc::parse(v), owner, what)
    }

    /// `what` is only formatted when the text is new or unreadable: most documents of a large
    /// organisation are repeats, and formatting a description for each was measurable.
    fn add_doc(
        &mut self,
        d: &'e Document,
        owner: &str,
        what: impl FnOnce() -> String,
    ) -> Option<usize> {
        let text = d.as_str();
        let addr = d.address();
        let known = match self.by_address.get(&addr) {
            Some(r) => Some(r.clone()),
            None => {
                let r = self.texts.get(text).cloned();
                if let Some(r) = &r {
                    self.by_address.insert(addr, r.clone());
                }
                r
            }
        };
        let parsed = match known {
            Some(Ok(id)) => return Some(id),
            // Every owner of an unreadable document gets its own finding.
            Some(Err(m)) => Err(m),
            None => Doc::parse_text(text),
        };
        let remembered = parsed
            .as_ref()
            .map(|_| self.docs.len())
            .map_err(Clone::clone);
        self.texts.insert(text, remembered.clone());
        self.by_address.insert(addr, remembered);
        self.push(parsed, owner, &what())
    }

    fn push(&mut self, parsed: Result<Doc, String>, owner: &str, what: &str) -> Option<usize> {
        match parsed {
            Ok(d) => {
                self.docs.push(d);
                self.doc_origin.push((owner.to_owned(), what.to_owned()));
                Some(self.docs.len() - 1)
            }
            Err(m) => {
                self.problems.push(Problem {
                    kind: if what == TRUST_POLICY {
                        ProblemKind::UnreadableTrust
                    } else {
                        ProblemKind::Unreadable
                    },
                    resource: owner.to_owned(),
                    message: format!("{what} cannot be evaluated: {m}"),
                });
                None
            }
        }
    }

    /// From the estate, or rolehop's table of well-known AWS managed policies.
    fn managed_id(&mut self, arn: &str, owner: &str) -> Option<usize> {
        if let Some(id) = self.managed.get(arn) {
            return *id;
        }
        let doc = self
            .estate
            .managed
            .get(arn)
            .cloned()
            .or_else(|| crate::managed::aws_managed(arn));
        let id = match doc {
            Some(v) => self.add(&v, arn, "managed policy"),
            None => {
                self.problems.push(Problem {
                    kind: ProblemKind::UnknownManaged,
                    resource: owner.to_owned(),
                    message: format!("managed policy `{arn}` is not in the input and not known to rolehop: its permissions are not evaluated"),
                });
                None
            }
        };
        self.managed.insert(arn.to_owned(), id);
        id
    }
}

/// The hash of a node id in [`Graph`]'s index (as `FastMap<String, _>` hashed it).
fn id_hash(id: &str) -> u64 {
    use std::hash::Hasher as _;
    let mut h = FxHasher::default();
    std::hash::Hash::hash(id, &mut h);
    h.finish()
}

const TRUST_POLICY: &str = "trust policy";
const ASSUME: &str = "sts:AssumeRole";
const WEB: &str = "sts:AssumeRoleWithWebIdentity";
const SAML: &str = "sts:AssumeRoleWithSAML";

impl Graph {
    /// The node whose id is `id`.
    pub fn find(&self, id: &str) -> Option<usize> {
        let nodes = &self.nodes;
        self.index
            .find(id_hash(id), |&i| nodes[i].id == id)
            .copied()
    }

    /// The node of `id`, made by `make` (whose `id` must be `id`) if there is none yet; one
    /// probe of the index either way.
    fn node(&mut self, id: &str, make: impl FnOnce() -> Node) -> usize {
        let hash = id_hash(id);
        let nodes = &self.nodes;
        match self
            .index
            .entry(hash, |&i| nodes[i].id == id, |&i| id_hash(&nodes[i].id))
        {
            hashbrown::hash_table::Entry::Occupied(o) => *o.get(),
            hashbrown::hash_table::Entry::Vacant(v) => {
                let i = nodes.len();
                v.insert(i);
                let n = make();
                debug_assert_eq!(n.id, id, "a node's id is its index key");
                self.nodes.push(n);
                self.out.push(Vec::new());
                self.inbound.push(Vec::new());
                i
            }
        }
    }

    /// The environment of principal `i` (of the estate the graph was built from), as
    /// inference wrote it onto the principal's node.
    pub fn principal_env(&self, i: usize) -> Option<&Env> {
        let &n = self.principal_node.get(i)?;
        self.nodes[n].env.as_ref()
    }

    pub(crate) fn edge(
        &mut self,
        from: usize,
        to: usize,
        action: &'static str,
        conditions: Vec<String>,
    ) {
        // One edge per (from, to): the first action wins, conditions of alternatives merge.
        if let Some(&e) = self.pairs.get(&(from, to)) {
            let c = &mut self.edges[e].conditions;
            if !c.is_empty() && !conditions.is_empty() && *c != conditions {
                let merged = format!("({}) OR ({})", c.join("; "), conditions.join("; "));
                *c = vec![merged];
            } else if conditions.is_empty() {
                c.clear();
            }
            return;
        }
        self.edges.push(Edge {
            from,
            to,
            action,
            conditions,
        });
        let e = self.edges.len() - 1;
        self.pairs.insert((from, to), e);
        self.out[from].push(e);
        self.inbound[to].push(e);
    }

    /// Breadth-first from `start`: every node reached, with the edge it was first reached by.
    pub fn reach(&self, start: usize) -> Vec<(usize, usize)> {
        let mut seen = vec![false; self.nodes.len()];
        seen[start] = true;
        let mut out = Vec::new();
        let mut q = VecDeque::from([start]);
        while let Some(n) = q.pop_front() {
            for &e in &self.out[n] {
                let to = self.edges[e].to;
                if !seen[to] {
                    seen[to] = true;
                    out.push((to, e));
                    q.push_back(to);
                }
            }
        }
        out
    }

    /// The path from `start` to `target` as node ids, given `reach(start)`'s result.
    pub fn path(&self, start: usize, target: usize, reached: &[(usize, usize)]) -> Vec<usize> {
        let via: FastMap<usize, usize> = reached.iter().copied().collect();
        let mut path = vec![target];
        let mut cur = target;
        while cur != start {
            match via.get(&cur) {
                Some(&e) => {
                    cur = self.edges[e].from;
                    path.push(cur);
                }
                None => break,
            }
        }
        path.reverse();
        path
    }
}

/// Builds the graph of `prep`'s estate. `admin` says, per principal, whether it is
/// admin-equivalent. The trust policies are evaluated on every core for a large estate.
pub fn build(prep: &Prepared<'_>, admin: &[bool]) -> Graph {
    build_with(prep, admin, workers_for(prep.estate))
}

/// [`build`] with the roles' trust policies evaluated by `workers` threads, each a contiguous
/// run of principals; their results are applied in principal order, so the graph (node and
/// edge order included) is the one a single thread builds.
pub fn build_with(prep: &Prepared<'_>, admin: &[bool], workers: usize) -> Graph {
    let estate = prep.estate;
    let mut g = Graph::default();
    // One node per principal and a few more: reserved once rather than rehashed and copied
    // as they grow (the index alone is 200,000 entries at 10,000 accounts).
    let n = estate.principals.len();
    g.principal_node.reserve(n);
    g.nodes.reserve(n);
    g.out.reserve(n);
    g.inbound.reserve(n);
    let nodes = &g.nodes;
    g.index.reserve(n, |&i| id_hash(&nodes[i].id));
    for (i, p) in estate.principals.iter().enumerate() {
        let n = g.node(&p.arn, || Node {
            id: p.arn.clone(),
            kind: match p.kind {
                Kind::User => NodeKind::User,
                Kind::Role => NodeKind::Role,
            },
            account: Some(p.account.clone()),
            env: p.env.clone(),
            part: p.part,
            admin: admin[i],
            principal: Some(i),
        });
        g.principal_node.push(n);
    }

    // Who could assume a role at all, and under which resource patterns: the candidates when
    // a trust policy names a whole account or `*`.
    let mut capable_by_account: FastMap<&str, Vec<usize>> = FastMap::default();
    let mut capable: Vec<usize> = Vec::new();
    let mut patterns: Vec<Vec<Glob>> = vec![Vec::new(); estate.principals.len()];
    for (i, p) in estate.principals.iter().enumerate() {
        let mut pats = Vec::new();
        for &d in &prep.policies[i] {
            pats.extend(prep.docs[d].resources_for(ASSUME));
        }
        if !pats.is_empty() {
            pats.sort();
            pats.dedup();
            patterns[i] = pats.iter().map(|p| Glob::new(p, false)).collect();
            capable_by_account.entry(&p.account).or_default().push(i);
            capable.push(i);
        }
    }
    let accounts: BTreeSet<&str> = estate
        .principals
        .iter()
        .map(|p| p.account.as_str())
        .collect();

    let cx = TrustCx {
        prep,
        principal_node: &g.principal_node,
        patterns: &patterns,
        capable: &capable,
        capable_by_account: &capable_by_account,
        accounts: &accounts,
    };
    let chunk = n.div_ceil(workers.max(1)).max(1);
    let ops: Vec<Vec<Op<'_>>> = if workers <= 1 || n <= chunk {
        vec![trust_ops(&cx, 0..n)]
    } else {
        std::thread::scope(|scope| {
            let cx = &cx;
            let handles: Vec<_> = (0..n)
                .step_by(chunk)
                .map(|start| scope.spawn(move || trust_ops(cx, start..n.min(start + chunk))))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    };

    // A service's node by its name: a few services (Lambda, ECS tasks) are trusted by most
    // roles of an organisation, and each lookup by id would format `service:<name>` first.
    let mut service_nodes: FastMap<&str, usize> = FastMap::default();
    for Op { from, edge } in ops.into_iter().flatten() {
        let from = match from {
            Source::Outside { id, kind, account } => g.node(&id, || external(&id, kind, account)),
            Source::Service(name) => *service_nodes.entry(name).or_insert_with(|| {
                let id = format!("service:{name}");
                g.node(&id, || external(&id, NodeKind::Service, None))
            }),
            Source::Principal(n) => n,
        };
        if let Some((to, action, conditions)) = edge {
            g.edge(from, to, action, conditions);
        }
    }
    for gate in &estate.gates {
        let Some(to) = g.find(&gate.gate_role_arn) else {
            continue;
        };
        let n = g.node(&gate.claims, || Node {
            env: Some(gate.env.clone()),
            ..external(&gate.claims, NodeKind::ClaimSet, None)
        });
        g.edge(
            n,
            to,
            GATE,
            vec!["the claim gate's rules on GitLab-signed claims (rolehop)".to_owned()],
        );
    }
    g
}

/// What the trust evaluation of a run of roles reads.
struct TrustCx<'c, 'd, 'p> {
    prep: &'d Prepared<'p>,
    principal_node: &'c [usize],
    patterns: &'c [Vec<Glob>],
    capable: &'c [usize],
    capable_by_account: &'c FastMap<&'p str, Vec<usize>>,
    accounts: &'c BTreeSet<&'p str>,
}

/// A change to the graph that a role's trust policy asks for, in the order a single pass
/// makes them: the node an edge starts from, made if new, and the edge (to, action,
/// conditions) unless the trust refused it (`*`'s node is made even then).
struct Op<'c> {
    from: Source<'c>,
    edge: Option<(usize, &'static str, Vec<String>)>,
}

/// Where an edge of the trust evaluation starts.
enum Source<'c> {
    /// A principal outside the estate.
    Outside {
        id: String,
        kind: NodeKind,
        account: Option<String>,
    },
    /// A service (`service:<name>`).
    Service(&'c str),
    /// The node of a principal of the estate.
    Principal(usize),
}

/// The graph changes that the trust policies of principals `roles` ask for.
#[allow(clippy::too_many_lines)] // one trust policy's principal kinds, read in order
fn trust_ops<'d>(cx: &TrustCx<'_, 'd, '_>, roles: std::ops::Range<usize>) -> Vec<Op<'d>> {
    let prep = cx.prep;
    let estate = prep.estate;
    let mut ops = Vec::new();
    // A principal's identity side, built once: a broker service role is the candidate of
    // every deployment role of its environment (thousands), and each build formats its
    // session ARN and collects its policies.
    let mut identities: FastMap<usize, Identity<'d>> = FastMap::default();
    for ri in roles {
        let role = &estate.principals[ri];
        let Some(trust) = prep.trust_doc(ri) else {
            continue;
        };
        let to = cx.principal_node[ri];
        // Candidate principal -> the one session of it the trust policy names, if that is
        // how it is named (otherwise any session of it asks).
        let mut candidates: BTreeMap<usize, Option<String>> = BTreeMap::new();
        let any_session = |c: &mut BTreeMap<usize, Option<String>>, i: usize| {
            c.insert(i, None);
        };
        for st in trust.statements() {
            if st.effect != Effect::Allow {
                continue;
            }
            // Written only for an edge from outside the estate; most statements have none.
            let cond = || Some(eval::condition_text(&st.conditions)).filter(|c| !c.is_empty());
            let Some(principal) = &st.principal else {
                continue;
            };
            let not_principal = principal.is_not();
            for (kind, value) in principal.items().entries() {
                match kind {
                    PrincipalType::Aws if value == "*" || not_principal => {
                        let allowed = eval::trust_allows(trust, Who::Anyone, ASSUME, &role.arn);
                        ops.push(Op {
                            from: Source::Outside {
                                id: "*".to_owned(),
                                kind: NodeKind::Anyone,
                                account: None,
                            },
                            edge: match allowed {
                                Verdict::Allowed { conditions } => Some((to, ASSUME, conditions)),
                                Verdict::Denied => None,
                            },
                        });
                        for &c in cx.capable {
                            if cx.patterns[c].iter().any(|p| p.matches(&role.arn)) {
                                any_session(&mut candidates, c);
                            }
                        }
                    }
                    PrincipalType::Aws => {
                        if let Some(account) = account_of_root(value) {
                            if cx.accounts.contains(account) {
                                for &c in cx.capable_by_account.get(account).into_iter().flatten() {
                                    any_session(&mut candidates, c);
                                }
                            } else {
                                ops.push(Op {
                                    from: Source::Outside {
                                        id: format!("arn:aws:iam::{account}:root"),
                                        kind: NodeKind::External,
                                        account: Some(account.to_owned()),
                                    },
                                    edge: Some((to, ASSUME, cond().into_iter().collect())),
                                });
                            }
                        } else if let Some(&pi) = prep.by_arn.get(value).or_else(|| {
                            // A unique id (`AROA...`) has no colon; an ARN that is not
                            // the estate's need not build the index.
                            (!value.contains(':'))
                                .then(|| prep.by_id().get(value))
                                .flatten()
                        }) {
                            any_session(&mut candidates, pi);
                        } else if let Some(&pi) = session_role_arn_of(value)
                            .and_then(|a| {
                                let (acct, name) = split_arn(&a);
                                prep.by_role_name()
                                    .get(&(acct.as_str(), name.as_str()))
                                    .copied()
                            })
                            .as_ref()
                        {
                            candidates
                                .entry(pi)
                                .or_insert_with(|| Some(value.to_owned()));
                        } else {
                            let account = arn_account(value).to_owned();
                            ops.push(Op {
                                from: Source::Outside {
                                    id: value.to_owned(),
                                    kind: NodeKind::External,
                                    account: Some(account).filter(|a| !a.is_empty()),
                                },
                                edge: Some((to, ASSUME, cond().into_iter().collect())),
                            });
                        }
                    }
                    PrincipalType::Federated if value.contains(":oidc-provider/") => {
                        let Verdict::Allowed { conditions } =
                            eval::trust_allows(trust, Who::Federated(value), WEB, &role.arn)
                        else {
                            continue;
                        };
                        let host = value.split(":oidc-provider/").nth(1).unwrap_or("");
                        for sub in oidc_subjects(st, host) {
                            ops.push(Op {
                                from: Source::Outside {
                                    id: format!("oidc:{host}:{sub}"),
                                    kind: NodeKind::OidcSubject,
                                    account: None,
                                },
                                edge: Some((to, WEB, conditions.clone())),
                            });
                        }
                    }
                    PrincipalType::Federated => {
                        if let Verdict::Allowed { conditions } =
                            eval::trust_allows(trust, Who::Federated(value), SAML, &role.arn)
                        {
                            ops.push(Op {
                                from: Source::Outside {
                                    id: value.to_owned(),
                                    kind: NodeKind::Saml,
                                    account: None,
                                },
                                edge: Some((to, SAML, conditions)),
                            });
                        }
                    }
                    PrincipalType::Service => {
                        if let Verdict::Allowed { conditions } =
                            eval::trust_allows(trust, Who::Service(value), ASSUME, &role.arn)
                        {
                            ops.push(Op {
                                from: Source::Service(value),
                                edge: Some((to, ASSUME, conditions)),
                            });
                        }
                    }
                    PrincipalType::CanonicalUser => {}
                }
            }
        }
        for (c, session) in candidates {
            if c == ri {
                // A role assuming itself adds no reach.
                continue;
            }
            let identity = identities.entry(c).or_insert_with(|| prep.identity(c));
            let who = session.as_deref().unwrap_or(&identity.arn);
            let v = eval::may_assume(trust, who, identity, ASSUME, &role.arn, &role.account);
            if let Verdict::Allowed { mut conditions } = v {
                if let Some(s) = session {
                    conditions.insert(0, format!("only as the session `{s}`"));
                }
                ops.push(Op {
                    from: Source::Principal(cx.principal_node[c]),
                    edge: Some((to, ASSUME, conditions)),
                });
            }
        }
    }
    ops
}

/// The edge from a claim set to its gate's role: the gate's exchange, not an IAM action.
pub const GATE: &str = "rolehop:GateExchange";

fn external(id: &str, kind: NodeKind, account: Option<String>) -> Node {
    Node {
        id: id.to_owned(),
        kind,
        account,
        env: None,
        part: Part::Other,
        admin: false,
        principal: None,
    }
}

/// `123456789012` or `arn:aws:iam::123456789012:root` -> the account.
pub fn account_of_root(v: &str) -> Option<&str> {
    if v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit()) {
        return Some(v);
    }
    let acct = arn_account(v);
    (v.starts_with("arn:") && v.ends_with(":root") && !acct.is_empty()).then_some(acct)
}

/// The `sub` patterns a federated statement admits (`*` when it does not restrict `sub`).
/// Negated and `Null` operators name no subject that is admitted. Keys and operators are
/// matched case-insensitively, as IAM does.
pub fn oidc_subjects(st: &Statement, host: &str) -> Vec<String> {
    let key = format!("{host}:sub").to_ascii_lowercase();
    let mut out: Vec<String> = st
        .conditions
        .iter()
        .filter(|c| {
            let op = c.operator.base;
            op != BaseOp::Null && !op.is_negated() && c.key_lower() == key
        })
        .flat_map(|c| c.values.iter().map(|v| v.raw.clone()))
        .collect();
    if out.is_empty() {
        out.push("*".to_owned());
    }
    out.sort();
    out.dedup();
    out
}
