//! In-memory stores that behave like IAM and GitLab for the rotation (quota, statuses, tags,
//! descriptions). `--dry-run` replays a rotation on a copy of the observed world with them, and
//! the unit tests inject faults and crashes through them.

use std::collections::BTreeMap;

use secrecy::ExposeSecret;

use super::{
    AccessKey, KeyStatus, KeyStore, StoreError, StoreErrorKind, StoredVariable, VariableStore,
    VariableWrite, Verification,
};
use crate::Secret;
use crate::secret::secret;

/// One IAM user's keys and rotation tag.
#[derive(Debug, Clone)]
pub struct SimKeys {
    /// The user's ARN, which `verify` answers with.
    pub arn: String,
    /// Each key with its secret; `None` when unknown (a real key seen by `--dry-run`), which
    /// `verify` then trusts.
    pub keys: Vec<(AccessKey, Option<Secret>)>,
    /// The rotation record tag.
    pub record: Option<String>,
    /// Ids of created keys are this prefix plus a counter.
    pub id_prefix: String,
    /// Rejections `verify` gives a new key before accepting it (IAM's eventual consistency).
    pub reject_new_times: usize,
    /// Accept any secret for a known key, as moto does with auth off: recovery must not depend
    /// on AWS checking the secret.
    pub ignore_secrets: bool,
    created: usize,
    rejections: BTreeMap<String, usize>,
}

impl SimKeys {
    /// A user without keys or record.
    pub fn new(arn: impl Into<String>) -> Self {
        Self {
            arn: arn.into(),
            keys: Vec::new(),
            record: None,
            id_prefix: "AKIASIM".into(),
            reject_new_times: 0,
            ignore_secrets: false,
            created: 0,
            rejections: BTreeMap::new(),
        }
    }

    /// Adds a key (builder style); `secret_value` `None` for a key whose secret is unknown.
    pub fn with_key(mut self, id: &str, status: KeyStatus, secret_value: Option<&str>) -> Self {
        self.keys.push((
            AccessKey {
                id: id.into(),
                status,
            },
            secret_value.map(secret),
        ));
        self
    }

    /// The key's status; `None` when the user has no such key.
    pub fn status(&self, id: &str) -> Option<KeyStatus> {
        self.keys
            .iter()
            .find(|(k, _)| k.id == id)
            .map(|(k, _)| k.status)
    }

    /// The key's secret, if known.
    pub fn secret_of(&self, id: &str) -> Option<&Secret> {
        self.keys
            .iter()
            .find(|(k, _)| k.id == id)
            .and_then(|(_, s)| s.as_ref())
    }

    fn find(&mut self, id: &str) -> Result<&mut (AccessKey, Option<Secret>), StoreError> {
        self.keys
            .iter_mut()
            .find(|(k, _)| k.id == id)
            .ok_or_else(|| {
                StoreError::new(
                    StoreErrorKind::NotFound,
                    format!("the access key `{id}` does not exist"),
                )
            })
    }
}

impl KeyStore for SimKeys {
    fn list_keys(&mut self) -> Result<Vec<AccessKey>, StoreError> {
        Ok(self.keys.iter().map(|(k, _)| k.clone()).collect())
    }

    fn create_key(&mut self) -> Result<(String, Secret), StoreError> {
        if self.keys.len() >= 2 {
            return Err(StoreError::new(
                StoreErrorKind::Quota,
                "cannot exceed quota for AccessKeysPerUser: 2",
            ));
        }
        self.created += 1;
        let id = if self.id_prefix.ends_with('-') {
            format!("{}{}", self.id_prefix, self.created)
        } else {
            format!("{}{:0>13}", self.id_prefix, self.created)
        };
        // Shaped like an AWS secret (40 chars with `/` and `+`), distinct per key.
        let value = format!("sim/Secret+{:0>29}", self.created * 7919);
        self.keys.push((
            AccessKey {
                id: id.clone(),
                status: KeyStatus::Active,
            },
            Some(secret(value.clone())),
        ));
        self.rejections.insert(id.clone(), self.reject_new_times);
        Ok((id, secret(value)))
    }

    fn set_status(&mut self, id: &str, status: KeyStatus) -> Result<(), StoreError> {
        self.find(id)?.0.status = status;
        Ok(())
    }

    fn delete_key(&mut self, id: &str) -> Result<(), StoreError> {
        self.find(id)?;
        self.keys.retain(|(k, _)| k.id != id);
        Ok(())
    }

    fn read_record(&mut self) -> Result<Option<String>, StoreError> {
        Ok(self.record.clone())
    }

