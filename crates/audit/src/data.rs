//! AWS's own data, committed under `crates/audit/data/` and embedded at build time (no I/O):
//! every AWS managed policy's default document and every IAM action per service, both from
//! MIT-licensed npm packages (`data/SOURCE.md` names versions and dates;
//! `scripts/refresh-audit-data.sh` regenerates them). Each file is inflated and indexed once,
//! on first use; a managed policy's document is parsed only when an estate attaches it.

use std::collections::HashMap;
use std::io::Read;
use std::sync::OnceLock;

use rolehop_policy::pattern::Glob;

const MANAGED_GZ: &[u8] = include_bytes!("../data/aws-managed-policies.tsv.gz");
const ACTIONS_GZ: &[u8] = include_bytes!("../data/iam-actions.txt.gz");

/// The data package's versions and dates, for reports and `--version`-style notes.
pub const SOURCE: &str = include_str!("../data/SOURCE.md");

fn inflate(gz: &[u8]) -> String {
    let mut text = String::new();
    // The files are committed and checked by the tests; a corrupt one reads as empty, which
    // makes every AWS managed policy "unknown" (RH091) rather than a panic.
    if flate2::read::GzDecoder::new(gz)
        .read_to_string(&mut text)
        .is_err()
    {
        text.clear();
    }
    text
}

/// ARN (partition `aws`) -> the document's JSON text.
fn managed_index() -> &'static HashMap<&'static str, &'static str> {
    static TEXT: OnceLock<String> = OnceLock::new();
    static INDEX: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    INDEX.get_or_init(|| {
        TEXT.get_or_init(|| inflate(MANAGED_GZ))
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .collect()
    })
}

/// The default-version document of the AWS managed policy `arn` (any partition), as JSON
/// text, if the data package has it.
pub fn managed_policy(arn: &str) -> Option<&'static str> {
    let rest = arn.strip_prefix("arn:")?;
    let (_partition, rest) = rest.split_once(':')?;
    let rest = rest.strip_prefix("iam::aws:policy/")?;
    managed_index()
        .get(format!("arn:aws:iam::aws:policy/{rest}").as_str())
        .copied()
}

/// How many AWS managed policies the data package holds.
pub fn managed_policy_count() -> usize {
    managed_index().len()
}

/// Actions by lower-case service prefix, as AWS spells them (`s3` -> [`GetObject`, ...]).
fn action_index() -> &'static HashMap<String, Vec<&'static str>> {
    static TEXT: OnceLock<String> = OnceLock::new();
    static INDEX: OnceLock<HashMap<String, Vec<&'static str>>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut m: HashMap<String, Vec<&'static str>> = HashMap::new();
        for l in TEXT.get_or_init(|| inflate(ACTIONS_GZ)).lines() {
            if let Some((service, action)) = l.split_once(':') {
                m.entry(service.to_ascii_lowercase())
                    .or_default()
                    .push(action);
            }
        }
        m
    })
}

/// What the action data says about an action pattern of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionCheck {
    /// `*`, or a pattern matching at least one action of a known service.
    Known,
    /// No service has this prefix.
    UnknownService,
    /// The service exists but no action of it matches.
    NoSuchAction,
}

/// Checks an `Action`/`NotAction` entry against the action data (case-insensitively, as IAM
/// matches actions). A wildcard in the service prefix is judged known.
pub fn check_action(pattern: &str) -> ActionCheck {
    let Some((service, action)) = pattern.split_once(':') else {
        return if pattern == "*" {
            ActionCheck::Known
        } else {
            ActionCheck::UnknownService
        };
    };
    if service.contains(['*', '?']) {
        return ActionCheck::Known;
    }
    let Some(actions) = action_index().get(&service.to_ascii_lowercase()) else {
        return ActionCheck::UnknownService;
    };
    let hit = if action.contains(['*', '?']) {
        let g = Glob::new(action, true);
        actions.iter().any(|a| g.matches(a))
    } else {
        actions.iter().any(|a| a.eq_ignore_ascii_case(action))
    };
    if hit {
        ActionCheck::Known
    } else {
        ActionCheck::NoSuchAction
    }
}

/// The actions of one service a pattern (`sts:Assume*`) stands for, as `service:Action`;
/// a pattern without `:` or with a wildcard service expands to nothing (too broad to list).
pub fn expand(pattern: &str) -> Vec<String> {
    let Some((service, action)) = pattern.split_once(':') else {
        return Vec::new();
    };
    if service.contains(['*', '?']) {
        return Vec::new();
    }
    let Some(actions) = action_index().get(&service.to_ascii_lowercase()) else {
        return Vec::new();
    };
    let g = Glob::new(action, true);
    actions
        .iter()
        .filter(|a| g.matches(a))
        .map(|a| format!("{service}:{a}"))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn every_aws_managed_policy_is_there_and_parses() {
        assert!(managed_policy_count() > 1000, "{}", managed_policy_count());
        for (arn, text) in managed_index() {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            crate::eval::Doc::parse(&v).unwrap_or_else(|e| panic!("{arn}: {e}"));
        }
        assert!(managed_policy("arn:aws:iam::aws:policy/AdministratorAccess").is_some());
        assert!(managed_policy("arn:aws-us-gov:iam::aws:policy/ReadOnlyAccess").is_some());
        assert!(
            managed_policy("arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")
                .is_some()
        );
        assert!(managed_policy("arn:aws:iam::aws:policy/NoSuchPolicyAnywhere").is_none());
        assert!(managed_policy("arn:aws:iam::123456789012:policy/AdministratorAccess").is_none());
    }

    #[test]
    fn actions_are_checked_and_expanded_case_insensitively() {
        assert_eq!(check_action("s3:GetObject"), ActionCheck::Known);
        assert_eq!(check_action("S3:getobject"), ActionCheck::Known);
        assert_eq!(check_action("s3:Get*"), ActionCheck::Known);
        assert_eq!(check_action("s3:GetObjekt"), ActionCheck::NoSuchAction);
        assert_eq!(check_action("s3:Gett*"), ActionCheck::NoSuchAction);
        assert_eq!(check_action("s4:GetObject"), ActionCheck::UnknownService);
        assert_eq!(check_action("*"), ActionCheck::Known);
        let assume = expand("sts:AssumeRole*");
        assert!(assume.contains(&"sts:AssumeRoleWithWebIdentity".to_owned()));
        assert!(!assume.contains(&"sts:GetSessionToken".to_owned()));
    }
}
