//! The two stores the machine works on: IAM keys (with the record tag) and GitLab variables,
//! and the clock.

use std::time::Duration;

use time::OffsetDateTime;

use crate::Secret;

/// An access key's IAM status: only active keys sign requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// Signs requests.
    Active,
    /// Kept but refused by AWS: how an old key waits out its grace period.
    Inactive,
}

impl KeyStatus {
    /// IAM's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Inactive => "inactive",
        }
    }
}

/// An access key of the broker user (the id is not a secret; the secret never leaves
/// [`KeyStore::create_key`] except inside a [`Secret`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    /// The access key id.
    pub id: String,
    /// Whether it signs requests.
    pub status: KeyStatus,
}

/// What signing a request with a key (sts:GetCallerIdentity) said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// The key works; `arn` is the caller identity it signed as.
    /// The key works.
    Accepted {
        /// The identity it signed as.
        arn: String,
    },
    /// AWS refused the key or its secret (`InvalidClientTokenId`, `SignatureDoesNotMatch`).
    /// AWS refused the key.
    Rejected {
        /// AWS's error code and message.
        reason: String,
    },
}

/// Why a store call failed, so the CLI can pick an exit code and a hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// Authenticated but not allowed (IAM AccessDenied, GitLab 401/403).
    Denied,
    /// The user, project, group or variable does not exist.
    NotFound,
    /// Network, timeouts, throttling or 5xx after bounded retries.
    Unavailable,
    /// The service refused the request as malformed (e.g. GitLab's masked-value rules).
    Invalid,
    /// IAM's 2-key quota.
    Quota,
    /// No credentials to call the service with.
    NoCredentials,
    /// Anything else the service said; treated as unavailable.
    Other,
}

/// A failed store call. The message never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    /// What went wrong, for the exit code.
    pub kind: StoreErrorKind,
    /// What to tell the user; never a secret.
    pub message: String,
}

impl StoreError {
    /// A failure of `kind` described by `message`.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl crate::exit::HasExit for StoreError {
    fn exit(&self) -> crate::exit::Exit {
        use crate::exit::Exit;
        match self.kind {
            // GitLab's 400 (a masked-value rule) is its refusal of rotate's request.
            StoreErrorKind::Denied | StoreErrorKind::NotFound | StoreErrorKind::Invalid => {
                Exit::Denied
            }
            StoreErrorKind::Unavailable | StoreErrorKind::Other => Exit::Unavailable,
            // IAM's two-key quota: rotate will not delete a key it did not create.
            StoreErrorKind::Quota => Exit::Refused,
            StoreErrorKind::NoCredentials => Exit::NoCredentials,
        }
    }
}

/// The broker IAM user: its access keys, a tag for the rotation record, and a way to try a key.
pub trait KeyStore {
    /// The user's access keys.
    fn list_keys(&mut self) -> Result<Vec<AccessKey>, StoreError>;
    /// Creates an active key; the secret exists only in the returned value from here on.
    fn create_key(&mut self) -> Result<(String, Secret), StoreError>;
    /// Activates or deactivates a key.
    fn set_status(&mut self, id: &str, status: KeyStatus) -> Result<(), StoreError>;
    /// Deletes a key; the machine only deletes keys it retired.
    fn delete_key(&mut self, id: &str) -> Result<(), StoreError>;
    /// The rotation record tag's value, if the user has one.
    fn read_record(&mut self) -> Result<Option<String>, StoreError>;
    /// Writes the rotation record, before the change it announces.
    fn write_record(&mut self, value: &str) -> Result<(), StoreError>;
    /// Removes the record once a rotation is complete.
    fn clear_record(&mut self) -> Result<(), StoreError>;
    /// Signs one sts:GetCallerIdentity with the key. Transport failures are `Err`.
    fn verify(&mut self, id: &str, secret: &Secret) -> Result<Verification, StoreError>;
}

/// A CI/CD variable as GitLab returns it (one environment scope, chosen by the store).
#[derive(Debug, Clone)]
pub struct StoredVariable {
    /// The value (`<access key id>:<secret>`); redacted.
    pub value: Secret,
    /// GitLab's description, which names the key the value holds.
    pub description: Option<String>,
    /// GitLab answered with a `description` field (null or not). Versions before variable
    /// descriptions omit it, and then only signing with the value tells whose secret it is.
    pub descriptions_supported: bool,
    /// Hidden in job logs.
    pub masked: bool,
    /// Only protected refs receive it.
    pub protected: bool,
}

/// A create-or-update of one variable in the store's environment scope.
#[derive(Debug, Clone)]
pub struct VariableWrite {
    /// The variable's name.
    pub key: String,
    /// The value; redacted.
    pub value: Secret,
    /// Ask GitLab to hide it in job logs.
    pub masked: bool,
    /// Only protected refs receive it.
    pub protected: bool,
    /// Names the key the value holds, so a resumed run knows it without reading the value.
    pub description: String,
}

/// The GitLab CI/CD variables of one project or group, in one environment scope.
pub trait VariableStore {
    /// The variable called `key` in the scope, if it exists.
    fn get(&mut self, key: &str) -> Result<Option<StoredVariable>, StoreError>;
    /// Creates or updates the variable in the scope.
    fn put(&mut self, var: &VariableWrite) -> Result<(), StoreError>;
    /// Deletes the variable in the store's scope; a missing variable is not an error.
    fn delete(&mut self, key: &str) -> Result<(), StoreError>;
}

/// Time and waiting, injected so tests neither read the clock nor sleep.
pub trait Clock {
    /// The current time.
    fn now(&self) -> OffsetDateTime;
    /// Waits `d` (the real clock sleeps; tests' clocks advance).
    fn sleep(&self, d: Duration);
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}
