//! Waiting for CloudFormation: a stack's create or update, a StackSet operation and its
//! per-account results. The sleep between polls is injected, so tests never wait.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudformation::types::{StackSetOperationResultStatus, StackSetOperationStatus};
use rolehop_core::rollout::{Account, StackSetSpec};

use super::error::{RolloutError, classify};
use super::execute::{Rollout, SdkSpec};
use super::report::Outcome;

/// Waits between polls; tests pass one that returns at once.
pub type Sleep = Arc<dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// `tokio::time::sleep`.
pub fn real_sleep() -> Sleep {
    Arc::new(|d| Box::pin(tokio::time::sleep(d)))
}

/// Polling intervals and limits.
#[derive(Debug, Clone)]
pub struct Timing {
    /// The wait between two polls of a stack or StackSet operation.
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

impl Timing {
    /// How long polling goes on before giving up, in seconds.
    pub fn budget_secs(&self) -> u64 {
        self.poll.as_secs() * u64::from(self.max_polls)
    }
}

impl Rollout {
    /// Polls the broker stack until its create or update ends.
    pub(super) async fn wait_stack(&self, stack: &str) -> Result<Outcome, RolloutError> {
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
                        stack: stack.to_owned(),
                        status: s.to_owned(),
                        reason: self.failure_reasons(stack).await,
                    });
                }
            }
        }
        Err(RolloutError::NotFinished {
            what: format!("stack `{stack}`"),
            secs: self.timing.budget_secs(),
        })
    }

    /// The reasons of the most recent failed resources, newest first.
    pub(super) async fn failure_reasons(&self, stack: &str) -> String {
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

    /// Polls a StackSet operation to its end and returns each account's failure, if any
    /// (accounts absent from the results took the operation's overall outcome).
    pub(super) async fn wait_operation(
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
                return Err(RolloutError::NotFinished {
                    what: format!("stack set `{stack_set}` operation `{op}`"),
                    secs: self.timing.budget_secs(),
                });
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
