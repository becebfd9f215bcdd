//! The request being decided: who (principal) does what (action) on which resource, with
//! which context.

use crate::context::Context;

/// Who makes the request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    /// An IAM user, role, assumed-role session, federated user or account root ARN
    /// (`arn:aws:sts::123456789012:assumed-role/deploy/job-42`).
    Arn(String),
    /// An AWS service principal (`lambda.amazonaws.com`).
    Service(String),
    /// A federated identity provider: an OIDC/SAML provider ARN
    /// (`arn:aws:iam::123456789012:oidc-provider/gitlab.com`) or `cognito-identity.amazonaws.com`,
    /// as for `sts:AssumeRoleWithWebIdentity`.
    Federated(String),
    /// An S3 canonical user id.
    CanonicalUser(String),
    /// An unauthenticated caller.
    Anonymous,
}

impl Principal {
    /// An IAM principal by ARN (user, role, or assumed-role session).
    pub fn arn(arn: impl Into<String>) -> Principal {
        Principal::Arn(arn.into())
    }

    /// An AWS service principal (`cloudformation.amazonaws.com`).
    pub fn service(name: impl Into<String>) -> Principal {
        Principal::Service(name.into())
    }

    /// Classifies a principal string the way case files and CLI flags write it: an ARN
    /// (`oidc-provider`/`saml-provider` ARNs become [`Principal::Federated`]), a service
    /// name containing a dot, or `anonymous`.
    pub fn from_string(s: &str) -> Principal {
        if s.starts_with("arn:") {
            let resource = s.splitn(6, ':').nth(5).unwrap_or("");
            if resource.starts_with("oidc-provider/") || resource.starts_with("saml-provider/") {
                Principal::Federated(s.to_string())
            } else {
                Principal::Arn(s.to_string())
            }
        } else if s.eq_ignore_ascii_case("anonymous") || s == "*" {
            Principal::Anonymous
        } else if s.contains('.') {
            Principal::Service(s.to_string())
        } else {
            Principal::CanonicalUser(s.to_string())
        }
    }

    /// The account that owns an ARN principal (user, role, session, root, provider).
    pub fn account(&self) -> Option<&str> {
        match self {
            Principal::Arn(a) | Principal::Federated(a) => {
                a.split(':').nth(4).filter(|acct| !acct.is_empty())
            }
            _ => None,
        }
    }
}

/// One request to decide.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `service:Action`, any case.
    pub action: String,
    /// The resource ARN (or `*` for actions without a resource).
    pub resource: String,
    /// The account owning the resource; derived from the ARN when `None`.
    pub resource_account: Option<String>,
    /// Who asks.
    pub principal: Principal,
    /// The condition keys the request carries.
    pub context: Context,
    /// The action takes no resource (`s3:ListAllMyBuckets`): its resource `*` is literal, so
    /// only `Resource: "*"` grants it. Otherwise `*` or `?` in [`Request::resource`] make
    /// the request a pattern (any resource it covers).
    pub wildcard_only_action: bool,
}

impl Request {
    /// A request without context keys, its resource's account read from the ARN.
    pub fn new(
        principal: Principal,
        action: impl Into<String>,
        resource: impl Into<String>,
    ) -> Request {
        Request {
            action: action.into(),
            resource: resource.into(),
            resource_account: None,
            principal,
            context: Context::new(),
            wildcard_only_action: false,
        }
    }

    /// Replaces the condition keys, builder style.
    pub fn with_context(mut self, context: Context) -> Request {
        self.context = context;
        self
    }

    /// Marks the action as taking no resource (see [`Request::wildcard_only_action`]).
    pub fn wildcard_only(mut self) -> Request {
        self.wildcard_only_action = true;
        self
    }

    /// Names the resource's account when its ARN has none (S3 buckets), which decides
    /// whether the request crosses accounts.
    pub fn with_resource_account(mut self, account: impl Into<String>) -> Request {
        self.resource_account = Some(account.into());
        self
    }

    /// Fills the global condition keys AWS derives from the principal and resource, unless
    /// the context already sets them: `aws:PrincipalArn` (a session's role ARN, without its
    /// path, which a session ARN does not carry), `aws:PrincipalAccount`, `aws:PrincipalType`,
    /// `aws:username` (IAM users), `aws:ResourceAccount`. Requests built by hand or from
    /// case files carry only what they set, as IAM's simulator does.
    pub fn with_derived_keys(mut self) -> Request {
        if let Principal::Arn(arn) = &self.principal
            && let Some(p) = crate::principal::split_principal_arn(arn)
        {
            let (kind, principal_arn) = match (p.session, p.role) {
                (Some((role, _)), _) => (
                    "AssumedRole",
                    format!("arn:{}:iam::{}:role/{role}", p.partition, p.account),
                ),
                (None, Some(_)) => ("AssumedRole", arn.clone()),
                _ if arn.ends_with(":root") => ("Account", arn.clone()),
                _ => ("User", arn.clone()),
            };
            self.context
                .insert_default("aws:PrincipalArn", principal_arn);
            self.context
                .insert_default("aws:PrincipalAccount", p.account);
            self.context.insert_default("aws:PrincipalType", kind);
            if kind == "User"
                && let Some(name) = arn.rsplit('/').next()
            {
                self.context.insert_default("aws:username", name);
            }
        }
        if let Some(acct) = self.resource_account().map(str::to_string) {
            self.context.insert_default("aws:ResourceAccount", acct);
        }
        self
    }

    /// The resource's account: the explicit one, else the ARN's account segment.
    pub fn resource_account(&self) -> Option<&str> {
        if let Some(a) = &self.resource_account {
            return Some(a);
        }
        self.resource.split(':').nth(4).filter(|a| !a.is_empty())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn derived_keys_come_from_principal_and_resource() {
        let r = Request::new(
            Principal::arn("arn:aws:sts::111111111111:assumed-role/deploy/job-1"),
            "s3:GetObject",
            "arn:aws:s3:::b/k",
        )
        .with_resource_account("222222222222")
        .with_derived_keys();
        assert_eq!(
            r.context.get_one("aws:principalarn"),
            Some("arn:aws:iam::111111111111:role/deploy")
        );
        assert_eq!(r.context.get_one("aws:PrincipalType"), Some("AssumedRole"));
        assert_eq!(
            r.context.get_one("aws:ResourceAccount"),
            Some("222222222222")
        );
        assert_eq!(r.context.get_one("aws:username"), None);
        let u = Request::new(
            Principal::arn("arn:aws:iam::1:user/ops/alice"),
            "s3:GetObject",
            "*",
        )
        .with_context(Context::new().with("aws:PrincipalType", "Custom"))
        .with_derived_keys();
        assert_eq!(u.context.get_one("aws:username"), Some("alice"));
        assert_eq!(u.context.get_one("aws:PrincipalType"), Some("Custom"));
    }

    #[test]
    fn principal_strings_are_classified() {
        assert!(matches!(
            Principal::from_string("arn:aws:iam::1:user/u"),
            Principal::Arn(_)
        ));
        assert!(matches!(
            Principal::from_string("arn:aws:iam::1:oidc-provider/gitlab.com"),
            Principal::Federated(_)
        ));
        assert!(matches!(
            Principal::from_string("lambda.amazonaws.com"),
            Principal::Service(_)
        ));
        assert_eq!(Principal::from_string("anonymous"), Principal::Anonymous);
        assert_eq!(
            Principal::arn("arn:aws:iam::123:role/x").account(),
            Some("123")
        );
    }
}
