//! The conformance case-file format (a JSON array of request -> expected decision cases, as in
//! iam-simulate's test corpus), read into [`Request`]s and policies so the conformance tests and
//! `rolehop simulate` share one reader.

use serde_json::Value;

use crate::ast::Policy;
use crate::context::Context;
use crate::error::{PolicyError, PolicyErrorKind};
use crate::eval::{Decision, EvalInput, EvalOptions, Evaluation, evaluate_with};
use crate::request::{Principal, Request};

/// A malformed case file: the JSON path and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{kind}", if path.is_empty() { String::new() } else { format!("at `{path}`: ") })]
pub struct CaseError {
    /// JSON path into the case file, empty for the file itself.
    pub path: String,
    /// What is wrong.
    pub kind: CaseErrorKind,
}

/// What is wrong with a case file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseErrorKind {
    /// Not JSON at all (serde_json's message).
    #[error("invalid JSON: {0}")]
    Json(String),
    /// A policy inside a case breaks the policy grammar.
    #[error(transparent)]
    Policy(PolicyErrorKind),
    /// The case file's own layout (iam-simulate's format) is not followed; the text says what
    /// was expected.
    #[error("{0}")]
    Layout(&'static str),
    /// An expected decision other than the three iam-simulate writes.
    #[error("unknown response `{0}`, expected `Allowed`, `ImplicitlyDenied` or `ExplicitlyDenied`")]
    UnknownResponse(String),
}

impl From<PolicyError> for CaseError {
    fn from(e: PolicyError) -> Self {
        CaseError {
            path: e.path,
            kind: CaseErrorKind::Policy(e.kind),
        }
    }
}

/// One case: a request, the policies in force and the expected decision.
#[derive(Debug, Clone)]
pub struct Case {
    /// The case's `name`, else its JSON path: how a failing case is reported.
    pub name: String,
    /// The request to decide.
    pub request: Request,
    /// The principal's identity-based policies.
    pub identity: Vec<Policy>,
    /// The resource's policy (a trust policy for `sts:AssumeRole*`).
    pub resource: Option<Policy>,
    /// Permissions boundaries on the principal.
    pub boundaries: Vec<Policy>,
    /// Service control policies, one list per organization level (root first).
    pub scps: Vec<Vec<Policy>>,
    /// Resource control policies, one list per organization level.
    pub rcps: Vec<Vec<Policy>>,
    /// A session policy passed when the session was created.
    pub session: Option<Policy>,
    /// VPC endpoint policies the request passes through.
    pub endpoints: Vec<Policy>,
    /// The decision the case expects; `None` when the case file gives none.
    pub expected: Option<Decision>,
    /// The case uses iam-simulate's discovery mode (`simulation` key): not decidable here.
    pub simulation: bool,
}

impl Case {
    /// Decides the case.
    pub fn evaluate(&self) -> Evaluation {
        self.evaluate_with(EvalOptions::default())
    }

    /// Decides the case with options (discovery mode for `simulation` cases).
    pub fn evaluate_with(&self, options: EvalOptions) -> Evaluation {
        let identity: Vec<&Policy> = self.identity.iter().collect();
        let boundaries: Vec<&Policy> = self.boundaries.iter().collect();
        let scps: Vec<Vec<&Policy>> = self.scps.iter().map(|l| l.iter().collect()).collect();
        let rcps: Vec<Vec<&Policy>> = self.rcps.iter().map(|l| l.iter().collect()).collect();
        let endpoints: Vec<&Policy> = self.endpoints.iter().collect();
        let input = EvalInput {
            identity: &identity,
            resource: self.resource.as_ref(),
            boundaries: &boundaries,
            scps: &scps,
            rcps: &rcps,
            session: self.session.as_ref(),
            endpoints: &endpoints,
        };
        evaluate_with(&self.request, &input, options)
    }
}

/// Parses a case file's text.
pub fn parse_cases(text: &str) -> Result<Vec<Case>, CaseError> {
    let value: Value = serde_json::from_str(text).map_err(|e| CaseError {
        path: String::new(),
        kind: CaseErrorKind::Json(e.to_string()),
    })?;
    cases_from_value(&value)
}

fn err(path: impl Into<String>, message: &'static str) -> CaseError {
    CaseError {
        path: path.into(),
        kind: CaseErrorKind::Layout(message),
    }
}

fn policy(v: &Value, path: &str) -> Result<Policy, CaseError> {
    Ok(Policy::from_value(v)
        .map_err(|e| e.within(path))?
        .with_name(path.to_string()))
}

fn policies(v: Option<&Value>, path: &str) -> Result<Vec<Policy>, CaseError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, p)| policy(p, &format!("{path}[{i}]")))
            .collect(),
        Some(_) => Err(err(path, "expected an array of policies")),
    }
}

/// `[{"orgIdentifier": ..., "policies": [...]}, ...]`, one entry per organization level.
fn levels(v: Option<&Value>, path: &str) -> Result<Vec<Vec<Policy>>, CaseError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, level)| {
                let p = format!("{path}[{i}]");
                let label = level
                    .get("orgIdentifier")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let mut ps = policies(level.get("policies"), &format!("{p}.policies"))?;
                if !label.is_empty() {
                    for (j, pol) in ps.iter_mut().enumerate() {
                        pol.name = Some(format!("{label} policy #{j}"));
                    }
                }
                Ok(ps)
            })
            .collect(),
        Some(_) => Err(err(path, "expected an array of organization levels")),
    }
}

