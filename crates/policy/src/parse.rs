//! Policy documents (JSON text, URL-encoded JSON as the IAM API returns it, or a JSON value)
//! -> [`Policy`]. Strict about the grammar so mistakes surface as errors with a JSON path,
//! never as silently ignored statements.

use serde_json::{Map, Value};

use crate::arn::ArnPattern;
use crate::ast::{Block, Effect, Policy, PrincipalSet, PrincipalType, Statement};
use crate::condition::{Condition, Operator};
use crate::error::PolicyError;
use crate::error::PolicyErrorKind::*;
use crate::pattern::Glob;

/// Parses JSON text or URL-encoded JSON text.
pub fn parse_text(text: &str) -> Result<Policy, PolicyError> {
    parse_value(&decode_text(text)?)
}

/// Parses a JSON value: an object, or a string holding JSON or URL-encoded JSON.
pub fn parse_value(value: &Value) -> Result<Policy, PolicyError> {
    match value {
        Value::Object(map) => parse_document(map),
        Value::String(s) => parse_text(s),
        other => Err(PolicyError::new(
            "",
            WrongType {
                expected: "a policy object",
                found: json_kind(other),
            },
        )),
    }
}

/// A policy document as the IAM API hands it out (a JSON object, or its JSON text, plain or
/// URL-encoded) as a JSON value, for callers that keep more of it than the [`Policy`] AST.
pub fn document_value(value: Value) -> Result<Value, PolicyError> {
    match value {
        Value::Object(_) => Ok(value),
        Value::String(s) => decode_text(&s),
        other => Err(PolicyError::new(
            "",
            WrongType {
                expected: "a policy object",
                found: json_kind(&other),
            },
        )),
    }
}

/// JSON text or URL-encoded JSON text -> its JSON value.
fn decode_text(text: &str) -> Result<Value, PolicyError> {
    let trimmed = text.trim();
    let decoded;
    let json = if trimmed.starts_with('{') {
        trimmed
    } else if trimmed.starts_with('%') {
        decoded = percent_decode(trimmed).ok_or_else(|| PolicyError::new("", NotUtf8))?;
        decoded.as_str()
    } else {
        return Err(PolicyError::new("", NotADocument));
    };
    serde_json::from_str(json).map_err(|e| {
        PolicyError::new(
            "",
            Json {
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            },
        )
    })
}

/// Decodes `%XX` escapes (IAM does not use `+` for spaces).
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(byte) = hex {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// How a JSON value reads in a message: "an object", "a string", ...
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn parse_document(map: &Map<String, Value>) -> Result<Policy, PolicyError> {
    let mut version = None;
    let mut id = None;
    for (k, v) in map {
        match k.as_str() {
            "Version" => match v {
                Value::String(s) if s == "2012-10-17" || s == "2008-10-17" => {
                    version = Some(s.clone())
                }
                Value::String(s) => {
                    return Err(PolicyError::new("Version", UnknownVersion(s.clone())));
                }
                other => {
                    return Err(PolicyError::new(
                        "Version",
                        WrongType {
                            expected: "a string",
                            found: json_kind(other),
                        },
                    ));
                }
            },
            "Id" => id = Some(string(v, "Id")?.to_string()),
            "Statement" => {}
            other => {
                return Err(PolicyError::new("", UnknownElement(other.to_owned())));
            }
        }
    }
    let variables = version.as_deref() == Some("2012-10-17");
    let statements = match map.get("Statement") {
        None => return Err(PolicyError::new("", Missing("`Statement`"))),
        Some(Value::Object(s)) => vec![parse_statement(s, 0, "Statement", variables)?],
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let path = format!("Statement[{i}]");
                match item {
                    Value::Object(s) => out.push(parse_statement(s, i, &path, variables)?),
                    other => {
                        return Err(PolicyError::new(
                            path,
                            WrongType {
                                expected: "a statement object",
                                found: json_kind(other),
                            },
                        ));
                    }
                }
            }
            out
        }
        Some(other) => {
            return Err(PolicyError::new(
                "Statement",
                WrongType {
                    expected: "an object or an array",
                    found: json_kind(other),
                },
            ));
        }
    };
    Ok(Policy {
        version,
        id,
        name: None,
        statements,
    })
}

