//! What to do about each finding: one line per rule, in the terms of a topology
//! (`[environments.<env>...]`) where rolehop renders the IAM, and in IAM's terms for estates
//! built by hand. Every output format carries it, as `doctor`'s checks carry their `fix:`.

/// The fix for rule `id`; a rule without one says where to look, so a new rule never prints
/// an empty line (a test keeps the catalogue complete).
pub fn fix(id: &str) -> &'static str {
    match id {
        "RH001" => {
            "leave the broker user or service role only sts:AssumeRole, sts:TagSession and sts:SetSourceIdentity on its own environment's roles (what `rolehop render` writes); remove every other action"
        }
        "RH002" => {
            "cut the path the detail names: narrow the trust (or identity) policy of the hop into the other environment to its own environment's principal; in a topology, give each environment projects and refs no token of another environment matches"
        }
        "RH003" => {
            "make the deployment role's trust policy name only its environment's service role ARN (what `rolehop render` writes) and remove every other principal"
        }
        "RH004" => {
            "add `StringEquals <issuer>:aud = <audience>` to the trust policy (`rolehop render` writes it from `[auth] audience`)"
        }
        "RH005" => {
            "use StringLike for a claim pattern with `*`, or name the value exactly: StringEquals compares the `*` literally"
        }
        "RH006" => {
            "name the projects and refs exactly in `[environments.<env>.gitlab]` (`projects`, `branches`, `tags`); a production role must not trust every project or every ref"
        }
        "RH007" => {
            "set the role's MaxSessionDuration (`max_session` in the topology) to at most 1h: a session reached by role chaining never lasts longer"
        }
        "RH008" => {
            "require a SourceIdentity in the deployment role's trust (`Null sts:SourceIdentity = false`, as `rolehop render` writes), so CloudTrail names the pipeline behind every session"
        }
        "RH009" => {
            "set `boundary` under `[environments.<env>.permissions]` (a permissions boundary policy ARN), or replace the admin policy by the actions the deployment needs"
        }
        "RH010" => {
            "rotate the key with `rolehop rotate` (or by hand) and schedule the rendered rotation job so keys never reach 90 days"
        }
        "RH011" => {
            "delete the unused key (`aws iam delete-access-key`); `rolehop rotate` keeps only the key in use"
        }
        "RH012" => {
            "replace `\"AWS\": \"*\"` in the trust policy by the exact principal ARNs that must assume the role"
        }
        "RH013" => {
            "remove the foreign account from the trust policy, or audit its export too (`--authz-details`) if the account is yours"
        }
        "RH014" => {
            "replace the admin policy by the actions the principal needs; long-lived user credentials should never be admin"
        }
        "RH015" => {
            "protect every matching ref in GitLab (Settings > Repository > Protected branches or tags, allowed to create: Maintainers), or replace the glob by exact names in `branches`/`tags`"
        }
        "RH016" => {
            "name the projects exactly in `projects`, or make sure only people allowed to deploy can create projects matching the glob"
        }
        "RH017" => {
            "list branch names under `branches` and tag names under `tags`: each is then trusted only as its own ref type"
        }
        "RH030" => {
            "give each environment its own roles: remove the trust or permission that lets the other environment's principal reach this node (the detail lists the paths), or correct the inferred environment with `--env-map` if it is wrong"
        }
        "RH060" => {
            "make the session policy (`policy_file`/`managed` of the rule in `[[environments.<env>.session_policies]]`) allow actions and resources the deployment role's `permissions` also allow: AWS grants only what both allow"
        }
        "RH061" => {
            "correct the action name in the session policy file (service prefix and action as in the Service Authorization Reference)"
        }
        "RH062" => {
            "narrow the session policy to what these jobs need (actions and resources), or drop the rule: a session policy as wide as the role changes nothing"
        }
        "RH063" => {
            "add a `[[environments.<env>.session_policies]]` rule for the project, or set `session_policy_default = \"refuse\"` so jobs matching no rule are refused"
        }
        "RH064" => {
            "name an AWS managed policy the audit knows, or put the statements in the rule's `policy_file` so the audit can evaluate them"
        }
        "RH031" => {
            "correct the action name (service prefix and action as in the Service Authorization Reference); a misspelt action grants or denies nothing"
        }
        "RH040" => {
            "fix the finding the waiver accepted, or renew the waiver with a new reason and expiry if the risk is still accepted"
        }
        "RH041" => {
            "remove the waiver: the finding it accepted is gone (or its id or resource changed)"
        }
        "RH050" => {
            "protect every ref the trust admits in GitLab (Settings > Repository > Protected branches or tags), or narrow `branches`/`tags` to refs that are protected"
        }
        "RH051" => {
            "set `ref_protected = true` in the gate rules of a protected environment (the default), or protect every ref they admit"
        }
        "RH052" => {
            "allow only Maintainers to push to and merge into the protected ref, and turn off force push"
        }
        "RH053" => {
            "create or reserve the project path the trust names, or remove it from the topology: whoever creates it gets the role"
        }
        "RH054" => {
            "include the project in the GitLab data (`--gitlab` with a token that can read it, or in the export), so its refs can be checked"
        }
        "RH055" => {
            "protect the GitLab environment the topology names (Settings > CI/CD > Protected environments), so only allowed deployers run its jobs"
        }
        "RH056" => {
            "give `--gitlab` a token (or an export) that can list protected environments (GitLab Premium), or accept that they are not checked"
        }
        "RH090" => {
            "fix the policy document the detail names (the reason says what rolehop and IAM refuse), or export it again if the file is damaged"
        }
        "RH091" => {
            "pass the account's export with `--authz-details` (it carries customer managed policy documents), or accept that this policy is not evaluated"
        }
        "RH092" => {
            "fix the trust policy document the detail names: until it can be read, who may assume the role is unknown"
        }
        "RH093" => {
            "remove `ref_protected = false` from `[environments.<env>.gate]` of a protected environment: its gate must admit only protected refs"
        }
        "RH094" => {
            "add `project_ids` next to the project glob in `[environments.<env>.gate]` (or name the projects exactly), so a new project matching the glob is not admitted"
        }
        "RH095" => {
            "add the projects' numeric `project_ids` in `[environments.<env>.gate]`: a path alone can be taken over by a new project after a rename or transfer"
        }
        _ => "see the finding's detail for the path and the policies involved",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::RULES;

    #[test]
    fn every_rule_has_its_own_fix() {
        let fallback = fix("RH999");
        for (id, _) in RULES {
            assert_ne!(fix(id), fallback, "{id} has no fix");
        }
    }
}
