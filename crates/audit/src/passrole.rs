//! Escalation through services: a principal allowed `iam:PassRole` on a role, and allowed to
//! start something that runs code as a passed role (a Lambda function, a CloudFormation stack,
//! an ECS task, an EC2 instance, a CodeBuild project, a Glue job, a SageMaker notebook, an SSM
//! automation, ...), gets that role's permissions without assuming it. Each such pair is an
//! edge principal -> role in the graph, so blast radius and environment findings follow it.
//!
//! The edge needs all of: PassRole on the role's ARN with `iam:PassedToService` set to the
//! service (so conditions on it are decided), every launch action of one way to run code on
//! some resource the principal's policies name, and the role's trust policy admitting the
//! service principal. PassRole only works within an account, so only the principal's own
//! account's roles are candidates.

use std::collections::BTreeSet;

use rolehop_policy::pattern::Glob;

use crate::eval::{self, Verdict, Who};
use crate::fasthash::FastMap;
use crate::graph::{Graph, Prepared};
use crate::model::Kind;

/// One way to run code as a passed role.
struct Launcher {
    /// The service principal the role's trust policy must admit.
    service: &'static str,
    /// Actions that together start the code, each allowed on some resource.
    actions: &'static [&'static str],
    /// The edge's action, as the graph and its renderings show it.
    edge: &'static str,
}

const LAUNCHERS: &[Launcher] = &[
    Launcher {
        service: "lambda.amazonaws.com",
        actions: &["lambda:CreateFunction"],
        edge: "iam:PassRole+lambda:CreateFunction",
    },
    Launcher {
        service: "lambda.amazonaws.com",
        actions: &["lambda:UpdateFunctionConfiguration"],
        edge: "iam:PassRole+lambda:UpdateFunctionConfiguration",
    },
    Launcher {
        service: "cloudformation.amazonaws.com",
        actions: &["cloudformation:CreateStack"],
        edge: "iam:PassRole+cloudformation:CreateStack",
    },
    Launcher {
        service: "cloudformation.amazonaws.com",
        actions: &["cloudformation:UpdateStack"],
        edge: "iam:PassRole+cloudformation:UpdateStack",
    },
    Launcher {
        service: "ecs-tasks.amazonaws.com",
        actions: &["ecs:RegisterTaskDefinition", "ecs:RunTask"],
        edge: "iam:PassRole+ecs:RunTask",
    },
    Launcher {
        service: "ec2.amazonaws.com",
        actions: &["ec2:RunInstances"],
        edge: "iam:PassRole+ec2:RunInstances",
    },
    Launcher {
        service: "codebuild.amazonaws.com",
        actions: &["codebuild:CreateProject", "codebuild:StartBuild"],
        edge: "iam:PassRole+codebuild:CreateProject",
    },
    Launcher {
        service: "glue.amazonaws.com",
        actions: &["glue:CreateDevEndpoint"],
        edge: "iam:PassRole+glue:CreateDevEndpoint",
    },
    Launcher {
        service: "glue.amazonaws.com",
        actions: &["glue:CreateJob", "glue:StartJobRun"],
        edge: "iam:PassRole+glue:CreateJob",
    },
    Launcher {
        service: "sagemaker.amazonaws.com",
        actions: &["sagemaker:CreateNotebookInstance"],
        edge: "iam:PassRole+sagemaker:CreateNotebookInstance",
    },
    Launcher {
        service: "sagemaker.amazonaws.com",
        actions: &["sagemaker:CreateTrainingJob"],
        edge: "iam:PassRole+sagemaker:CreateTrainingJob",
    },
    Launcher {
        service: "sagemaker.amazonaws.com",
        actions: &["sagemaker:CreateProcessingJob"],
        edge: "iam:PassRole+sagemaker:CreateProcessingJob",
    },
    Launcher {
        service: "ssm.amazonaws.com",
        actions: &["ssm:StartAutomationExecution"],
        edge: "iam:PassRole+ssm:StartAutomationExecution",
    },
    Launcher {
        service: "states.amazonaws.com",
        actions: &["states:CreateStateMachine", "states:StartExecution"],
        edge: "iam:PassRole+states:CreateStateMachine",
    },
    Launcher {
        service: "datapipeline.amazonaws.com",
        actions: &[
            "datapipeline:CreatePipeline",
            "datapipeline:PutPipelineDefinition",
            "datapipeline:ActivatePipeline",
        ],
        edge: "iam:PassRole+datapipeline:CreatePipeline",
    },
    Launcher {
        service: "scheduler.amazonaws.com",
        actions: &["scheduler:CreateSchedule"],
        edge: "iam:PassRole+scheduler:CreateSchedule",
    },
];

