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
    /// Every layer that must allow did, and nothing denied.
    Allowed,
    /// No statement allowed it (or a layer that must allow did not).
    ImplicitlyDenied,
    /// A Deny statement matched.
    ExplicitlyDenied,
}

impl Decision {
    /// The name iam-simulate and case files use.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "Allowed",
            Decision::ImplicitlyDenied => "ImplicitlyDenied",
            Decision::ExplicitlyDenied => "ExplicitlyDenied",
        }
    }

    /// Whether access is granted (both denials refuse alike).
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
    /// Service control policy: caps what an organization's IAM principals may do.
    Scp,
    /// Resource control policy: caps what may be done to an organization's resources.
    Rcp,
    /// Resource policy (trust policy for `sts:AssumeRole*`).
    Resource,
    /// Permissions boundary: caps the principal's identity policies.
    Boundary,
    /// Session policy: caps one session of an assumed role.
    Session,
    /// Identity-based policy attached to the principal.
    Identity,
    /// VPC endpoint policy.
    Endpoint,
}

impl Layer {
    /// The layer as explanations name it.
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
    /// The kind of policy.
    pub layer: Layer,
    /// Organization level for SCPs/RCPs (0 = first entry).
    pub level: Option<usize>,
    /// Index of the policy within its layer (or level).
    pub policy: usize,
    /// The policy's label ([`Policy::name`]) when it has one.
    pub policy_name: Option<String>,
    /// Statement index within the policy.
    pub statement: usize,
    /// The statement's Sid, when it has one.
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
    /// Why; its `Display` is one lowercase sentence.
    pub reason: Reason,
}

