//! `rolehop rollout` against CloudFormation: the broker stack in the broker account, then one
//! StackSet per environment carrying its deployment role to every target account. Reading
//! (`plan`) is separate from writing (`apply`), so `--dry-run` and idempotence share one diff.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cloudformation::types::{
    AccountFilterType, AutoDeployment, CallAs as SdkCallAs, Capability, DeploymentTargets,
    PermissionModels, RegionConcurrencyType, StackInstanceStatus, StackSetOperationPreferences,
    StackSetOperationResultStatus, StackSetOperationStatus, StackStatus, Tag, TemplateStage,
};
pub use rolehop_core::topology::CallAs;
use rolehop_core::topology::{Environment, PermissionModel, Topology};

/// Tag put on the broker stack and every StackSet, so people can tell who manages them.
const MANAGED_BY: (&str, &str) = ("rolehop:managed-by", "rolehop");

// ---------------------------------------------------------------------------------------------
// What to deploy
// ---------------------------------------------------------------------------------------------

/// Everything `rollout` deploys, built from a topology and its rendered templates.
#[derive(Debug, Clone)]
pub struct RolloutInput {
    pub broker_account: String,
    pub region: String,
    pub broker_stack: String,
    pub broker_template: String,
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

impl StackSetSpec {
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
            stack_sets,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Plan: the difference between what is deployed and what should be
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Create,
    Update,
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

#[derive(Debug, Clone)]
pub struct Plan {
    pub broker_stack: String,
    pub broker: Change,
    pub stack_sets: Vec<StackSetPlan>,
}

#[derive(Debug, Clone)]
pub struct StackSetPlan {
    pub environment: String,
    pub name: String,
    /// Create the StackSet, or update its template (which redeploys every instance).
    pub set: Change,
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
    pub template: String,
    /// Account id -> its stack instance.
    pub instances: BTreeMap<String, Instance>,
    /// OUs the StackSet reports as its targets (service-managed only).
    pub organizational_units: BTreeSet<String>,
}

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
    plan.set = if same_template(&d.template, &spec.template) {
        Change::Unchanged
    } else {
        Change::Update
    };

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

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    Created,
    Updated,
    Removed,
    Failed(String),
}

impl Outcome {
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Failed(_))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Unchanged => f.write_str("unchanged"),
            Outcome::Created => f.write_str("created"),
            Outcome::Updated => f.write_str("updated"),
            Outcome::Removed => f.write_str("removed"),
            Outcome::Failed(r) => write!(f, "failed: {r}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AccountResult {
    pub environment: String,
    /// The topology's name for the account (the id again for removed accounts).
    pub name: String,
    pub id: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub broker: Outcome,
    pub accounts: Vec<AccountResult>,
}

impl Report {
    pub fn failures(&self) -> impl Iterator<Item = &AccountResult> {
        self.accounts.iter().filter(|a| a.outcome.is_failure())
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a rollout could not go on (per-account failures are results, not errors).
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    #[error(
        "the AWS credentials are for account `{actual}`, but the topology's broker account is `{expected}`: rollout must run with the broker account's administrator credentials"
    )]
    WrongAccount { expected: String, actual: String },
    #[error("no AWS credentials for the broker account: {0}")]
    NoCredentials(String),
    #[error("{0}")]
    Denied(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("stack `{stack}` ended in {status}: {reason}")]
    StackFailed {
        stack: String,
        status: String,
        reason: String,
    },
    #[error("{0}")]
    Other(String),
}

fn classify<E, R>(what: &str, e: SdkError<E, R>) -> RolloutError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    let code = e.code().unwrap_or("").to_owned();
    // A service's own words are what a person needs; the transport's full chain only when
    // there is no service answer.
    let text = match (&e, e.message()) {
        (SdkError::ServiceError(_), Some(m)) => format!("{what}: {m} ({code})"),
        _ => format!("{what}: {}", DisplayErrorContext(&e)),
    };
    match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            if text.contains("credentials") || text.contains("identity") {
                tracing::debug!("{text}");
                RolloutError::NoCredentials(
                    "the SDK's chain (environment variables, AWS_PROFILE, SSO, container and instance metadata) found none".into(),
                )
            } else {
                RolloutError::Unavailable(text)
            }
        }
        SdkError::ServiceError(_) => {
            if code.contains("AccessDenied")
                || code == "InvalidClientTokenId"
                || code == "ExpiredToken"
                || code == "SignatureDoesNotMatch"
                || code == "UnrecognizedClientException"
            {
                RolloutError::Denied(text)
            } else if code.contains("Throttl") || code == "ServiceUnavailable" {
                RolloutError::Unavailable(text)
            } else {
                RolloutError::Other(text)
            }
        }
        SdkError::ConstructionFailure(_) if text.contains("credentials") => {
            RolloutError::NoCredentials(text)
        }
        _ => RolloutError::Other(text),
    }
}

fn is_not_found<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    matches!(e.code(), Some("StackSetNotFoundException"))
        || (e.code() == Some("ValidationError")
            && e.message().is_some_and(|m| m.contains("does not exist")))
}

