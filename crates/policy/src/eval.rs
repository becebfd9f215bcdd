//! The decision: given a request and the policies in force, decide the way AWS does (explicit
//! deny wins; every SCP level must allow; RCPs only deny; resource/trust policy and identity
//! side per account rules; boundaries and session policies cap identity grants) and say why.

use std::fmt;

use crate::arn::{Mode, Target};
use crate::ast::{Block, Effect, Policy, Statement};
use crate::context::Context;
use crate::principal::{PrincipalMatch, match_principal_with};
use crate::request::{Principal, Request};

/// The policies in force for one request. Empty slices mean "none of that kind applies"
/// (no SCPs: not in an organization; no boundary: no permissions boundary set).
#[derive(Debug, Clone, Copy, Default)]
pub struct EvalInput<'a> {
    /// Identity-based policies of the principal (inline, attached, group).
    pub identity: &'a [&'a Policy],
    /// The resource's policy; for `sts:AssumeRole*` the role's trust policy.
    pub resource: Option<&'a Policy>,
    /// Permissions boundaries of the principal (normally zero or one).
    pub boundaries: &'a [&'a Policy],
    /// Service control policies, one entry per organization level (root, OUs, account);
    /// every level must allow.
    pub scps: &'a [Vec<&'a Policy>],
    /// Resource control policies, one entry per organization level.
    pub rcps: &'a [Vec<&'a Policy>],
    /// The session policy passed when the role session was created.
    pub session: Option<&'a Policy>,
    /// VPC endpoint policies the request passes through: each must allow.
    pub endpoints: &'a [&'a Policy],
}

/// The outcome of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Allowed,
    /// No statement allowed it (or a layer that must allow did not).
    ImplicitlyDenied,
    /// A Deny statement matched.
    ExplicitlyDenied,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "Allowed",
            Decision::ImplicitlyDenied => "ImplicitlyDenied",
            Decision::ExplicitlyDenied => "ExplicitlyDenied",
        }
    }

    pub fn is_allowed(self) -> bool {
        self == Decision::Allowed
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which kind of policy a statement belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    Scp,
    Rcp,
    /// Resource policy (trust policy for `sts:AssumeRole*`).
    Resource,
    Boundary,
    Session,
    Identity,
    /// VPC endpoint policy.
    Endpoint,
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Scp => "service control policy",
            Layer::Rcp => "resource control policy",
            Layer::Resource => "resource policy",
            Layer::Boundary => "permissions boundary",
            Layer::Session => "session policy",
            Layer::Identity => "identity policy",
            Layer::Endpoint => "VPC endpoint policy",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A statement that took part in the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRef {
    pub layer: Layer,
    /// Organization level for SCPs/RCPs (0 = first entry).
    pub level: Option<usize>,
    /// Index of the policy within its layer (or level).
    pub policy: usize,
    /// The policy's label ([`Policy::name`]) when it has one.
    pub policy_name: Option<String>,
    /// Statement index within the policy.
    pub statement: usize,
    pub sid: Option<String>,
}

impl fmt::Display for StatementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.layer)?;
        if let Some(level) = self.level {
            write!(f, " (level {level})")?;
        }
        match &self.policy_name {
            Some(n) => write!(f, " `{n}`")?,
            None => write!(f, " #{}", self.policy)?,
        }
        match &self.sid {
            Some(sid) if !sid.is_empty() => write!(f, " statement `{sid}`"),
            _ => write!(f, " statement #{}", self.statement),
        }
    }
}

/// Why the decision came out as it did, for audit messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The layer that decided (for implicit denies: the layer that failed to allow).
    pub layer: Option<Layer>,
    /// The deciding statements (the Deny that matched, or the Allows that granted).
    pub statements: Vec<StatementRef>,
    /// One lowercase sentence.
    pub summary: String,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary)?;
        for (i, s) in self.statements.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { ", " })?;
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

/// A decision with its explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub decision: Decision,
    pub explanation: Explanation,
    /// Discovery mode only: conditions on keys absent from the context that the decision
    /// depends on (empty unless the decision is Allowed).
    pub assumed: Vec<AssumedCondition>,
}