/// Whether `action` is allowed on some resource `id`'s policies grant it on: each granted
/// pattern, its wildcards filled in, is asked of the evaluator (so Denies, boundaries and
/// SCPs on that resource apply).
fn allowed_somewhere(prep: &Prepared<'_>, i: usize, action: &str) -> bool {
    let id = prep.identity(i);
    if !id.policies.iter().any(|d| d.may_allow_action(action)) {
        return false;
    }
    let mut resources = BTreeSet::new();
    for d in &id.policies {
        resources.extend(d.resources_for(action));
    }
    resources
        .iter()
        .take(8)
        .any(|r| eval::identity_allows(&id, action, &r.replace(['*', '?'], "x")).is_allowed())
}

/// Adds an edge principal -> role for every role each principal can run code as.
pub fn add_edges(prep: &Prepared<'_>, g: &mut Graph) {
    let estate = prep.estate;
    let mut roles_by_account: FastMap<&str, Vec<usize>> = FastMap::default();
    for (i, p) in estate.principals.iter().enumerate() {
        if p.kind == Kind::Role {
            roles_by_account.entry(&p.account).or_default().push(i);
        }
    }
    // Whether role r's trust admits a service, computed once per (role, service).
    let mut admits: FastMap<(usize, &'static str), Option<Vec<String>>> = FastMap::default();
    for (i, p) in estate.principals.iter().enumerate() {
        // Most principals hold no PassRole at all: skip them before any evaluation (or even
        // building their identity, a formatted session ARN each).
        if !prep.policies[i]
            .iter()
            .any(|&d| prep.docs[d].may_allow_action("iam:PassRole"))
        {
            continue;
        }
        let id = prep.identity(i);
        let launchers: Vec<&Launcher> = LAUNCHERS
            .iter()
            .filter(|l| l.actions.iter().all(|a| allowed_somewhere(prep, i, a)))
            .collect();
        if launchers.is_empty() {
            continue;
        }
        let pass_patterns: Vec<Glob> = id
            .policies
            .iter()
            .flat_map(|d| d.resources_for("iam:PassRole"))
            .map(|r| Glob::new(&r, false))
            .collect();
        let from = g.principal_node[i];
        for &r in roles_by_account
            .get(p.account.as_str())
            .into_iter()
            .flatten()
        {
            let role = &estate.principals[r];
            if r == i || !pass_patterns.iter().any(|g| g.matches(&role.arn)) {
                continue;
            }
            let Some(trust) = prep.trust_doc(r) else {
                continue;
            };
            let to = g.principal_node[r];
            for l in &launchers {
                let trusted = admits
                    .entry((r, l.service))
                    .or_insert_with(|| {
                        match eval::trust_allows(
                            trust,
                            Who::Service(l.service),
                            "sts:AssumeRole",
                            &role.arn,
                        ) {
                            Verdict::Allowed { conditions } => Some(conditions),
                            Verdict::Denied => None,
                        }
                    })
                    .clone();
                let Some(trust_conditions) = trusted else {
                    continue;
                };
                let Verdict::Allowed { conditions } = eval::identity_allows_in(
                    &id,
                    "iam:PassRole",
                    &role.arn,
                    &[("iam:PassedToService", l.service)],
                ) else {
                    continue;
                };
                let mut c = vec![format!(
                    "runs code as the role through `{}` ({})",
                    l.service,
                    l.actions.join(" + ")
                )];
                c.extend(conditions);
                c.extend(trust_conditions);
                g.edge(from, to, l.edge, c);
                // One way to run code as a role is enough for the edge.
                break;
            }
        }
    }
}