/// Why a request was allowed or denied. Tests and callers match on the variant; `Display`
/// gives the sentence people read (stable: audit messages and `simulate` output quote it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// `sts:GetCallerIdentity`, which no policy can deny.
    CallerIdentity,
    /// A Deny statement matched in some layer.
    ExplicitDeny,
    /// An IAM principal needs an Allow at every SCP level; `level` had none.
    ScpGap {
        /// The organization level (0 = root).
        level: usize,
    },
    /// AWS-owned resources that nobody may write (the text names the rule).
    Reserved(&'static str),
    /// Every VPC endpoint policy must allow; policy `#index` did not.
    EndpointGap {
        /// Which endpoint policy.
        index: usize,
    },
    /// A non-IAM principal (service, federated, anonymous) allowed by the resource policy.
    ResourcePolicyAllows {
        /// The resource policy is a role's trust policy (worded so).
        trust: bool,
    },
    /// Same account: the resource policy names the principal (or its role) and grants alone.
    ResourcePolicyNames {
        /// The resource policy is a role's trust policy.
        trust: bool,
        /// It names the session's role rather than the session itself.
        via_role: bool,
    },
    /// Same account: identity policies grant (within boundary and session policy).
    IdentityAllows {
        /// The request is `sts:AssumeRole*`, so the trust policy had to allow too.
        trust: bool,
    },
    /// Across accounts both sides must grant: the caller's identity policy and the resource's.
    CrossAccountAllows,
    /// A role is assumed only if its trust policy allows the caller, whatever else grants.
    TrustPolicyRefuses,
    /// A non-IAM principal (service, federated, anonymous) needs the resource policy to grant.
    NoResourcePolicyAllows,
    /// KMS keys are reached only through their key policy.
    KeyPolicyRefuses,
    /// Across accounts, identity policies alone grant nothing.
    CrossAccountNeedsResourcePolicy,
    /// A session policy can only narrow: it did not allow.
    SessionPolicyRefuses,
    /// A boundary can only narrow: it did not allow.
    BoundaryRefuses,
    /// Nothing granted the request: the implicit deny.
    NoIdentityPolicyAllows,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let policy = |trust: bool| {
            if trust {
                "role's trust policy"
            } else {
                "resource policy"
            }
        };
        match self {
            Reason::CallerIdentity => {
                f.write_str("`sts:GetCallerIdentity` is allowed to every authenticated caller")
            }
            Reason::ExplicitDeny => f.write_str("explicitly denied"),
            Reason::ScpGap { level } => write!(
                f,
                "no service control policy at organization level {level} allows the request"
            ),
            Reason::Reserved(text) => f.write_str(text),
            Reason::EndpointGap { index } => {
                write!(f, "VPC endpoint policy #{index} does not allow the request")
            }
            Reason::ResourcePolicyAllows { trust } => {
                write!(f, "allowed by the {}", policy(*trust))
            }
            Reason::ResourcePolicyNames { trust, via_role } => write!(
                f,
                "allowed by the {}, which names this principal{}",
                policy(*trust),
                if *via_role { "'s role" } else { "" }
            ),
            Reason::IdentityAllows { trust: true } => {
                f.write_str("allowed by identity policy and the role's trust policy")
            }
            Reason::IdentityAllows { trust: false } => f.write_str("allowed by identity policy"),
            Reason::CrossAccountAllows => {
                f.write_str("allowed across accounts by both identity and resource policy")
            }
            Reason::TrustPolicyRefuses => {
                f.write_str("the role's trust policy does not allow this principal")
            }
            Reason::NoResourcePolicyAllows => {
                f.write_str("no resource policy allows this principal")
            }
            Reason::KeyPolicyRefuses => f.write_str("the key policy does not allow this principal"),
            Reason::CrossAccountNeedsResourcePolicy => f.write_str(
                "a cross-account request needs a resource policy that allows this principal",
            ),
            Reason::SessionPolicyRefuses => {
                f.write_str("the session policy does not allow the request")
            }
            Reason::BoundaryRefuses => {
                f.write_str("the permissions boundary does not allow the request")
            }
            Reason::NoIdentityPolicyAllows => f.write_str("no identity policy allows the request"),
        }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.reason)?;
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
    /// Allowed or which denial.
    pub decision: Decision,
    /// The statements and the reason behind the decision.
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
    /// The statement holding the condition.
    pub statement: StatementRef,
    /// `Allow`: access needs the condition to hold. `Deny`: access needs it not to hold.
    pub effect: Effect,
    /// The operator as written.
    pub operator: String,
    /// The condition key the request did not carry.
    pub key: String,
    /// The policy's values.
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
            Some(Block::Is(pats)) => match (&self.target, &stmt.resource_literals) {
                // A literal pattern matches an exact ARN when it is that ARN.
                (Target::Exact(r), Some(ix)) => {
                    ix.literals.contains(*r)
                        || ix
                            .others
                            .iter()
                            .any(|&i| pats[i].matches_target(&self.target, &req.context, positive))
                }
                _ => pats
                    .iter()
                    .any(|p| p.matches_target(&self.target, &req.context, positive)),
            },
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
    reason: Reason,
) -> Evaluation {
    Evaluation {
        decision,
        explanation: Explanation {
            layer,
            statements,
            reason,
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

/// Every layer's statements that applied, scanned once (phase 1 of [`decide`]).
struct Scans<'p> {
    /// Matching Deny statements of every layer, in layer order.
    denies: Vec<Hit<'p>>,
    /// The first SCP level without an Allow (IAM principals only).
    scp_gap: Option<usize>,
    /// The first VPC endpoint policy without an Allow.
    endpoint_gap: Option<usize>,
    resource: Scan<'p>,
    identity: Scan<'p>,
    boundaries: Vec<Scan<'p>>,
    session: Option<Scan<'p>>,
}

/// Decides in phases: scan every layer; guardrails (explicit deny, SCPs, AWS-owned resources,
/// endpoints); non-IAM principals by the resource policy alone; grants for IAM principals;
/// otherwise the implicit deny's reason.
fn decide<'p>(
    request: &Request,
    input: &EvalInput<'p>,
    options: EvalOptions,
    trace: &mut Trace<'p>,
) -> Evaluation {
    if request.action.eq_ignore_ascii_case("sts:GetCallerIdentity") {
        return decided(Decision::Allowed, None, Vec::new(), Reason::CallerIdentity);
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
    let scans = scan_layers(&prep, input, trace);
    if let Some(e) = guardrails(request, &scans) {
        return e;
    }
    if !matches!(request.principal, Principal::Arn(_)) {
        return resource_only(request, &scans, trace);
    }
    if let Some(e) = grant(request, &scans, trace) {
        return e;
    }
    let (layer, reason) = implicit_deny(request, &scans);
    decided(Decision::ImplicitlyDenied, Some(layer), Vec::new(), reason)
}

/// Phase 1: every layer's matching statements; capping layers go to the discovery trace.
fn scan_layers<'p>(prep: &Prepared<'_>, input: &EvalInput<'p>, trace: &mut Trace<'p>) -> Scans<'p> {
    let request = prep.request;
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
    Scans {
        denies,
        scp_gap,
        endpoint_gap,
        resource,
        identity,
        boundaries,
        session,
    }
}

