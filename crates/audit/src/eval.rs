//! The auditor's one door to policy evaluation: parse a document once, then ask "may this
//! principal do this action on this resource". Conditions the auditor cannot know are treated
//! as possibly true and handed back as text, so an edge is kept and the reader sees why.
//!
//! Decisions are rolehop-policy's [`evaluate_with`] in discovery mode: keys AWS derives from
//! the caller (`aws:PrincipalArn`, `aws:PrincipalAccount`, ...) are known and decided; any
//! other condition key is assumed in the access's favour and handed back as text.
//! The rest of the crate reads a [`Doc`] only through the policy AST ([`Doc::statements`]),
//! never as raw JSON.

use std::collections::BTreeMap;

use rolehop_policy::ast::Block;
use rolehop_policy::condition::Condition;
use rolehop_policy::{
    Decision, Effect, EvalInput, EvalOptions, Layer, Policy, Principal as Requester, Request,
    Statement, evaluate_with,
};
use serde_json::Value;

/// A parsed policy document (rolehop-policy's AST).
#[derive(Debug, Clone)]
pub struct Doc {
    policy: Policy,
}

/// Who asks, as a trust policy sees it.
#[derive(Debug, Clone, Copy)]
pub enum Who<'a> {
    /// Any principal of any account, with every permission on its side (`"AWS": "*"`).
    Anyone,
    /// A web identity or SAML provider's ARN, with the token's claims left to the conditions.
    Federated(&'a str),
    /// An AWS service principal.
    Service(&'a str),
}

/// The answer: not allowed, or allowed provided the listed conditions hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No policy combination lets the request through.
    Denied,
    /// Allowed, if the listed conditions hold (empty: unconditionally).
    Allowed {
        /// The conditions, as policies write them.
        conditions: Vec<String>,
    },
}

impl Verdict {
    /// Allowed under some conditions (auditors care that it can be).
    pub fn is_allowed(&self) -> bool {
        matches!(self, Verdict::Allowed { .. })
    }
}

/// The identity side of a principal: its policies, boundary and the SCP levels above it.
pub struct Identity<'a> {
    /// Who makes requests: a user ARN, or a session of a role.
    pub arn: String,
    /// Identity policies (inline, managed, groups').
    pub policies: Vec<&'a Doc>,
    /// The permissions boundary, if any.
    pub boundary: Option<&'a Doc>,
    /// One entry per organisation level; each level must allow.
    pub scps: Vec<Vec<&'a Doc>>,
}

impl Doc {
    /// Parses a policy document; the error names the JSON path of what is wrong.
    pub fn parse(v: &Value) -> Result<Doc, String> {
        let policy = Policy::from_value(v).map_err(|e| e.to_string())?;
        Ok(Doc { policy })
    }

    /// Parses a document's JSON text (or URL-encoded JSON, as IAM hands it out).
    pub fn parse_text(text: &str) -> Result<Doc, String> {
        let policy = Policy::parse(text).map_err(|e| e.to_string())?;
        Ok(Doc { policy })
    }

    /// The statements, in document order.
    pub fn statements(&self) -> &[Statement] {
        &self.policy.statements
    }

    fn allows(&self) -> impl Iterator<Item = &Statement> {
        self.policy
            .statements
            .iter()
            .filter(|s| s.effect == Effect::Allow)
    }

    /// Actions of Allow statements, as written: `(NotAction?, patterns)`.
    pub fn allowed_action_patterns(&self) -> Vec<(bool, Vec<String>)> {
        self.allows()
            .map(|s| match &s.action {
                Block::Is(g) => (false, g.iter().map(|x| x.as_str().to_owned()).collect()),
                Block::Not(g) => (true, g.iter().map(|x| x.as_str().to_owned()).collect()),
            })
            .collect()
    }

    /// Whether some Allow statement could cover `action` at all (any resource).
    pub fn may_allow_action(&self, action: &str) -> bool {
        self.allows().any(|s| action_hit(&s.action, action))
    }

    /// Resource patterns under which Allow statements grant `action` (`*` for NotResource).
    pub fn resources_for(&self, action: &str) -> Vec<String> {
        let mut out = Vec::new();
        for s in self.allows().filter(|s| action_hit(&s.action, action)) {
            match &s.resource {
                Some(Block::Is(pats)) => out.extend(pats.iter().map(|p| p.as_str().to_owned())),
                _ => out.push("*".to_owned()),
            }
        }
        out
    }
}

