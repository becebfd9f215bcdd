//! What `rolehop rollout` deploys: the broker stack and one StackSet per environment, built
//! from a validated topology and its rendered templates. Pure data; the AWS rim executes it.

use crate::topology::{CallAs, Environment, PermissionModel, Topology};

/// Everything `rollout` deploys, built from a topology and its rendered templates.
#[derive(Debug, Clone)]
pub struct RolloutInput {
    pub broker_account: String,
    pub region: String,
    pub broker_stack: String,
    pub broker_template: String,
    /// The broker template's parameters (gate mode: the gate's code in S3), in template order.
    pub broker_parameters: Vec<(String, String)>,
    pub stack_sets: Vec<StackSetSpec>,
}

#[derive(Debug, Clone)]
pub struct StackSetSpec {
    pub environment: String,
    pub name: String,
    pub template: String,
    pub accounts: Vec<Account>,
    pub permission: Permission,
    pub organizational_units: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Account {
    pub name: String,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permission {
    SelfManaged {
        administration_role_arn: String,
        execution_role_name: String,
    },
    /// Organizations-managed, called as the broker account in the role `call_as` names.
    ServiceManaged { call_as: CallAs },
}

impl Permission {
    pub fn is_service_managed(&self) -> bool {
        matches!(self, Permission::ServiceManaged { .. })
    }
}

impl RolloutInput {
    /// `target_template(env)` gives the rendered deployment-role template of an environment.
    pub fn new(
        topo: &Topology,
        region: Option<&str>,
        broker_template: String,
        mut target_template: impl FnMut(&Environment) -> String,
    ) -> Self {
        let permission = match &topo.rollout.permission_model {
            PermissionModel::SelfManaged {
                administration_role_arn,
                execution_role_name,
            } => Permission::SelfManaged {
                administration_role_arn: administration_role_arn.clone().unwrap_or_else(|| {
                    format!(
                        "arn:{}:iam::{}:role/AWSCloudFormationStackSetAdministrationRole",
                        topo.broker.partition, topo.broker.account_id
                    )
                }),
                execution_role_name: execution_role_name.clone(),
            },
            PermissionModel::ServiceManaged { call_as } => {
                Permission::ServiceManaged { call_as: *call_as }
            }
        };
        let stack_sets = topo
            .environments
            .iter()
            .map(|env| StackSetSpec {
                environment: env.name.clone(),
                name: format!("{}-{}", topo.rollout.stack_set_prefix, env.name),
                template: target_template(env),
                accounts: env
                    .accounts
                    .iter()
                    .map(|a| Account {
                        name: a.name.clone(),
                        id: a.id.clone(),
                    })
                    .collect(),
                permission: permission.clone(),
                organizational_units: env.organizational_units.clone(),
            })
            .collect();
        RolloutInput {
            broker_account: topo.broker.account_id.clone(),
            region: region.unwrap_or(&topo.broker.region).to_owned(),
            broker_stack: topo.broker.stack_name.clone(),
            broker_template,
            broker_parameters: Vec::new(),
            stack_sets,
        }
    }
}