/// How [`evaluate_with`] treats what it cannot know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EvalOptions {
    /// Conditions on keys absent from the context are unknown instead of false/true: an
    /// Allow statement is taken to apply and a Deny statement not to, and each such
    /// condition is reported in [`Evaluation::assumed`]. A role ARN principal also stands for
    /// any session of the role. For auditors, who ask "could this ever be allowed, and under
    /// which conditions".
    pub discovery: bool,
}

/// A condition the decision was made under (discovery mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumedCondition {
    pub statement: StatementRef,
    /// `Allow`: access needs the condition to hold. `Deny`: access needs it not to hold.
    pub effect: Effect,
    pub operator: String,
    pub key: String,
    pub values: Vec<String>,
    /// The condition as a policy writes it, for messages.
    pub text: String,
}

impl fmt::Display for AssumedCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.effect {
            Effect::Allow => write!(f, "if {} ({})", self.text, self.statement),
            Effect::Deny => write!(f, "unless {} ({})", self.text, self.statement),
        }
    }
}

/// Actions decided by a role's trust policy (the resource policy of an IAM role).
const TRUST_ACTIONS: &[&str] = &[
    "sts:AssumeRole",
    "sts:AssumeRoleWithWebIdentity",
    "sts:AssumeRoleWithSAML",
    "sts:TagSession",
    "sts:SetSourceIdentity",
    "sts:SetContext",
];

/// Whether `request` is decided by a role's trust policy: the trust policy is then required
/// and must allow, even within one account.
pub fn is_trust_request(request: &Request) -> bool {
    TRUST_ACTIONS
        .iter()
        .any(|a| a.eq_ignore_ascii_case(&request.action))
        && crate::arn::split_arn(&request.resource)
            .is_some_and(|[_, _, svc, _, _, res]| svc == "iam" && res.starts_with("role/"))
}

/// Whether the resource's own policy must allow (trust policies, KMS key policies): identity
/// policies alone never grant access to these resources, even within one account.
pub fn requires_resource_policy(request: &Request) -> bool {
    is_trust_request(request)
        || crate::arn::split_arn(&request.resource)
            .is_some_and(|[_, _, svc, _, _, res]| svc == "kms" && res.starts_with("key/"))
}

/// How a layer treats the `Principal` element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Principals {
    /// Identity-side policies: there is no principal element to check.
    Ignore,
    /// Resource policies and RCPs: a statement without one applies to nobody.
    Required,
    /// Endpoint policies: checked when present.
    Optional,
}

/// A statement that applied, kept as references until an explanation needs owned data.
#[derive(Clone, Copy)]
struct Hit<'p> {
    layer: Layer,
    level: Option<usize>,
    policy: usize,
    source: &'p Policy,
    stmt: &'p Statement,
    /// Applied only by assuming unknown conditions (discovery mode).
    assumed: bool,
}

impl Hit<'_> {
    fn to_ref(self) -> StatementRef {
        StatementRef {
            layer: self.layer,
            level: self.level,
            policy: self.policy,
            policy_name: self.source.name.clone(),
            statement: self.stmt.index,
            sid: self.stmt.sid.clone(),
        }
    }
}

impl Hit<'_> {
    /// The unknown conditions of this statement, as assumptions.
    fn assumptions(self, ctx: &Context, out: &mut Vec<AssumedCondition>) {
        if !self.assumed {
            return;
        }
        for c in &self.stmt.conditions {
            if c.check(ctx, true).is_none() {
                out.push(AssumedCondition {
                    statement: self.to_ref(),
                    effect: self.stmt.effect,
                    operator: c.operator.name.clone(),
                    key: c.key.clone(),
                    values: c.values.iter().map(|v| v.raw.clone()).collect(),
                    text: c.to_string(),
                });
            }
        }
    }
}

