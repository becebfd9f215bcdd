//! The parsed, compiled form of an IAM policy document. Every pattern (action, resource,
//! principal, condition value) is compiled once here so evaluating a request never re-parses
//! or rebuilds a matcher; patterns that contain policy variables are resolved per request.

use crate::arn::ArnPattern;
use crate::condition::Condition;
use crate::error::PolicyError;
use crate::pattern::Glob;

/// A parsed IAM policy document (identity, resource/trust, boundary, SCP, RCP or session).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The `Version` element, if present (`2012-10-17` enables policy variables).
    pub version: Option<String>,
    /// The `Id` element, if present.
    pub id: Option<String>,
    /// A caller-chosen label used in explanations (for example a policy ARN or a role name).
    pub name: Option<String>,
    /// The statements, in document order.
    pub statements: Vec<Statement>,
}

impl Policy {
    /// Parses a policy document given as JSON text or as the URL-encoded JSON that the IAM API
    /// returns (`%7B%22Version%22...`).
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        crate::parse::parse_text(text)
    }

    /// Parses a policy document already read as a JSON value (an object, or a string holding
    /// JSON or URL-encoded JSON).
    pub fn from_value(value: &serde_json::Value) -> Result<Policy, PolicyError> {
        crate::parse::parse_value(value)
    }

    /// Sets the label used for this policy in explanations.
    pub fn with_name(mut self, name: impl Into<String>) -> Policy {
        self.name = Some(name.into());
        self
    }

    /// Whether policy variables (`${aws:username}`) are interpreted: only with Version
    /// `2012-10-17`; older or missing versions treat `${...}` literally.
    pub fn variables_enabled(&self) -> bool {
        self.version.as_deref() == Some("2012-10-17")
    }
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    /// Grants, unless a deny or a missing grant in another layer says otherwise.
    Allow,
    /// Refuses, whatever any other statement allows.
    Deny,
}

/// One statement of a policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// Position in the document (0-based), used in explanations when there is no Sid.
    pub index: usize,
    /// The statement's `Sid`, which explanations name when there is one.
    pub sid: Option<String>,
    /// Whether a match grants or refuses.
    pub effect: Effect,
    /// `Action` or `NotAction`.
    pub action: ActionBlock,
    /// `Resource` or `NotResource`; `None` when the statement has neither (usual in trust
    /// policies).
    pub resource: Option<ResourceBlock>,
    /// `Principal` or `NotPrincipal`; `None` in identity policies, boundaries, SCPs and
    /// session policies.
    pub principal: Option<PrincipalBlock>,
    /// Every condition must hold (AND across operators and keys).
    pub conditions: Vec<Condition>,
    /// The literal ARNs of a long positive `Resource` list, for lookups by exact ARN: a
    /// broker's service role may list thousands of deployment roles, and matching each one
    /// pattern by pattern made auditing an organisation quadratic in its accounts.
    pub resource_literals: Option<LiteralResources>,
}

/// The patterns of a `Resource` list without wildcards or policy variables, by text (they
/// match a resource ARN exactly when they equal it), and the positions of the others.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LiteralResources {
    /// The literal patterns: a resource ARN matches one exactly when it is in this set.
    pub literals: std::collections::HashSet<Box<str>>,
    /// Positions (in the statement's resource list) of the patterns that still need matching.
    pub others: Vec<usize>,
}

impl LiteralResources {
    /// Lists shorter than this are matched pattern by pattern (as fast, and no table).
    pub const MIN_PATTERNS: usize = 16;

    /// The index of `pats`, or `None` when the list is short.
    pub fn of(pats: &[ArnPattern]) -> Option<LiteralResources> {
        if pats.len() < Self::MIN_PATTERNS {
            return None;
        }
        let mut ix = LiteralResources::default();
        for (i, p) in pats.iter().enumerate() {
            if p.as_str().contains(['*', '?', '$']) {
                ix.others.push(i);
            } else {
                ix.literals.insert(p.as_str().into());
            }
        }
        Some(ix)
    }
}

impl Statement {
    /// A human label: the Sid when present, else `#index`.
    pub fn label(&self) -> String {
        match &self.sid {
            Some(sid) if !sid.is_empty() => sid.clone(),
            _ => format!("#{}", self.index),
        }
    }
}

