//! The auditor's one door to policy evaluation: parse a document once, then ask "may this
//! principal do this action on this resource". Conditions the auditor cannot know are treated
//! as possibly true and handed back as text, so an edge is kept and the reader sees why.
//!
//! Decisions are rolehop-policy's [`evaluate`]: each document is kept twice, as written and
//! "relaxed" (Allow conditions dropped, conditional Denies dropped), and the relaxed copy is
//! evaluated; the conditions of the statements that granted are then read back as text.
//! The rest of the crate never looks inside a [`Doc`].

use std::collections::HashMap;

use rolehop_policy::{
    Decision, EvalInput, Layer, Policy, Principal as Requester, Request, evaluate,
};
use serde_json::Value;

/// A parsed policy document.
#[derive(Debug, Clone)]
pub struct Doc {
    stmts: Vec<Stmt>,
    relaxed: Policy,
    /// Statement index -> its condition, as text.
    conditions: HashMap<usize, String>,
}

#[derive(Debug, Clone)]
struct Stmt {
    allow: bool,
    actions: Pats,
    resources: Option<Pats>,
    condition: Option<String>,
}

#[derive(Debug, Clone)]
struct Pats {
    not: bool,
    pats: Vec<String>,
}

/// Who asks, as a trust policy sees it.
#[derive(Debug, Clone, Copy)]
pub enum Who<'a> {
    /// Any principal of any account, with every permission on its side (`"AWS": "*"`).
    Anyone,
    Federated(&'a str),
    Service(&'a str),
}

/// The answer: not allowed, or allowed provided the listed conditions hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Denied,
    Allowed { conditions: Vec<String> },
}

impl Verdict {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Verdict::Allowed { .. })
    }
}

/// The identity side of a principal: its policies, boundary and the SCP levels above it.
pub struct Identity<'a> {
    /// Who makes requests: a user ARN, or a session of a role.
    pub arn: String,
    pub policies: Vec<&'a Doc>,
    pub boundary: Option<&'a Doc>,
    /// One entry per organisation level; each level must allow.
    pub scps: Vec<Vec<&'a Doc>>,
}

impl Doc {
    /// Parses a policy document; the error names the JSON path of what is wrong.
    pub fn parse(v: &Value) -> Result<Doc, String> {
        let obj = v
            .as_object()
            .ok_or_else(|| "policy document is not a JSON object".to_owned())?;
        let st = obj
            .get("Statement")
            .ok_or_else(|| "policy document has no `Statement`".to_owned())?;
        let list: Vec<&Value> = match st {
            Value::Array(a) => a.iter().collect(),
            Value::Object(_) => vec![st],
            _ => return Err("`Statement` must be an object or an array".to_owned()),
        };
        let mut stmts = Vec::new();
        for (i, s) in list.iter().enumerate() {
            stmts.push(parse_stmt(s).map_err(|m| format!("Statement[{i}]: {m}"))?);
        }
        let strict = Policy::from_value(v).map_err(|e| e.to_string())?;
        let mut conditions = HashMap::new();
        let mut relaxed = strict.clone();
        relaxed
            .statements
            .retain(|st| st.conditions.is_empty() || st.effect == rolehop_policy::Effect::Allow);
        for st in &mut relaxed.statements {
            st.conditions.clear();
        }
        for (i, st) in stmts.iter().enumerate() {
            if let Some(c) = &st.condition {
                conditions.insert(i, c.clone());
            }
        }
        Ok(Doc {
            stmts,
            relaxed,
            conditions,
        })
    }

    /// Actions of Allow statements, as written (for "holds more than" checks).
    pub fn allowed_action_patterns(&self) -> Vec<(bool, Vec<String>)> {
        self.stmts
            .iter()
            .filter(|s| s.allow)
            .map(|s| (s.actions.not, s.actions.pats.clone()))
            .collect()
    }

    /// Whether some Allow statement could cover `action` at all (any resource).
    pub fn may_allow_action(&self, action: &str) -> bool {
        self.stmts
            .iter()
            .any(|s| s.allow && pats_match(&s.actions, action, true))
    }

    /// Resource patterns under which Allow statements grant `action` (`*` for NotResource).
    pub fn resources_for(&self, action: &str) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.stmts {
            if !s.allow || !pats_match(&s.actions, action, true) {
                continue;
            }
            match &s.resources {
                Some(r) if !r.not => out.extend(r.pats.iter().cloned()),
                _ => out.push("*".to_owned()),
            }
        }
        out
    }
}

fn strings(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("expected a string, found `{x}`"))
            })
            .collect(),
        other => Err(format!("expected a string or a list, found `{other}`")),
    }
}

