//! A topology as the estate render would deploy: the broker users (or the OIDC provider),
//! service roles and deployment roles, with exactly render's IAM documents, so auditing
//! `--config` audits what `render` produces.

use rolehop_core::topology::{Auth, Environment, Topology, Unmatched};
use rolehop_policy::pattern::Glob;
use rolehop_render::iam;

use crate::model::{
    Env, Estate, GateAdmission, Kind, NamedDoc, Origin, Part, Principal, SessionDocs, SessionScope,
};

/// Service roles are entered directly (not by chaining), so they keep IAM's default maximum.
const SERVICE_ROLE_MAX_SESSION_SECS: u64 = 3600;

/// The estate a topology would deploy: its rendered documents, with environments and parts known rather than guessed.
pub fn estate_of(topo: &Topology) -> Estate {
    let origin = |line: usize| Origin {
        file: topo.origin.clone(),
        line,
    };
    let mut e = Estate {
        source: topo.origin.clone(),
        ..Estate::default()
    };
    for env in &topo.environments {
        let label = Env {
            name: env.name.clone(),
            prod: env.protected || env.tier == rolehop_core::topology::Tier::Production,
        };
        if matches!(topo.auth, Auth::AccessKeys) {
            let mut u = Principal::new(Kind::User, &topo.broker_user_arn(env));
            u.inline.push(NamedDoc {
                name: "rolehop-broker".to_owned(),
                doc: iam::broker_user_policy(topo, env).into(),
            });
            u.env = Some(label.clone());
            u.part = Part::BrokerUser;
            u.exact = true;
            u.origin = Some(origin(env.line));
            e.principals.push(u);
        }
        if let (Some(gate_arn), Some(rules)) = (topo.gate_role_arn(env), &env.gate) {
            // Its logs policy names the log group by a template reference and grants no role.
            let mut g = Principal::new(Kind::Role, &gate_arn);
            g.trust = Some(rolehop_render::gate::gate_role_trust().into());
            g.inline.push(NamedDoc {
                name: "rolehop-assume-service-role".to_owned(),
                doc: rolehop_render::gate::gate_role_policy(topo, env).into(),
            });
            g.env = Some(label.clone());
            g.part = Part::GateRole;
            g.origin = Some(origin(env.line));
            e.principals.push(g);
            e.gates.push(GateAdmission {
                claims: crate::gate::claim_set(env, rules),
                gate_role_arn: gate_arn,
                env: label.clone(),
                protected: env.protected,
                access: env.gitlab.clone(),
                rules: rules.clone(),
            });
        }
        let mut s = Principal::new(Kind::Role, &topo.service_role_arn(env));
        s.trust = Some(iam::service_role_trust(topo, env).into());
        s.inline.push(NamedDoc {
            name: "rolehop-service".to_owned(),
            doc: iam::service_role_policy(topo, env).into(),
        });
        s.max_session_secs = Some(SERVICE_ROLE_MAX_SESSION_SECS);
        s.env = Some(label.clone());
        s.part = Part::ServiceRole;
        s.exact = true;
        s.origin = Some(origin(env.line));
        s.declared = Some(Box::new(env.gitlab.clone()));
        e.principals.push(s);
        for account in &env.accounts {
            let mut d = Principal::new(Kind::Role, &topo.deployment_role_arn(env, account));
            d.trust = Some(iam::deployment_role_trust(topo, env).into());
            d.inline = env
                .permissions
                .inline_policies
                .iter()
                .map(|p| NamedDoc {
                    name: p.name.clone(),
                    doc: (&p.document).into(),
                })
                .collect();
            // `${AWS::AccountId}` names the policy of each target account: evaluated as the
            // ARN IAM attaches there.
            d.managed = env.permissions.managed_policies_in(&account.id);
            d.boundary = env.permissions.boundary_in(&account.id);
            d.max_session_secs = Some(env.max_session_secs);
            d.requested_session_secs = Some(env.max_session_secs);
            d.env = Some(label.clone());
            d.part = Part::DeploymentRole;
            d.exact = true;
            d.origin = Some(origin(account.line));
            e.principals.push(d);
        }
        add_sessions(&mut e, topo, env, &label);
    }
    e
}

/// The environment's session policy rules, and each of its projects no rule can match when
/// such jobs get the role's full rights, as scopes for the per-project blast radius.
fn add_sessions(e: &mut Estate, topo: &Topology, env: &Environment, label: &Env) {
    if env.session_policies.is_empty() {
        return;
    }
    let roles: Vec<String> = env
        .accounts
        .iter()
        .map(|a| topo.deployment_role_arn(env, a).to_string())
        .collect();
    let first_account = env.accounts.first().map_or("", |a| a.id.as_str());
    for r in &env.session_policies {
        e.sessions.push(SessionScope {
            env: label.clone(),
            jobs: r.describe(),
            deployment_roles: roles.clone(),
            session: Some(SessionDocs {
                inline: r.policy.as_ref().map(|p| (&p.document).into()),
                managed: r
                    .managed
                    .iter()
                    .map(|a| a.replace(rolehop_core::validate::ACCOUNT_ID_VAR, first_account))
                    .collect(),
            }),
            origin: Origin {
                file: topo.origin.clone(),
                line: r.line,
            },
        });
    }
    if env.session_policy_default != Unmatched::FullRole {
        return;
    }
    for p in &env.gitlab.projects {
        let glob = Glob::new(p, false);
        let covered = env.session_policies.iter().any(|r| {
            r.project
                .as_ref()
                .is_some_and(|rp| Glob::new(rp, false).intersects(&glob))
        });
        if !covered {
            e.sessions.push(SessionScope {
                env: label.clone(),
                jobs: format!("project {p}"),
                deployment_roles: roles.clone(),
                session: None,
                origin: Origin {
                    file: topo.origin.clone(),
                    line: env.line,
                },
            });
        }
    }
}