/// Positive or negated list of items.
#[derive(Debug, Clone, PartialEq)]
pub enum Block<T> {
    /// `Action` / `Resource` / `Principal`: the statement applies when an item matches.
    Is(T),
    /// `NotAction` / `NotResource` / `NotPrincipal`: applies when no item matches.
    Not(T),
}

impl<T> Block<T> {
    /// The items, whether the block is positive or negated.
    pub fn items(&self) -> &T {
        match self {
            Block::Is(t) | Block::Not(t) => t,
        }
    }

    /// Whether this is a `Not...` block.
    pub fn is_not(&self) -> bool {
        matches!(self, Block::Not(_))
    }
}

/// Action patterns such as `s3:Get*` (matched case-insensitively).
pub type ActionBlock = Block<Vec<Glob>>;
/// Resource patterns, matched per ARN segment.
pub type ResourceBlock = Block<Vec<ArnPattern>>;
/// Principal set.
pub type PrincipalBlock = Block<PrincipalSet>;

/// The principals named by a `Principal` or `NotPrincipal` element.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PrincipalSet {
    /// `"Principal": "*"` or `{"AWS": "*"}`: everyone, including anonymous callers for `"*"`.
    pub wildcard: bool,
    /// Whether the wildcard came from `"*"` (every principal) rather than `{"AWS":"*"}`.
    pub everyone: bool,
    /// `AWS`: account ids, account roots, user/role/assumed-role ARNs.
    pub aws: Vec<String>,
    /// `Service`: `lambda.amazonaws.com` ...
    pub service: Vec<String>,
    /// `Federated`: OIDC/SAML provider ARNs or names such as `cognito-identity.amazonaws.com`.
    pub federated: Vec<String>,
    /// `CanonicalUser` ids.
    pub canonical_user: Vec<String>,
    /// The principal types in the order the document wrote them (each at most once, unused
    /// slots `None`), so a reader can list the principals as written. Inline rather than a
    /// `Vec`: every trust statement has one, and large estates hold tens of thousands.
    pub order: [Option<PrincipalType>; 4],
}

/// A key of a `Principal` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalType {
    /// `AWS`; also a bare `"*"` or ARN string, which IAM reads as `AWS`.
    Aws,
    /// An AWS service principal (`lambda.amazonaws.com`).
    Service,
    /// A web identity or SAML provider (an OIDC provider ARN for GitLab ID tokens).
    Federated,
    /// An S3 canonical user id; kept so such documents parse, never matched by rolehop.
    CanonicalUser,
}

impl PrincipalSet {
    /// Records that the document wrote type `t` next.
    pub fn push_order(&mut self, t: PrincipalType) {
        if !self.order.contains(&Some(t))
            && let Some(slot) = self.order.iter_mut().find(|s| s.is_none())
        {
            *slot = Some(t);
        }
    }

    /// The values of one principal type.
    pub fn of(&self, t: PrincipalType) -> &[String] {
        match t {
            PrincipalType::Aws => &self.aws,
            PrincipalType::Service => &self.service,
            PrincipalType::Federated => &self.federated,
            PrincipalType::CanonicalUser => &self.canonical_user,
        }
    }

    /// Every principal as `(type, value)`, in written order (types missing from
    /// [`PrincipalSet::order`], as in a set built by hand, follow in declaration order).
    /// `"Principal": "*"` is `(Aws, "*")`.
    pub fn entries(&self) -> impl Iterator<Item = (PrincipalType, &str)> {
        const ALL: [PrincipalType; 4] = [
            PrincipalType::Aws,
            PrincipalType::Service,
            PrincipalType::Federated,
            PrincipalType::CanonicalUser,
        ];
        let everyone = self.everyone.then_some((PrincipalType::Aws, "*"));
        let rest = ALL.into_iter().filter(|&t| !self.order.contains(&Some(t)));
        everyone.into_iter().chain(
            self.order
                .iter()
                .flatten()
                .copied()
                .chain(rest)
                .flat_map(move |t| self.of(t).iter().map(move |v| (t, v.as_str()))),
        )
    }
}
