//! What GitLab protects, read for `rolehop audit --gitlab`: per project its protected
//! branches, tags and environments, as the REST API returns them, gathered into the export
//! shape `rolehop_audit::gitlab_check::GitlabData` reads (so an export written by hand or by
//! `glab api` and one fetched here are read by the same code).
//!
//! Project globs (`acme/shop-*`) are expanded by listing the projects of the group before the
//! first wildcard, subgroups included. A project GitLab does not know (404) is listed under
//! `missing_projects`; protected environments, a Premium feature, are `null` when GitLab
//! answers 403 or 404 for them.

use std::collections::BTreeSet;

use rolehop_policy::pattern::Glob;
use serde_json::{Value, json};

use crate::client::{GitlabClient, Target};
use crate::error::GitlabError;

/// The group to list for a project glob: the path before the segment holding the first
/// wildcard (`acme/team/shop-*` -> `acme/team`); `None` when the wildcard is in the top-level
/// group (nothing to list: every group would qualify).
pub fn group_of_glob(pattern: &str) -> Option<&str> {
    let first = pattern.find(['*', '?'])?;
    let cut = pattern[..first].rfind('/')?;
    Some(&pattern[..cut])
}

/// Fetches the protection export for `projects` (exact paths and globs).
pub fn fetch(client: &GitlabClient, projects: &BTreeSet<String>) -> Result<Value, GitlabError> {
    let mut exact: BTreeSet<String> = BTreeSet::new();
    let mut listed: BTreeSet<String> = BTreeSet::new();
    for p in projects {
        if !p.contains(['*', '?']) {
            exact.insert(p.clone());
            continue;
        }
        let Some(group) = group_of_glob(p) else {
            continue;
        };
        let target = Target::Group(group.to_owned());
        let path = format!("{}/projects", target.path());
        let glob = Glob::new(p, false);
        let found = client.get_pages(
            &path,
            &[("include_subgroups", "true"), ("simple", "true")],
            &target,
            false,
        )?;
        for item in found.unwrap_or_default() {
            if let Some(full) = item.get("path_with_namespace").and_then(Value::as_str) {
                listed.insert(full.to_owned());
                if glob.matches(full) {
                    exact.insert(full.to_owned());
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for p in &exact {
        let target = Target::Project(p.clone());
        let base = target.path();
        let Some(project) = client.get_one(&base, &target)? else {
            missing.push(p.clone());
            continue;
        };
        let list = |what: &str, optional: bool| {
            client.get_pages(&format!("{base}/{what}"), &[], &target, optional)
        };
        let branches = list("protected_branches", false)?.unwrap_or_default();
        let tags = list("protected_tags", false)?.unwrap_or_default();
        let environments = list("protected_environments", true)?;
        out.push(json!({
            "path": p,
            "id": project.get("id").cloned().unwrap_or(Value::Null),
            "protected_branches": branches,
            "protected_tags": tags,
            "protected_environments": environments,
        }));
    }
    Ok(json!({
        "projects": out,
        "missing_projects": missing,
        "group_projects": listed,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn globs_list_the_group_before_their_first_wildcard() {
        assert_eq!(group_of_glob("acme/shop-*"), Some("acme"));
        assert_eq!(group_of_glob("acme/team/*/x"), Some("acme/team"));
        assert_eq!(group_of_glob("acme*/x"), None);
        assert_eq!(group_of_glob("acme/shop"), None);
    }
}