fn refs(hits: &[Hit<'_>]) -> Vec<StatementRef> {
    hits.iter().map(|h| h.to_ref()).collect()
}

/// Statements of one policy set that applied to the request.
#[derive(Default)]
struct Scan<'p> {
    allows: Vec<(Hit<'p>, Option<PrincipalMatch>)>,
    denies: Vec<Hit<'p>>,
    /// Deny statements that apply unless their unknown conditions fail (discovery mode).
    escapes: Vec<Hit<'p>>,
}

impl<'p> Scan<'p> {
    fn allowed(&self) -> bool {
        !self.allows.is_empty()
    }

    /// The strongest principal match among the allowing statements.
    fn best_match(&self) -> Option<PrincipalMatch> {
        self.allows.iter().filter_map(|(_, m)| *m).min()
    }

    fn allow_hits(&self) -> Vec<Hit<'p>> {
        self.allows.iter().map(|(h, _)| *h).collect()
    }
}

/// The request, prepared once for matching against every statement.
struct Prepared<'r> {
    request: &'r Request,
    discovery: bool,
    target: Target<'r>,
    /// AWS: a Deny with NotPrincipal always denies a principal that has a permissions
    /// boundary, whatever NotPrincipal lists.
    has_boundary: bool,
}

impl Prepared<'_> {
    /// Whether `stmt` applies; `Some(principal match)` when it does (`None` inside for layers
    /// without principals).
    fn applies(
        &self,
        stmt: &Statement,
        principals: Principals,
    ) -> Option<(Option<PrincipalMatch>, bool)> {
        let req = self.request;
        let action_hit = match &stmt.action {
            Block::Is(globs) => globs.iter().any(|g| g.matches(&req.action)),
            Block::Not(globs) => !globs.iter().any(|g| g.matches(&req.action)),
        };
        if !action_hit {
            return None;
        }
        let (positive, negative) = match (stmt.effect, &self.target) {
            (_, Target::Exact(_)) => (Mode::Exact, Mode::Exact),
            (Effect::Allow, _) => (Mode::Intersects, Mode::Covers),
            (Effect::Deny, _) => (Mode::Covers, Mode::Intersects),
        };
        let resource_hit = match &stmt.resource {
            None => true,
            Some(Block::Is(pats)) => pats
                .iter()
                .any(|p| p.matches_target(&self.target, &req.context, positive)),
            // A NotResource whose variable the request cannot fill makes the statement not
            // apply (AWS: the statement is invalid; as iam-simulate), instead of matching
            // every resource. Discovery mode keeps the old, more cautious reading.
            Some(Block::Not(pats)) => {
                (self.discovery || pats.iter().all(|p| p.resolves(&req.context)))
                    && !pats
                        .iter()
                        .any(|p| p.matches_target(&self.target, &req.context, negative))
            }
        };
        if !resource_hit {
            return None;
        }
        let principal = if principals != Principals::Ignore {
            match &stmt.principal {
                None if principals == Principals::Optional => Some(PrincipalMatch::Direct),
                None => return None,
                Some(Block::Is(set)) => {
                    Some(match_principal_with(set, &req.principal, self.discovery)?)
                }
                Some(Block::Not(_)) if stmt.effect == Effect::Deny && self.has_boundary => {
                    Some(PrincipalMatch::Direct)
                }
                Some(Block::Not(set)) => match match_principal_with(set, &req.principal, false) {
                    Some(_) => return None,
                    None => Some(PrincipalMatch::Direct),
                },
            }
        } else {
            None
        };
        let mut assumed = false;
        for c in &stmt.conditions {
            match c.check(&req.context, self.discovery) {
                Some(true) => {}
                Some(false) => return None,
                None => assumed = true,
            }
        }
        Some((principal, assumed))
    }

    fn scan<'p>(
        &self,
        policies: &[&'p Policy],
        layer: Layer,
        level: Option<usize>,
        principals: Principals,
    ) -> Scan<'p> {
        let mut scan = Scan::default();
        for (pi, policy) in policies.iter().enumerate() {
            for stmt in &policy.statements {
                let Some((m, assumed)) = self.applies(stmt, principals) else {
                    continue;
                };
                let r = Hit {
                    layer,
                    level,
                    policy: pi,
                    source: policy,
                    stmt,
                    assumed,
                };
                match stmt.effect {
                    Effect::Allow => scan.allows.push((r, m)),
                    Effect::Deny if assumed => scan.escapes.push(r),
                    Effect::Deny => scan.denies.push(r),
                }
            }
        }
        scan
    }
}

