//! The few AWS managed policies a topology commonly names, for when the estate does not carry
//! their documents (a topology names them by ARN only). Written from their published meaning
//! and reduced to what decides reachability and admin-equivalence; anything not listed is
//! reported as not evaluated rather than guessed.

use serde_json::{Value, json};

/// The document of a well-known AWS managed policy, if rolehop knows it.
pub fn aws_managed(arn: &str) -> Option<Value> {
    let name = arn.rsplit('/').next()?;
    if !arn.contains(":iam::aws:policy/") {
        return None;
    }
    let any = |actions: Value| json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]});
    Some(match name {
        "AdministratorAccess" => any(json!("*")),
        "IAMFullAccess" => any(json!([
            "iam:*",
            "organizations:DescribeAccount",
            "organizations:DescribeOrganization",
            "organizations:DescribeOrganizationalUnit",
            "organizations:DescribePolicy",
            "organizations:ListChildren",
            "organizations:ListParents",
            "organizations:ListPoliciesForTarget",
            "organizations:ListRoots",
            "organizations:ListPolicies",
            "organizations:ListTargetsForPolicy"
        ])),
        "PowerUserAccess" => json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*"], "Resource": "*"},
            {"Effect": "Allow", "Action": ["iam:CreateServiceLinkedRole", "iam:DeleteServiceLinkedRole",
                "iam:ListRoles", "organizations:DescribeOrganization", "account:ListRegions",
                "account:GetAccountInformation"], "Resource": "*"}]}),
        "AWSCloudFormationFullAccess" => any(json!("cloudformation:*")),
        "AWSCloudFormationReadOnlyAccess" => any(json!([
            "cloudformation:Describe*",
            "cloudformation:EstimateTemplateCost",
            "cloudformation:Get*",
            "cloudformation:List*",
            "cloudformation:ValidateTemplate",
            "cloudformation:Detect*"
        ])),
        "ReadOnlyAccess" | "ViewOnlyAccess" => any(json!(["*:Describe*", "*:Get*", "*:List*"])),
        "AmazonS3FullAccess" => any(json!(["s3:*", "s3-object-lambda:*"])),
        "AmazonS3ReadOnlyAccess" => any(json!(["s3:Get*", "s3:List*", "s3:Describe*"])),
        _ => return None,
    })
}
