//! Matching a request's principal against a `Principal`/`NotPrincipal` set, reporting *how*
//! it matched, because AWS treats a grant to the exact user or session differently from a
//! grant to the session's role or to the whole account.

use crate::ast::PrincipalSet;
use crate::request::Principal;

/// How a principal set matched a request principal (strongest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PrincipalMatch {
    /// The exact user, role session, federated provider, service or canonical user, or `*`.
    Direct,
    /// The role of a role session, or a role ARN principal named by its own ARN: subject to
    /// the role's permissions boundary.
    Role,
    /// The principal's account (`123456789012` or `arn:aws:iam::123456789012:root`): the
    /// account delegates to its identity policies.
    Account,
}

/// The parts of an IAM principal ARN needed for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnPrincipal<'a> {
    /// `aws`, `aws-cn`, ...: a principal never matches across partitions.
    pub partition: &'a str,
    /// The principal's account, which `"AWS": "<account>"` and `:root` name.
    pub account: &'a str,
    /// `Some((role name, session name))` for `arn:aws:sts::acct:assumed-role/role/session`.
    pub session: Option<(&'a str, &'a str)>,
    /// The role name for `arn:aws:iam::acct:role/path/name`.
    pub role: Option<&'a str>,
}

/// Splits an IAM/STS principal ARN.
pub fn split_principal_arn(arn: &str) -> Option<ArnPrincipal<'_>> {
    let [_, partition, service, _, account, resource] = crate::arn::split_arn(arn)?;
    let mut p = ArnPrincipal {
        partition,
        account,
        session: None,
        role: None,
    };
    if service == "sts" {
        p.session = resource
            .strip_prefix("assumed-role/")
            .and_then(|rest| rest.split_once('/'));
    } else if service == "iam" {
        p.role = resource
            .strip_prefix("role/")
            .and_then(|rest| rest.rsplit('/').next());
    }
    Some(p)
}

/// Whether `entry` (one `AWS` principal value) names the account `account`.
fn names_account(entry: &str, account: &str) -> bool {
    if entry == account {
        return true;
    }
    match crate::arn::split_arn(entry) {
        Some([_, _, "iam", _, acct, "root"]) => acct == account,
        _ => false,
    }
}

/// Matches a request principal against a set; `None` when it does not match.
pub fn match_principal(set: &PrincipalSet, principal: &Principal) -> Option<PrincipalMatch> {
    match_principal_with(set, principal, false)
}

/// Like [`match_principal`]; with `role_is_any_session` a role ARN principal stands for every
/// session of the role (discovery mode: the session name is not known yet), so entries naming
/// one of its sessions match it directly.
pub fn match_principal_with(
    set: &PrincipalSet,
    principal: &Principal,
    role_is_any_session: bool,
) -> Option<PrincipalMatch> {
    if set.wildcard {
        return Some(PrincipalMatch::Direct);
    }
    match principal {
        Principal::Anonymous => None,
        Principal::Service(name) => set
            .service
            .iter()
            .any(|s| s.eq_ignore_ascii_case(name))
            .then_some(PrincipalMatch::Direct),
        Principal::Federated(provider) => set
            .federated
            .iter()
            .any(|f| f == provider)
            .then_some(PrincipalMatch::Direct),
        Principal::CanonicalUser(id) => set
            .canonical_user
            .iter()
            .any(|c| c == id)
            .then_some(PrincipalMatch::Direct),
        Principal::Arn(arn) => match_arn(&set.aws, arn, role_is_any_session),
    }
}

