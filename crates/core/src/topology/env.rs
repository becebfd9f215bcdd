//! One `[environments.<name>]` section built into an [`Environment`].

use indexmap::IndexMap;
use toml::Spanned;

use super::raw::*;
use super::*;
use super::{build::*, checks::*};
use crate::duration::{format_secs, parse_duration_secs};
use crate::validate;

pub(super) fn build_env(
    c: &mut Checker<'_>,
    broker: &Broker,
    name: &S<String>,
    e: RawEnv,
    read: &mut ReadFile<'_>,
    account_owner: &mut IndexMap<String, (String, String)>,
    permission_model: &PermissionModel,
) -> Environment {
    let n = name.get_ref().clone();
    let name_ok = !n.is_empty()
        && n.len() <= 32
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !n.starts_with('-');
    if !name_ok {
        c.report(name.span(), "environment-name", format!("environment name `{n}` must be 1 to 32 of `a-z`, `0-9` and `-` (it becomes part of role, user and stack names)"));
    }
    let tier = match e.tier.as_ref().map(|t| t.get_ref().as_str()) {
        None => {
            if e.protected {
                Tier::Production
            } else {
                Tier::Development
            }
        }
        Some("production") => Tier::Production,
        Some("staging") => Tier::Staging,
        Some("testing") => Tier::Testing,
        Some("development") => Tier::Development,
        Some("other") => Tier::Other,
        Some(other) => {
            if let Some(t) = &e.tier {
                c.report(t.span(), "tier", format!("unknown deployment tier `{other}` (production, staging, testing, development, other)"));
            }
            Tier::Other
        }
    };
    let role = |c: &mut Checker<'_>, v: Option<S<String>>, kind: &str, default: String| match v {
        Some(v) => {
            c.check(&v, "role-name", |s| validate::iam_name(kind, s));
            v.into_inner()
        }
        None => {
            if name_ok && validate::iam_name(kind, &default).is_err() {
                c.report(
                    name.span(),
                    "role-name",
                    format!("the default {kind} `{default}` is too long; set it explicitly"),
                );
            }
            default
        }
    };
    let service_role = role(
        c,
        e.service_role,
        "service role name",
        format!("rolehop-{n}-service"),
    );
    let deployment_role = role(
        c,
        e.deployment_role,
        "deployment role name",
        format!("rolehop-{n}-deploy"),
    );
    let broker_user = role(c, e.broker_user, "broker user name", format!("rolehop-{n}"));

    let max_session_secs = match e.max_session {
        None => CHAINED_SESSION_MAX_SECS,
        Some(d) => {
            let span = d.span();
            let secs = match d.into_inner() {
                RawDuration::Secs(s) => u64::try_from(s).map_err(|_| format!("`{s}` is negative")),
                RawDuration::Text(t) => parse_duration_secs(&t),
            };
            match secs {
                Ok(s) if (SESSION_MIN_SECS..=CHAINED_SESSION_MAX_SECS).contains(&s) => s,
                Ok(s) => {
                    c.report(span, "session-duration", format!(
                        "max_session {} is outside {}..{}: deployment sessions are reached by role chaining, which AWS caps at 1h, and STS refuses less than 15m",
                        format_secs(s), format_secs(SESSION_MIN_SECS), format_secs(CHAINED_SESSION_MAX_SECS)));
                    CHAINED_SESSION_MAX_SECS
                }
                Err(m) => {
                    c.report(span, "session-duration", m);
                    CHAINED_SESSION_MAX_SECS
                }
            }
        }
    };
    if let Some(x) = &e.external_id {
        c.check(x, "external-id", validate::external_id);
    }

    let gitlab = build_access(c, &n, e.protected, e.gitlab);
    let session_policies = super::session::build_rules(c, &n, e.session_policies, read);
    let session_policy_default = match &e.session_policy_default {
        None => Unmatched::default(),
        Some(d) => Unmatched::parse(d.get_ref()).unwrap_or_else(|| {
            c.report(d.span(), "session-policy", format!("unknown `session_policy_default` `{}`: use `refuse` (jobs matching no rule are refused) or `full-role` (they get the deployment role's full rights)", d.get_ref()));
            Unmatched::default()
        }),
    };
    if let Some(d) = &e.session_policy_default
        && session_policies.is_empty()
    {
        c.report(d.span(), "session-policy", "`session_policy_default` has no effect without `[[environments.<name>.session_policies]]`");
    }
    let session_tags = super::session::build_tags(c, &n, e.session_tags);

    if e.accounts.is_empty() {
        c.report(name.span(), "no-accounts", format!("environment `{n}` has no target account: add `[environments.{n}.accounts]` with `name = \"123456789012\"`"));
    }
    let mut accounts = Vec::new();
    for (an, id) in e.accounts {
        let an_s = an.get_ref();
        // Account names are part of GitLab job names, which GitLab caps at 255 characters.
        if an_s.is_empty()
            || an_s.len() > 64
            || !an_s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            c.report(
                an.span(),
                "account-name",
                format!("account name `{an_s}` may only use letters, digits, `-` and `_`, at most 64 characters"),
            );
        }
        let id_span = id.span();
        let id: AccountId = c.parse(id, "account-id");
        if id == broker.account_id {
            c.report(id_span.clone(), "broker-as-target", format!("target `{an_s}` is the broker account `{}`: the broker holds nothing but IAM, deploy to other accounts", broker.account_id));
        }
        if let Some((prev_env, prev_name)) = account_owner.get(id.as_str()) {
            if prev_env == &n {
                c.report(
                    id_span.clone(),
                    "duplicate-account",
                    format!(
                        "account `{}` is listed twice in `{n}` (as `{prev_name}` and `{an_s}`)",
                        id.as_str()
                    ),
                );
            } else {
                c.report(id_span.clone(), "shared-account", format!("account `{}` is a target of both `{prev_env}` (as `{prev_name}`) and `{n}` (as `{an_s}`): environments must not share target accounts, or one environment's credentials reach the other's", id.as_str()));
            }
        } else {
            account_owner.insert(id.as_str().to_owned(), (n.clone(), an_s.clone()));
        }
        accounts.push(TargetAccount {
            line: c.line(an.span()),
            name: an.into_inner(),
            id,
        });
    }

    let permissions = match e.permissions {
        None => Permissions {
            managed_policies: vec![],
            inline_policies: vec![],
            boundary: None,
        },
        Some(p) => {
            let p = p.into_inner();
            for a in &p.managed_policies {
                c.check(a, "policy-arn", validate::managed_policy_arn);
            }
            if p.managed_policies.len() > 20 {
                c.report(
                    p.managed_policies[20].span(),
                    "too-many-policies",
                    "a role can have at most 20 managed policies attached (IAM's hard quota)",
                );
            }
            if let Some(b) = &p.boundary {
                c.check(b, "policy-arn", validate::managed_policy_arn);
            }
            let uses_ous = !e.organizational_units.is_empty();
            for a in p.managed_policies.iter().chain(&p.boundary) {
                if let Some(m) = foreign_policy(a.get_ref(), &accounts, uses_ous) {
                    c.report(a.span(), "policy-account", m);
                }
            }
            let mut inline = Vec::new();
            for path in &p.inline_policies {
                let stem = path
                    .get_ref()
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .trim_end_matches(".json")
                    .to_owned();
                if validate::iam_name("policy name", &stem).is_err() || stem.chars().count() > 128 {
                    c.report(path.span(), "policy-name", format!("inline policy file `{}` must have a name of letters, digits and `+=,.@_-` (it becomes the policy name)", path.get_ref()));
                }
                match read(path.get_ref()) {
                    Err(m) => c.report(
                        path.span(),
                        "policy-file",
                        format!("cannot read inline policy `{}`: {m}", path.get_ref()),
                    ),
                    Ok(text) => match serde_json::from_str::<serde_json::Value>(&text) {
                        Ok(doc) if let Some(m) = dynamic_reference_in(&doc) => {
                            c.report(
                                path.span(),
                                "policy-file",
                                format!("inline policy `{}`: {m}", path.get_ref()),
                            );
                        }
                        // Parsed with the evaluator's own parser: a document it refuses would
                        // be refused by IAM at deploy time, or silently grant nothing, and the
                        // audit could not evaluate it.
                        Ok(doc) => match inline_policy_problem(&doc) {
                            None => inline.push(InlinePolicy {
                                name: stem,
                                path: path.get_ref().clone(),
                                document: doc,
                            }),
                            Some(m) => c.report(
                                path.span(),
                                "policy-file",
                                format!("inline policy `{}` {m}", path.get_ref()),
                            ),
                        },
                        Err(err) => c.report(
                            path.span(),
                            "policy-file",
                            format!("inline policy `{}` is not JSON: {err}", path.get_ref()),
                        ),
                    },
                }
            }
            Permissions {
                managed_policies: p
                    .managed_policies
                    .into_iter()
                    .map(Spanned::into_inner)
                    .collect(),
                inline_policies: inline,
                boundary: p.boundary.map(Spanned::into_inner),
            }
        }
    };
    let organizational_units = e
        .organizational_units
        .into_iter()
        .map(|ou| {
            if !organizational_unit_id_ok(ou.get_ref()) {
                c.report(
                    ou.span(),
                    "organizational-unit",
                    format!(
                        "`{}` is not an organizational unit or root id (`ou-` 4-32 characters `-` 8-32 characters, or `r-` 4-32 characters; lowercase letters and digits)",
                        ou.get_ref()
                    ),
                );
            } else if !matches!(permission_model, PermissionModel::ServiceManaged { .. }) {
                // Self-managed StackSets take accounts only: the OU would be silently unused.
                c.report(
                    ou.span(),
                    "organizational-unit",
                    format!(
                        "`{}`: `organizational_units` are only used with `[rollout] permission_model = \"service-managed\"`",
                        ou.get_ref()
                    ),
                );
            }
            ou.into_inner()
        })
        .collect();

    Environment {
        line: c.line(name.span()),
        name: n,
        protected: e.protected,
        tier,
        service_role,
        deployment_role,
        broker_user,
        max_session_secs,
        external_id: e.external_id.map(Spanned::into_inner),
        gitlab,
        accounts,
        permissions,
        organizational_units,
        // Filled in by the caller, which knows the auth mode.
        gate: None,
        session_policies,
        session_policy_default,
        session_tags,
    }
}