fn action_hit(block: &Block<Vec<rolehop_policy::pattern::Glob>>, action: &str) -> bool {
    match block {
        Block::Is(g) => g.iter().any(|x| x.matches(action)),
        Block::Not(g) => !g.iter().any(|x| x.matches(action)),
    }
}

/// `StringLike aud:sub in [a, b]; Bool aws:SecureTransport = true`: one line a reader can
/// follow, operators and keys as written.
pub fn condition_text(conditions: &[Condition]) -> String {
    let parts: Vec<String> = conditions
        .iter()
        .map(|c| {
            let (op, k) = (&c.operator.name, &c.key);
            match c.values.as_slice() {
                [one] => format!("{op} {k} = {}", one.raw),
                vals => {
                    let vals: Vec<&str> = vals.iter().map(|v| v.raw.as_str()).collect();
                    format!("{op} {k} in [{}]", vals.join(", "))
                }
            }
        })
        .collect();
    parts.join("; ")
}

/// `arn:aws:sts::A:assumed-role/R/session` -> `arn:aws:iam::A:role/R` (without the role's
/// path, which session ARNs do not carry).
pub fn session_role_arn(v: &str) -> Option<String> {
    let rest = v.strip_prefix("arn:")?;
    let mut parts = rest.splitn(5, ':');
    let partition = parts.next()?;
    let service = parts.next()?;
    let _region = parts.next()?;
    let account = parts.next()?;
    let res = parts.next()?;
    if service != "sts" {
        return None;
    }
    let role = res.strip_prefix("assumed-role/")?.split('/').next()?;
    Some(format!("arn:{partition}:iam::{account}:role/{role}"))
}

/// The principal that makes a role's requests: a session of it.
pub fn session_of(role_arn: &str) -> String {
    let (account, name) = crate::model::split_arn(role_arn);
    let partition = crate::model::arn_partition(role_arn);
    format!("arn:{partition}:sts::{account}:assumed-role/{name}/rolehop-audit")
}

/// A policy that allows everything: the identity side of an unknown principal elsewhere.
fn allow_all() -> Option<&'static Policy> {
    static P: std::sync::OnceLock<Option<Policy>> = std::sync::OnceLock::new();
    P.get_or_init(|| {
        Policy::parse(r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#).ok()
    })
    .as_ref()
}

/// Runs the evaluator in discovery mode (condition keys the request cannot know are
/// assumed in the access's favour); on Allow, the assumed conditions as text: within one
/// layer the granting statements are alternatives, across layers all must hold, and escaped
/// Denies read "unless".
fn decide(
    request: Request,
    identity: &[&Doc],
    trust: Option<&Doc>,
    boundary: Option<&Doc>,
    scps: &[Vec<&Doc>],
    extra_identity: Option<&Policy>,
    session: Option<&Doc>,
) -> Verdict {
    let mut ids: Vec<&Policy> = identity.iter().map(|d| &d.policy).collect();
    ids.extend(extra_identity);
    let bounds: Vec<&Policy> = boundary.iter().map(|d| &d.policy).collect();
    let scp: Vec<Vec<&Policy>> = scps
        .iter()
        .map(|l| l.iter().map(|d| &d.policy).collect())
        .collect();
    let input = EvalInput {
        identity: &ids,
        resource: trust.map(|d| &d.policy),
        boundaries: &bounds,
        scps: &scp,
        session: session.map(|d| &d.policy),
        ..EvalInput::default()
    };
    let e = evaluate_with(
        &request.with_derived_keys(),
        &input,
        EvalOptions { discovery: true },
    );
    if e.decision != Decision::Allowed {
        return Verdict::Denied;
    }
    // Per granting layer, its statements are alternatives and each statement's conditions
    // all hold; rolehop-policy reports a layer's conditions only when none of its granting
    // statements was unconditional. Capping layers (boundaries, SCPs) granted only under
    // assumptions, and Denies escaped by assuming, are plain conditions.
    let mut granting: BTreeMap<&str, BTreeMap<(usize, usize), Vec<String>>> = BTreeMap::new();
    let mut conditions = Vec::new();
    for a in &e.assumed {
        let text = if a.values.len() == 1 {
            format!("{} {} = {}", a.operator, a.key, a.values[0])
        } else {
            format!("{} {} in [{}]", a.operator, a.key, a.values.join(", "))
        };
        match (a.effect, a.statement.layer) {
            (Effect::Deny, _) => conditions.push(format!("unless {text}")),
            (_, layer @ (Layer::Resource | Layer::Identity)) => granting
                .entry(layer.as_str())
                .or_default()
                .entry((a.statement.policy, a.statement.statement))
                .or_default()
                .push(text),
            _ => conditions.push(text),
        }
    }
    for statements in granting.into_values() {
        let mut alts: Vec<String> = statements.into_values().map(|t| t.join("; ")).collect();
        alts.sort();
        alts.dedup();
        conditions.push(alts.join(" OR "));
    }
    conditions.sort();
    conditions.dedup();
    Verdict::Allowed { conditions }
}