fn match_arn(entries: &[String], arn: &str, role_is_any_session: bool) -> Option<PrincipalMatch> {
    let parsed = split_principal_arn(arn);
    let mut best: Option<PrincipalMatch> = None;
    let mut note = |m: PrincipalMatch| {
        best = Some(best.map_or(m, |b| b.min(m)));
    };
    for entry in entries {
        if entry == arn {
            if parsed.as_ref().is_some_and(|p| p.role.is_some()) {
                note(PrincipalMatch::Role);
            } else {
                note(PrincipalMatch::Direct);
            }
            continue;
        }
        let Some(p) = &parsed else { continue };
        if names_account(entry, p.account) {
            note(PrincipalMatch::Account);
            continue;
        }
        if let (true, Some(role)) = (role_is_any_session, p.role)
            && let Some([_, part, "sts", _, acct, res]) = crate::arn::split_arn(entry)
            && part == p.partition
            && acct == p.account
            && res
                .strip_prefix("assumed-role/")
                .and_then(|r| r.split_once('/'))
                .is_some_and(|(r, _)| r == role)
        {
            note(PrincipalMatch::Direct);
            continue;
        }
        if let Some((role, _)) = p.session {
            // A session matches its role's ARN whatever the role's path.
            if let Some([_, part, "iam", _, acct, res]) = crate::arn::split_arn(entry)
                && part == p.partition
                && acct == p.account
                && res.starts_with("role/")
                && res.rsplit('/').next() == Some(role)
            {
                note(PrincipalMatch::Role);
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn set(aws: &[&str]) -> PrincipalSet {
        PrincipalSet {
            aws: aws.iter().map(|s| s.to_string()).collect(),
            ..PrincipalSet::default()
        }
    }

    #[test]
    fn principals_match_by_kind() {
        let user = Principal::arn("arn:aws:iam::111111111111:user/u");
        let session = Principal::arn("arn:aws:sts::111111111111:assumed-role/r/s");
        let role = Principal::arn("arn:aws:iam::111111111111:role/path/r");
        let cases: &[(&[&str], &Principal, Option<PrincipalMatch>)] = &[
            (
                &["arn:aws:iam::111111111111:user/u"],
                &user,
                Some(PrincipalMatch::Direct),
            ),
            (&["111111111111"], &user, Some(PrincipalMatch::Account)),
            (
                &["arn:aws:iam::111111111111:root"],
                &session,
                Some(PrincipalMatch::Account),
            ),
            (&["222222222222"], &user, None),
            (
                &["arn:aws:iam::111111111111:role/r"],
                &session,
                Some(PrincipalMatch::Role),
            ),
            (
                &["arn:aws:iam::111111111111:role/x/r"],
                &session,
                Some(PrincipalMatch::Role),
            ),
            (&["arn:aws:iam::111111111111:role/other"], &session, None),
            (
                &["arn:aws:sts::111111111111:assumed-role/r/s"],
                &session,
                Some(PrincipalMatch::Direct),
            ),
            (
                &["arn:aws:sts::111111111111:assumed-role/r/other"],
                &session,
                None,
            ),
            (
                &["arn:aws:iam::111111111111:role/path/r"],
                &role,
                Some(PrincipalMatch::Role),
            ),
            (
                &["111111111111", "arn:aws:iam::111111111111:user/u"],
                &user,
                Some(PrincipalMatch::Direct),
            ),
        ];
        for (entries, p, want) in cases {
            assert_eq!(
                match_principal(&set(entries), p),
                *want,
                "{entries:?} vs {p:?}"
            );
        }
        let wildcard = PrincipalSet {
            wildcard: true,
            everyone: true,
            ..PrincipalSet::default()
        };
        assert_eq!(
            match_principal(&wildcard, &Principal::Anonymous),
            Some(PrincipalMatch::Direct)
        );
        let svc = PrincipalSet {
            service: vec!["lambda.amazonaws.com".into()],
            ..PrincipalSet::default()
        };
        assert!(match_principal(&svc, &Principal::service("lambda.amazonaws.com")).is_some());
        assert!(match_principal(&svc, &Principal::service("ec2.amazonaws.com")).is_none());
        assert!(match_principal(&svc, &Principal::Anonymous).is_none());
    }
}
