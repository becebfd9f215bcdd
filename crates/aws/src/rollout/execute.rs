//! Carrying out a rollout plan: the broker stack, then each environment's StackSet and its
//! stack instances (StackSets of different environments side by side). Every account's
//! outcome is reported; only a failed broker stack stops the run.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use aws_sdk_cloudformation::types::{
    AccountFilterType, AutoDeployment, CallAs as SdkCallAs, Capability, DeploymentTargets,
    PermissionModels, RegionConcurrencyType, StackSetOperationPreferences, Tag,
};
use rolehop_core::rollout::{
    Account, CallAs, Change, Orphan, Permission, Plan, RolloutInput, StackSetPlan, StackSetSpec,
    organizational_units_text,
};

use super::error::{RolloutError, classify};
use super::report::{AccountResult, Outcome, Progress, Report};
use super::wait::{Sleep, Timing};

/// Tag put on the broker stack and every StackSet, so people can tell who manages them; with
/// the topology's prefix it is also what lets rollout remove a StackSet it no longer declares.
pub(super) const MANAGED_BY: (&str, &str) = ("rolehop:managed-by", "rolehop");
/// Tag naming a StackSet's environment (StackSets made by older versions lack it).
pub(super) const ENVIRONMENT_TAG: &str = "rolehop:environment";

/// The CloudFormation side of a StackSet spec (the spec itself is pure, in core).
pub(super) trait SdkSpec {
    /// Service-managed StackSets take accounts only as a filter on their OUs.
    fn accounts_within_ous(&self, ids: Vec<String>) -> DeploymentTargets;
    /// CloudFormation's `CallAs` for every request about this StackSet.
    fn call_as(&self) -> Option<SdkCallAs>;
}

impl SdkSpec for StackSetSpec {
    /// Service-managed StackSets take accounts only as a filter on their OUs (INTERSECTION;
    /// UNION is refused for creating instances).
    fn accounts_within_ous(&self, ids: Vec<String>) -> DeploymentTargets {
        DeploymentTargets::builder()
            .set_organizational_unit_ids(Some(self.organizational_units.clone()))
            .set_accounts(Some(ids))
            .account_filter_type(AccountFilterType::Intersection)
            .build()
    }

    /// CloudFormation's `CallAs` for every request about this StackSet: service-managed
    /// StackSets of a delegated administrator are invisible to requests without it.
    fn call_as(&self) -> Option<SdkCallAs> {
        match self.permission {
            Permission::SelfManaged { .. } => None,
            Permission::ServiceManaged {
                call_as: CallAs::DelegatedAdmin,
            } => Some(SdkCallAs::DelegatedAdmin),
            Permission::ServiceManaged {
                call_as: CallAs::Management,
            } => Some(SdkCallAs::SelfValue),
        }
    }
}

/// Carries out a rollout plan with CloudFormation (and STS to check the account first).
pub struct Rollout {
    pub(super) cfn: Client,
    sts: aws_sdk_sts::Client,
    /// The gate's code bucket (gate mode).
    pub(super) s3: aws_sdk_s3::Client,
    pub(super) region: String,
    pub(super) sleep: Sleep,
    pub(super) timing: Timing,
}

impl Rollout {
    /// Clients from `config`; `sleep` and `timing` are injected so tests poll without waiting.
    pub fn new(config: &aws_config::SdkConfig, sleep: Sleep, timing: Timing) -> Self {
        // A custom endpoint (moto, LocalStack) serves buckets by path, not by host name.
        let s3 = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(config.endpoint_url().is_some())
            .build();
        Rollout {
            cfn: Client::new(config),
            sts: aws_sdk_sts::Client::new(config),
            s3: aws_sdk_s3::Client::from_conf(s3),
            region: config
                .region()
                .map(|r| r.as_ref().to_owned())
                .unwrap_or_default(),
            sleep,
            timing,
        }
    }