fn decided(
    decision: Decision,
    layer: Option<Layer>,
    statements: Vec<StatementRef>,
    summary: impl Into<String>,
) -> Evaluation {
    Evaluation {
        decision,
        explanation: Explanation {
            layer,
            statements,
            summary: summary.into(),
        },
        assumed: Vec::new(),
    }
}

/// Decides `request` against the policies in `input`.
///
/// In order: `sts:GetCallerIdentity` is always allowed; a matching Deny in any layer
/// (SCP, RCP, VPC endpoint, resource/trust, identity, boundary, session) is an explicit deny;
/// an IAM principal needs an Allow at every SCP level; AWS-owned resources refuse writes;
/// every endpoint policy must allow. Then, for users, roles and sessions: within one account
/// a resource policy naming the exact user/session (or `*`) grants alone (capped only by a
/// session policy), one naming the session's role grants if the boundary and session policy
/// allow too, and otherwise identity policies grant within boundary and session policy —
/// except that trust policies and KMS key policies must always allow. Across accounts both
/// the identity side and the resource policy must allow. Service principals, federated
/// providers and anonymous callers are decided by the resource policy alone.
pub fn evaluate(request: &Request, input: &EvalInput<'_>) -> Evaluation {
    evaluate_with(request, input, EvalOptions::default())
}

/// Decides `request` with options (see [`EvalOptions::discovery`]).
pub fn evaluate_with(request: &Request, input: &EvalInput<'_>, options: EvalOptions) -> Evaluation {
    let mut trace = Trace::default();
    let mut eval = decide(request, input, options, &mut trace);
    if options.discovery && eval.decision == Decision::Allowed {
        let ctx = &request.context;
        let mut assumed = Vec::new();
        // Each granting layer must allow on its own (identity and trust policy across
        // accounts), so its assumptions matter unless one of its own statements granted
        // unconditionally; another layer's unconditional grant does not make them true.
        for layer in [Layer::Identity, Layer::Resource] {
            let hits = trace.deciding.iter().filter(|h| h.layer == layer);
            if hits.clone().all(|h| h.assumed) {
                for h in hits {
                    h.assumptions(ctx, &mut assumed);
                }
            }
        }
        for cap in &trace.caps {
            for h in cap {
                h.assumptions(ctx, &mut assumed);
            }
        }
        for h in &trace.escapes {
            h.assumptions(ctx, &mut assumed);
        }
        eval.assumed = assumed;
    }
    eval
}

/// What discovery mode needs to know about a decision.
#[derive(Default)]
struct Trace<'p> {
    /// The Allow statements that granted the request.
    deciding: Vec<Hit<'p>>,
    /// Capping layers (SCP levels, boundaries, session, endpoints) whose every Allow needed
    /// an assumption.
    caps: Vec<Vec<Hit<'p>>>,
    /// Deny statements escaped by assuming their unknown conditions false.
    escapes: Vec<Hit<'p>>,
}

impl<'p> Trace<'p> {
    fn cap(&mut self, scan: &Scan<'p>) {
        if scan.allowed() && scan.allows.iter().all(|(h, _)| h.assumed) {
            self.caps
                .push(scan.allows.iter().map(|(h, _)| *h).collect());
        }
        self.escapes.extend(scan.escapes.iter().copied());
    }
}