fn parse_request(v: &Value, path: &str) -> Result<Request, CaseError> {
    let Value::Object(map) = v else {
        return Err(err(path, "expected a request object"));
    };
    let action = map
        .get("action")
        .and_then(Value::as_str)
        .ok_or_else(|| err(format!("{path}.action"), "expected an action string"))?;
    let (resource, account) = match map.get("resource") {
        Some(Value::String(r)) => (r.clone(), None),
        Some(Value::Object(r)) => {
            let arn = r
                .get("resource")
                .and_then(Value::as_str)
                .ok_or_else(|| err(format!("{path}.resource.resource"), "expected a string"))?;
            let acct = match r.get("accountId") {
                None | Some(Value::Null) => None,
                Some(Value::String(a)) => Some(a.clone()),
                Some(_) => {
                    return Err(err(
                        format!("{path}.resource.accountId"),
                        "expected a string",
                    ));
                }
            };
            (arn.to_string(), acct)
        }
        _ => {
            return Err(err(
                format!("{path}.resource"),
                "expected a resource ARN or {\"resource\": ..., \"accountId\": ...}",
            ));
        }
    };
    let principal = match map.get("principal") {
        Some(Value::String(p)) => Principal::from_string(p),
        Some(Value::Object(p)) => match p.get("type").and_then(Value::as_str) {
            Some(t) if t.eq_ignore_ascii_case("anonymous") => Principal::Anonymous,
            _ => {
                return Err(err(
                    format!("{path}.principal"),
                    "expected a principal string or {\"type\": \"Anonymous\"}",
                ));
            }
        },
        _ => {
            return Err(err(
                format!("{path}.principal"),
                "expected a principal string or {\"type\": \"Anonymous\"}",
            ));
        }
    };
    let mut context = Context::new();
    match map.get("context") {
        None | Some(Value::Null) => {}
        Some(Value::Object(ctx)) => {
            for (k, v) in ctx {
                let p = format!("{path}.context.{k}");
                match v {
                    Value::Array(items) => {
                        let values = items
                            .iter()
                            .enumerate()
                            .map(|(i, item)| scalar(item, &format!("{p}[{i}]")))
                            .collect::<Result<Vec<_>, _>>()?;
                        context.insert_values(k, values);
                    }
                    other => context.insert(k, scalar(other, &p)?),
                }
            }
        }
        Some(_) => return Err(err(format!("{path}.context"), "expected an object")),
    }
    Ok(Request {
        action: action.to_string(),
        resource,
        resource_account: account,
        principal,
        context,
        wildcard_only_action: map
            .get("wildcardOnlyAction")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

fn scalar(v: &Value, path: &str) -> Result<String, CaseError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(err(path, "expected a string, number or boolean")),
    }
}

fn parse_decision(s: &str) -> Option<Decision> {
    match s {
        "Allowed" => Some(Decision::Allowed),
        "ImplicitlyDenied" => Some(Decision::ImplicitlyDenied),
        "ExplicitlyDenied" => Some(Decision::ExplicitlyDenied),
        _ => None,
    }
}

fn parse_case(v: &Value, path: &str) -> Result<Case, CaseError> {
    let Value::Object(map) = v else {
        return Err(err(path, "expected a case object"));
    };
    let name = match map.get("name") {
        Some(Value::String(n)) => n.clone(),
        None => path.to_string(),
        Some(_) => return Err(err(format!("{path}.name"), "expected a string")),
    };
    let request = parse_request(
        map.get("request")
            .ok_or_else(|| err(path, "missing `request`"))?,
        &format!("{path}.request"),
    )?;
    let optional_policy = |key: &str| -> Result<Option<Policy>, CaseError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(p) => policy(p, &format!("{path}.{key}")).map(Some),
        }
    };
    let expected = match map.get("expected") {
        None | Some(Value::Null) => None,
        Some(e) => {
            let p = format!("{path}.expected.response");
            let response = e
                .get("response")
                .and_then(Value::as_str)
                .ok_or_else(|| err(&p, "expected a response string"))?;
            Some(parse_decision(response).ok_or_else(|| CaseError {
                path: p.clone(),
                kind: CaseErrorKind::UnknownResponse(response.to_owned()),
            })?)
        }
    };
    Ok(Case {
        name,
        request,
        identity: policies(
            map.get("identityPolicies"),
            &format!("{path}.identityPolicies"),
        )?,
        resource: optional_policy("resourcePolicy")?,
        boundaries: policies(
            map.get("permissionBoundaries"),
            &format!("{path}.permissionBoundaries"),
        )?,
        scps: levels(
            map.get("serviceControlPolicies"),
            &format!("{path}.serviceControlPolicies"),
        )?,
        rcps: levels(
            map.get("resourceControlPolicies"),
            &format!("{path}.resourceControlPolicies"),
        )?,
        session: optional_policy("sessionPolicy")?,
        endpoints: policies(
            map.get("endpointPolicies"),
            &format!("{path}.endpointPolicies"),
        )?,
        expected,
        simulation: map.contains_key("simulation"),
    })
}

/// Parses a case file already read as JSON.
pub fn cases_from_value(value: &Value) -> Result<Vec<Case>, CaseError> {
    let Value::Array(items) = value else {
        return Err(err("", "a case file must be a JSON array of cases"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, c)| parse_case(c, &format!("[{i}]")))
        .collect()
}
