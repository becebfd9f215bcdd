//! The claim gate in the broker template (gate mode): per environment a Lambda function with a
//! function URL, its own execution role and a log group with a retention.
//!
//! The function runs rolehop itself on Lambda's `provided.al2023` runtime (the zip holds the
//! binary as `bootstrap`, which runs `rolehop gate lambda`); its config is the environment's
//! gate.toml, passed in an environment variable so the rules live in the template (reviewed,
//! diffed and rolled out like every other IAM decision) and a rules change needs no new code.
//! The code is the template parameter pair `GateCodeBucket`/`GateCodeKey`, which `rolehop
//! rollout` fills after uploading the artifact.

use rolehop_core::topology::{Environment, Topology};
use serde_json::{Value, json};

use crate::gate::{GATE_CONFIG_ENV, gate_config, gate_function_name, gate_role_policy};
use crate::yaml::Entry;

/// The template parameters naming the gate's code in S3.
pub(crate) const CODE_BUCKET_PARAM: &str = "GateCodeBucket";
pub(crate) const CODE_KEY_PARAM: &str = "GateCodeKey";

/// How long the gate's access log is kept: long enough to investigate a deployment of the
/// last quarter, short enough not to keep job metadata forever.
pub(crate) const LOG_RETENTION_DAYS: u32 = 90;

/// The logical id of an environment's gate role (the service role depends on it).
pub(crate) fn role_id(id: &str) -> String {
    format!("{id}GateRole")
}

/// The template's `Parameters` in gate mode.
pub(crate) fn parameters() -> Vec<Entry> {
    vec![
        Entry::new(
            CODE_BUCKET_PARAM,
            json!({
                "Type": "String",
                "Description": "S3 bucket (broker account, same region) holding the gate's code zip",
                "MinLength": 3,
            }),
        ),
        Entry::new(
            CODE_KEY_PARAM,
            json!({
                "Type": "String",
                "Description": "S3 key of the gate's code zip (`bootstrap` = the rolehop binary); rollout names it by its SHA-256",
                "MinLength": 1,
            }),
        ),
    ]
}

/// The resources and outputs of `env`'s gate (`id` is its logical-id stem).
pub(crate) fn resources(topo: &Topology, env: &Environment, id: &str) -> (Vec<Entry>, Vec<Entry>) {
    let name = gate_function_name(env);
    let role = role_id(id);
    let log_group = format!("{id}GateLogGroup");
    let function = format!("{id}Gate");
    let url = format!("{id}GateUrl");
    let config = gate_config(topo, env).unwrap_or_default();
    let role_arn = topo.gate_role_arn(env).unwrap_or_default();
    let mut res = vec![
        Entry::new(
            &role,
            json!({
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": name,
                    "Description": format!("rolehop claim gate of environment {}: may only assume its service role", env.name),
                    "AssumeRolePolicyDocument": crate::gate::gate_role_trust(),
                    "Tags": crate::cfn::tags(Some(env)),
                }
            }),
        )
        .with_comment(&[
            &format!("Claim gate of environment `{}`.", env.name),
            "Its own identity: it may assume this environment's service role and nothing else,",
            "and that role trusts only it, so a compromised gate reaches one environment.",
        ]),
        Entry::new(
            format!("{role}Policy"),
            json!({
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "PolicyName": "rolehop-assume-service-role",
                    "Roles": [{"Ref": role}],
                    "PolicyDocument": gate_role_policy(topo, env),
                }
            }),
        ),
        Entry::new(
            format!("{role}LogsPolicy"),
            json!({
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "PolicyName": "rolehop-gate-logs",
                    "Roles": [{"Ref": role}],
                    "PolicyDocument": {
                        "Version": crate::iam::POLICY_VERSION,
                        "Statement": [{
                            "Sid": "OwnLogGroupOnly",
                            "Effect": "Allow",
                            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                            "Resource": {"Fn::GetAtt": [&log_group, "Arn"]},
                        }]
                    },
                }
            }),
        ),
        Entry::new(
            &log_group,
            json!({
                "Type": "AWS::Logs::LogGroup",
                // The access log outlives a stack replacement: it is evidence.
                "DeletionPolicy": "Retain",
                "UpdateReplacePolicy": "Retain",
                "Properties": {
                    "LogGroupName": format!("/aws/lambda/{name}"),
                    "RetentionInDays": LOG_RETENTION_DAYS,
                }
            }),
        )
        .with_comment(&[&format!(
            "One line per request: status, environment, project, ref, pipeline, job, rule; never the token or credentials. Kept {LOG_RETENTION_DAYS} days."
        )]),
        Entry::new(
            &function,
            json!({
                "Type": "AWS::Lambda::Function",
                "DependsOn": [format!("{role}LogsPolicy"), format!("{role}Policy")],
                "Properties": {
                    "FunctionName": name,
                    "Description": format!("rolehop claim gate of environment {}", env.name),
                    "Runtime": "provided.al2023",
                    "Handler": "bootstrap",
                    "Architectures": ["x86_64"],
                    "Code": {
                        "S3Bucket": {"Ref": CODE_BUCKET_PARAM},
                        "S3Key": {"Ref": CODE_KEY_PARAM},
                    },
                    "Role": {"Fn::GetAtt": [&role, "Arn"]},
                    "MemorySize": 256,
                    // A JWKS fetch (at most 5 s) plus an STS call with its retries.
                    "Timeout": 20,
                    "Environment": {"Variables": {
                        GATE_CONFIG_ENV: config,
                    }},
                    "Tags": crate::cfn::tags(Some(env)),
                }
            }),
        )
        .with_comment(&[
            &format!("Assumes {} for jobs whose signed claims pass the rules in", topo.service_role_arn(env)),
            &format!("{GATE_CONFIG_ENV} (gate-{}.toml of `rolehop render`).", env.name),
        ]),
        Entry::new(
            &url,
            json!({
                "Type": "AWS::Lambda::Url",
                "Properties": {
                    "TargetFunctionArn": {"Fn::GetAtt": [&function, "Arn"]},
                    "AuthType": "NONE",
                    "InvokeMode": "BUFFERED",
                }
            }),
        )
        .with_comment(&[
            "AuthType NONE: the GitLab ID token in the request is the authentication; the gate",
            "verifies its signature, issuer, audience and times before anything else.",
        ]),
        Entry::new(
            format!("{url}Permission"),
            json!({
                "Type": "AWS::Lambda::Permission",
                "Properties": {
                    "FunctionName": {"Ref": &function},
                    "Action": "lambda:InvokeFunctionUrl",
                    "Principal": "*",
                    "FunctionUrlAuthType": "NONE",
                }
            }),
        ),
    ];
    // Function URLs created since October 2025 also need `lambda:InvokeFunction` for
    // public access, limited to invocations through the URL.
    res.push(Entry::new(
        format!("{url}InvokePermission"),
        json!({
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "FunctionName": {"Ref": &function},
                "Action": "lambda:InvokeFunction",
                "Principal": "*",
                "InvokedViaFunctionUrl": true,
            }
        }),
    ));
    let outputs = vec![
        Entry::new(
            format!("{url}Out"),
            json!({
                "Description": format!("the claim gate's URL for environment {} (jobs: ROLEHOP_GATE_URL)", env.name),
                "Value": {"Fn::GetAtt": [&url, "FunctionUrl"]},
            }),
        ),
        Entry::new(
            format!("{role}Arn"),
            json!({
                "Description": format!("the claim gate's role of environment {}", env.name),
                "Value": role_arn,
            }),
        ),
    ];
    let _: &Value = &outputs[0].value;
    (res, outputs)
}
