//! Reads `aws iam get-account-authorization-details` exports (one per account) into the
//! estate. Tolerant by design: anything unreadable inside becomes a [`Problem`] (and so a
//! finding) rather than stopping the audit; only a file that is not an export at all is an error.

use std::collections::BTreeMap;

use rolehop_policy::parse::document_value;
use serde_json::Value;

use crate::InputError;
use crate::model::{
    Estate, Group, Kind, NamedDoc, Origin, Principal, Problem, ProblemKind, Texts, split_arn,
};

/// Adds one export (`file` names it in messages) to `estate`.
pub fn add_export(estate: &mut Estate, file: &str, text: &str) -> Result<(), InputError> {
    let mut v: Value = serde_json::from_str(text).map_err(|e| InputError::Json {
        file: file.to_owned(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let known = [
        "UserDetailList",
        "GroupDetailList",
        "RoleDetailList",
        "Policies",
    ];
    if !v.is_object() || !known.iter().any(|k| v.get(k).is_some()) {
        return Err(InputError::Shape {
            file: file.to_owned(),
            message: "not an authorization-details export: expected `UserDetailList`, `RoleDetailList`, `GroupDetailList` or `Policies`".to_owned(),
        });
    }
    let mut problem = |kind: ProblemKind, resource: &str, message: String| {
        estate.problems.push(Problem {
            kind,
            resource: resource.to_owned(),
            message: format!("{file}: {message}"),
        });
    };
    // A section of the wrong type would otherwise read as empty: an audit that silently
    // saw no users is worse than one that says it could not read them.
    for key in known {
        if let Some(section) = v.get(key).filter(|s| !s.is_array()) {
            problem(
                ProblemKind::Unreadable,
                file,
                format!(
                    "`{key}` must be a list, found {}: its entries were skipped",
                    rolehop_policy::parse::json_kind(section)
                ),
            );
        }
    }
    let mut policies = Vec::new();
    for (i, p) in list_mut(&mut v, "Policies").enumerate() {
        let Some(arn) = p.get("Arn").and_then(Value::as_str).map(str::to_owned) else {
            problem(
                ProblemKind::Unreadable,
                file,
                format!("Policies[{i}] has no `Arn`"),
            );
            continue;
        };
        if !is_iam_arn(&arn) {
            problem(
                ProblemKind::Unreadable,
                file,
                format!("Policies[{i}]: `{arn}` is not an IAM ARN"),
            );
            continue;
        }
        let arn = arn.as_str();
        let default = p
            .get("DefaultVersionId")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let default = default.as_deref();
        let version = list_mut(p, "PolicyVersionList").find(|ver| {
            ver.get("IsDefaultVersion").and_then(Value::as_bool) == Some(true)
                || (default.is_some() && ver.get("VersionId").and_then(Value::as_str) == default)
        });
        match version
            .and_then(|ver| ver.get_mut("Document"))
            .map(Value::take)
        {
            None => problem(
                ProblemKind::Unreadable,
                arn,
                "managed policy has no default version document".to_owned(),
            ),
            Some(d) => match document_value(d) {
                Ok(doc) => policies.push((arn.to_owned(), doc)),
                Err(m) => problem(
                    ProblemKind::Unreadable,
                    arn,
                    format!("default version document: {m}"),
                ),
            },
        }
    }
    estate.managed.extend(policies);

    let mut groups = Vec::new();
    for (i, g) in list_mut(&mut v, "GroupDetailList").enumerate() {
        let Some(arn) = g.get("Arn").and_then(Value::as_str).map(str::to_owned) else {
            problem(
                ProblemKind::Unreadable,
                file,
                format!("GroupDetailList[{i}] has no `Arn`"),
            );
            continue;
        };
        if !is_iam_arn(&arn) {
            problem(
                ProblemKind::Unreadable,
                file,
                format!("GroupDetailList[{i}]: `{arn}` is not an IAM ARN"),
            );
            continue;
        }
        let arn = arn.as_str();
        let inline = inline_docs(g, "GroupPolicyList", arn, &mut estate.texts, &mut problem);
        groups.push(Group {
            arn: arn.to_owned(),
            inline,
            managed: attached(g),
        });
    }
    // Users name their groups by name; map within the export's account.
    let group_by_name: BTreeMap<(String, String), String> = groups
        .iter()
        .map(|g| {
            let (acct, name) = split_arn(&g.arn);
            ((acct, name), g.arn.clone())
        })
        .collect();
    for g in groups {
        estate.groups.insert(g.arn.clone(), g);
    }

    for (i, u) in list_mut(&mut v, "UserDetailList").enumerate() {
        let Some(arn) = u.get("Arn").and_then(Value::as_str).map(str::to_owned) else {
            problem(
                ProblemKind::Unreadable,
                file,
                format!("UserDetailList[{i}]: a user has no `Arn`"),
            );
            continue;
        };
        if !is_iam_arn(&arn) {
            problem(
                ProblemKind::Unreadable,
                file,
                format!("UserDetailList[{i}]: `{arn}` is not an IAM ARN"),
            );
            continue;
        }
        let arn = arn.as_str();
        let mut p = Principal::new(Kind::User, arn);
        p.unique_id = str_of(u, "UserId");
        p.inline = inline_docs(u, "UserPolicyList", arn, &mut estate.texts, &mut problem);
        p.managed = attached(u);
        p.boundary = boundary(u);
        p.tags = tags(u);
        for g in list(u, "GroupList") {
            if let Some(name) = g.as_str() {
                match group_by_name.get(&(p.account.clone(), name.to_owned())) {
                    Some(ga) => p.groups.push(ga.clone()),
                    None => problem(
                        ProblemKind::Unreadable,
                        arn,
                        format!("user is in group `{name}`, which the export does not contain"),
                    ),
                }
            }
        }
        p.origin = Some(export_origin(file));
        estate.principals.push(p);
    }

    for (i, r) in list_mut(&mut v, "RoleDetailList").enumerate() {
        let Some(arn) = r.get("Arn").and_then(Value::as_str).map(str::to_owned) else {
            problem(
                ProblemKind::Unreadable,
                file,
                format!("RoleDetailList[{i}]: a role has no `Arn`"),
            );
            continue;
        };
        if !is_iam_arn(&arn) {
            problem(
                ProblemKind::Unreadable,
                file,
                format!("RoleDetailList[{i}]: `{arn}` is not an IAM ARN"),
            );
            continue;
        }
        let arn = arn.as_str();
        let mut p = Principal::new(Kind::Role, arn);
        p.unique_id = str_of(r, "RoleId");
        match r
            .get_mut("AssumeRolePolicyDocument")
            .map(|d| document_value(d.take()))
        {
            Some(Ok(d)) => p.trust = Some(estate.texts.document(&d)),
            Some(Err(m)) => problem(
                ProblemKind::UnreadableTrust,
                arn,
                format!("trust policy: {m}"),
            ),
            None => problem(
                ProblemKind::UnreadableTrust,
                arn,
                "role has no `AssumeRolePolicyDocument`".to_owned(),
            ),
        }
        p.inline = inline_docs(r, "RolePolicyList", arn, &mut estate.texts, &mut problem);
        p.managed = attached(r);
        p.boundary = boundary(r);
        p.tags = tags(r);
        p.max_session_secs = r.get("MaxSessionDuration").and_then(Value::as_u64);
        p.last_used = r
            .get("RoleLastUsed")
            .and_then(|l| l.get("LastUsedDate"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        p.origin = Some(export_origin(file));
        estate.principals.push(p);
    }
    Ok(())
}

/// `arn:<partition>:iam::<account>:<type>/<name>`, the only ARNs an export holds.
fn is_iam_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, "iam", "", account, resource]
        if !partition.is_empty()
            && (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) || *account == "aws")
            && resource.contains('/'))
}

fn list_mut<'a>(v: &'a mut Value, key: &str) -> impl Iterator<Item = &'a mut Value> {
    v.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flat_map(|a| a.iter_mut())
}

