//! Checks shared by the topology's sections: auth kinds, ids, refs and globs, inline policies,
//! and the GitLab access of an environment.

use toml::Spanned;

use super::build::*;
use super::raw::*;
use super::*;
use crate::validate;

pub(super) enum AuthKind {
    Keys,
    Oidc,
}

pub(super) fn broker_auth(a: &Auth) -> AuthKind {
    match a {
        Auth::AccessKeys => AuthKind::Keys,
        Auth::Oidc { .. } | Auth::OidcGate { .. } => AuthKind::Oidc,
    }
}

/// CloudFormation's pattern for OU and root ids in DeploymentTargets:
/// `ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}` or `r-[a-z0-9]{4,32}`.
pub(super) fn organizational_unit_id_ok(id: &str) -> bool {
    let part = |s: &str, min: usize, max: usize| {
        (min..=max).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    if let Some(rest) = id.strip_prefix("ou-") {
        rest.split_once('-')
            .is_some_and(|(root, ou)| part(root, 4, 32) && part(ou, 8, 32))
    } else if let Some(root) = id.strip_prefix("r-") {
        part(root, 4, 32)
    } else {
        false
    }
}

/// The first key or string of a JSON document CloudFormation would resolve at deploy time.
pub(super) fn dynamic_reference_in(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => validate::no_dynamic_reference(s).err(),
        serde_json::Value::Array(a) => a.iter().find_map(dynamic_reference_in),
        serde_json::Value::Object(m) => m.iter().find_map(|(k, v)| {
            validate::no_dynamic_reference(k)
                .err()
                .or_else(|| dynamic_reference_in(v))
        }),
        _ => None,
    }
}

/// Why IAM would not take `doc` as a role's inline (identity) policy, if it would not: what
/// rolehop's policy parser refuses (with the JSON path), or a `Principal`, which identity
/// policies must not have.
pub(super) fn inline_policy_problem(doc: &serde_json::Value) -> Option<String> {
    if doc.get("Statement").is_none() {
        return Some("has no `Statement`".to_owned());
    }
    match rolehop_policy::Policy::from_value(doc) {
        Err(e) => Some(format!("is not a policy IAM accepts: {e}")),
        Ok(p) => p.statements.iter().find(|st| st.principal.is_some()).map(|st| {
            format!(
                "is an identity policy and must not name a principal: `Statement[{}]` has `Principal`/`NotPrincipal` (IAM refuses it)",
                st.index
            )
        }),
    }
}

pub(super) fn opt_string(v: Option<S<String>>, default: &str) -> String {
    v.map_or_else(|| default.to_owned(), Spanned::into_inner)
}

pub(super) fn is_glob_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '*')
}

/// What IAM's `StringLike` makes of a project glob, for messages.
pub(super) fn project_glob_admits(glob: &str) -> String {
    format!(
        "`{glob}` admits every project whose path matches it, in that group and in every subgroup below it (IAM's `*` matches any characters, `/` included)"
    )
}

/// A character git refuses in ref names or IAM would read as a pattern or policy variable.
pub(super) fn bad_ref_char(c: char) -> bool {
    c.is_whitespace() || c.is_control() || matches!(c, ':' | '?' | '[' | '\\' | '~' | '^' | '$')
}