/// Identity policies, boundary and SCPs for `action` on `resource`.
pub fn identity_allows(id: &Identity<'_>, action: &str, resource: &str) -> Verdict {
    let request = Request::new(Requester::arn(id.arn.clone()), action, resource);
    identity_decides(id, request, None)
}

/// The identity side of a decision (policies, boundary, SCPs, and a session policy when the
/// session carries one): the one place the three identity questions below are asked.
fn identity_decides(id: &Identity<'_>, request: Request, session: Option<&Doc>) -> Verdict {
    decide(
        request,
        &id.policies,
        None,
        id.boundary,
        &id.scps,
        None,
        session,
    )
}

/// Like [`identity_allows`], with context keys the request carries (`iam:PassedToService`).
pub fn identity_allows_in(
    id: &Identity<'_>,
    action: &str,
    resource: &str,
    context: &[(&str, &str)],
) -> Verdict {
    let mut ctx = rolehop_policy::Context::new();
    for &(k, v) in context {
        ctx = ctx.with(k, v);
    }
    let request = Request::new(Requester::arn(id.arn.clone()), action, resource).with_context(ctx);
    identity_decides(id, request, None)
}

/// Whether a non-IAM principal (an OIDC or SAML provider, a service, or anyone elsewhere)
/// passes `role_arn`'s trust policy for `action`.
pub fn trust_allows(trust: &Doc, who: Who<'_>, action: &str, role_arn: &str) -> Verdict {
    let (principal, extra) = match who {
        Who::Anyone => match allow_all() {
            Some(p) => (
                Requester::arn("arn:aws:iam::000000000000:user/rolehop-audit-anyone"),
                Some(p),
            ),
            None => return Verdict::Denied,
        },
        Who::Federated(p) => (Requester::Federated(p.to_owned()), None),
        Who::Service(s) => (Requester::service(s), None),
    };
    let request = Request::new(principal, action, role_arn)
        .with_resource_account(crate::model::arn_account(role_arn));
    decide(request, &[], Some(trust), None, &[], extra, None)
}

/// AWS's rule for AssumeRole by an IAM principal (`who`: a user, or a role session): the
/// trust policy must allow; within one account a trust policy naming the principal suffices,
/// otherwise the identity side must allow too; denies, boundaries and SCPs apply. Decided by
/// rolehop-policy.
pub fn may_assume(
    trust: &Doc,
    who: &str,
    identity: &Identity<'_>,
    action: &str,
    role_arn: &str,
    role_account: &str,
) -> Verdict {
    let request =
        Request::new(Requester::arn(who), action, role_arn).with_resource_account(role_account);
    decide(
        request,
        &identity.policies,
        Some(trust),
        identity.boundary,
        &identity.scps,
        None,
        None,
    )
}

