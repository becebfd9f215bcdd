//! The plan of a rollout: the difference between what is deployed and what the topology
//! wants. Pure (no AWS types), so the service-managed cases moto cannot produce are
//! unit-tested here and `--dry-run` and idempotence share one diff.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::changes::{same_template, template_changes};
use super::spec::{Account, StackSetSpec};

/// What happens to a stack or StackSet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// It does not exist yet.
    Create,
    /// Its template differs from the rendered one.
    Update,
    /// Deployed and identical: left alone.
    Unchanged,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Change::Create => "create",
            Change::Update => "update",
            Change::Unchanged => "unchanged",
        })
    }
}

/// The whole rollout: the broker stack, then each environment's StackSet.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The broker stack's name.
    pub broker_stack: String,
    /// What happens to the broker stack.
    pub broker: Change,
    /// What an update of the broker stack changes (see `changes::template_changes`).
    pub broker_changes: Vec<String>,
    /// One plan per environment, in topology order.
    pub stack_sets: Vec<StackSetPlan>,
    /// StackSets rolehop created for environments the topology no longer declares: their
    /// instances are deleted, then the StackSets.
    pub remove_stack_sets: Vec<Orphan>,
}

/// A StackSet rolehop created (its `rolehop:managed-by` tag and the topology's StackSet
/// prefix) for an environment the topology no longer declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    /// The StackSet's name, `<prefix>-<environment>`: what is deleted.
    pub name: String,
    /// The environment it was made for (its `rolehop:environment` tag, else the name after
    /// the prefix).
    pub environment: String,
    /// Account ids holding an instance, in the rollout's region.
    pub accounts: Vec<String>,
}

/// A StackSet found in the broker account, as listed by CloudFormation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundStackSet {
    /// The StackSet's name: with the tag, what decides whether it is rolehop's.
    pub name: String,
    /// Carries `rolehop:managed-by = rolehop`.
    pub managed_by_rolehop: bool,
    /// Its `rolehop:environment` tag, when it has one.
    pub environment: Option<String>,
    /// Active (not already deleted).
    pub active: bool,
}

/// The found StackSets rollout may remove: active, tagged as rolehop's, named
/// `<prefix>-<something>` and not one the topology declares. Anything else (another tool's
/// StackSet, one with another prefix, an untagged one) is never touched, whatever its name.
pub fn orphans<'a>(
    prefix: &str,
    declared: &[&str],
    found: &'a [FoundStackSet],
) -> Vec<&'a FoundStackSet> {
    let stem = format!("{prefix}-");
    found
        .iter()
        .filter(|f| {
            f.active
                && f.managed_by_rolehop
                && f.name.starts_with(&stem)
                && f.name.len() > stem.len()
                && !declared.contains(&f.name.as_str())
        })
        .collect()
}

/// The orphan's environment: its tag, else its name after the prefix.
pub fn orphan_environment(prefix: &str, f: &FoundStackSet) -> String {
    f.environment.clone().unwrap_or_else(|| {
        f.name
            .strip_prefix(&format!("{prefix}-"))
            .unwrap_or(&f.name)
            .to_owned()
    })
}

/// The broker stack's change and what it changes: `None` deployed is a new stack.
pub fn stack_change(deployed: Option<&str>, wanted: &str) -> (Change, Vec<String>) {
    match deployed {
        None => (Change::Create, Vec::new()),
        Some(d) if same_template(d, wanted) => (Change::Unchanged, Vec::new()),
        Some(d) => (Change::Update, template_changes(d, wanted)),
    }
}