/// The `[environments.<name>.gitlab]` table: projects, branches, tags and what a protected
/// environment must acknowledge about their globs.
pub(super) fn build_access(
    c: &mut Checker<'_>,
    env: &str,
    protected: bool,
    raw: S<RawAccess>,
) -> GitlabAccess {
    let access_span = raw.span();
    let ra = raw.into_inner();
    let migrated = refs_split(c, env, &ra);

    if ra.projects.is_empty() {
        c.report(
            access_span.clone(),
            "gitlab-projects",
            "`projects` must name at least one GitLab project path (`group/project`)",
        );
    }
    for p in &ra.projects {
        let s = p.get_ref();
        let top = s.split('/').next().unwrap_or("");
        if top.contains('*') {
            c.report(p.span(), "gitlab-project", format!("`{s}` has a wildcard in the top-level group, so it admits projects of any namespace whose name matches (anyone on the GitLab instance may create one); name the top-level group exactly"));
        } else if s.is_empty()
            || !s.contains('/')
            || !s.chars().all(is_glob_char)
            || s.split('/').any(str::is_empty)
        {
            c.report(
                p.span(),
                "gitlab-project",
                format!("`{s}` is not a GitLab project path (`group/project`, `group/subgroup/project`; `*` globs only below the top-level group)"),
            );
        } else if protected
            && is_glob(s)
            && !ra.accept_project_globs.iter().any(|a| a.get_ref() == s)
        {
            c.report(
                p.span(),
                "project-glob",
                format!(
                    "{} in protected environment `{env}`: whoever can create such a project reaches `{env}`; name the projects exactly, or accept it with `accept_project_globs = [\"{s}\"]`",
                    project_glob_admits(s)
                ),
            );
        }
    }
    for a in &ra.accept_project_globs {
        let s = a.get_ref();
        if !is_glob(s) || !ra.projects.iter().any(|p| p.get_ref() == s) {
            c.report(a.span(), "project-glob", format!("`{s}` in `accept_project_globs` is not a project glob listed in `projects`: list only the globs of `projects` you accept"));
        }
    }

    if ra.branches.is_empty() && ra.tags.is_empty() && !migrated {
        c.report(
            access_span,
            "gitlab-refs",
            "list the refs that may use this environment: `branches = [...]` and/or `tags = [...]` (names or `*` globs)",
        );
    }
    for (kind, plural, list) in [
        ("branch", "branches", &ra.branches),
        ("tag", "tags", &ra.tags),
    ] {
        for r in list {
            let s = r.get_ref();
            if s.is_empty() || s.chars().any(bad_ref_char) {
                c.report(
                    r.span(),
                    "gitlab-ref",
                    format!("`{s}` is not a {kind} name or glob (`*` is the only wildcard; no spaces, `:`, `?`, `[`, `\\`, `~`, `^` or `$`)"),
                );
            } else if protected
                && s.contains('*')
                && !ra.protected_ref_globs.iter().any(|g| g.get_ref() == s)
            {
                let what = if s == "*" {
                    format!("every {kind}")
                } else {
                    format!("every {kind} whose name matches `{s}`")
                };
                c.report(
                    r.span(),
                    "protected-ref-glob",
                    format!(
                        "{kind} glob `{s}` of protected environment `{env}` admits {what} (IAM's `*` matches any characters, `/` included), so anyone who can push such a {kind} reaches `{env}`; name exact {plural}, or protect every matching {kind} in GitLab and say so with `protected_ref_globs = [\"{s}\"]`"
                    ),
                );
            }
        }
    }
    for g in &ra.protected_ref_globs {
        let s = g.get_ref();
        let listed = ra.branches.iter().chain(&ra.tags).any(|r| r.get_ref() == s);
        if !s.contains('*') || !listed {
            c.report(g.span(), "protected-ref-glob", format!("`{s}` in `protected_ref_globs` is not a glob listed in `branches` or `tags`: list only the globs GitLab protects (exact names need no entry)"));
        }
    }

    for (i, ge) in ra.environments.iter().enumerate() {
        c.check(ge, "gitlab-environment", |s| {
            validate::gitlab_environment(s, i == 0)
        });
    }
    let strings = |v: Vec<S<String>>| v.into_iter().map(Spanned::into_inner).collect::<Vec<_>>();
    let mut environments = strings(ra.environments);
    if environments.is_empty() {
        environments.push(env.to_owned());
    }
    GitlabAccess {
        projects: strings(ra.projects),
        branches: strings(ra.branches),
        tags: strings(ra.tags),
        protected_ref_globs: strings(ra.protected_ref_globs),
        accept_project_globs: strings(ra.accept_project_globs),
        environments,
    }
}

/// Refuses the old `refs`/`ref_types` keys, which paired every ref with every ref type (so
/// `refs = ["main", "v*"]` trusted any *branch* `v...` too), telling how to rewrite them.
/// Returns whether they were present.
pub(super) fn refs_split(c: &mut Checker<'_>, env: &str, ra: &RawAccess) -> bool {
    let list = |v: &Option<S<toml::Value>>| -> Vec<String> {
        v.as_ref()
            .and_then(|v| v.get_ref().as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|x| x.as_str().map(|s| format!("\"{s}\"")))
            .collect()
    };
    let refs = list(&ra.refs).join(", ");
    let types = list(&ra.ref_types);
    let has = |t: &str| types.iter().any(|x| x == &format!("\"{t}\""));
    let rewrite = match (has("branch"), has("tag")) {
        // Without `ref_types` the old schema meant branches.
        (_, false) => format!("`branches = [{refs}]`"),
        (false, true) => format!("`tags = [{refs}]`"),
        (true, true) => format!(
            "`branches = [...]` for the branch names and `tags = [...]` for the tag names among [{refs}] (for example `branches = [\"main\"]`, `tags = [\"v*\"]`)"
        ),
    };
    let why = "`refs` and `ref_types` were replaced by `branches` and `tags`: pairing every ref with every ref type trusted branches named like tags (a pushed branch `v-pwn` matched `v*`) and tags named like branches";
    let mut old: Vec<&S<toml::Value>> = [&ra.refs, &ra.ref_types].into_iter().flatten().collect();
    // In file order, as every other diagnostic.
    old.sort_by_key(|v| v.span().start);
    let any = !old.is_empty();
    for v in old {
        c.report(
            v.span(),
            "refs-split",
            format!("{why}; in `[environments.{env}.gitlab]` write {rewrite}"),
        );
    }
    any
}