/// What a session of a role may do: its identity policies, boundary and SCPs, within the
/// session policy `session` when one was passed (inline and managed session policies merged
/// into one document: AWS allows only what both sides allow). A resource pattern whose account
/// is a wildcard is taken as the role's own account (`account`), where a deployment role
/// deploys: otherwise every such request would count as cross-account and need a resource
/// policy the audit does not have.
pub fn session_allows(
    id: &Identity<'_>,
    session: Option<&Doc>,
    action: &str,
    resource: &str,
    account: &str,
) -> Verdict {
    let mut request = Request::new(Requester::arn(id.arn.clone()), action, resource);
    if resource
        .split(':')
        .nth(4)
        .is_some_and(|a| a.is_empty() || a.contains(['*', '?']))
    {
        request = request.with_resource_account(account);
    }
    identity_decides(id, request, session)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    #[test]
    fn cross_account_needs_both_sides() {
        let trust = Doc::parse(&json!({"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"sts:AssumeRole"}})).unwrap();
        let idp = Doc::parse(&json!({"Statement":{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::222222222222:role/d"}})).unwrap();
        let who = "arn:aws:iam::111111111111:user/u";
        let none = Identity {
            arn: who.into(),
            policies: vec![],
            boundary: None,
            scps: vec![],
        };
        let some = Identity {
            arn: who.into(),
            policies: vec![&idp],
            boundary: None,
            scps: vec![],
        };
        let ask = |id: &Identity<'_>| {
            may_assume(
                &trust,
                who,
                id,
                "sts:AssumeRole",
                "arn:aws:iam::222222222222:role/d",
                "222222222222",
            )
        };
        assert_eq!(ask(&none), Verdict::Denied);
        assert_eq!(ask(&some), Verdict::Allowed { conditions: vec![] });
    }

    #[test]
    fn cross_account_edge_keeps_the_trust_conditions_and_drops_decided_ones() {
        let trust = Doc::parse(&json!({"Statement":[
            {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},
             "Action":"sts:AssumeRole","Condition":{
                "ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111111111111:user/*"},
                "StringLike":{"aws:SourceIdentity":"gitlab-*"}}},
            {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},
             "Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"x"}}}
        ]}))
        .unwrap();
        let idp = Doc::parse(
            &json!({"Statement":{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}}),
        )
        .unwrap();
        let who = "arn:aws:iam::111111111111:user/u";
        let id = Identity {
            arn: who.into(),
            policies: vec![&idp],
            boundary: None,
            scps: vec![],
        };
        let v = may_assume(
            &trust,
            who,
            &id,
            "sts:AssumeRole",
            "arn:aws:iam::222222222222:role/d",
            "222222222222",
        );
        // `aws:PrincipalArn` is known and holds, so it is no condition on the edge.
        assert_eq!(
            v,
            Verdict::Allowed {
                conditions: vec![
                    "StringEquals sts:ExternalId = x OR StringLike aws:SourceIdentity = gitlab-*"
                        .into()
                ]
            }
        );
    }

    #[test]
    fn unknown_conditions_are_possible_and_kept_as_text() {
        let trust = Doc::parse(&json!({"Statement":{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::1:oidc-provider/g"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":{"g:sub":"project_path:a/b:*"}}}})).unwrap();
        let v = trust_allows(
            &trust,
            Who::Federated("arn:aws:iam::1:oidc-provider/g"),
            "sts:AssumeRoleWithWebIdentity",
            "arn:aws:iam::111111111111:role/r",
        );
        assert_eq!(
            v,
            Verdict::Allowed {
                conditions: vec!["StringLike g:sub = project_path:a/b:*".into()]
            }
        );
    }

    #[test]
    fn conditional_deny_does_not_rule_an_edge_out_but_plain_deny_does() {
        let trust = Doc::parse(&json!({"Statement":[
            {"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"},
            {"Effect":"Deny","Principal":{"AWS":"*"},"Action":"sts:AssumeRole","Condition":{"StringNotEquals":{"aws:PrincipalOrgID":"o-1"}}}
        ]})).unwrap();
        assert!(
            trust_allows(
                &trust,
                Who::Anyone,
                "sts:AssumeRole",
                "arn:aws:iam::111111111111:role/r"
            )
            .is_allowed()
        );
        let trust = Doc::parse(&json!({"Statement":[
            {"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"},
            {"Effect":"Deny","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}
        ]}))
        .unwrap();
        assert!(
            !trust_allows(
                &trust,
                Who::Anyone,
                "sts:AssumeRole",
                "arn:aws:iam::111111111111:role/r"
            )
            .is_allowed()
        );
    }
}
