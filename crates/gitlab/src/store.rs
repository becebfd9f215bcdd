//! The variables `rotate` writes, as a [`VariableStore`]: one project or group, one
//! environment scope; creates when missing, updates in place otherwise.

use rolehop_core::rotation::{
    StoreError, StoreErrorKind, StoredVariable, VariableStore, VariableWrite,
};

use crate::client::{GitlabClient, NewVariable, Target};
use crate::error::GitlabError;

/// The broker key's home in GitLab: one target, one environment scope, so a rotation of one
/// environment can never overwrite another's variables.
pub struct GitlabVariables {
    client: GitlabClient,
    target: Target,
    scope: String,
}

impl GitlabVariables {
    /// The variables of `target` in environment scope `scope`.
    pub fn new(client: GitlabClient, target: Target, scope: impl Into<String>) -> Self {
        Self {
            client,
            target,
            scope: scope.into(),
        }
    }

    /// `project `acme/shop` (scope `production`)`, for messages.
    pub fn describe(&self) -> String {
        format!("{} (scope `{}`)", self.target.describe(), self.scope)
    }

    fn lookup(&self, key: &str) -> Result<Option<crate::Variable>, GitlabError> {
        let found = self.client.get_variable(&self.target, key, &self.scope)?;
        match found {
            Some(v) if v.environment_scope == self.scope => Ok(Some(v)),
            // Some GitLab versions ignore the scope filter (notably for groups): look through
            // the full list for the exact scope instead of trusting another scope's variable.
            Some(_) => Ok(self
                .client
                .list_variables(&self.target)?
                .into_iter()
                .find(|v| v.key == key && v.environment_scope == self.scope)),
            None => Ok(None),
        }
    }
}

fn store_error(e: GitlabError) -> StoreError {
    let kind = match &e {
        GitlabError::Unauthorized { .. } | GitlabError::Forbidden { .. } => StoreErrorKind::Denied,
        GitlabError::NotFound { .. } => StoreErrorKind::NotFound,
        GitlabError::Invalid { .. } => StoreErrorKind::Invalid,
        GitlabError::Unavailable { .. } => StoreErrorKind::Unavailable,
        GitlabError::Unexpected { .. } | GitlabError::Config(_) => StoreErrorKind::Other,
    };
    StoreError::new(kind, e.to_string())
}

impl VariableStore for GitlabVariables {
    fn get(&mut self, key: &str) -> Result<Option<StoredVariable>, StoreError> {
        Ok(self
            .lookup(key)
            .map_err(store_error)?
            .map(|v| StoredVariable {
                value: v.value,
                description: v.description,
                descriptions_supported: v.has_description_field,
                masked: v.masked,
                protected: v.protected,
            }))
    }

    fn put(&mut self, var: &VariableWrite) -> Result<(), StoreError> {
        let new = NewVariable {
            key: var.key.clone(),
            value: var.value.clone(),
            protected: var.protected,
            masked: var.masked,
            environment_scope: self.scope.clone(),
            description: var.description.clone(),
        };
        let exists = self.lookup(&var.key).map_err(store_error)?.is_some();
        let result = if exists {
            self.client.update_variable(&self.target, &new)
        } else {
            match self.client.create_variable(&self.target, &new) {
                // A create retried after a lost answer finds its own first attempt.
                Err(GitlabError::Invalid { message, .. })
                    if message.contains("already been taken") =>
                {
                    self.client.update_variable(&self.target, &new)
                }
                other => other,
            }
        };
        result.map(|_| ()).map_err(store_error)
    }

    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_variable(&self.target, key, &self.scope)
            .map_err(store_error)
    }
}