// ---------------------------------------------------------------------------------------------
// Injected effects: sleeping and progress
// ---------------------------------------------------------------------------------------------

/// Waits between polls; tests pass one that returns at once.
pub type Sleep = Arc<dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// `tokio::time::sleep`.
pub fn real_sleep() -> Sleep {
    Arc::new(|d| Box::pin(tokio::time::sleep(d)))
}

/// What a rollout tells the person watching it.
pub trait Progress: Send + Sync {
    /// A step begins (`creating stack rolehop-broker`).
    fn step(&self, message: &str);
    /// An operation on these accounts has started.
    fn accounts_started(&self, environment: &str, accounts: &[Account], action: &str);
    /// One account is done.
    fn account_done(&self, result: &AccountResult);
}

/// Polling intervals and limits.
#[derive(Debug, Clone)]
pub struct Timing {
    pub poll: Duration,
    /// Polls before giving up on one stack or operation.
    pub max_polls: u32,
}

impl Default for Timing {
    fn default() -> Self {
        // 5 s x 720 = one hour: IAM-only stacks take a minute or two; StackSet operations on
        // many accounts take longer.
        Timing {
            poll: Duration::from_secs(5),
            max_polls: 720,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The rollout
// ---------------------------------------------------------------------------------------------

pub struct Rollout {
    cfn: Client,
    sts: aws_sdk_sts::Client,
    sleep: Sleep,
    timing: Timing,
}

impl Rollout {
    pub fn new(config: &aws_config::SdkConfig, sleep: Sleep, timing: Timing) -> Self {
        Rollout {
            cfn: Client::new(config),
            sts: aws_sdk_sts::Client::new(config),
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
                expected: input.broker_account.clone(),
                actual,
            });
        }
        Ok(())
    }

    /// Reads what is deployed and compares it with the input. Writes nothing.
    pub async fn plan(&self, input: &RolloutInput) -> Result<Plan, RolloutError> {
        let broker = match self.stack_template(&input.broker_stack).await? {
            None => Change::Create,
            Some(body) if same_template(&body, &input.broker_template) => Change::Unchanged,
            Some(_) => Change::Update,
        };
        let mut stack_sets = Vec::new();
        for spec in &input.stack_sets {
            stack_sets.push(self.plan_stack_set(input, spec).await?);
        }
        Ok(Plan {
            broker_stack: input.broker_stack.clone(),
            broker,
            stack_sets,
        })
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
    async fn instances(
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

    /// Carries out a plan. Stops at the broker stack when that fails (the targets' trust
    /// policies name its roles); otherwise every environment is attempted and each account's
    /// outcome is reported.
    pub async fn apply(
        &self,
        input: &RolloutInput,
        plan: &Plan,
        progress: &dyn Progress,
    ) -> Result<Report, RolloutError> {
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
        let mut accounts = Vec::new();
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
        for _ in 0..self.timing.max_polls {
            let d = self
                .cfn
                .describe_stacks()
                .stack_name(stack)
                .send()
                .await
                .map_err(|e| classify("cloudformation:DescribeStacks", e))?;
            let status = d
                .stacks()
                .first()
                .and_then(|s| s.stack_status())
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default();
            match status.as_str() {
                "CREATE_COMPLETE" => return Ok(Outcome::Created),
                "UPDATE_COMPLETE" => return Ok(Outcome::Updated),
                s if s.ends_with("_IN_PROGRESS") => (self.sleep)(self.timing.poll).await,
                s => {
                    return Err(RolloutError::StackFailed {
                        stack: stack.clone(),
                        status: s.to_owned(),
                        reason: self.failure_reasons(stack).await,
                    });
                }
            }
        }
        Err(RolloutError::Unavailable(format!(
            "stack `{stack}` did not finish within {} s",
            self.timing.poll.as_secs() * u64::from(self.timing.max_polls)
        )))
    }

    /// The reasons of the most recent failed resources, newest first.
    async fn failure_reasons(&self, stack: &str) -> String {
        let Ok(ev) = self
            .cfn
            .describe_stack_events()
            .stack_name(stack)
            .send()
            .await
        else {
            return "no stack events could be read".into();
        };
        let reasons: Vec<String> = ev
            .stack_events()
            .iter()
            .filter(|e| {
                e.resource_status()
                    .is_some_and(|s| s.as_str().ends_with("_FAILED"))
            })
            .filter_map(|e| {
                Some(format!(
                    "{}: {}",
                    e.logical_resource_id()?,
                    e.resource_status_reason()?
                ))
            })
            .take(3)
            .collect();
        if reasons.is_empty() {
            "no failure reason was recorded".into()
        } else {
            reasons.join("; ")
        }
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
        let result = |a: &Account, outcome: Outcome| AccountResult {
            environment: env.clone(),
            name: a.name.clone(),
            id: a.id.clone(),
            outcome,
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
                    .tags(Tag::builder().key(MANAGED_BY.0).value(MANAGED_BY.1).build());
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
                for a in &targets {
                    let r = result(a, outcome_for(&outcomes, &a.id, Outcome::Updated));
                    progress.account_done(&r);
                    results.push(r);
                }
            }
            Change::Unchanged => {
                for a in &p.current {
                    let r = result(a, Outcome::Unchanged);
                    progress.account_done(&r);
                    results.push(r);
                }
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
                    for a in &p.retry {
                        let r = result(a, outcome_for(&outcomes, &a.id, Outcome::Updated));
                        progress.account_done(&r);
                        results.push(r);
                    }
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
                    for a in &p.add {
                        let r = result(a, outcome_for(&outcomes, &a.id, Outcome::Created));
                        progress.account_done(&r);
                        results.push(r);
                    }
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
            for a in &gone {
                let r = result(a, outcome_for(&outcomes, &a.id, Outcome::Removed));
                progress.account_done(&r);
                results.push(r);
            }
        }
        Ok(results)
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

    /// Polls a StackSet operation to its end and returns each account's failure, if any
    /// (accounts absent from the results took the operation's overall outcome).
    async fn wait_operation(
        &self,
        spec: &StackSetSpec,
        operation_id: Option<&str>,
        accounts: &[Account],
    ) -> Result<BTreeMap<String, Outcome>, RolloutError> {
        let Some(op) = operation_id else {
            return Ok(BTreeMap::new());
        };
        let stack_set = spec.name.as_str();
        let mut status = StackSetOperationStatus::Running;
        let mut reason = String::new();
        let mut polls = 0;
        loop {
            let d = self
                .cfn
                .describe_stack_set_operation()
                .stack_set_name(stack_set)
                .set_call_as(spec.call_as())
                .operation_id(op)
                .send()
                .await
                .map_err(|e| classify("cloudformation:DescribeStackSetOperation", e))?;
            if let Some(o) = d.stack_set_operation() {
                status = o
                    .status()
                    .cloned()
                    .unwrap_or(StackSetOperationStatus::Running);
                reason = o.status_reason().unwrap_or("").to_owned();
            }
            if !matches!(
                status,
                StackSetOperationStatus::Running
                    | StackSetOperationStatus::Queued
                    | StackSetOperationStatus::Stopping
            ) {
                break;
            }
            polls += 1;
            if polls >= self.timing.max_polls {
                return Err(RolloutError::Unavailable(format!(
                    "stack set `{stack_set}` operation `{op}` did not finish within {} s",
                    self.timing.poll.as_secs() * u64::from(self.timing.max_polls)
                )));
            }
            (self.sleep)(self.timing.poll).await;
        }

        let mut outcomes: BTreeMap<String, Outcome> = BTreeMap::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .cfn
                .list_stack_set_operation_results()
                .stack_set_name(stack_set)
                .set_call_as(spec.call_as())
                .operation_id(op)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| classify("cloudformation:ListStackSetOperationResults", e))?;
            for s in page.summaries() {
                let Some(acct) = s.account() else { continue };
                let failed = match s.status() {
                    Some(StackSetOperationResultStatus::Failed) => {
                        Some(s.status_reason().unwrap_or("failed").to_owned())
                    }
                    Some(StackSetOperationResultStatus::Cancelled) => Some(format!(
                        "cancelled{}",
                        s.status_reason()
                            .map(|r| format!(": {r}"))
                            .unwrap_or_default()
                    )),
                    _ => None,
                };
                if let Some(r) = failed {
                    outcomes.insert(acct.to_owned(), Outcome::Failed(r));
                } else {
                    // Placeholder for success: the caller knows whether it created or updated.
                    outcomes.insert(acct.to_owned(), Outcome::Unchanged);
                }
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        if status != StackSetOperationStatus::Succeeded {
            let why = if reason.is_empty() {
                format!("stack set operation {}", status.as_str())
            } else {
                reason
            };
            for a in accounts {
                outcomes
                    .entry(a.id.clone())
                    .or_insert_with(|| Outcome::Failed(why.clone()));
            }
        }
        Ok(outcomes)
    }
}

/// Every account of a refused call failed, with the call's error as the reason.
fn all_failed(accounts: &[Account], e: &RolloutError) -> BTreeMap<String, Outcome> {
    accounts
        .iter()
        .map(|a| (a.id.clone(), Outcome::Failed(e.to_string())))
        .collect()
}

fn outcome_for(outcomes: &BTreeMap<String, Outcome>, id: &str, success: Outcome) -> Outcome {
    match outcomes.get(id) {
        Some(f @ Outcome::Failed(_)) => f.clone(),
        _ => success,
    }
}

/// Templates compare equal ignoring trailing whitespace (services may strip a final newline).
fn same_template(deployed: &str, wanted: &str) -> bool {
    deployed.trim_end() == wanted.trim_end()
}

/// The SDK configuration for the broker account: the standard chain (environment, profile,
/// SSO, ...), `AWS_ENDPOINT_URL` honoured, in `region`.
pub async fn broker_config(region: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .load()
        .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

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
                administration_role_arn: "arn:aws:iam::111111111111:role/admin".into(),
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

    impl StackSetPlan {
        fn is_noop_for_test(&self) -> bool {
            Plan {
                broker_stack: "b".into(),
                broker: Change::Unchanged,
                stack_sets: vec![self.clone()],
            }
            .is_noop()
        }
    }
}
