//! The decision: given a request and the policies in force, decide the way AWS does (explicit
//! deny wins; every SCP and RCP level must allow; resource/trust policy and identity side per
//! account rules; boundaries and session policies cap identity grants) and say why.

use std::fmt;

use crate::arn::{Mode, Target};
use crate::ast::{Block, Effect, Policy, Statement};
use crate::principal::{PrincipalMatch, match_principal};
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

fn refs(hits: &[Hit<'_>]) -> Vec<StatementRef> {
    hits.iter().map(|h| h.to_ref()).collect()
}

/// Statements of one policy set that applied to the request.
#[derive(Default)]
struct Scan<'p> {
    allows: Vec<(Hit<'p>, Option<PrincipalMatch>)>,
    denies: Vec<Hit<'p>>,
}

impl Scan<'_> {
    fn allowed(&self) -> bool {
        !self.allows.is_empty()
    }

    /// The strongest principal match among the allowing statements.
    fn best_match(&self) -> Option<PrincipalMatch> {
        self.allows.iter().filter_map(|(_, m)| *m).min()
    }

    fn allow_refs(&self) -> Vec<StatementRef> {
        self.allows.iter().map(|(h, _)| h.to_ref()).collect()
    }
}

/// The request, prepared once for matching against every statement.
struct Prepared<'r> {
    request: &'r Request,
    target: Target<'r>,
    /// AWS: a Deny with NotPrincipal always denies a principal that has a permissions
    /// boundary, whatever NotPrincipal lists.
    has_boundary: bool,
}

impl Prepared<'_> {
    /// Whether `stmt` applies; `Some(principal match)` when it does (`None` inside for layers
    /// without principals).
    fn applies(&self, stmt: &Statement, principals: Principals) -> Option<Option<PrincipalMatch>> {
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
            Some(Block::Not(pats)) => !pats
                .iter()
                .any(|p| p.matches_target(&self.target, &req.context, negative)),
        };
        if !resource_hit {
            return None;
        }
        let principal = if principals != Principals::Ignore {
            match &stmt.principal {
                None if principals == Principals::Optional => Some(PrincipalMatch::Direct),
                None => return None,
                Some(Block::Is(set)) => Some(match_principal(set, &req.principal)?),
                Some(Block::Not(_)) if stmt.effect == Effect::Deny && self.has_boundary => {
                    Some(PrincipalMatch::Direct)
                }
                Some(Block::Not(set)) => match match_principal(set, &req.principal) {
                    Some(_) => return None,
                    None => Some(PrincipalMatch::Direct),
                },
            }
        } else {
            None
        };
        if !stmt.conditions.iter().all(|c| c.holds(&req.context)) {
            return None;
        }
        Some(principal)
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
                let Some(m) = self.applies(stmt, principals) else {
                    continue;
                };
                let r = Hit {
                    layer,
                    level,
                    policy: pi,
                    source: policy,
                    stmt,
                };
                match stmt.effect {
                    Effect::Allow => scan.allows.push((r, m)),
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
    }
}

/// Decides `request` against the policies in `input`.
pub fn evaluate(request: &Request, input: &EvalInput<'_>) -> Evaluation {
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
            if !scan.allowed() && scp_gap.is_none() {
                scp_gap = Some(level);
            }
            denies.extend(scan.denies);
        }
    }
    // RCPFullAWSAccess is always attached and cannot be detached, so RCPs only ever deny.
    if applies_rcp {
        for (level, policies) in input.rcps.iter().enumerate() {
            denies.extend(
                prep.scan(policies, Layer::Rcp, Some(level), Principals::Required)
                    .denies,
            );
        }
    }
    let mut endpoint_gap = None;
    for (i, policy) in input.endpoints.iter().enumerate() {
        let mut scan = prep.scan(&[policy], Layer::Endpoint, None, Principals::Optional);
        for r in scan.denies.iter_mut() {
            r.policy = i;
        }
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
        for b in &boundaries {
            denies.extend(b.denies.iter().copied());
        }
        if let Some(s) = &session {
            denies.extend(s.denies.iter().copied());
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
            decided(
                Decision::Allowed,
                Some(Layer::Resource),
                resource.allow_refs(),
                "allowed by the resource policy",
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

    let grant = |statements: Vec<StatementRef>, layer, summary: &str| {
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
                    resource.allow_refs(),
                    Layer::Resource,
                    "allowed by the resource policy, which names this principal",
                );
            }
            Some(PrincipalMatch::Direct | PrincipalMatch::Role) if boundary_ok && session_ok => {
                return grant(
                    resource.allow_refs(),
                    Layer::Resource,
                    "allowed by the resource policy, which names this principal's role",
                );
            }
            _ => {}
        }
        if identity_ok && boundary_ok && session_ok && (!required || best.is_some()) {
            let mut refs = identity.allow_refs();
            if required {
                refs.extend(resource.allow_refs());
            }
            return grant(refs, Layer::Identity, "allowed by identity policy");
        }
    } else if identity_ok && boundary_ok && session_ok && best.is_some() {
        let mut refs = identity.allow_refs();
        refs.extend(resource.allow_refs());
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
