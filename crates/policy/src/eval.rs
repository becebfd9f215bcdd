//! The decision: given a request and the policies in force, decide the way AWS does (explicit
//! deny wins; every SCP and RCP level must allow; resource/trust policy and identity side per
//! account rules; boundaries and session policies cap identity grants) and say why.

use std::fmt;

use crate::ast::Policy;
use crate::request::Request;

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

/// Decides `request` against the policies in `input`.
pub fn evaluate(request: &Request, input: &EvalInput<'_>) -> Evaluation {
    let _ = (request, input);
    Evaluation {
        decision: Decision::ImplicitlyDenied,
        explanation: Explanation {
            layer: None,
            statements: Vec::new(),
            summary: "no statement allows the request".into(),
        },
    }
}