fn string<'v>(v: &'v Value, path: &str) -> Result<&'v str, PolicyError> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(PolicyError::new(
            path,
            WrongType {
                expected: "a string",
                found: json_kind(other),
            },
        )),
    }
}

/// A string or a non-empty array of strings.
fn strings<'v>(v: &'v Value, path: &str) -> Result<Vec<&'v str>, PolicyError> {
    match v {
        Value::String(s) => Ok(vec![s.as_str()]),
        Value::Array(items) => {
            if items.is_empty() {
                return Err(PolicyError::new(path, Empty("value")));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| string(item, &format!("{path}[{i}]")))
                .collect()
        }
        other => Err(PolicyError::new(
            path,
            WrongType {
                expected: "a string or an array of strings",
                found: json_kind(other),
            },
        )),
    }
}

/// Exactly one of `pos`/`neg` (or neither when `optional`).
fn pick<'m>(
    map: &'m Map<String, Value>,
    pos: &'static str,
    neg: &'static str,
    path: &str,
) -> Result<Option<(bool, &'m Value, String)>, PolicyError> {
    match (map.get(pos), map.get(neg)) {
        (Some(_), Some(_)) => Err(PolicyError::new(path, Both(pos, neg))),
        (Some(v), None) => Ok(Some((true, v, format!("{path}.{pos}")))),
        (None, Some(v)) => Ok(Some((false, v, format!("{path}.{neg}")))),
        (None, None) => Ok(None),
    }
}

fn block<T>(positive: bool, items: T) -> Block<T> {
    if positive {
        Block::Is(items)
    } else {
        Block::Not(items)
    }
}

fn parse_statement(
    map: &Map<String, Value>,
    index: usize,
    path: &str,
    variables: bool,
) -> Result<Statement, PolicyError> {
    const KNOWN: &[&str] = &[
        "Sid",
        "Effect",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Principal",
        "NotPrincipal",
        "Condition",
    ];
    if let Some(k) = map.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(PolicyError::new(path, UnknownStatementElement(k.clone())));
    }
    let sid = map
        .get("Sid")
        .map(|v| string(v, &format!("{path}.Sid")).map(str::to_string))
        .transpose()?;
    let effect_path = format!("{path}.Effect");
    let effect = match map.get("Effect") {
        None => return Err(PolicyError::new(path, Missing("`Effect`"))),
        Some(v) => match string(v, &effect_path)? {
            "Allow" => Effect::Allow,
            "Deny" => Effect::Deny,
            other => {
                return Err(PolicyError::new(
                    effect_path,
                    UnknownEffect(other.to_owned()),
                ));
            }
        },
    };
    let action = match pick(map, "Action", "NotAction", path)? {
        None => return Err(PolicyError::new(path, Missing("`Action` or `NotAction`"))),
        Some((pos, v, p)) => {
            let actions = strings(v, &p)?;
            // IAM refuses such a document (MalformedPolicyDocument: actions must be prefaced
            // by a vendor); accepting it would decide requests with a policy AWS never holds.
            if let Some(bad) = actions.iter().find(|a| {
                let a = a.trim();
                a != "*"
                    && a.split_once(':')
                        .is_none_or(|(vendor, _)| vendor.trim().is_empty())
            }) {
                return Err(PolicyError::new(&p, BadAction((*bad).to_owned())));
            }
            let globs = actions.into_iter().map(|a| Glob::new(a, true)).collect();
            block(pos, globs)
        }
    };
    let resource = match pick(map, "Resource", "NotResource", path)? {
        None => None,
        Some((pos, v, p)) => {
            let pats = strings(v, &p)?
                .into_iter()
                .map(|r| ArnPattern::new(r, variables))
                .collect::<Vec<_>>();
            Some(block(pos, pats))
        }
    };
    let principal = match pick(map, "Principal", "NotPrincipal", path)? {
        None => None,
        Some((pos, v, p)) => Some(block(pos, parse_principal(v, &p)?)),
    };
    let conditions = match map.get("Condition") {
        None => Vec::new(),
        Some(v) => parse_conditions(v, &format!("{path}.Condition"), variables)?,
    };
    let resource_literals = match &resource {
        Some(Block::Is(pats)) => crate::ast::LiteralResources::of(pats),
        _ => None,
    };
    Ok(Statement {
        index,
        sid,
        effect,
        action,
        resource,
        principal,
        conditions,
        resource_literals,
    })
}

