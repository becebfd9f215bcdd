//! The auditor's one door to policy evaluation: parse a document once, then ask "may this
//! principal do this action on this resource". Conditions the auditor cannot know are treated
//! as possibly true and handed back as text, so an edge is kept and the reader sees why.
//!
//! This is a thin adapter: the rest of the crate never looks inside a [`Doc`].

use serde_json::Value;

/// A parsed policy document.
#[derive(Debug, Clone)]
pub struct Doc {
    stmts: Vec<Stmt>,
}

#[derive(Debug, Clone)]
struct Stmt {
    allow: bool,
    actions: Pats,
    resources: Option<Pats>,
    principals: Option<PrincipalSpec>,
    condition: Option<String>,
}

#[derive(Debug, Clone)]
struct Pats {
    not: bool,
    pats: Vec<String>,
}

#[derive(Debug, Clone)]
struct PrincipalSpec {
    not: bool,
    /// (kind, value): kind is `AWS`, `Federated`, `Service`, `CanonicalUser` or `*`.
    entries: Vec<(String, String)>,
}

/// Who asks, as a trust policy sees it.
#[derive(Debug, Clone, Copy)]
pub enum Who<'a> {
    /// An IAM user or role (sessions of a role are the role here).
    Aws {
        arn: &'a str,
        account: &'a str,
        unique_id: Option<&'a str>,
    },
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

/// What a trust policy said about a principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustVerdict {
    pub verdict: Verdict,
    /// The principal was named by its own ARN (not its account or `*`): within one account
    /// that alone grants the assumption, without an identity policy.
    pub named_directly: bool,
}

/// The identity side of a principal: its policies, boundary and the SCP levels above it.
pub struct Identity<'a> {
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
        Ok(Doc { stmts })
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
    let principals = match (o.get("Principal"), o.get("NotPrincipal")) {
        (Some(p), None) => Some(parse_principal(p, false)?),
        (None, Some(p)) => Some(parse_principal(p, true)?),
        (None, None) => None,
        (Some(_), Some(_)) => return Err("both `Principal` and `NotPrincipal`".to_owned()),
    };
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
        principals,
        condition,
    })
}

