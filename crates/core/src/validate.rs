//! AWS and GitLab identifier rules, checked once where raw input enters.
//!
//! Each check returns a message naming the rule, so topology and CLI errors read the same.

/// STS's `[\w+=,.@-]` (role session names, SourceIdentity, role names).
pub fn is_sts_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-')
}

/// A 12-digit AWS account id.
pub fn account_id(s: &str) -> Result<(), String> {
    if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not an AWS account id: it must be exactly 12 digits (quote it in TOML so leading zeros survive)"
        ))
    }
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

/// An AWS region name such as `eu-west-1` or `us-gov-east-1`.
pub fn region(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.split('-').collect();
    let ok = parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not an AWS region name (like `eu-west-1`)"
        ))
    }
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

/// An IAM managed policy ARN (`arn:<partition>:iam::<account|aws>:policy/<path/name>`).
pub fn managed_policy_arn(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[3].is_empty()
        && (parts[4] == "aws" || account_id(parts[4]).is_ok())
        && parts[5].starts_with("policy/")
        && parts[5].len() > "policy/".len();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not an IAM managed policy ARN (like `arn:aws:iam::aws:policy/ReadOnlyAccess`)"
        ))
    }
}

/// An IAM role ARN; returns (partition, account, role path+name).
pub fn role_arn(s: &str) -> Result<(String, String, String), String> {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    if parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[3].is_empty()
        && account_id(parts[4]).is_ok()
        && let Some(name) = parts[5].strip_prefix("role/")
    {
        let short = name.rsplit('/').next().unwrap_or(name);
        if iam_name("role name", short).is_ok() {
            return Ok((parts[1].to_owned(), parts[4].to_owned(), name.to_owned()));
        }
    }
    Err(format!(
        "`{s}` is not an IAM role ARN (like `arn:aws:iam::123456789012:role/deploy`)"
    ))
}

/// An https URL without a trailing slash (an OIDC issuer).
pub fn issuer_url(s: &str) -> Result<(), String> {
    let Some(rest) = s.strip_prefix("https://") else {
        return Err(format!(
            "issuer `{s}` must start with `https://` (AWS only trusts https OIDC issuers)"
        ));
    };
    if rest.is_empty()
        || rest.ends_with('/')
        || rest.contains(char::is_whitespace)
        || rest.contains('?')
        || rest.contains('#')
    {
        return Err(format!(
            "issuer `{s}` must be a bare https URL without a trailing slash, query or fragment, exactly as GitLab's `iss` claim"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids() {
        assert!(account_id("012345678901").is_ok());
        assert!(account_id("12345678901").is_err());
        assert!(account_id("12345678901a").is_err());
    }

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
    fn regions() {
        assert!(region("eu-west-1").is_ok());
        assert!(region("us-gov-east-1").is_ok());
        assert!(region("EU-west-1").is_err());
        assert!(region("euwest1").is_err());
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
        assert_eq!(
            role_arn("arn:aws:iam::123456789012:role/path/deploy")
                .unwrap()
                .1,
            "123456789012"
        );
        assert!(role_arn("arn:aws:iam::123:role/x").is_err());
        assert!(role_arn("arn:aws:iam::123456789012:user/x").is_err());
    }

    #[test]
    fn issuers() {
        assert!(issuer_url("https://gitlab.com").is_ok());
        assert!(issuer_url("http://gitlab.com").is_err());
        assert!(issuer_url("https://gitlab.com/").is_err());
    }
}
