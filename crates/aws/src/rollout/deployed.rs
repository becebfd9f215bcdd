//! Reading what CloudFormation has deployed (the broker stack's template, each StackSet's
//! template, instances and OUs) and planning against it with the pure `diff`. Writes nothing.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_cloudformation::types::{
    StackInstanceStatus, StackSetStatus, StackStatus, TemplateStage,
};
use rolehop_core::rollout::{
    Change, Deployed, FoundStackSet, Instance, Orphan, Plan, RolloutInput, StackSetPlan,
    StackSetSpec, diff, orphan_environment, orphans, stack_change,
};

use super::error::{RolloutError, classify, is_not_found};
use super::execute::{Rollout, SdkSpec};

impl Rollout {
    /// Reads what is deployed and compares it with the input. Writes nothing.
    pub async fn plan(&self, input: &RolloutInput) -> Result<Plan, RolloutError> {
        let deployed = self.stack_template(&input.broker_stack).await?;
        let (mut broker, mut broker_changes) =
            stack_change(deployed.as_deref(), &input.broker_template);
        // The template can stay while its parameters change (the claim gate's code, by hash).
        if broker == Change::Unchanged
            && self.stack_parameters(&input.broker_stack).await? != sorted(&input.broker_parameters)
        {
            broker = Change::Update;
            broker_changes.push("~ Parameters (the claim gate's code)".to_owned());
        }
        let mut stack_sets = Vec::new();
        for spec in &input.stack_sets {
            stack_sets.push(self.plan_stack_set(input, spec).await?);
        }
        let remove_stack_sets = self.orphans(input).await?;
        Ok(Plan {
            broker_stack: input.broker_stack.clone(),
            broker,
            broker_changes,
            stack_sets,
            remove_stack_sets,
        })
    }

    /// StackSets rolehop made for environments the topology no longer declares (see
    /// `rolehop_core::rollout::orphans` for what makes one removable), with their instances.
    async fn orphans(&self, input: &RolloutInput) -> Result<Vec<Orphan>, RolloutError> {
        let probe = input.orphan_spec("", "");
        let stem = format!("{}-", input.stack_set_prefix);
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .cfn
                .list_stack_sets()
                .status(StackSetStatus::Active)
                .set_call_as(probe.call_as())
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| classify("cloudformation:ListStackSets", e))?;
            for s in page.summaries() {
                let Some(name) = s.stack_set_name() else {
                    continue;
                };
                // Only names that could be ours are described (tags are not in the listing).
                if !name.starts_with(&stem) || input.stack_sets.iter().any(|spec| spec.name == name)
                {
                    continue;
                }
                found.extend(self.found_stack_set(&probe, name).await?);
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        let declared: Vec<&str> = input.stack_sets.iter().map(|s| s.name.as_str()).collect();
        let mut out = Vec::new();
        for f in orphans(&input.stack_set_prefix, &declared, &found) {
            let environment = orphan_environment(&input.stack_set_prefix, f);
            let spec = input.orphan_spec(&f.name, &environment);
            let accounts = self
                .instances(&spec, &input.region)
                .await?
                .into_keys()
                .collect();
            out.push(Orphan {
                name: f.name.clone(),
                environment,
                accounts,
            });
        }
        Ok(out)
    }

    async fn found_stack_set(
        &self,
        probe: &StackSetSpec,
        name: &str,
    ) -> Result<Option<FoundStackSet>, RolloutError> {
        let d = match self
            .cfn
            .describe_stack_set()
            .stack_set_name(name)
            .set_call_as(probe.call_as())
            .send()
            .await
        {
            Ok(d) => d,
            // Deleted since it was listed (moto lists deleted StackSets as active).
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(classify("cloudformation:DescribeStackSet", e)),
        };
        let set = d.stack_set();
        let tag = |key: &str| {
            set.and_then(|s| {
                s.tags()
                    .iter()
                    .find(|t| t.key() == Some(key))
                    .and_then(|t| t.value().map(str::to_owned))
            })
        };
        Ok(Some(FoundStackSet {
            name: name.to_owned(),
            managed_by_rolehop: tag(super::execute::MANAGED_BY.0).as_deref()
                == Some(super::execute::MANAGED_BY.1),
            environment: tag(super::execute::ENVIRONMENT_TAG),
            active: set.and_then(|s| s.status()) == Some(&StackSetStatus::Active),
        }))
    }