/// Phase 2: what refuses whatever the grants say, in AWS's order.
fn guardrails(request: &Request, scans: &Scans<'_>) -> Option<Evaluation> {
    if let Some(first) = scans.denies.first() {
        return Some(decided(
            Decision::ExplicitlyDenied,
            Some(first.layer),
            refs(&scans.denies),
            Reason::ExplicitDeny,
        ));
    }
    if let Some(level) = scans.scp_gap {
        return Some(decided(
            Decision::ImplicitlyDenied,
            Some(Layer::Scp),
            Vec::new(),
            Reason::ScpGap { level },
        ));
    }
    if let Some(reason) = crate::reserved::reserved_reason(&request.action, &request.resource) {
        return Some(decided(
            Decision::ImplicitlyDenied,
            None,
            Vec::new(),
            Reason::Reserved(reason),
        ));
    }
    scans.endpoint_gap.map(|index| {
        decided(
            Decision::ImplicitlyDenied,
            Some(Layer::Endpoint),
            Vec::new(),
            Reason::EndpointGap { index },
        )
    })
}

/// Phase 3: service principals, federated providers and anonymous callers have no identity
/// side; the resource (or trust) policy alone decides.
fn resource_only<'p>(request: &Request, scans: &Scans<'p>, trace: &mut Trace<'p>) -> Evaluation {
    let trust = is_trust_request(request);
    if scans.resource.best_match().is_some() {
        trace.deciding = scans.resource.allow_hits();
        decided(
            Decision::Allowed,
            Some(Layer::Resource),
            refs(&trace.deciding),
            Reason::ResourcePolicyAllows { trust },
        )
    } else {
        decided(
            Decision::ImplicitlyDenied,
            Some(Layer::Resource),
            Vec::new(),
            if trust {
                Reason::TrustPolicyRefuses
            } else {
                Reason::NoResourcePolicyAllows
            },
        )
    }
}

/// Whether each capping layer lets an identity grant through.
struct Caps {
    boundary_ok: bool,
    session_ok: bool,
    identity_ok: bool,
    same_account: bool,
}

impl Caps {
    fn of(request: &Request, scans: &Scans<'_>) -> Self {
        Caps {
            boundary_ok: scans.boundaries.iter().all(Scan::allowed),
            session_ok: scans.session.as_ref().is_none_or(Scan::allowed),
            identity_ok: scans.identity.allowed(),
            same_account: match (request.resource_account(), request.principal.account()) {
                (Some(r), Some(p)) => r == p,
                _ => true,
            },
        }
    }
}

/// Phase 4: the grants open to an IAM principal (users, roles, sessions).
fn grant<'p>(request: &Request, scans: &Scans<'p>, trace: &mut Trace<'p>) -> Option<Evaluation> {
    let trust = is_trust_request(request);
    let required = requires_resource_policy(request);
    let best = scans.resource.best_match();
    let Caps {
        boundary_ok,
        session_ok,
        identity_ok,
        same_account,
    } = Caps::of(request, scans);
    let mut allow = |hits: Vec<Hit<'p>>, layer, reason| {
        let statements = refs(&hits);
        trace.deciding = hits;
        Some(decided(Decision::Allowed, Some(layer), statements, reason))
    };
    if same_account {
        // A grant to the exact user or session (or `*`) in a same-account resource policy is
        // not capped by a permissions boundary; a grant to the session's role is.
        match best {
            Some(PrincipalMatch::Direct) if session_ok => {
                return allow(
                    scans.resource.allow_hits(),
                    Layer::Resource,
                    Reason::ResourcePolicyNames {
                        trust,
                        via_role: false,
                    },
                );
            }
            Some(PrincipalMatch::Direct | PrincipalMatch::Role) if boundary_ok && session_ok => {
                return allow(
                    scans.resource.allow_hits(),
                    Layer::Resource,
                    Reason::ResourcePolicyNames {
                        trust,
                        via_role: true,
                    },
                );
            }
            _ => {}
        }
        if identity_ok && boundary_ok && session_ok && (!required || best.is_some()) {
            let mut hits = scans.identity.allow_hits();
            if required {
                hits.extend(scans.resource.allow_hits());
            }
            return allow(hits, Layer::Identity, Reason::IdentityAllows { trust });
        }
    } else if identity_ok && boundary_ok && session_ok && best.is_some() {
        let mut hits = scans.identity.allow_hits();
        hits.extend(scans.resource.allow_hits());
        return allow(hits, Layer::Identity, Reason::CrossAccountAllows);
    }
    None
}

