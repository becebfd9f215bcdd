//! Admin-equivalence: a principal is admin-equivalent when its effective identity permissions
//! (policies, then boundary and SCPs; conditions assumed to hold) let it do anything, or let
//! it give itself anything. Concretely, any of:
//! - every action on every resource (`*`, as in AdministratorAccess): an action no policy
//!   names explicitly (`rolehopprobe:AnyAction`) is allowed on any resource, and so is
//!   `iam:PutRolePolicy`;
//! - IAM privilege escalation on arbitrary IAM resources of its account: attaching or writing
//!   policies on users, groups or roles, new policy versions, new access keys or login
//!   profiles for other users, or rewriting a role's trust policy;
//! - `iam:PassRole` on any role together with a way to run code as the passed role
//!   (Lambda, EC2, CloudFormation, ECS, Glue, CodeBuild, Data Pipeline).

use crate::eval::{Identity, identity_allows};
use crate::graph::Prepared;
use crate::model::arn_partition;

/// An action no policy names explicitly: allowed only by a wildcard that allows everything.
const ANY_ACTION: &str = "rolehopprobe:AnyAction";

const ESCALATION: [(&str, &str); 10] = [
    ("iam:AttachUserPolicy", "user/rolehop-probe"),
    ("iam:PutUserPolicy", "user/rolehop-probe"),
    ("iam:AttachGroupPolicy", "group/rolehop-probe"),
    ("iam:PutGroupPolicy", "group/rolehop-probe"),
    ("iam:AttachRolePolicy", "role/rolehop-probe"),
    ("iam:PutRolePolicy", "role/rolehop-probe"),
    ("iam:CreatePolicyVersion", "policy/rolehop-probe"),
    ("iam:CreateAccessKey", "user/rolehop-probe"),
    ("iam:CreateLoginProfile", "user/rolehop-probe"),
    ("iam:UpdateAssumeRolePolicy", "role/rolehop-probe"),
];

const RUN_AS_ROLE: [&str; 7] = [
    "lambda:CreateFunction",
    "ec2:RunInstances",
    "cloudformation:CreateStack",
    "ecs:RunTask",
    "glue:CreateDevEndpoint",
    "codebuild:CreateProject",
    "datapipeline:CreatePipeline",
];

/// Per principal of `prep`: why it is admin-equivalent, or `None`. A principal's identity (a
/// formatted session ARN and the lists of its documents) is only built when one of its
/// policies names a probed action at all, which at 200,000 roles is a handful; whether a
/// document names one is asked once per document, not once per principal attaching it.
pub fn reasons(prep: &Prepared<'_>) -> Vec<Option<String>> {
    // What `admin_reason` asks first; the actions it asks after `iam:PassRole` only matter
    // once that is allowed.
    let names_probe: Vec<bool> = prep
        .docs
        .iter()
        .map(|d| {
            [ANY_ACTION, "iam:PassRole"]
                .into_iter()
                .chain(ESCALATION.iter().map(|(action, _)| *action))
                .any(|action| d.may_allow_action(action))
        })
        .collect();
    (0..prep.estate.principals.len())
        .map(|i| {
            if !prep.policies[i].iter().any(|&d| names_probe[d]) {
                return None;
            }
            let p = &prep.estate.principals[i];
            admin_reason(&prep.identity(i), arn_partition(&p.arn), &p.account)
        })
        .collect()
}

/// Why `id` (of `account`) is admin-equivalent, or `None`.
pub fn admin_reason(id: &Identity<'_>, partition: &str, account: &str) -> Option<String> {
    let iam = |res: &str| format!("arn:{partition}:iam::{account}:{res}");
    // The evaluator only runs (and the probe ARN is only formatted) when some Allow statement
    // names the action at all: most principals hold no IAM rights, and at 200,000 roles the
    // eleven probe ARNs formatted per principal regardless were a measurable share of the
    // audit.
    let allows = |action: &str, resource: &dyn Fn() -> String| {
        id.policies.iter().any(|d| d.may_allow_action(action))
            && identity_allows(id, action, &resource()).is_allowed()
    };
    if allows(ANY_ACTION, &|| "arn:aws:rolehopprobe:::any".to_owned())
        && allows("iam:PutRolePolicy", &|| iam("role/rolehop-probe"))
    {
        return Some("allows every action on every resource".to_owned());
    }
    for (action, res) in ESCALATION {
        if allows(action, &|| iam(res)) {
            return Some(format!(
                "allows `{action}` on any {}: it can grant itself anything",
                res.split('/').next().unwrap_or(res)
            ));
        }
    }
    if allows("iam:PassRole", &|| iam("role/rolehop-probe")) {
        for action in RUN_AS_ROLE {
            if allows(action, &|| "*".to_owned()) {
                return Some(format!(
                    "allows `iam:PassRole` on any role with `{action}`: it can run code as a more powerful role"
                ));
            }
        }
    }
    None
}