fn parse_principal(p: &Value, not: bool) -> Result<PrincipalSpec, String> {
    let mut entries = Vec::new();
    match p {
        Value::String(s) if s == "*" => entries.push(("*".to_owned(), "*".to_owned())),
        Value::Object(m) => {
            for (k, v) in m {
                for s in strings(v).map_err(|e| format!("Principal.{k}: {e}"))? {
                    entries.push((k.clone(), s));
                }
            }
        }
        other => {
            return Err(format!(
                "`Principal` must be `*` or an object, found `{other}`"
            ));
        }
    }
    Ok(PrincipalSpec { not, entries })
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

fn resource_match(r: &Option<Pats>, resource: &str) -> bool {
    match r {
        None => true,
        Some(p) => pats_match(p, resource, false),
    }
}

/// How a principal entry matches `who`: `Some(true)` by its own ARN, `Some(false)` through its
/// account or `*`.
fn principal_entry_match(kind: &str, value: &str, who: Who<'_>) -> Option<bool> {
    match (kind, who) {
        ("*", _) => Some(false),
        (
            "AWS",
            Who::Aws {
                arn,
                account,
                unique_id,
            },
        ) => {
            if value == "*" {
                Some(false)
            } else if value == account || value == format!("arn:aws:iam::{account}:root") {
                Some(false)
            } else if value == arn || Some(value) == unique_id {
                Some(true)
            } else if let Some(role) = session_role_arn(value) {
                // Session principals name the role without its path.
                let (ra, rn) = crate::model::split_arn(&role);
                let (a, n) = crate::model::split_arn(arn);
                (ra == a && rn == n && arn.contains(":role/")).then_some(true)
            } else {
                None
            }
        }
        ("Federated", Who::Federated(p)) => (value == p).then_some(true),
        ("Service", Who::Service(s)) => (value == s).then_some(true),
        _ => None,
    }
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

/// One layer's verdict over a set of documents: explicit (unconditional) deny wins, then any
/// allow; conditional denies are kept as "unless" text on an allow.
#[derive(Default)]
struct Layer {
    denied: bool,
    allowed_unconditionally: bool,
    allow_conditions: Vec<String>,
    deny_conditions: Vec<String>,
}

impl Layer {
    fn add(&mut self, s: &Stmt) {
        match (s.allow, &s.condition) {
            (true, None) => self.allowed_unconditionally = true,
            (true, Some(c)) => self.allow_conditions.push(c.clone()),
            (false, None) => self.denied = true,
            (false, Some(c)) => self.deny_conditions.push(format!("not denied by ({c})")),
        }
    }

    fn allows(&self) -> bool {
        !self.denied && (self.allowed_unconditionally || !self.allow_conditions.is_empty())
    }

    fn conditions(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.allowed_unconditionally && !self.allow_conditions.is_empty() {
            let mut alts = self.allow_conditions.clone();
            alts.sort();
            alts.dedup();
            out.push(alts.join(" OR "));
        }
        out.extend(self.deny_conditions.iter().cloned());
        out
    }
}

fn identity_layer(docs: &[&Doc], action: &str, resource: &str) -> Layer {
    let mut l = Layer::default();
    for d in docs {
        for s in &d.stmts {
            if s.principals.is_none()
                && pats_match(&s.actions, action, true)
                && resource_match(&s.resources, resource)
            {
                l.add(s);
            }
        }
    }
    l
}

/// Identity policies, boundary and SCPs for `action` on `resource`.
pub fn identity_allows(id: &Identity<'_>, action: &str, resource: &str) -> Verdict {
    let mut conditions = Vec::new();
    let main = identity_layer(&id.policies, action, resource);
    if !main.allows() {
        return Verdict::Denied;
    }
    conditions.extend(main.conditions());
    if let Some(b) = id.boundary {
        let l = identity_layer(&[b], action, resource);
        if !l.allows() {
            return Verdict::Denied;
        }
        conditions.extend(l.conditions());
    }
    for level in &id.scps {
        let l = identity_layer(level, action, resource);
        if !l.allows() {
            return Verdict::Denied;
        }
        conditions.extend(l.conditions());
    }
    Verdict::Allowed { conditions }
}

/// Only explicit denies of boundary and SCPs (for same-account direct trust, where the identity
/// policy is not needed but SCPs still apply).
fn scps_allow(id: &Identity<'_>, action: &str, resource: &str) -> Verdict {
    let mut conditions = Vec::new();
    for level in &id.scps {
        let l = identity_layer(level, action, resource);
        if !l.allows() {
            return Verdict::Denied;
        }
        conditions.extend(l.conditions());
    }
    let main = identity_layer(&id.policies, action, resource);
    if main.denied {
        return Verdict::Denied;
    }
    conditions.extend(main.deny_conditions.iter().cloned());
    Verdict::Allowed { conditions }
}

/// What the role's trust policy says about `who` doing `action`.
pub fn trust_allows(trust: &Doc, who: Who<'_>, action: &str, role_arn: &str) -> TrustVerdict {
    let mut l = Layer::default();
    let mut named_directly = false;
    for s in &trust.stmts {
        let Some(p) = &s.principals else { continue };
        if !pats_match(&s.actions, action, true) || !resource_match(&s.resources, role_arn) {
            continue;
        }
        let m = p
            .entries
            .iter()
            .filter_map(|(k, v)| principal_entry_match(k, v, who))
            .max();
        let hit = if p.not { m.is_none() } else { m.is_some() };
        if hit {
            if s.allow && m == Some(true) && !p.not {
                named_directly = true;
            }
            l.add(s);
        }
    }
    let verdict = if l.allows() {
        Verdict::Allowed {
            conditions: l.conditions(),
        }
    } else {
        Verdict::Denied
    };
    TrustVerdict {
        verdict,
        named_directly,
    }
}

/// AWS's rule for AssumeRole by an IAM principal: the trust policy must allow; within one
/// account a trust policy naming the principal's ARN suffices, otherwise (and always across
/// accounts) the identity side must allow too; explicit denies and SCPs apply throughout.
pub fn may_assume(
    trust: &Doc,
    who_arn: &str,
    who_account: &str,
    who_id: Option<&str>,
    identity: &Identity<'_>,
    action: &str,
    role_arn: &str,
    role_account: &str,
) -> Verdict {
    let t = trust_allows(
        trust,
        Who::Aws {
            arn: who_arn,
            account: who_account,
            unique_id: who_id,
        },
        action,
        role_arn,
    );
    let Verdict::Allowed { conditions: mut c } = t.verdict else {
        return Verdict::Denied;
    };
    let side = if t.named_directly && who_account == role_account {
        scps_allow(identity, action, role_arn)
    } else {
        identity_allows(identity, action, role_arn)
    };
    match side {
        Verdict::Denied => Verdict::Denied,
        Verdict::Allowed { conditions } => {
            c.extend(conditions);
            c.sort();
            c.dedup();
            Verdict::Allowed { conditions: c }
        }
    }
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
        let none = Identity {
            policies: vec![],
            boundary: None,
            scps: vec![],
        };
        let some = Identity {
            policies: vec![&idp],
            boundary: None,
            scps: vec![],
        };
        let ask = |id: &Identity<'_>| {
            may_assume(
                &trust,
                "arn:aws:iam::111111111111:user/u",
                "111111111111",
                None,
                id,
                "sts:AssumeRole",
                "arn:aws:iam::222222222222:role/d",
                "222222222222",
            )
        };
        assert_eq!(ask(&none), Verdict::Denied);
        assert!(ask(&some).is_allowed());
    }

    #[test]
    fn conditions_are_kept() {
        let trust = Doc::parse(&json!({"Statement":{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::1:oidc-provider/g"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":{"g:sub":"project_path:a/b:*"}}}})).unwrap();
        let v = trust_allows(
            &trust,
            Who::Federated("arn:aws:iam::1:oidc-provider/g"),
            "sts:AssumeRoleWithWebIdentity",
            "arn:aws:iam::1:role/r",
        );
        assert_eq!(
            v.verdict,
            Verdict::Allowed {
                conditions: vec!["StringLike g:sub = project_path:a/b:*".into()]
            }
        );
    }
}