/// Phase 5: nothing granted; the layer that failed to allow, most specific first.
fn implicit_deny(request: &Request, scans: &Scans<'_>) -> (Layer, Reason) {
    let trust = is_trust_request(request);
    let required = requires_resource_policy(request);
    let best = scans.resource.best_match();
    let caps = Caps::of(request, scans);
    if trust && best.is_none() {
        (Layer::Resource, Reason::TrustPolicyRefuses)
    } else if required && best.is_none() {
        (Layer::Resource, Reason::KeyPolicyRefuses)
    } else if !caps.same_account && best.is_none() {
        (Layer::Resource, Reason::CrossAccountNeedsResourcePolicy)
    } else if best.is_some() && !caps.session_ok {
        (Layer::Session, Reason::SessionPolicyRefuses)
    } else if best == Some(PrincipalMatch::Role) && !caps.boundary_ok {
        (Layer::Boundary, Reason::BoundaryRefuses)
    } else if !caps.identity_ok {
        (Layer::Identity, Reason::NoIdentityPolicyAllows)
    } else if !caps.boundary_ok {
        (Layer::Boundary, Reason::BoundaryRefuses)
    } else {
        (Layer::Session, Reason::SessionPolicyRefuses)
    }
}

#[cfg(test)]
mod tests {
    use super::Reason;

    /// The sentences are quoted by audit findings and `simulate` output: they must not drift
    /// when the decision logic is reshaped.
    #[test]
    fn each_reason_reads_as_before() {
        let cases = [
            (
                Reason::CallerIdentity,
                "`sts:GetCallerIdentity` is allowed to every authenticated caller",
            ),
            (Reason::ExplicitDeny, "explicitly denied"),
            (
                Reason::ScpGap { level: 1 },
                "no service control policy at organization level 1 allows the request",
            ),
            (
                Reason::EndpointGap { index: 0 },
                "VPC endpoint policy #0 does not allow the request",
            ),
            (
                Reason::ResourcePolicyAllows { trust: true },
                "allowed by the role's trust policy",
            ),
            (
                Reason::ResourcePolicyAllows { trust: false },
                "allowed by the resource policy",
            ),
            (
                Reason::ResourcePolicyNames {
                    trust: true,
                    via_role: false,
                },
                "allowed by the role's trust policy, which names this principal",
            ),
            (
                Reason::ResourcePolicyNames {
                    trust: false,
                    via_role: true,
                },
                "allowed by the resource policy, which names this principal's role",
            ),
            (
                Reason::IdentityAllows { trust: true },
                "allowed by identity policy and the role's trust policy",
            ),
            (
                Reason::IdentityAllows { trust: false },
                "allowed by identity policy",
            ),
            (
                Reason::CrossAccountAllows,
                "allowed across accounts by both identity and resource policy",
            ),
            (
                Reason::TrustPolicyRefuses,
                "the role's trust policy does not allow this principal",
            ),
            (
                Reason::NoResourcePolicyAllows,
                "no resource policy allows this principal",
            ),
            (
                Reason::KeyPolicyRefuses,
                "the key policy does not allow this principal",
            ),
            (
                Reason::CrossAccountNeedsResourcePolicy,
                "a cross-account request needs a resource policy that allows this principal",
            ),
            (
                Reason::SessionPolicyRefuses,
                "the session policy does not allow the request",
            ),
            (
                Reason::BoundaryRefuses,
                "the permissions boundary does not allow the request",
            ),
            (
                Reason::NoIdentityPolicyAllows,
                "no identity policy allows the request",
            ),
        ];
        for (reason, text) in cases {
            assert_eq!(reason.to_string(), text, "{reason:?}");
        }
    }
}