/// What happens to one environment's StackSet and its instances.
#[derive(Debug, Clone)]
pub struct StackSetPlan {
    /// The topology environment.
    pub environment: String,
    /// The StackSet's name (`<prefix>-<environment>`).
    pub name: String,
    /// Create the StackSet, or update its template (which redeploys every instance).
    pub set: Change,
    /// What an update of the template changes.
    pub changes: Vec<String>,
    /// Accounts without an instance yet.
    pub add: Vec<Account>,
    /// Accounts whose instance is outdated or inoperable (a failed earlier run): redeployed.
    pub retry: Vec<Account>,
    /// Account ids with an instance but no longer in the topology: their role is deleted.
    pub remove: Vec<String>,
    /// Accounts already current.
    pub current: Vec<Account>,
    /// Service-managed: the environment's OUs (empty for self-managed StackSets); `add`
    /// accounts are reached through them, not named to CloudFormation.
    pub organizational_units: Vec<String>,
    /// Service-managed: OUs not targeted yet.
    pub add_organizational_units: Vec<String>,
    /// Service-managed: targeted OUs no longer in the topology; their instances (in `remove`)
    /// are deleted.
    pub remove_organizational_units: Vec<String>,
    /// Service-managed: accounts that hold an instance through an OU but are not among the
    /// environment's accounts (jobs cannot pick them). Reported, never removed.
    pub unlisted: Vec<String>,
}

impl Plan {
    /// True when nothing would change.
    pub fn is_noop(&self) -> bool {
        self.broker == Change::Unchanged
            && self.remove_stack_sets.is_empty()
            && self.stack_sets.iter().all(|s| {
                s.set == Change::Unchanged
                    && s.add.is_empty()
                    && s.retry.is_empty()
                    && s.remove.is_empty()
                    && s.add_organizational_units.is_empty()
                    && s.remove_organizational_units.is_empty()
            })
    }
}

/// What one StackSet has deployed in the rollout's region, as CloudFormation reports it.
#[derive(Debug, Clone, Default)]
pub struct Deployed {
    /// The StackSet's current template body.
    pub template: String,
    /// Account id -> its stack instance.
    pub instances: BTreeMap<String, Instance>,
    /// OUs the StackSet reports as its targets (service-managed only).
    pub organizational_units: BTreeSet<String>,
}

/// One stack instance, as `ListStackInstances` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// CURRENT: neither outdated nor inoperable.
    pub current: bool,
    /// The OU it was deployed through (service-managed).
    pub organizational_unit: Option<String>,
}

/// The plan of one StackSet: what `spec` wants against what is `deployed` (None: no
/// StackSet yet). Pure, so the service-managed cases moto cannot produce are unit-tested.
pub fn diff(spec: &StackSetSpec, deployed: Option<&Deployed>) -> StackSetPlan {
    let service = spec.permission.is_service_managed();
    let mut plan = StackSetPlan {
        environment: spec.environment.clone(),
        name: spec.name.clone(),
        set: Change::Create,
        changes: Vec::new(),
        add: Vec::new(),
        retry: Vec::new(),
        remove: Vec::new(),
        current: Vec::new(),
        organizational_units: if service {
            spec.organizational_units.clone()
        } else {
            Vec::new()
        },
        add_organizational_units: Vec::new(),
        remove_organizational_units: Vec::new(),
        unlisted: Vec::new(),
    };
    let Some(d) = deployed else {
        plan.add = spec.accounts.clone();
        if service {
            plan.add_organizational_units = spec.organizational_units.clone();
        }
        return plan;
    };
    (plan.set, plan.changes) = stack_change(Some(&d.template), &spec.template);

    let wanted_ous: BTreeSet<&str> = spec
        .organizational_units
        .iter()
        .map(String::as_str)
        .collect();
    if service {
        plan.remove_organizational_units = d
            .organizational_units
            .iter()
            .filter(|ou| !wanted_ous.contains(ou.as_str()))
            .cloned()
            .collect();
    }
    let leaving = |i: &Instance| {
        i.organizational_unit
            .as_ref()
            .is_some_and(|ou| plan.remove_organizational_units.contains(ou))
    };
    for a in &spec.accounts {
        match d.instances.get(&a.id) {
            None => plan.add.push(a.clone()),
            Some(i) if service && leaving(i) => plan.remove.push(a.id.clone()),
            Some(i) if i.current => plan.current.push(a.clone()),
            Some(_) => plan.retry.push(a.clone()),
        }
    }
    let listed: BTreeSet<&str> = spec.accounts.iter().map(|a| a.id.as_str()).collect();
    for (id, i) in &d.instances {
        if listed.contains(id.as_str()) {
            continue;
        }
        if !service || leaving(i) {
            plan.remove.push(id.clone());
        } else {
            plan.unlisted.push(id.clone());
        }
    }
    if service {
        plan.add_organizational_units = if !d.organizational_units.is_empty() {
            spec.organizational_units
                .iter()
                .filter(|ou| !d.organizational_units.contains(*ou))
                .cloned()
                .collect()
        } else if d.instances.is_empty() {
            spec.organizational_units.clone()
        } else {
            // Instances that name no OU (moto does not record them): the listed accounts are
            // the check, and any of them without an instance is in `add`.
            Vec::new()
        };
    }
    plan
}