    /// The deployed stack's parameters, sorted; empty when it has none or does not exist.
    pub async fn stack_parameters(
        &self,
        stack: &str,
    ) -> Result<Vec<(String, String)>, RolloutError> {
        let described = match self.cfn.describe_stacks().stack_name(stack).send().await {
            Ok(d) => d,
            Err(e) if is_not_found(&e) => return Ok(Vec::new()),
            Err(e) => return Err(classify("cloudformation:DescribeStacks", e)),
        };
        let params: Vec<(String, String)> = described
            .stacks()
            .first()
            .map(|s| {
                s.parameters()
                    .iter()
                    .map(|p| {
                        (
                            p.parameter_key().unwrap_or("").to_owned(),
                            p.parameter_value().unwrap_or("").to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(sorted(&params))
    }

    async fn stack_template(&self, stack: &str) -> Result<Option<String>, RolloutError> {
        let described = match self.cfn.describe_stacks().stack_name(stack).send().await {
            Ok(d) => d,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(classify("cloudformation:DescribeStacks", e)),
        };
        let status = described
            .stacks()
            .first()
            .and_then(|s| s.stack_status())
            .cloned();
        if matches!(status, Some(StackStatus::RollbackComplete)) {
            return Err(RolloutError::StackFailed {
                stack: stack.to_owned(),
                status: "ROLLBACK_COMPLETE".into(),
                reason: format!(
                    "its creation failed earlier; delete it (`aws cloudformation delete-stack --stack-name {stack}`) and run rollout again"
                ),
            });
        }
        let t = self
            .cfn
            .get_template()
            .stack_name(stack)
            .template_stage(TemplateStage::Original)
            .send()
            .await
            .map_err(|e| classify("cloudformation:GetTemplate", e))?;
        Ok(Some(t.template_body().unwrap_or("").to_owned()))
    }

    async fn plan_stack_set(
        &self,
        input: &RolloutInput,
        spec: &StackSetSpec,
    ) -> Result<StackSetPlan, RolloutError> {
        let described = match self
            .cfn
            .describe_stack_set()
            .stack_set_name(&spec.name)
            .set_call_as(spec.call_as())
            .send()
            .await
        {
            Ok(d) => d,
            Err(e) if is_not_found(&e) => return Ok(diff(spec, None)),
            Err(e) => return Err(classify("cloudformation:DescribeStackSet", e)),
        };
        let set = described.stack_set();
        let instances = self.instances(spec, &input.region).await?;
        let mut organizational_units: BTreeSet<String> = set
            .map(|s| s.organizational_unit_ids().iter().cloned().collect())
            .unwrap_or_default();
        organizational_units.extend(
            instances
                .values()
                .filter_map(|i| i.organizational_unit.clone()),
        );
        let deployed = Deployed {
            template: set.and_then(|s| s.template_body()).unwrap_or("").to_owned(),
            instances,
            organizational_units,
        };
        Ok(diff(spec, Some(&deployed)))
    }

    /// The StackSet's instances in `region`, by account id.
    pub(super) async fn instances(
        &self,
        spec: &StackSetSpec,
        region: &str,
    ) -> Result<BTreeMap<String, Instance>, RolloutError> {
        let mut instances = BTreeMap::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .cfn
                .list_stack_instances()
                .stack_set_name(&spec.name)
                .set_call_as(spec.call_as())
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| classify("cloudformation:ListStackInstances", e))?;
            for s in page.summaries() {
                if s.region() != Some(region) {
                    continue;
                }
                if let Some(a) = s.account() {
                    instances.insert(
                        a.to_owned(),
                        Instance {
                            current: s.status() == Some(&StackInstanceStatus::Current),
                            organizational_unit: s.organizational_unit_id().map(str::to_owned),
                        },
                    );
                }
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        Ok(instances)
    }
}

fn sorted(v: &[(String, String)]) -> Vec<(String, String)> {
    let mut v = v.to_vec();
    v.sort();
    v
}
