//! An index of role trust policies by the principals they name, so an auditor can ask "which
//! roles could this principal assume" without evaluating every trust policy. Candidates are a
//! superset (conditions are not looked at); confirm each with [`crate::evaluate`].

use std::collections::HashMap;

use crate::ast::{Block, Effect, Policy, Statement};
use crate::principal::split_principal_arn;
use crate::request::Principal;

/// Trust policies indexed by principal (exact ARNs, account roots, role names for sessions,
/// wildcards, federated providers, services).
#[derive(Debug, Clone, Default)]
pub struct TrustIndex {
    roles: Vec<String>,
    by_arn: HashMap<String, Vec<u32>>,
    by_account: HashMap<String, Vec<u32>>,
    /// `account \0 role name`: a session of that role matches a trust entry naming the role.
    by_role: HashMap<String, Vec<u32>>,
    by_service: HashMap<String, Vec<u32>>,
    by_federated: HashMap<String, Vec<u32>>,
    by_canonical: HashMap<String, Vec<u32>>,
    /// `*`, `NotPrincipal` and entries IAM would not index: candidates for everyone.
    everyone: Vec<u32>,
}

const ASSUME_ACTIONS: &[&str] = &[
    "sts:AssumeRole",
    "sts:AssumeRoleWithWebIdentity",
    "sts:AssumeRoleWithSAML",
];

/// Whether an Allow statement can grant one of the AssumeRole actions.
fn grants_assume(stmt: &Statement) -> bool {
    if stmt.effect != Effect::Allow {
        return false;
    }
    match &stmt.action {
        Block::Is(globs) => globs
            .iter()
            .any(|g| ASSUME_ACTIONS.iter().any(|a| g.matches(a))),
        Block::Not(globs) => ASSUME_ACTIONS
            .iter()
            .any(|a| !globs.iter().any(|g| g.matches(a))),
    }
}