fn parse_stmt(s: &Value) -> Result<Stmt, String> {
    let o = s
        .as_object()
        .ok_or_else(|| "statement is not an object".to_owned())?;
    let allow = match o.get("Effect").and_then(Value::as_str) {
        Some("Allow") => true,
        Some("Deny") => false,
        Some(e) => return Err(format!("unknown Effect `{e}`")),
        None => return Err("missing `Effect`".to_owned()),
    };
    let pats = |k: &str, nk: &str| -> Result<Option<Pats>, String> {
        match (o.get(k), o.get(nk)) {
            (Some(_), Some(_)) => Err(format!("both `{k}` and `{nk}`")),
            (Some(v), None) => Ok(Some(Pats {
                not: false,
                pats: strings(v).map_err(|m| format!("{k}: {m}"))?,
            })),
            (None, Some(v)) => Ok(Some(Pats {
                not: true,
                pats: strings(v).map_err(|m| format!("{nk}: {m}"))?,
            })),
            (None, None) => Ok(None),
        }
    };
    let actions = pats("Action", "NotAction")?.ok_or_else(|| "missing `Action`".to_owned())?;
    let resources = pats("Resource", "NotResource")?;
    let condition = match o.get("Condition") {
        None => None,
        Some(Value::Object(m)) if m.is_empty() => None,
        Some(c @ Value::Object(_)) => Some(condition_text(c)),
        Some(_) => return Err("`Condition` must be an object".to_owned()),
    };
    Ok(Stmt {
        allow,
        actions,
        resources,
        condition,
    })
}

/// `StringLike aud:sub in [a, b]; Bool aws:SecureTransport = true`: one line a reader can follow.
pub fn condition_text(c: &Value) -> String {
    let mut parts = Vec::new();
    if let Value::Object(ops) = c {
        for (op, kv) in ops {
            if let Value::Object(kv) = kv {
                for (k, v) in kv {
                    let vals = strings(v).unwrap_or_else(|_| vec![v.to_string()]);
                    if vals.len() == 1 {
                        parts.push(format!("{op} {k} = {}", vals[0]));
                    } else {
                        parts.push(format!("{op} {k} in [{}]", vals.join(", ")));
                    }
                }
            }
        }
    }
    parts.join("; ")
}

/// IAM's glob: `*` any run, `?` one character.
pub fn glob(pat: &str, text: &str, fold_case: bool) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let eq = |a: char, b: char| {
        if fold_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && eq(p[pi], t[ti]))) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn pats_match(p: &Pats, value: &str, fold_case: bool) -> bool {
    let hit = p.pats.iter().any(|x| glob(x, value, fold_case));
    hit != p.not
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

/// Runs the evaluator on the relaxed documents; on Allow, the conditions of the granting
/// statements (per layer: none if one granted unconditionally, else their alternatives).
fn decide(
    request: &Request,
    identity: &[&Doc],
    trust: Option<&Doc>,
    boundary: Option<&Doc>,
    scps: &[Vec<&Doc>],
    extra_identity: Option<&Policy>,
) -> Verdict {
    let mut ids: Vec<&Policy> = identity.iter().map(|d| &d.relaxed).collect();
    ids.extend(extra_identity);
    let bounds: Vec<&Policy> = boundary.iter().map(|d| &d.relaxed).collect();
    let scp: Vec<Vec<&Policy>> = scps
        .iter()
        .map(|l| l.iter().map(|d| &d.relaxed).collect())
        .collect();
    let input = EvalInput {
        identity: &ids,
        resource: trust.map(|d| &d.relaxed),
        boundaries: &bounds,
        scps: &scp,
        ..EvalInput::default()
    };
    let e = evaluate(request, &input);
    if e.decision != Decision::Allowed {
        return Verdict::Denied;
    }
    // Which conditions were relied on: group the granting statements by layer.
    let mut by_layer: Vec<(Layer, Option<String>)> = Vec::new();
    for r in &e.explanation.statements {
        let doc = match r.layer {
            Layer::Resource => trust,
            Layer::Identity => identity.get(r.policy).copied(),
            _ => None,
        };
        if let Some(d) = doc {
            by_layer.push((r.layer, d.conditions.get(&r.statement).cloned()));
        }
    }
    let mut conditions = Vec::new();
    for layer in [Layer::Resource, Layer::Identity] {
        let here: Vec<&Option<String>> = by_layer
            .iter()
            .filter(|(l, _)| *l == layer)
            .map(|(_, c)| c)
            .collect();
        if here.is_empty() || here.iter().any(|c| c.is_none()) {
            continue;
        }
        let mut alts: Vec<String> = here.into_iter().flatten().cloned().collect();
        alts.sort();
        alts.dedup();
        conditions.push(alts.join(" OR "));
    }
    Verdict::Allowed { conditions }
}

/// Identity policies, boundary and SCPs for `action` on `resource`.
pub fn identity_allows(id: &Identity<'_>, action: &str, resource: &str) -> Verdict {
    let request = Request::new(Requester::arn(id.arn.clone()), action, resource);
    decide(&request, &id.policies, None, id.boundary, &id.scps, None)
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
    decide(&request, &[], Some(trust), None, &[], extra)
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
        &request,
        &identity.policies,
        Some(trust),
        identity.boundary,
        &identity.scps,
        None,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    #[test]
    fn glob_matches_like_iam() {
        assert!(glob("sts:Assume*", "sts:AssumeRole", false));
        assert!(glob("STS:assumerole", "sts:AssumeRole", true));
        assert!(!glob(
            "sts:AssumeRole",
            "sts:AssumeRoleWithWebIdentity",
            true
        ));
        assert!(glob(
            "arn:aws:iam::*:role/x-?",
            "arn:aws:iam::1:role/x-a",
            false
        ));
        assert!(glob("*", "", false));
    }

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
