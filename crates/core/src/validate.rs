//! AWS and GitLab identifier rules, checked once where raw input enters.
//!
//! Each check returns a message naming the rule, so topology and CLI errors read the same.
//! Identifiers that travel further than the check (account ids, regions, partitions, role
//! ARNs) are types in [`crate::ids`] instead; what is left here is checked and kept as text.

use crate::ids::{AccountId, Partition};

/// STS's `[\w+=,.@-]` (role session names, SourceIdentity, role names).
pub fn is_sts_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-')
}

/// An IAM role or user name: 1..64 chars of `[\w+=,.@-]`.
pub fn iam_name(kind: &str, s: &str) -> Result<(), String> {
    if s.is_empty() || s.chars().count() > 64 {
        return Err(format!(
            "{kind} `{s}` must be 1 to 64 characters long (it has {})",
            s.chars().count()
        ));
    }
    if let Some(c) = s.chars().find(|c| !is_sts_name_char(*c)) {
        return Err(format!(
            "{kind} `{s}` contains `{c}`; IAM allows only letters, digits and `+=,.@_-`"
        ));
    }
    Ok(())
}

/// An STS ExternalId: 2..1224 chars of `[\w+=,.@:/-]`.
pub fn external_id(s: &str) -> Result<(), String> {
    let n = s.chars().count();
    if !(2..=1224).contains(&n) {
        return Err(format!(
            "external id must be 2 to 1224 characters (it has {n})"
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(is_sts_name_char(*c) || matches!(c, ':' | '/')))
    {
        return Err(format!(
            "external id contains `{c}`; STS allows only letters, digits and `+=,.@:/_-`"
        ));
    }
    Ok(())
}

/// An IAM path and name after `role/` or `policy/`: the path's characters are IAM's
/// (`\u0021`-`\u007E`, so no space, control character or line break), the name is `name_ok`.
pub(crate) fn iam_path_and_name(rest: &str, name_ok: impl Fn(&str) -> bool) -> bool {
    let name = rest.rsplit('/').next().unwrap_or(rest);
    rest.len() <= 512 + 128 && rest.chars().all(|c| c.is_ascii_graphic()) && name_ok(name)
}

/// An IAM managed policy ARN (`arn:<partition>:iam::<account|aws>:policy/<path/name>`).
pub fn managed_policy_arn(s: &str) -> Result<(), String> {
    let refused = || {
        Err(format!(
            "`{s}` is not an IAM managed policy ARN (like `arn:aws:iam::aws:policy/ReadOnlyAccess`, or `arn:aws:iam::${{AWS::AccountId}}:policy/deploy` for the policy of that name in each target account)"
        ))
    };
    // `${AWS::AccountId}` stands for the account the role is created in, and only there:
    // anywhere else in the ARN it would be substituted into a name.
    let concrete = match s.split_once(ACCOUNT_ID_VAR) {
        None => s.to_owned(),
        Some((head, tail))
            if head.ends_with(":iam::") && tail.starts_with(':') && !tail.contains('$') =>
        {
            format!("{head}000000000000{tail}")
        }
        Some(_) => return refused(),
    };
    let parts: Vec<&str> = concrete.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].parse::<Partition>().is_ok()
        && parts[2] == "iam"
        && parts[3].is_empty()
        && (parts[4] == "aws" || parts[4].parse::<AccountId>().is_ok())
        && parts[5].strip_prefix("policy/").is_some_and(|rest| {
            iam_path_and_name(rest, |n| {
                n.chars().count() <= 128 && iam_name("policy name", n).is_ok()
            })
        });
    if ok { Ok(()) } else { refused() }
}

/// What a managed policy ARN may name as its account to mean "the account the role is created
/// in": CloudFormation's pseudo parameter, substituted with `Fn::Sub` in each target account.
pub const ACCOUNT_ID_VAR: &str = "${AWS::AccountId}";

/// The account of a managed policy ARN: `aws` for AWS managed policies, the id, or
/// [`ACCOUNT_ID_VAR`] (assumes `arn` passed [`managed_policy_arn`]).
pub fn managed_policy_account(arn: &str) -> &str {
    if arn.contains(ACCOUNT_ID_VAR) {
        return ACCOUNT_ID_VAR;
    }
    arn.split(':').nth(4).unwrap_or("")
}

/// An https URL without a trailing slash (an OIDC issuer).
pub fn issuer_url(s: &str) -> Result<(), String> {
    let Some(rest) = s.strip_prefix("https://") else {
        return Err(format!(
            "issuer `{s}` must start with `https://` (AWS only trusts https OIDC issuers)"
        ));
    };
    // IAM takes OIDC provider URLs of at most 255 characters.
    if rest.is_empty()
        || s.len() > 255
        || rest.ends_with('/')
        || !rest.chars().all(|c| c.is_ascii_graphic())
        || rest.contains('?')
        || rest.contains('#')
    {
        return Err(format!(
            "issuer `{s}` must be a bare https URL of at most 255 characters without a trailing slash, query, fragment, space or control character, exactly as GitLab's `iss` claim"
        ));
    }
    no_dynamic_reference(s)
}

/// The issuer of gate mode: as [`issuer_url`], or plain http to loopback (tests, demos). No
/// IAM OIDC provider exists in gate mode, so IAM's https-only rule does not apply; the gate
/// itself fetches keys over plain http only from loopback. The topology and the job file
/// rendered from it apply this same rule, so a topology that renders is a job file that reads.
pub fn gate_issuer_url(s: &str) -> Result<(), String> {
    let Some(rest) = s.strip_prefix("http://") else {
        return issuer_url(s);
    };
    if crate::endpoint::cleartext_off_machine(s).is_some() {
        return issuer_url(s);
    }
    if rest.is_empty()
        || rest.ends_with('/')
        || !rest.chars().all(|c| c.is_ascii_graphic())
        || rest.contains('?')
        || rest.contains('#')
    {
        return Err(format!(
            "issuer `{s}` must be a bare URL without a trailing slash, query, fragment, space or control character, exactly as GitLab's `iss` claim"
        ));
    }
    Ok(())
}

/// CloudFormation replaces `{{resolve:...}}` in any string of a template with a value from
/// SSM or Secrets Manager at deploy time: what is deployed would no longer be what the
/// topology says and `audit --config` evaluates, so such text is refused where it would
/// reach a template.
pub fn no_dynamic_reference(s: &str) -> Result<(), String> {
    if s.contains("{{resolve:") {
        Err(format!(
            "`{s}` contains `{{{{resolve:`: CloudFormation would replace it with a value from SSM or Secrets Manager at deploy time"
        ))
    } else {
        Ok(())
    }
}

/// A CloudFormation stack or StackSet name: a letter, then letters, digits and `-`, at most
/// `max` characters.
pub fn stack_name(kind: &str, s: &str, max: usize) -> Result<(), String> {
    let ok = s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.len() <= max
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{kind} `{s}` must start with a letter and have only letters, digits and `-`, at most {max} characters (CloudFormation's rule)"
        ))
    }
}

