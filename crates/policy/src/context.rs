//! Request context: condition keys (case-insensitive) mapped to one or many string values,
//! as IAM sees them (`aws:SourceIp`, `aws:PrincipalTag/team`, `aws:TagKeys` ...).

use std::collections::HashMap;

/// The values of one context key; `multi` records that the key is a list (for set operators).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContextValue {
    /// The key's values, in the request's order.
    pub values: Vec<String>,
    /// The key is a list even with one value (`aws:TagKeys`): set operators read it as a
    /// set, and a policy variable never substitutes it.
    pub multi: bool,
}

/// Condition keys and their values. Keys compare case-insensitively; values keep their case.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Context {
    entries: HashMap<String, ContextValue>,
}

impl Context {
    /// A context without keys: conditions on any key see it absent.
    pub fn new() -> Context {
        Context::default()
    }

    /// Adds a single-valued key (replacing any previous value), builder style.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Context {
        self.insert(key, value);
        self
    }

    /// Adds a multi-valued key (replacing any previous value), builder style.
    pub fn with_values<I, S>(mut self, key: &str, values: I) -> Context
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.insert_values(key, values);
        self
    }

    /// Sets a single-valued key.
    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        self.entries.insert(
            key.to_ascii_lowercase(),
            ContextValue {
                values: vec![value.into()],
                multi: false,
            },
        );
    }

    /// Sets a multi-valued key.
    pub fn insert_values<I, S>(&mut self, key: &str, values: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.entries.insert(
            key.to_ascii_lowercase(),
            ContextValue {
                values: values.into_iter().map(Into::into).collect(),
                multi: true,
            },
        );
    }

    /// Sets a key only when it is not present yet (used for keys derived from the request).
    pub fn insert_default(&mut self, key: &str, value: impl Into<String>) {
        self.entries
            .entry(key.to_ascii_lowercase())
            .or_insert_with(|| ContextValue {
                values: vec![value.into()],
                multi: false,
            });
    }

    /// The values of a key, whatever case it is asked in.
    pub fn get(&self, key: &str) -> Option<&ContextValue> {
        if key.bytes().any(|b| b.is_ascii_uppercase()) {
            self.entries.get(&key.to_ascii_lowercase())
        } else {
            self.entries.get(key)
        }
    }

    /// The first value of a key.
    pub fn get_one(&self, key: &str) -> Option<&str> {
        self.get(key)
            .and_then(|v| v.values.first())
            .map(String::as_str)
    }

    /// Whether the request carries `key` (case-insensitive), which `Null` and `...IfExists`
    /// depend on.
    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// No key at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keys (lowercased) and values.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ContextValue)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }
}