/// Why a customer managed policy (or boundary) named with a concrete account id cannot be
/// attached to this environment's deployment role: IAM attaches only policies of the role's own
/// account, and the role is created in every target account, so CloudFormation would fail in
/// each account the id is not.
fn foreign_policy(arn: &str, accounts: &[TargetAccount], uses_ous: bool) -> Option<String> {
    let owner = validate::managed_policy_account(arn);
    if owner.parse::<AccountId>().is_err() {
        // `aws` (AWS managed) and `${AWS::AccountId}` fit every account; malformed ARNs are
        // reported by `policy-arn`.
        return None;
    }
    let per_account = arn.replacen(
        &format!("::{owner}:"),
        &format!("::{}:", validate::ACCOUNT_ID_VAR),
        1,
    );
    let others: Vec<String> = accounts
        .iter()
        .filter(|a| a.id != owner)
        .map(|a| format!("`{}` ({})", a.name, a.id))
        .collect();
    let where_ = if uses_ous {
        "the accounts of its organizational units".to_owned()
    } else if others.is_empty() {
        return None;
    } else {
        others.join(", ")
    };
    Some(format!(
        "managed policy `{arn}` belongs to account `{owner}`, but the deployment role is created in {where_}: IAM attaches only policies of the role's own account, so CloudFormation would fail there; write `{per_account}` to attach the policy of that name that exists in each target account"
    ))
}
