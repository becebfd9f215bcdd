//! Errors raised while parsing a policy document. Each carries a JSON path into the document
//! (`Statement[2].Condition.StringLike`) so users can find the offending element.

use std::fmt;

/// A malformed policy document: where (JSON path) and what rule was broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", fmt_path(path))]
pub struct PolicyError {
    /// JSON path into the document, empty for the document itself.
    pub path: String,
    /// What is wrong, lowercase, no trailing period.
    pub message: String,
}

fn fmt_path(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("at `{path}`: ")
    }
}

impl PolicyError {
    pub(crate) fn new(path: impl Into<String>, message: impl fmt::Display) -> PolicyError {
        PolicyError {
            path: path.into(),
            message: message.to_string(),
        }
    }

    /// Prefixes the path, for documents nested inside larger files (case files, exports).
    pub fn within(mut self, prefix: &str) -> PolicyError {
        self.path = join_path(prefix, &self.path);
        self
    }
}

/// Joins two JSON path fragments (`a` + `b` -> `a.b`, `a` + `[1]` -> `a[1]`).
pub(crate) fn join_path(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_string()
    } else if rest.is_empty() {
        prefix.to_string()
    } else if rest.starts_with('[') {
        format!("{prefix}{rest}")
    } else {
        format!("{prefix}.{rest}")
    }
}
