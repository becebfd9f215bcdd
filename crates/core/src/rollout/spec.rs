//! What `rolehop rollout` deploys: the broker stack and one StackSet per environment, built
//! from a validated topology and its rendered templates. Pure data; the AWS rim executes it.

use crate::ids::{AccountId, Region, RoleArn};
use crate::topology::{CallAs, Environment, PermissionModel, Topology};

/// Everything `rollout` deploys, built from a topology and its rendered templates.
#[derive(Debug, Clone)]
pub struct RolloutInput {
    /// The account the caller's credentials must be in: rollout refuses any other.
    pub broker_account: AccountId,
    /// Where the broker stack and the StackSet instances go.
    pub region: Region,
    /// The broker stack's name.
    pub broker_stack: String,
    /// The rendered broker template.
    pub broker_template: String,
    /// The broker template's parameters (gate mode: the gate's code in S3), in template order.
    pub broker_parameters: Vec<(String, String)>,
    /// One StackSet per environment, in topology order.
    pub stack_sets: Vec<StackSetSpec>,
    /// `[rollout] stack_set_prefix`: with the `rolehop:managed-by` tag, what marks a StackSet
    /// as this topology's (and so removable once its environment is gone).
    pub stack_set_prefix: String,
    /// How StackSets are called (also for removing ones no environment declares).
    pub permission: Permission,
}

/// One environment's StackSet: its deployment role in each of its target accounts.
#[derive(Debug, Clone)]
pub struct StackSetSpec {
    /// The topology environment.
    pub environment: String,
    /// `<prefix>-<environment>`.
    pub name: String,
    /// The rendered target template.
    pub template: String,
    /// The environment's target accounts.
    pub accounts: Vec<Account>,
    /// Self- or service-managed.
    pub permission: Permission,
    /// Service-managed: the OUs to deploy to.
    pub organizational_units: Vec<String>,
}

/// A row of the rollout: an account by name and id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Account {
    /// The topology's name for it (the id itself for accounts AWS reports).
    pub name: String,
    /// Text, not [`AccountId`]: rows are also made for accounts AWS reports (instances no
    /// longer in the topology), which rolehop reports as AWS spells them.
    pub id: String,
}

/// How CloudFormation gets into the target accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permission {
    /// StackSets with an administration role in the broker account and an execution role
    /// in each target.
    SelfManaged {
        /// The role CloudFormation uses in the broker account.
        administration_role_arn: RoleArn,
        /// The role CloudFormation assumes in each target account.
        execution_role_name: String,
    },
    /// Organizations-managed, called as the broker account in the role `call_as` names.
    ServiceManaged {
        /// Delegated administrator or management account.
        call_as: CallAs,
    },
}

impl Permission {
    /// Service-managed StackSets target OUs, not accounts: the plan reads them differently.
    pub fn is_service_managed(&self) -> bool {
        matches!(self, Permission::ServiceManaged { .. })
    }
}

impl RolloutInput {
    /// `target_template(env)` gives the rendered deployment-role template of an environment.
    pub fn new(
        topo: &Topology,
        region: Option<&Region>,
        broker_template: String,
        mut target_template: impl FnMut(&Environment) -> String,
    ) -> Self {
        let permission = match &topo.rollout.permission_model {
            PermissionModel::SelfManaged {
                administration_role_arn,
                execution_role_name,
            } => Permission::SelfManaged {
                administration_role_arn: administration_role_arn.clone().unwrap_or_else(|| {
                    RoleArn::from_checked_parts(
                        topo.broker.partition,
                        &topo.broker.account_id,
                        "AWSCloudFormationStackSetAdministrationRole",
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
                        id: a.id.to_string(),
                    })
                    .collect(),
                permission: permission.clone(),
                organizational_units: env.organizational_units.clone(),
            })
            .collect();
        let stack_set_prefix = topo.rollout.stack_set_prefix.clone();
        RolloutInput {
            broker_account: topo.broker.account_id.clone(),
            region: region.unwrap_or(&topo.broker.region).clone(),
            broker_stack: topo.broker.stack_name.clone(),
            broker_template,
            broker_parameters: Vec::new(),
            stack_sets,
            stack_set_prefix,
            permission,
        }
    }

    /// A spec standing for a StackSet the topology no longer declares, so removing it is
    /// called and waited for like any other.
    pub fn orphan_spec(&self, name: &str, environment: &str) -> StackSetSpec {
        StackSetSpec {
            environment: environment.to_owned(),
            name: name.to_owned(),
            template: String::new(),
            accounts: Vec::new(),
            permission: self.permission.clone(),
            organizational_units: Vec::new(),
        }
    }
}