    /// Checks that the credentials belong to the broker account: deploying the broker stack
    /// anywhere else would be a silent mistake.
    pub async fn check_account(&self, input: &RolloutInput) -> Result<(), RolloutError> {
        let me = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| classify("sts:GetCallerIdentity", e))?;
        let actual = me.account().unwrap_or("").to_owned();
        if actual != input.broker_account {
            return Err(RolloutError::WrongAccount {
                expected: input.broker_account.to_string(),
                actual,
            });
        }
        Ok(())
    }

    /// Carries out a plan. Stops at the broker stack when that fails (the targets' trust
    /// policies name its roles); otherwise every environment is attempted and each account's
    /// outcome is reported.
    pub async fn apply(
        &self,
        input: &RolloutInput,
        plan: &Plan,
        progress: &dyn Progress,
    ) -> Result<Report, RolloutError> {
        // From the leaves: a dropped environment's deployment roles go before the broker
        // stack drops the service role they trust (and moto, unlike CloudFormation, cannot
        // delete a role with its policies in one update).
        let mut accounts = Vec::new();
        for o in &plan.remove_stack_sets {
            accounts.extend(self.remove_stack_set(input, o, progress).await?);
        }
        if accounts
            .iter()
            .any(|a| matches!(a.outcome, Outcome::Failed(_)))
        {
            // Nothing else changes until the dropped environment is gone: the next run
            // finishes the removal, then updates the rest.
            return Ok(Report {
                broker: Outcome::Failed(
                    "not attempted: removing a dropped environment's StackSet failed first".into(),
                ),
                accounts,
            });
        }
        let broker = match plan.broker {
            Change::Unchanged => {
                progress.step(&format!("stack {} is up to date", input.broker_stack));
                Outcome::Unchanged
            }
            Change::Create | Change::Update => {
                self.deploy_stack(input, plan.broker, progress).await?
            }
        };
        // StackSets of different environments are independent; each takes a minute or more on
        // AWS, so they run side by side (operations within one StackSet stay sequential).
        let runs = input
            .stack_sets
            .iter()
            .zip(&plan.stack_sets)
            .map(|(spec, p)| self.apply_stack_set(input, spec, p, progress));
        for r in futures_util::future::join_all(runs).await {
            accounts.extend(r?);
        }
        Ok(Report { broker, accounts })
    }

    async fn deploy_stack(
        &self,
        input: &RolloutInput,
        change: Change,
        progress: &dyn Progress,
    ) -> Result<Outcome, RolloutError> {
        let stack = &input.broker_stack;
        let tag = Tag::builder().key(MANAGED_BY.0).value(MANAGED_BY.1).build();
        if change == Change::Create {
            progress.step(&format!(
                "creating stack {stack} in account {}",
                input.broker_account
            ));
            self.cfn
                .create_stack()
                .stack_name(stack)
                .template_body(&input.broker_template)
                .set_parameters(parameters(input))
                .capabilities(Capability::CapabilityNamedIam)
                .tags(tag)
                .send()
                .await
                .map_err(|e| classify("cloudformation:CreateStack", e))?;
        } else {
            progress.step(&format!(
                "updating stack {stack} in account {}",
                input.broker_account
            ));
            let r = self
                .cfn
                .update_stack()
                .stack_name(stack)
                .template_body(&input.broker_template)
                .set_parameters(parameters(input))
                .capabilities(Capability::CapabilityNamedIam)
                .tags(tag)
                .send()
                .await;
            match r {
                Ok(_) => {}
                // A template differing only in ways CloudFormation ignores.
                Err(e)
                    if e.message()
                        .is_some_and(|m| m.contains("No updates are to be performed")) =>
                {
                    return Ok(Outcome::Unchanged);
                }
                Err(e) => return Err(classify("cloudformation:UpdateStack", e)),
            }
        }
        self.wait_stack(stack).await
    }

    fn preferences() -> StackSetOperationPreferences {
        // One operation reaches every account at once, and one account failing does not stop
        // the others: each account's result is reported.
        StackSetOperationPreferences::builder()
            .region_concurrency_type(RegionConcurrencyType::Parallel)
            .max_concurrent_percentage(100)
            .failure_tolerance_percentage(100)
            .build()
    }

    async fn apply_stack_set(
        &self,
        input: &RolloutInput,
        spec: &StackSetSpec,
        p: &StackSetPlan,
        progress: &dyn Progress,
    ) -> Result<Vec<AccountResult>, RolloutError> {
        let env = &spec.environment;
        let mut results: Vec<AccountResult> = Vec::new();
        // Each account's outcome is shown as soon as its operation ends, and reported at the end.
        let record = |results: &mut Vec<AccountResult>,
                      accounts: &[Account],
                      outcomes: &BTreeMap<String, Outcome>,
                      success: Outcome| {
            for a in accounts {
                let r = AccountResult {
                    environment: env.clone(),
                    name: a.name.clone(),
                    id: a.id.clone(),
                    outcome: outcome_for(outcomes, &a.id, success.clone()),
                };
                progress.account_done(&r);
                results.push(r);
            }
        };

        match p.set {
            Change::Create => {
                progress.step(&format!("creating stack set {}", spec.name));
                let mut req = self
                    .cfn
                    .create_stack_set()
                    .stack_set_name(&spec.name)
                    .set_call_as(spec.call_as())
                    .description(format!("rolehop deployment role of environment {env}"))
                    .template_body(&spec.template)
                    .capabilities(Capability::CapabilityNamedIam)
                    .tags(Tag::builder().key(MANAGED_BY.0).value(MANAGED_BY.1).build())
                    .tags(Tag::builder().key(ENVIRONMENT_TAG).value(env).build());
                req = match &spec.permission {
                    Permission::SelfManaged {
                        administration_role_arn,
                        execution_role_name,
                    } => req
                        .permission_model(PermissionModels::SelfManaged)
                        .administration_role_arn(administration_role_arn)
                        .execution_role_name(execution_role_name),
                    Permission::ServiceManaged { .. } => req
                        .permission_model(PermissionModels::ServiceManaged)
                        .auto_deployment(
                            AutoDeployment::builder()
                                .enabled(true)
                                .retain_stacks_on_account_removal(false)
                                .build(),
                        ),
                };
                req.send()
                    .await
                    .map_err(|e| classify("cloudformation:CreateStackSet", e))?;
            }
            Change::Update => {
                // Updating the template redeploys every instance, outdated ones included.
                let targets: Vec<Account> = p.current.iter().chain(&p.retry).cloned().collect();
                progress.step(&format!("updating stack set {}", spec.name));
                progress.accounts_started(env, &targets, "updating");
                let req = self
                    .cfn
                    .update_stack_set()
                    .stack_set_name(&spec.name)
                    .set_call_as(spec.call_as())
                    .template_body(&spec.template)
                    .capabilities(Capability::CapabilityNamedIam)
                    .operation_preferences(Self::preferences());
                let req = match &spec.permission {
                    Permission::SelfManaged {
                        administration_role_arn,
                        execution_role_name,
                    } => req
                        .administration_role_arn(administration_role_arn)
                        .execution_role_name(execution_role_name),
                    Permission::ServiceManaged { .. } => req,
                };
                let outcomes = match req.send().await {
                    Ok(o) => {
                        self.wait_operation(spec, o.operation_id(), &targets)
                            .await?
                    }
                    Err(e) => all_failed(&targets, &classify("cloudformation:UpdateStackSet", e)),
                };
                record(&mut results, &targets, &outcomes, Outcome::Updated);
            }
            Change::Unchanged => {
                record(
                    &mut results,
                    &p.current,
                    &BTreeMap::new(),
                    Outcome::Unchanged,
                );
                if !p.retry.is_empty() {
                    let ids: Vec<String> = p.retry.iter().map(|a| a.id.clone()).collect();
                    progress.step(&format!("redeploying outdated instances of {}", spec.name));
                    progress.accounts_started(env, &p.retry, "redeploying");
                    let req = self
                        .cfn
                        .update_stack_set()
                        .stack_set_name(&spec.name)
                        .set_call_as(spec.call_as())
                        .use_previous_template(true)
                        .capabilities(Capability::CapabilityNamedIam)
                        .regions(&input.region)
                        .operation_preferences(Self::preferences());
                    // Service-managed StackSets take accounts only within their OUs.
                    let req = match &spec.permission {
                        Permission::SelfManaged { .. } => req.set_accounts(Some(ids)),
                        Permission::ServiceManaged { .. } => {
                            req.deployment_targets(spec.accounts_within_ous(ids))
                        }
                    };
                    let outcomes = match req.send().await {
                        Ok(o) => {
                            self.wait_operation(spec, o.operation_id(), &p.retry)
                                .await?
                        }
                        Err(e) => {
                            all_failed(&p.retry, &classify("cloudformation:UpdateStackSet", e))
                        }
                    };
                    record(&mut results, &p.retry, &outcomes, Outcome::Updated);
                }
            }
        }

        match &spec.permission {
            Permission::SelfManaged { .. } => {
                if !p.add.is_empty() {
                    let ids: Vec<String> = p.add.iter().map(|a| a.id.clone()).collect();
                    progress.step(&format!(
                        "deploying {} to {} account(s)",
                        spec.name,
                        ids.len()
                    ));
                    progress.accounts_started(env, &p.add, "creating");
                    let r = self
                        .cfn
                        .create_stack_instances()
                        .stack_set_name(&spec.name)
                        .set_call_as(spec.call_as())
                        .set_accounts(Some(ids))
                        .regions(&input.region)
                        .operation_preferences(Self::preferences())
                        .send()
                        .await;
                    let outcomes = match r {
                        Ok(o) => self.wait_operation(spec, o.operation_id(), &p.add).await?,
                        Err(e) => {
                            all_failed(&p.add, &classify("cloudformation:CreateStackInstances", e))
                        }
                    };
                    record(&mut results, &p.add, &outcomes, Outcome::Created);
                }
            }
            Permission::ServiceManaged { .. } => {
                if !p.add.is_empty() || !p.add_organizational_units.is_empty() {
                    results.extend(
                        self.deploy_to_organizational_units(input, spec, p, progress)
                            .await?,
                    );
                }
            }
        }

        if !p.remove.is_empty() {
            let gone: Vec<Account> = p
                .remove
                .iter()
                .map(|id| Account {
                    name: id.clone(),
                    id: id.clone(),
                })
                .collect();
            progress.step(&format!(
                "removing {} from {} account(s) no longer in the topology",
                spec.name,
                gone.len()
            ));
            progress.accounts_started(env, &gone, "removing");
            let req = self
                .cfn
                .delete_stack_instances()
                .stack_set_name(&spec.name)
                .set_call_as(spec.call_as())
                .regions(&input.region)
                .retain_stacks(false)
                .operation_preferences(Self::preferences());
            // Service-managed instances go with their OU: CloudFormation removes them by OU.
            let req = match &spec.permission {
                Permission::SelfManaged { .. } => req.set_accounts(Some(p.remove.clone())),
                Permission::ServiceManaged { .. } => req.deployment_targets(
                    DeploymentTargets::builder()
                        .set_organizational_unit_ids(Some(p.remove_organizational_units.clone()))
                        .build(),
                ),
            };
            let r = req.send().await;
            let outcomes = match r {
                Ok(o) => self.wait_operation(spec, o.operation_id(), &gone).await?,
                Err(e) => all_failed(&gone, &classify("cloudformation:DeleteStackInstances", e)),
            };
            record(&mut results, &gone, &outcomes, Outcome::Removed);
        }
        Ok(results)
    }

    /// Removes a StackSet no environment declares: its instances first (each account's
    /// outcome reported), then, when none failed, the StackSet itself. A run stopped in
    /// between finds the StackSet again and finishes the job.
    async fn remove_stack_set(
        &self,
        input: &RolloutInput,
        o: &Orphan,
        progress: &dyn Progress,
    ) -> Result<Vec<AccountResult>, RolloutError> {
        let spec = input.orphan_spec(&o.name, &o.environment);
        let gone: Vec<Account> = o
            .accounts
            .iter()
            .map(|id| Account {
                name: id.clone(),
                id: id.clone(),
            })
            .collect();
        let mut results = Vec::new();
        if !gone.is_empty() {
            progress.step(&format!(
                "removing {} (environment {} is no longer in the topology) from {} account(s)",
                o.name,
                o.environment,
                gone.len()
            ));
            progress.accounts_started(&o.environment, &gone, "removing");
            let req = self
                .cfn
                .delete_stack_instances()
                .stack_set_name(&o.name)
                .set_call_as(spec.call_as())
                .regions(&input.region)
                .retain_stacks(false)
                .operation_preferences(Self::preferences());
            let req = match &spec.permission {
                Permission::SelfManaged { .. } => req.set_accounts(Some(o.accounts.clone())),
                // Service-managed instances are removed through the OUs that hold them.
                Permission::ServiceManaged { .. } => {
                    let ous = self.stack_set_ous(&spec).await?;
                    req.deployment_targets(
                        DeploymentTargets::builder()
                            .set_organizational_unit_ids(Some(ous))
                            .build(),
                    )
                }
            };
            let outcomes = match req.send().await {
                Ok(r) => self.wait_operation(&spec, r.operation_id(), &gone).await?,
                Err(e) => all_failed(&gone, &classify("cloudformation:DeleteStackInstances", e)),
            };
            for a in &gone {
                let r = AccountResult {
                    environment: o.environment.clone(),
                    name: a.name.clone(),
                    id: a.id.clone(),
                    outcome: outcome_for(&outcomes, &a.id, Outcome::Removed),
                };
                progress.account_done(&r);
                results.push(r);
            }
            if results
                .iter()
                .any(|r| matches!(r.outcome, Outcome::Failed(_)))
            {
                // A StackSet with instances cannot be deleted; the next run tries again.
                return Ok(results);
            }
        }
        progress.step(&format!("deleting stack set {}", o.name));
        match self
            .cfn
            .delete_stack_set()
            .stack_set_name(&o.name)
            .set_call_as(spec.call_as())
            .send()
            .await
        {
            // Gone already: an earlier run deleted it but never heard the answer.
            Err(e) if !super::error::is_not_found(&e) => {
                return Err(classify("cloudformation:DeleteStackSet", e));
            }
            _ => {}
        }
        Ok(results)
    }

    /// The OUs a service-managed StackSet targets.
    async fn stack_set_ous(&self, spec: &StackSetSpec) -> Result<Vec<String>, RolloutError> {
        let d = self
            .cfn
            .describe_stack_set()
            .stack_set_name(&spec.name)
            .set_call_as(spec.call_as())
            .send()
            .await
            .map_err(|e| classify("cloudformation:DescribeStackSet", e))?;
        Ok(d.stack_set()
            .map(|s| s.organizational_unit_ids().to_vec())
            .unwrap_or_default())
    }

    /// Service-managed: deploys to the OUs not targeted yet, or, when all are, to the listed
    /// accounts still without an instance (within the OUs). A listed account that has no
    /// instance afterwards is outside the OUs and is reported as failed; accounts of the OUs
    /// that the topology does not list are reported by id.
    async fn deploy_to_organizational_units(
        &self,
        input: &RolloutInput,
        spec: &StackSetSpec,
        p: &StackSetPlan,
        progress: &dyn Progress,
    ) -> Result<Vec<AccountResult>, RolloutError> {
        let env = &spec.environment;
        let before = self.instances(spec, &input.region).await?;
        let (ous, targets) = if p.add_organizational_units.is_empty() {
            let ids: Vec<String> = p.add.iter().map(|a| a.id.clone()).collect();
            (
                spec.organizational_units.clone(),
                spec.accounts_within_ous(ids),
            )
        } else {
            (
                p.add_organizational_units.clone(),
                DeploymentTargets::builder()
                    .set_organizational_unit_ids(Some(p.add_organizational_units.clone()))
                    .build(),
            )
        };
        progress.step(&format!(
            "deploying {} to {}",
            spec.name,
            organizational_units_text(&ous)
        ));
        progress.accounts_started(env, &p.add, "creating");
        let r = self
            .cfn
            .create_stack_instances()
            .stack_set_name(&spec.name)
            .set_call_as(spec.call_as())
            .deployment_targets(targets)
            .regions(&input.region)
            .operation_preferences(Self::preferences())
            .send()
            .await;
        let outcomes = match r {
            Ok(o) => self.wait_operation(spec, o.operation_id(), &p.add).await?,
            // Without listed accounts there is nobody to pin the failure on.
            Err(e) if p.add.is_empty() => {
                return Err(classify("cloudformation:CreateStackInstances", e));
            }
            Err(e) => all_failed(&p.add, &classify("cloudformation:CreateStackInstances", e)),
        };
        let after = self.instances(spec, &input.region).await?;

        let mut results = Vec::new();
        for a in &p.add {
            let outcome = match outcomes.get(&a.id) {
                Some(f @ Outcome::Failed(_)) => f.clone(),
                _ if after.contains_key(&a.id) => Outcome::Created,
                _ => Outcome::Failed(format!(
                    "no stack instance was created: the account is not in {} (StackSets also skip the organization's management account)",
                    organizational_units_text(&spec.organizational_units)
                )),
            };
            let r = AccountResult {
                environment: env.clone(),
                name: a.name.clone(),
                id: a.id.clone(),
                outcome,
            };
            progress.account_done(&r);
            results.push(r);
        }
        let listed: BTreeSet<&str> = spec.accounts.iter().map(|a| a.id.as_str()).collect();
        for id in after.keys() {
            if listed.contains(id.as_str()) || before.contains_key(id) {
                continue;
            }
            let r = AccountResult {
                environment: env.clone(),
                name: id.clone(),
                id: id.clone(),
                outcome: outcome_for(&outcomes, id, Outcome::Created),
            };
            progress.account_done(&r);
            results.push(r);
        }
        Ok(results)
    }
}

/// Every account of a refused call failed, with the call's error as the reason.
/// The broker template's parameters (the gate's code in gate mode), or none.
fn parameters(input: &RolloutInput) -> Option<Vec<aws_sdk_cloudformation::types::Parameter>> {
    (!input.broker_parameters.is_empty()).then(|| {
        input
            .broker_parameters
            .iter()
            .map(|(k, v)| {
                aws_sdk_cloudformation::types::Parameter::builder()
                    .parameter_key(k)
                    .parameter_value(v)
                    .build()
            })
            .collect()
    })
}

fn all_failed(accounts: &[Account], e: &RolloutError) -> BTreeMap<String, Outcome> {
    accounts
        .iter()
        .map(|a| (a.id.clone(), Outcome::Failed(e.reason())))
        .collect()
}

fn outcome_for(outcomes: &BTreeMap<String, Outcome>, id: &str, success: Outcome) -> Outcome {
    match outcomes.get(id) {
        Some(f @ Outcome::Failed(_)) => f.clone(),
        _ => success,
    }
}

/// The SDK configuration for the broker account: the standard chain (environment, profile,
/// SSO, ...), `AWS_ENDPOINT_URL` honoured, in `region`.
pub async fn broker_config(region: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .load()
        .await
}