fn parse_principal(v: &Value, path: &str) -> Result<PrincipalSet, PolicyError> {
    let mut set = PrincipalSet::default();
    match v {
        Value::String(s) if s == "*" => {
            set.wildcard = true;
            set.everyone = true;
        }
        Value::Object(map) => {
            if map.is_empty() {
                return Err(PolicyError::new(path, Empty("principal type")));
            }
            for (k, v) in map {
                let p = format!("{path}.{k}");
                let values: Vec<String> = strings(v, &p)?
                    .into_iter()
                    .map(|s| s.trim().to_string())
                    .collect();
                let (kind, target) = match k.as_str() {
                    "AWS" => {
                        if values.iter().any(|s| s == "*") {
                            set.wildcard = true;
                        }
                        (PrincipalType::Aws, &mut set.aws)
                    }
                    "Service" => (PrincipalType::Service, &mut set.service),
                    "Federated" => (PrincipalType::Federated, &mut set.federated),
                    "CanonicalUser" => (PrincipalType::CanonicalUser, &mut set.canonical_user),
                    other => {
                        return Err(PolicyError::new(
                            path,
                            UnknownPrincipalType(other.to_owned()),
                        ));
                    }
                };
                target.extend(values);
                set.push_order(kind);
            }
        }
        // A bare ARN string is read as `{"AWS": ...}`, as IAM does for older documents.
        Value::String(s) => {
            set.aws.push(s.trim().to_string());
            set.push_order(PrincipalType::Aws);
        }
        other => {
            return Err(PolicyError::new(
                path,
                WrongType {
                    expected: "`*` or an object",
                    found: json_kind(other),
                },
            ));
        }
    }
    Ok(set)
}

fn parse_conditions(v: &Value, path: &str, variables: bool) -> Result<Vec<Condition>, PolicyError> {
    let Value::Object(ops) = v else {
        return Err(PolicyError::new(
            path,
            WrongType {
                expected: "an object of operators",
                found: json_kind(v),
            },
        ));
    };
    let mut out = Vec::new();
    for (op_name, keys) in ops {
        let op_path = format!("{path}.{op_name}");
        let Some(operator) = Operator::parse(op_name) else {
            return Err(PolicyError::new(path, UnknownOperator(op_name.clone())));
        };
        let Value::Object(keys) = keys else {
            return Err(PolicyError::new(
                op_path,
                WrongType {
                    expected: "an object of condition keys",
                    found: json_kind(keys),
                },
            ));
        };
        for (key, values) in keys {
            let key_path = format!("{op_path}.{key}");
            let raw_values = condition_values(values, &key_path)?;
            let cond = Condition::new(operator.clone(), key, raw_values, variables).map_err(
                |(i, msg)| {
                    let p = if matches!(values, Value::Array(_)) {
                        format!("{key_path}[{i}]")
                    } else {
                        key_path.clone()
                    };
                    PolicyError::new(p, msg)
                },
            )?;
            out.push(cond);
        }
    }
    Ok(out)
}

/// Condition values may be strings, numbers or booleans, alone or in an array.
fn condition_values(v: &Value, path: &str) -> Result<Vec<String>, PolicyError> {
    let one = |v: &Value, p: &str| -> Result<String, PolicyError> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => Err(PolicyError::new(
                p,
                WrongType {
                    expected: "a string, number or boolean",
                    found: json_kind(other),
                },
            )),
        }
    };
    match v {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| one(item, &format!("{path}[{i}]")))
            .collect(),
        other => Ok(vec![one(other, path)?]),
    }
}