fn list<'a>(v: &'a Value, key: &str) -> Vec<&'a Value> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn str_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn attached(v: &Value) -> Vec<String> {
    list(v, "AttachedManagedPolicies")
        .into_iter()
        .filter_map(|a| str_of(a, "PolicyArn"))
        .collect()
}

fn boundary(v: &Value) -> Option<String> {
    v.get("PermissionsBoundary")
        .and_then(|b| b.get("PermissionsBoundaryArn"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn tags(v: &Value) -> BTreeMap<String, String> {
    list(v, "Tags")
        .into_iter()
        .filter_map(|t| Some((str_of(t, "Key")?, str_of(t, "Value").unwrap_or_default())))
        .collect()
}

fn inline_docs(
    v: &mut Value,
    key: &str,
    owner: &str,
    texts: &mut Texts,
    problem: &mut impl FnMut(ProblemKind, &str, String),
) -> Vec<NamedDoc> {
    let mut out = Vec::new();
    for (i, p) in list_mut(v, key).enumerate() {
        let name = str_of(p, "PolicyName").unwrap_or_else(|| format!("{key}[{i}]"));
        match p
            .get_mut("PolicyDocument")
            .map(|d| document_value(d.take()))
        {
            Some(Ok(doc)) => out.push(NamedDoc {
                name,
                doc: texts.document(&doc),
            }),
            Some(Err(m)) => problem(
                ProblemKind::Unreadable,
                owner,
                format!("inline policy `{name}`: {m}"),
            ),
            None => problem(
                ProblemKind::Unreadable,
                owner,
                format!("inline policy `{name}` has no document"),
            ),
        }
    }
    out
}

/// Exports keep no line numbers: a finding points at the export the principal came from, so
/// with one export per account it names the account's file.
fn export_origin(file: &str) -> Origin {
    Origin {
        file: file.to_owned(),
        line: 1,
    }
}