fn push(map: &mut HashMap<String, Vec<u32>>, key: String, id: u32) {
    let ids = map.entry(key).or_default();
    if ids.last() != Some(&id) {
        ids.push(id);
    }
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

impl TrustIndex {
    /// Indexes `(role ARN, trust policy)` pairs.
    pub fn build<'p, I, S>(roles: I) -> TrustIndex
    where
        I: IntoIterator<Item = (S, &'p Policy)>,
        S: Into<String>,
    {
        let mut index = TrustIndex::default();
        for (arn, policy) in roles {
            let id = u32::try_from(index.roles.len()).unwrap_or(u32::MAX);
            index.roles.push(arn.into());
            for stmt in policy.statements.iter().filter(|s| grants_assume(s)) {
                index.add_statement(stmt, id);
            }
        }
        index
    }

    fn add_statement(&mut self, stmt: &Statement, id: u32) {
        let set = match &stmt.principal {
            Some(Block::Is(set)) => set,
            // NotPrincipal allows (almost) everyone; no Principal allows no one.
            Some(Block::Not(_)) => {
                self.everyone.push(id);
                return;
            }
            None => return,
        };
        if set.wildcard {
            self.everyone.push(id);
            return;
        }
        for entry in &set.aws {
            if is_account_id(entry) {
                push(&mut self.by_account, entry.clone(), id);
                continue;
            }
            match crate::arn::split_arn(entry) {
                Some([_, _, "iam", _, acct, "root"]) => {
                    push(&mut self.by_account, acct.to_string(), id)
                }
                Some(_) if entry.contains(['*', '?']) => self.everyone.push(id),
                Some([_, _, "iam", _, acct, res]) if res.starts_with("role/") => {
                    push(&mut self.by_arn, entry.clone(), id);
                    if let Some(name) = res.rsplit('/').next() {
                        push(&mut self.by_role, format!("{acct}\0{name}"), id);
                    }
                }
                // A role ARN principal stands for its sessions in discovery mode: index
                // session entries under their role too.
                Some([_, _, "sts", _, acct, res]) if res.starts_with("assumed-role/") => {
                    push(&mut self.by_arn, entry.clone(), id);
                    if let Some((role, _)) = res["assumed-role/".len()..].split_once('/') {
                        push(&mut self.by_role, format!("{acct}\0{role}"), id);
                    }
                }
                Some(_) => push(&mut self.by_arn, entry.clone(), id),
                // IAM rewrites unknown principals to unique ids; index them as-is.
                None => push(&mut self.by_arn, entry.clone(), id),
            }
        }
        for s in &set.service {
            push(&mut self.by_service, s.to_ascii_lowercase(), id);
        }
        for f in &set.federated {
            push(&mut self.by_federated, f.clone(), id);
        }
        for c in &set.canonical_user {
            push(&mut self.by_canonical, c.clone(), id);
        }
    }

    /// Number of indexed roles.
    pub fn len(&self) -> usize {
        self.roles.len()
    }

    /// No role indexed.
    pub fn is_empty(&self) -> bool {
        self.roles.is_empty()
    }

    /// The role ARN of an index returned by [`TrustIndex::candidate_ids`].
    pub fn role(&self, id: usize) -> Option<&str> {
        self.roles.get(id).map(String::as_str)
    }

    /// Indices (in build order, without duplicates) of roles whose trust policy may allow
    /// `principal` to assume them.
    pub fn candidate_ids(&self, principal: &Principal) -> Vec<usize> {
        let mut ids: Vec<u32> = self.everyone.clone();
        let mut add = |map: &HashMap<String, Vec<u32>>, key: &str| {
            if let Some(v) = map.get(key) {
                ids.extend_from_slice(v);
            }
        };
        match principal {
            Principal::Arn(arn) => {
                add(&self.by_arn, arn);
                if let Some(p) = split_principal_arn(arn) {
                    add(&self.by_account, p.account);
                    let role = p.session.map(|(role, _)| role).or(p.role);
                    if let Some(role) = role {
                        add(&self.by_role, &format!("{}\0{role}", p.account));
                    }
                }
            }
            Principal::Service(s) => add(&self.by_service, &s.to_ascii_lowercase()),
            Principal::Federated(f) => add(&self.by_federated, f),
            Principal::CanonicalUser(c) => add(&self.by_canonical, c),
            Principal::Anonymous => {}
        }
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter().map(|i| i as usize).collect()
    }

    /// Role ARNs whose trust policy may allow `principal` (a superset, without duplicates, in
    /// build order).
    pub fn candidates<'s>(&'s self, principal: &Principal) -> impl Iterator<Item = &'s str> + 's {
        self.candidate_ids(principal)
            .into_iter()
            .filter_map(move |i| self.role(i))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn trust(principal: &str) -> Policy {
        Policy::parse(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{principal},"Action":["sts:AssumeRole","sts:TagSession"]}}]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn candidates_cover_every_principal_form() {
        let policies = [
            (
                "arn:aws:iam::2:role/by-user",
                trust(r#"{"AWS":"arn:aws:iam::111111111111:user/ci"}"#),
            ),
            (
                "arn:aws:iam::2:role/by-root",
                trust(r#"{"AWS":"arn:aws:iam::111111111111:root"}"#),
            ),
            (
                "arn:aws:iam::2:role/by-id",
                trust(r#"{"AWS":"111111111111"}"#),
            ),
            (
                "arn:aws:iam::2:role/by-role",
                trust(r#"{"AWS":"arn:aws:iam::111111111111:role/svc/service"}"#),
            ),
            ("arn:aws:iam::2:role/by-star", trust(r#""*""#)),
            (
                "arn:aws:iam::2:role/by-svc",
                trust(r#"{"Service":"lambda.amazonaws.com"}"#),
            ),
            (
                "arn:aws:iam::2:role/by-oidc",
                trust(r#"{"Federated":"arn:aws:iam::2:oidc-provider/gitlab.com"}"#),
            ),
            (
                "arn:aws:iam::2:role/other",
                trust(r#"{"AWS":"arn:aws:iam::333333333333:root"}"#),
            ),
        ];
        let index = TrustIndex::build(policies.iter().map(|(a, p)| (*a, p)));
        let names = |p: Principal| -> Vec<&str> {
            index
                .candidates(&p)
                .map(|a| a.rsplit('/').next().unwrap())
                .collect()
        };
        assert_eq!(
            names(Principal::arn("arn:aws:iam::111111111111:user/ci")),
            ["by-user", "by-root", "by-id", "by-star"]
        );
        assert_eq!(
            names(Principal::arn(
                "arn:aws:sts::111111111111:assumed-role/service/job-1"
            )),
            ["by-root", "by-id", "by-role", "by-star"]
        );
        assert_eq!(
            names(Principal::service("lambda.amazonaws.com")),
            ["by-star", "by-svc"]
        );
        assert_eq!(
            names(Principal::from_string(
                "arn:aws:iam::2:oidc-provider/gitlab.com"
            )),
            ["by-star", "by-oidc"]
        );
        assert_eq!(names(Principal::Anonymous), ["by-star"]);
    }

    #[test]
    fn deny_and_unrelated_actions_are_not_indexed() {
        let deny = Policy::parse(
            r#"{"Statement":{"Effect":"Deny","Principal":{"AWS":"111111111111"},"Action":"sts:AssumeRole"}}"#,
        )
        .unwrap();
        let other = Policy::parse(
            r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"111111111111"},"Action":"s3:GetObject"}}"#,
        )
        .unwrap();
        let index = TrustIndex::build([("a", &deny), ("b", &other)]);
        assert_eq!(
            index
                .candidates(&Principal::arn("arn:aws:iam::111111111111:user/u"))
                .count(),
            0
        );
    }
}