fn decide<'p>(
    request: &Request,
    input: &EvalInput<'p>,
    options: EvalOptions,
    trace: &mut Trace<'p>,
) -> Evaluation {
    if request.action.eq_ignore_ascii_case("sts:GetCallerIdentity") {
        return decided(
            Decision::Allowed,
            None,
            Vec::new(),
            "`sts:GetCallerIdentity` is allowed to every authenticated caller",
        );
    }
    let prep = Prepared {
        request,
        discovery: options.discovery,
        target: if request.wildcard_only_action {
            Target::Exact(&request.resource)
        } else {
            Target::new(&request.resource)
        },
        has_boundary: !input.boundaries.is_empty()
            && matches!(request.principal, Principal::Arn(_)),
    };
    // Identity-side layers exist only for IAM principals (users, roles, sessions); SCPs
    // never restrict service principals or anonymous callers.
    let iam_principal = matches!(request.principal, Principal::Arn(_));
    let applies_rcp = !matches!(request.principal, Principal::Service(_));

    let mut denies: Vec<Hit<'_>> = Vec::new();
    let mut scp_gap: Option<usize> = None;
    if iam_principal {
        for (level, policies) in input.scps.iter().enumerate() {
            let scan = prep.scan(policies, Layer::Scp, Some(level), Principals::Ignore);
            trace.cap(&scan);
            if !scan.allowed() && scp_gap.is_none() {
                scp_gap = Some(level);
            }
            denies.extend(scan.denies);
        }
    }
    // RCPFullAWSAccess is always attached and cannot be detached, so RCPs only ever deny.
    if applies_rcp {
        for (level, policies) in input.rcps.iter().enumerate() {
            let scan = prep.scan(policies, Layer::Rcp, Some(level), Principals::Required);
            trace.escapes.extend(scan.escapes.iter().copied());
            denies.extend(scan.denies);
        }
    }
    let mut endpoint_gap = None;
    for (i, policy) in input.endpoints.iter().enumerate() {
        let mut scan = prep.scan(&[policy], Layer::Endpoint, None, Principals::Optional);
        for r in scan.denies.iter_mut().chain(scan.escapes.iter_mut()) {
            r.policy = i;
        }
        for (r, _) in scan.allows.iter_mut() {
            r.policy = i;
        }
        trace.cap(&scan);
        if !scan.allowed() && endpoint_gap.is_none() {
            endpoint_gap = Some(i);
        }
        denies.extend(scan.denies);
    }
    let resource = input
        .resource
        .map(|p| prep.scan(&[p], Layer::Resource, None, Principals::Required))
        .unwrap_or_default();
    denies.extend(resource.denies.iter().copied());
    trace.escapes.extend(resource.escapes.iter().copied());

    let (identity, boundaries, session) = if iam_principal {
        let identity = prep.scan(input.identity, Layer::Identity, None, Principals::Ignore);
        let boundaries: Vec<Scan> = input
            .boundaries
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let mut s = prep.scan(&[b], Layer::Boundary, None, Principals::Ignore);
                for r in s
                    .allows
                    .iter_mut()
                    .map(|(r, _)| r)
                    .chain(s.denies.iter_mut())
                    .chain(s.escapes.iter_mut())
                {
                    r.policy = i;
                }
                s
            })
            .collect();
        let session = input
            .session
            .map(|p| prep.scan(&[p], Layer::Session, None, Principals::Ignore));
        denies.extend(identity.denies.iter().copied());
        trace.escapes.extend(identity.escapes.iter().copied());
        for b in &boundaries {
            denies.extend(b.denies.iter().copied());
            trace.cap(b);
        }
        if let Some(s) = &session {
            denies.extend(s.denies.iter().copied());
            trace.cap(s);
        }
        (identity, boundaries, session)
    } else {
        (Scan::default(), Vec::new(), None)
    };

    if !denies.is_empty() {
        let layer = denies.first().map(|d| d.layer);
        return decided(
            Decision::ExplicitlyDenied,
            layer,
            refs(&denies),
            "explicitly denied",
        );
    }
    if let Some(level) = scp_gap {
        return decided(
            Decision::ImplicitlyDenied,
            Some(Layer::Scp),
            Vec::new(),
            format!("no service control policy at organization level {level} allows the request"),
        );
    }

    if let Some(reason) = crate::reserved::reserved_reason(&request.action, &request.resource) {
        return decided(Decision::ImplicitlyDenied, None, Vec::new(), reason);
    }
    if let Some(i) = endpoint_gap {
        return decided(
            Decision::ImplicitlyDenied,
            Some(Layer::Endpoint),
            Vec::new(),
            format!("VPC endpoint policy #{i} does not allow the request"),
        );
    }

    let trust = is_trust_request(request);
    let required = requires_resource_policy(request);
    let best = resource.best_match();
    if !iam_principal {
        return if best.is_some() {
            trace.deciding = resource.allow_hits();
            decided(
                Decision::Allowed,
                Some(Layer::Resource),
                refs(&trace.deciding),
                if trust {
                    "allowed by the role's trust policy"
                } else {
                    "allowed by the resource policy"
                },
            )
        } else {
            decided(
                Decision::ImplicitlyDenied,
                Some(Layer::Resource),
                Vec::new(),
                if trust {
                    "the role's trust policy does not allow this principal"
                } else {
                    "no resource policy allows this principal"
                },
            )
        };
    }

    let boundary_ok = boundaries.iter().all(Scan::allowed);
    let session_ok = session.as_ref().is_none_or(Scan::allowed);
    let identity_ok = identity.allowed();
    let same_account = match (request.resource_account(), request.principal.account()) {
        (Some(r), Some(p)) => r == p,
        _ => true,
    };

    let mut grant = |hits: Vec<Hit<'p>>, layer, summary: &str| {
        let statements = refs(&hits);
        trace.deciding = hits;
        decided(
            Decision::Allowed,
            Some(layer),
            statements,
            summary.to_string(),
        )
    };
    if same_account {
        // A grant to the exact user or session (or `*`) in a same-account resource policy is
        // not capped by a permissions boundary; a grant to the session's role is.
        match best {
            Some(PrincipalMatch::Direct) if session_ok => {
                return grant(
                    resource.allow_hits(),
                    Layer::Resource,
                    if trust {
                        "allowed by the role's trust policy, which names this principal"
                    } else {
                        "allowed by the resource policy, which names this principal"
                    },
                );
            }
            Some(PrincipalMatch::Direct | PrincipalMatch::Role) if boundary_ok && session_ok => {
                return grant(
                    resource.allow_hits(),
                    Layer::Resource,
                    if trust {
                        "allowed by the role's trust policy, which names this principal's role"
                    } else {
                        "allowed by the resource policy, which names this principal's role"
                    },
                );
            }
            _ => {}
        }
        if identity_ok && boundary_ok && session_ok && (!required || best.is_some()) {
            let mut refs = identity.allow_hits();
            if required {
                refs.extend(resource.allow_hits());
            }
            return grant(
                refs,
                Layer::Identity,
                if trust {
                    "allowed by identity policy and the role's trust policy"
                } else {
                    "allowed by identity policy"
                },
            );
        }
    } else if identity_ok && boundary_ok && session_ok && best.is_some() {
        let mut refs = identity.allow_hits();
        refs.extend(resource.allow_hits());
        return grant(
            refs,
            Layer::Identity,
            "allowed across accounts by both identity and resource policy",
        );
    }

    let (layer, summary) = if trust && best.is_none() {
        (
            Layer::Resource,
            "the role's trust policy does not allow this principal",
        )
    } else if required && best.is_none() {
        (
            Layer::Resource,
            "the key policy does not allow this principal",
        )
    } else if !same_account && best.is_none() {
        (
            Layer::Resource,
            "a cross-account request needs a resource policy that allows this principal",
        )
    } else if best.is_some() && !session_ok {
        (
            Layer::Session,
            "the session policy does not allow the request",
        )
    } else if best == Some(PrincipalMatch::Role) && !boundary_ok {
        (
            Layer::Boundary,
            "the permissions boundary does not allow the request",
        )
    } else if !identity_ok {
        (Layer::Identity, "no identity policy allows the request")
    } else if !boundary_ok {
        (
            Layer::Boundary,
            "the permissions boundary does not allow the request",
        )
    } else {
        (
            Layer::Session,
            "the session policy does not allow the request",
        )
    };
    decided(Decision::ImplicitlyDenied, Some(layer), Vec::new(), summary)
}
