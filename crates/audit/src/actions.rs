//! RH031: action names that no AWS service has, checked against the IAM action data
//! ([`crate::data`]). IAM accepts any string as an action, so a typo (`s3:GetObjekt`,
//! `s3:Gett*`) in an Allow silently grants nothing (the deployment fails later, far from the
//! cause), and in a Deny or a NotAction it silently removes a guard. AWS managed policies are
//! not checked: they are AWS's to fix.

use std::collections::HashMap;

use rolehop_policy::Effect;
use rolehop_policy::ast::Block;

use crate::data::{ActionCheck, check_action};
use crate::findings::{Finding, Severity};
use crate::graph::Prepared;

/// Appends an RH031 finding for each action name no AWS service has (see the module docs).
pub fn findings(prep: &Prepared<'_>, out: &mut Vec<Finding>) {
    // Estates repeat the same patterns in thousands of documents: judge each once.
    let mut seen: HashMap<String, ActionCheck> = HashMap::new();
    for (d, (owner, what)) in prep.docs.iter().zip(&prep.doc_origin) {
        if owner.contains(":iam::aws:policy/") || what == "trust policy" {
            continue;
        }
        for st in d.statements() {
            let (not, globs) = match &st.action {
                Block::Is(g) => (false, g),
                Block::Not(g) => (true, g),
            };
            for g in globs {
                let a = g.as_str();
                let check = seen
                    .entry(a.to_ascii_lowercase())
                    .or_insert_with(|| check_action(a))
                    .clone();
                let why = match check {
                    ActionCheck::Known => continue,
                    ActionCheck::UnknownService => {
                        format!("no AWS service has the prefix of `{a}`")
                    }
                    ActionCheck::NoSuchAction => {
                        format!("no action of its service matches `{a}`")
                    }
                };
                let (severity, effect) = match (st.effect, not) {
                    (Effect::Allow, false) => (
                        Severity::Low,
                        "this Allow grants nothing for it: whatever needed it will fail",
                    ),
                    (Effect::Deny, false) => (
                        Severity::Medium,
                        "this Deny denies nothing for it: the guard it was written as is not there",
                    ),
                    (Effect::Allow, true) => (
                        Severity::Medium,
                        "this NotAction excludes nothing for it, so the Allow grants what it was meant to leave out",
                    ),
                    (Effect::Deny, true) => (
                        Severity::Low,
                        "this Deny's NotAction exempts nothing for it",
                    ),
                };
                out.push(Finding {
                    id: "RH031",
                    severity,
                    resource: owner.clone(),
                    title: format!("{what} names `{a}`, which is not an IAM action"),
                    detail: format!(
                        "{why} (IAM action data, crates/audit/data/SOURCE.md); {effect}. A typo?"
                    ),
                    fix: crate::fixes::fix("RH031").to_owned(),
                });
            }
        }
    }
}