    fn write_record(&mut self, value: &str) -> Result<(), StoreError> {
        let ok = value.chars().count() <= super::RECORD_MAX_LEN
            && value
                .chars()
                .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c));
        if !ok {
            return Err(StoreError::new(
                StoreErrorKind::Invalid,
                format!("tag value `{value}` breaks IAM's tag value rules"),
            ));
        }
        self.record = Some(value.to_owned());
        Ok(())
    }

    fn clear_record(&mut self) -> Result<(), StoreError> {
        self.record = None;
        Ok(())
    }

    fn verify(&mut self, id: &str, given: &Secret) -> Result<Verification, StoreError> {
        let Some((key, known)) = self.keys.iter().find(|(k, _)| k.id == id) else {
            return Ok(Verification::Rejected {
                reason:
                    "InvalidClientTokenId: the security token included in the request is invalid"
                        .into(),
            });
        };
        if key.status != KeyStatus::Active {
            return Ok(Verification::Rejected {
                reason: "InvalidClientTokenId: the key is inactive".into(),
            });
        }
        if let Some(left) = self.rejections.get_mut(id)
            && *left > 0
        {
            *left -= 1;
            return Ok(Verification::Rejected {
                reason: "InvalidClientTokenId: not yet known (eventual consistency)".into(),
            });
        }
        match known {
            Some(s) if !self.ignore_secrets && s.expose_secret() != given.expose_secret() => {
                Ok(Verification::Rejected {
                    reason: "SignatureDoesNotMatch".into(),
                })
            }
            _ => Ok(Verification::Accepted {
                arn: self.arn.clone(),
            }),
        }
    }
}

/// One project's (or group's) variables in one environment scope.
#[derive(Debug, Clone, Default)]
pub struct SimVariables {
    /// The variables by key.
    pub vars: BTreeMap<String, StoredVariable>,
    /// Old GitLab versions drop `description`.
    pub drop_descriptions: bool,
    /// Variables that answer without their value (GitLab's "masked and hidden").
    pub hidden: Vec<String>,
}

impl SimVariables {
    /// The variable's value in clear, for assertions.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(|v| v.value.expose_secret())
    }

    /// Sets a variable as a person would by hand (masked, protected, no description).
    pub fn set(&mut self, key: &str, value: &str) {
        self.vars.insert(
            key.to_owned(),
            StoredVariable {
                value: secret(value),
                description: None,
                descriptions_supported: !self.drop_descriptions,
                masked: true,
                protected: true,
            },
        );
    }
}

impl VariableStore for SimVariables {
    fn get(&mut self, key: &str) -> Result<Option<StoredVariable>, StoreError> {
        let mut v = self.vars.get(key).cloned();
        if self.hidden.iter().any(|h| h == key)
            && let Some(v) = v.as_mut()
        {
            v.value = secret("");
        }
        Ok(v)
    }

    fn put(&mut self, var: &VariableWrite) -> Result<(), StoreError> {
        let v = var.value.expose_secret();
        if var.masked && (v.len() < 8 || v.contains(char::is_whitespace)) {
            return Err(StoreError::new(
                StoreErrorKind::Invalid,
                format!("`{}` cannot be masked", var.key),
            ));
        }
        self.vars.insert(
            var.key.clone(),
            StoredVariable {
                value: var.value.clone(),
                description: (!self.drop_descriptions).then(|| var.description.clone()),
                descriptions_supported: !self.drop_descriptions,
                masked: var.masked,
                protected: var.protected,
            },
        );
        Ok(())
    }

    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        self.vars.remove(key);
        Ok(())
    }
}

/// Copies what the real stores hold into simulated ones, for `--dry-run`: secrets of existing
/// keys are unknown (and trusted), keys created in the simulation are named `DRYRUNNEWKEY...1`
/// (shaped like access key ids, so the combined variable's value parses).
pub fn snapshot(
    keys: &mut impl KeyStore,
    vars: &mut impl VariableStore,
    settings: &super::Settings,
) -> Result<(SimKeys, SimVariables), StoreError> {
    let mut sk = SimKeys::new("(dry run)");
    sk.id_prefix = "DRYRUNNEWKEY".into();
    for k in keys.list_keys()? {
        sk.keys.push((k, None));
    }
    sk.record = keys.read_record()?;
    let mut sv = SimVariables::default();
    let legacy = settings.legacy_vars.iter().flat_map(|(a, b)| [a, b]);
    for key in std::iter::once(&settings.key_var).chain(legacy) {
        if let Some(v) = vars.get(key)? {
            sv.vars.insert(key.clone(), v);
        }
    }
    Ok((sk, sv))
}
