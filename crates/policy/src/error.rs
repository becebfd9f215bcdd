//! Errors raised while parsing a policy document. Each carries a JSON path into the document
//! (`Statement[2].Condition.StringLike`) so users can find the offending element.

/// A malformed policy document: where (JSON path) and what rule was broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{kind}", fmt_path(path))]
pub struct PolicyError {
    /// JSON path into the document, empty for the document itself.
    pub path: String,
    /// What is wrong; its text is lowercase, without a trailing period.
    pub kind: PolicyErrorKind,
}

/// What rule of the policy grammar a document breaks. Callers (and tests) match on the kind;
/// the text is for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyErrorKind {
    /// The text is neither a JSON object nor URL-encoded JSON.
    #[error("a policy document must be a JSON object (or URL-encoded JSON)")]
    NotADocument,
    /// URL-encoded text that decodes to bytes that are not UTF-8.
    #[error("the URL-encoded document is not valid UTF-8")]
    NotUtf8,
    /// serde_json's own error, with its position.
    #[error("invalid JSON at line {line} column {column}: {message}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// serde_json's message.
        message: String,
    },
    /// A value of the wrong JSON type (`expected a string, found an array`).
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What the grammar wants here, with its article.
        expected: &'static str,
        /// The JSON type found, with its article.
        found: &'static str,
    },
    /// An empty list where IAM needs at least one entry (`value`, `principal type`).
    #[error("expected at least one {0}")]
    Empty(&'static str),
    /// A required element is absent; the text names it with its backticks.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A `Version` IAM does not know.
    #[error("unknown version `{0}`, expected `2012-10-17` or `2008-10-17`")]
    UnknownVersion(String),
    /// A top-level element other than Version, Id, Statement.
    #[error("unknown element `{0}` (expected Version, Id or Statement)")]
    UnknownElement(String),
    /// A statement element IAM does not know.
    #[error("unknown statement element `{0}`")]
    UnknownStatementElement(String),
    /// Both halves of a pair such as `Action`/`NotAction`.
    #[error("a statement cannot have both `{0}` and `{1}`")]
    Both(&'static str, &'static str),
    /// An `Effect` other than Allow or Deny.
    #[error("unknown effect `{0}`, expected `Allow` or `Deny`")]
    UnknownEffect(String),
    /// An action without a service prefix: IAM refuses the document (MalformedPolicyDocument).
    #[error("action `{0}` must be `*` or `service:action` (like `sts:AssumeRole`)")]
    BadAction(String),
    /// A principal type other than AWS, Service, Federated, CanonicalUser.
    #[error("unknown principal type `{0}` (expected AWS, Service, Federated or CanonicalUser)")]
    UnknownPrincipalType(String),
    /// A condition operator IAM does not know.
    #[error("unknown condition operator `{0}`")]
    UnknownOperator(String),
    /// A condition value its operator cannot read (`abc` for NumericEquals).
    #[error("`{value}` is not {expected}")]
    BadConditionValue {
        /// The value as written.
        value: String,
        /// What the operator reads, with its article.
        expected: &'static str,
    },
}

fn fmt_path(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("at `{path}`: ")
    }
}

impl PolicyError {
    pub(crate) fn new(path: impl Into<String>, kind: PolicyErrorKind) -> PolicyError {
        PolicyError {
            path: path.into(),
            kind,
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