/// `organizational unit ou-a` or `organizational units ou-a, ou-b`, for messages.
pub fn organizational_units_text(ous: &[String]) -> String {
    match ous {
        [one] => format!("organizational unit {one}"),
        _ => format!("organizational units {}", ous.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::rollout::spec::Permission;
    use crate::topology::CallAs;

    fn spec(permission: Permission, ous: &[&str], accounts: &[(&str, &str)]) -> StackSetSpec {
        StackSetSpec {
            environment: "prod".into(),
            name: "rolehop-prod".into(),
            template: "Resources: {}\n".into(),
            accounts: accounts
                .iter()
                .map(|(name, id)| Account {
                    name: (*name).into(),
                    id: (*id).into(),
                })
                .collect(),
            permission,
            organizational_units: ous.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn service(ous: &[&str], accounts: &[(&str, &str)]) -> StackSetSpec {
        spec(
            Permission::ServiceManaged {
                call_as: CallAs::DelegatedAdmin,
            },
            ous,
            accounts,
        )
    }

    /// Instances as (account, current, OU).
    fn deployed(ous: &[&str], instances: &[(&str, bool, Option<&str>)]) -> Deployed {
        Deployed {
            template: "Resources: {}".into(),
            instances: instances
                .iter()
                .map(|(id, current, ou)| {
                    (
                        (*id).to_owned(),
                        Instance {
                            current: *current,
                            organizational_unit: ou.map(str::to_owned),
                        },
                    )
                })
                .collect(),
            organizational_units: ous.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn ids(accounts: &[Account]) -> Vec<&str> {
        accounts.iter().map(|a| a.id.as_str()).collect()
    }

    #[test]
    fn a_new_service_managed_stack_set_deploys_to_its_ous_and_expects_the_listed_accounts() {
        let p = diff(&service(&["ou-a"], &[("a", "210000000001")]), None);
        assert_eq!(p.set, Change::Create);
        assert_eq!(p.add_organizational_units, ["ou-a"]);
        assert_eq!(ids(&p.add), ["210000000001"]);
        assert!(!p.is_noop_for_test());
    }

    #[test]
    fn an_ou_removed_from_the_topology_is_removed_with_its_instances() {
        let s = service(&["ou-a"], &[("a", "210000000001"), ("b", "210000000002")]);
        let d = deployed(
            &["ou-a", "ou-gone"],
            &[
                ("210000000001", true, Some("ou-a")),
                ("210000000002", true, Some("ou-gone")),
                ("210000000003", true, Some("ou-gone")),
            ],
        );
        let p = diff(&s, Some(&d));
        assert_eq!(p.remove_organizational_units, ["ou-gone"]);
        assert_eq!(p.remove, ["210000000002", "210000000003"]);
        assert_eq!(ids(&p.current), ["210000000001"]);
        assert!(p.unlisted.is_empty());
        assert!(!p.is_noop_for_test());
    }

    #[test]
    fn failed_instances_of_an_ou_are_retried_and_unlisted_members_only_reported() {
        let s = service(&["ou-a"], &[("a", "210000000001"), ("b", "210000000002")]);
        let d = deployed(
            &["ou-a"],
            &[
                ("210000000001", true, Some("ou-a")),
                ("210000000002", false, Some("ou-a")),
                ("210000000009", true, Some("ou-a")),
            ],
        );
        let p = diff(&s, Some(&d));
        assert_eq!(ids(&p.retry), ["210000000002"]);
        assert_eq!(p.unlisted, ["210000000009"]);
        assert!(p.remove.is_empty() && p.add_organizational_units.is_empty());
    }

    #[test]
    fn an_ou_added_to_the_topology_is_deployed_alone() {
        let s = service(&["ou-a", "ou-b"], &[("a", "210000000001")]);
        let d = deployed(&["ou-a"], &[("210000000001", true, Some("ou-a"))]);
        let p = diff(&s, Some(&d));
        assert_eq!(p.add_organizational_units, ["ou-b"]);
        assert!(p.add.is_empty() && p.remove.is_empty());
    }

    #[test]
    fn without_reported_ous_the_listed_accounts_decide() {
        // moto records no OU on instances; every listed account is current: nothing to do.
        let s = service(&["ou-a"], &[("a", "210000000001")]);
        let d = deployed(&[], &[("210000000001", true, None)]);
        let p = diff(&s, Some(&d));
        assert!(p.is_noop_for_test(), "{p:?}");
        // A listed account without an instance is deployed again within the OUs.
        let s = service(&["ou-a"], &[("a", "210000000001"), ("b", "210000000002")]);
        let p = diff(&s, Some(&d));
        assert!(p.add_organizational_units.is_empty());
        assert_eq!(ids(&p.add), ["210000000002"]);
    }

    #[test]
    fn self_managed_removes_accounts_no_longer_listed() {
        let s = spec(
            Permission::SelfManaged {
                administration_role_arn: "arn:aws:iam::111111111111:role/admin".parse().unwrap(),
                execution_role_name: "exec".into(),
            },
            &[],
            &[("a", "210000000001")],
        );
        let d = deployed(
            &[],
            &[("210000000001", true, None), ("210000000002", true, None)],
        );
        let p = diff(&s, Some(&d));
        assert_eq!(p.remove, ["210000000002"]);
        assert!(p.unlisted.is_empty() && p.organizational_units.is_empty());
    }

    fn found(name: &str, managed: bool, active: bool) -> FoundStackSet {
        FoundStackSet {
            name: name.into(),
            managed_by_rolehop: managed,
            environment: None,
            active,
        }
    }

    #[test]
    fn only_active_rolehop_tagged_stack_sets_with_the_prefix_and_no_environment_are_orphans() {
        let found = [
            found("rolehop-prod", true, true),    // declared
            found("rolehop-staging", true, true), // dropped from the topology: removed
            found("rolehop-legacy", false, true), // same prefix, not ours: kept
            found("other-staging", true, true),   // another topology's prefix: kept
            found("rolehop-old", true, false),    // already deleted
            found("rolehop-", true, true),        // no environment after the prefix
        ];
        let o = orphans("rolehop", &["rolehop-prod"], &found);
        let names: Vec<&str> = o.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["rolehop-staging"]);
        assert_eq!(orphan_environment("rolehop", o[0]), "staging");
    }

    #[test]
    fn a_template_differing_only_in_comments_is_unchanged_and_an_update_says_what_changed() {
        let old =
            "# from rolehop.toml\nResources:\n  R:\n    Type: \"T\"\n    Properties:\n      A: 1\n";
        let renamed = old.replace("rolehop.toml", "platform.toml");
        assert_eq!(
            stack_change(Some(old), &renamed),
            (Change::Unchanged, Vec::new())
        );
        let (c, what) = stack_change(Some(old), &old.replace("A: 1", "A: 2"));
        assert_eq!(c, Change::Update);
        assert_eq!(what, ["~ R (T)", "    A:", "      - A: 1", "      + A: 2"]);
    }

    impl StackSetPlan {
        fn is_noop_for_test(&self) -> bool {
            Plan {
                broker_stack: "b".into(),
                broker: Change::Unchanged,
                broker_changes: Vec::new(),
                stack_sets: vec![self.clone()],
                remove_stack_sets: Vec::new(),
            }
            .is_noop()
        }
    }
}