/// A GitLab environment name as the topology may give it: GitLab's characters (letters,
/// digits, space, `-`, `_`, `/`, `.`; not starting or ending with `/`), at most 255, without
/// `$`, `{`, `}`: GitLab would expand those as variables, so the job's environment would not be
/// the one named. `*` is a glob (a job's `CI_ENVIRONMENT_NAME` is matched like IAM's
/// `StringLike`) and so not allowed in the environment the rendered job declares (`primary`).
pub fn gitlab_environment(s: &str, primary: bool) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.chars().count() <= 255
        && !s.starts_with('/')
        && !s.ends_with('/')
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, ' ' | '-' | '_' | '/' | '.')
                || (c == '*' && !primary)
        });
    if ok {
        Ok(())
    } else if primary && s.contains('*') {
        Err(format!(
            "`{s}` is the GitLab environment the rendered deploy job declares, so it cannot be a glob; put the exact name first"
        ))
    } else {
        Err(format!(
            "`{s}` is not a GitLab environment name: 1 to 255 of letters, digits, space, `-`, `_`, `/`, `.` (and `*` as a glob after the first), not starting or ending with `/`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iam_names() {
        assert!(iam_name("role name", "rolehop-deploy_v2+=,.@").is_ok());
        assert!(iam_name("role name", &"a".repeat(64)).is_ok());
        assert!(
            iam_name("role name", &"a".repeat(65))
                .unwrap_err()
                .contains("1 to 64")
        );
        assert!(
            iam_name("role name", "has space")
                .unwrap_err()
                .contains("` `")
        );
        assert!(iam_name("role name", "").is_err());
    }

    #[test]
    fn external_ids() {
        assert!(external_id("tenant:42/a").is_ok());
        assert!(external_id("x").is_err());
        assert!(external_id("a b").is_err());
    }

    #[test]
    fn arns() {
        assert!(managed_policy_arn("arn:aws:iam::aws:policy/ReadOnlyAccess").is_ok());
        assert!(managed_policy_arn("arn:aws:iam::123456789012:policy/team/p").is_ok());
        assert!(managed_policy_arn("arn:aws:iam::aws:role/x").is_err());
        // Nothing but IAM's path characters: these strings reach rendered templates.
        assert!(managed_policy_arn("arn:aws:iam::aws:policy/x\nResources:").is_err());
        assert!(managed_policy_arn("arn:aws:iam::aws:policy/a\u{2028}b/x").is_err());
        assert!(managed_policy_arn("arn:aws-cn:iam::aws:policy/team/p-1").is_ok());
    }

    #[test]
    fn issuers() {
        assert!(issuer_url("https://gitlab.com").is_ok());
        assert!(issuer_url("http://gitlab.com").is_err());
        assert!(issuer_url("https://gitlab.com/").is_err());
        assert!(issuer_url("https://gitlab.com\u{85}x").is_err());
        assert!(issuer_url("https://{{resolve:ssm:/x}}").is_err());
    }

    #[test]
    fn stack_names_and_gitlab_environments() {
        assert!(stack_name("stack name", "rolehop-broker", 128).is_ok());
        assert!(stack_name("stack name", "1x", 128).is_err());
        assert!(stack_name("stack name", "a\nb", 128).is_err());
        assert!(gitlab_environment("review/app 1.2", true).is_ok());
        assert!(gitlab_environment("review/*", false).is_ok());
        assert!(
            gitlab_environment("review/*", true)
                .unwrap_err()
                .contains("cannot be a glob")
        );
        assert!(gitlab_environment("prod$CI_JOB_ID", false).is_err());
        assert!(gitlab_environment("prod\n", false).is_err());
    }
}
