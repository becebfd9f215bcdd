//! Resources owned by AWS inside (or outside) a customer's account: AWS managed policies,
//! IAM Identity Center's `aws-reserved` roles and `alias/aws/*` KMS aliases. No policy can
//! grant changing them; only reads are possible.

use crate::arn::split_arn;

/// Read-only action prefixes (after `service:`) that stay possible on AWS-owned resources.
const READ_PREFIXES: &[&str] = &["get", "list", "generate", "simulate", "describe"];

/// Why the request can never be allowed, when it targets an AWS-owned resource with a
/// mutating action.
pub(crate) fn reserved_reason(action: &str, resource: &str) -> Option<&'static str> {
    let [_, _, service, _, account, res] = split_arn(resource)?;
    let (action_service, name) = action.split_once(':')?;
    if !action_service.eq_ignore_ascii_case(service) {
        return None;
    }
    let reason = match service {
        "iam" if account == "aws" && res.starts_with("policy/") => {
            "AWS managed policies cannot be changed"
        }
        "iam" if res.starts_with("role/aws-reserved/") => {
            "roles under `aws-reserved/` are managed by AWS and cannot be changed or passed"
        }
        "kms" if res.starts_with("alias/aws/") => "AWS managed KMS aliases cannot be changed",
        _ => return None,
    };
    let lower = name.to_ascii_lowercase();
    if READ_PREFIXES.iter().any(|p| lower.starts_with(p)) {
        return None;
    }
    Some(reason)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::reserved_reason;

    #[test]
    fn only_reads_reach_aws_owned_resources() {
        let policy = "arn:aws:iam::aws:policy/AdministratorAccess";
        assert!(reserved_reason("iam:GetPolicy", policy).is_none());
        assert!(reserved_reason("iam:DeletePolicy", policy).is_some());
        let role = "arn:aws:iam::1:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_x";
        assert!(reserved_reason("iam:PassRole", role).is_some());
        assert!(reserved_reason("iam:ListRoleTags", role).is_none());
        assert!(reserved_reason("iam:DeleteRole", "arn:aws:iam::1:role/mine").is_none());
        let alias = "arn:aws:kms:us-east-1:1:alias/aws/s3";
        assert!(reserved_reason("kms:DeleteAlias", alias).is_some());
        assert!(reserved_reason("kms:DeleteAlias", "arn:aws:kms:us-east-1:1:alias/x").is_none());
    }
}
