//! Environment labels from outside the IAM data: `--env-map FILE` and an AWS Organizations
//! account list with tags. Both only label nodes; the inference ([`crate::infer`]) propagates
//! the labels along the access graph.

use serde_json::Value;

use crate::InputError;
use crate::infer::Label;
use crate::model::{Env, Estate, env_from_word, env_tag, guess_env};

fn json(file: &str, text: &str) -> Result<Value, InputError> {
    serde_json::from_str(text).map_err(|e| InputError::Json {
        file: file.to_owned(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

fn is_account(k: &str) -> bool {
    k.len() == 12 && k.bytes().all(|b| b.is_ascii_digit())
}

/// Reads `--env-map`: a JSON object whose keys are account ids (`"222222222222"`) or
/// principal ARNs / graph node ids (`"arn:aws:iam::1:user/ci"`, `"oidc:gitlab.com:..."`),
/// and whose values are an environment name (`"prod"`, `"production"`, `"prd"` and `"live"`
/// count as production) or `{"env": "eu-live", "prod": true}`.
pub fn add_env_map(estate: &mut Estate, file: &str, text: &str) -> Result<(), InputError> {
    let v = json(file, text)?;
    let shape = |m: String| InputError::Shape {
        file: file.to_owned(),
        message: m,
    };
    let map = v.as_object().ok_or_else(|| {
        shape("expected an object of `account id or ARN` -> `environment`".to_owned())
    })?;
    for (k, val) in map {
        let env = match val {
            Value::String(s) if !s.is_empty() => env_from_word(s),
            Value::Object(o) => {
                let name = o
                    .get("env")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| shape(format!("`{k}`.env must be a non-empty string")))?;
                match o.get("prod") {
                    None => env_from_word(name),
                    Some(Value::Bool(prod)) => Env {
                        name: name.to_owned(),
                        prod: *prod,
                    },
                    Some(_) => return Err(shape(format!("`{k}`.prod must be true or false"))),
                }
            }
            _ => {
                return Err(shape(format!(
                    "`{k}` must map to an environment name or `{{\"env\": ..., \"prod\": ...}}`"
                )));
            }
        };
        if is_account(k) {
            estate.labels.accounts.insert(
                k.clone(),
                Label {
                    env,
                    source: format!("`--env-map {file}` (account `{k}`)"),
                },
            );
        } else if k.starts_with("arn:") || k.starts_with("oidc:") || k == "*" {
            estate.labels.nodes.insert(
                k.clone(),
                Label {
                    env,
                    source: format!("`--env-map {file}`"),
                },
            );
        } else {
            return Err(shape(format!(
                "`{k}` is neither a 12-digit account id nor an ARN (`arn:...`) nor an OIDC subject (`oidc:...`)"
            )));
        }
    }
    Ok(())
}

/// Reads an AWS Organizations account list: the output of `aws organizations list-accounts`
/// (`{"Accounts": [{"Id", "Name", ...}]}`), each account optionally with the `Tags` of
/// `aws organizations list-tags-for-resource --resource-id <Id>` merged in. An account's
/// environment tag (`environment`, `env`, `stage`, `tier`) labels it; else a token of its
/// name (`shop-prod`); else it stays unlabelled.
pub fn add_org_accounts(estate: &mut Estate, file: &str, text: &str) -> Result<(), InputError> {
    let v = json(file, text)?;
    let shape = |m: String| InputError::Shape {
        file: file.to_owned(),
        message: m,
    };
    let accounts = v.get("Accounts").and_then(Value::as_array).ok_or_else(|| {
        shape("not an Organizations account list: expected `Accounts`, a list".to_owned())
    })?;
    for (i, a) in accounts.iter().enumerate() {
        let id = a
            .get("Id")
            .and_then(Value::as_str)
            .filter(|id| is_account(id))
            .ok_or_else(|| shape(format!("Accounts[{i}].Id must be a 12-digit account id")))?;
        let name = a.get("Name").and_then(Value::as_str).unwrap_or("");
        let tags = a
            .get("Tags")
            .and_then(Value::as_array)
            .map(|t| {
                t.iter()
                    .filter_map(|t| {
                        Some((
                            t.get("Key")?.as_str()?.to_owned(),
                            t.get("Value")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let label = if let Some((k, val)) = env_tag(&tags) {
            Some((
                env_from_word(val),
                format!("the Organizations export `{file}` (account `{id}` tag `{k}={val}`)"),
            ))
        } else {
            guess_env(name, &Default::default()).map(|e| {
                (
                    e,
                    format!("the Organizations export `{file}` (account `{id}` named `{name}`)"),
                )
            })
        };
        if let Some((env, source)) = label {
            estate
                .labels
                .org_accounts
                .insert(id.to_owned(), Label { env, source });
        }
    }
    Ok(())
}
