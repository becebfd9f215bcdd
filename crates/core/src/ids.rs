//! AWS identifiers parsed once where raw input enters (topology, CLI flags, environment
//! variables), so the rest of rolehop holds an [`AccountId`], [`Region`], [`Partition`] or
//! [`RoleArn`] that is valid by construction instead of a `String` someone once checked.
//!
//! Each type reads as the text AWS uses (`Display`, [`as_str`](AccountId::as_str)) and
//! dereferences to `str`. That is deliberate: the ids end up in format strings, JSON
//! documents and SDK builders that all take `&str`, the view is read-only so the invariant
//! cannot be broken through it, and it keeps the switch from `String` a type change rather
//! than an edit at every use. Comparisons with plain strings (`PartialEq<str>`) exist for
//! the same reason: tests and lookups compare against literals.
//! The messages are the ones the topology and the CLI have always printed.

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::exit::{Exit, HasExit};
use crate::validate::{iam_name, iam_path_and_name};

/// Why a string is not the identifier it was meant to be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Not 12 ASCII digits.
    #[error(
        "`{0}` is not an AWS account id: it must be exactly 12 digits (quote it in TOML so leading zeros survive)"
    )]
    AccountId(String),
    /// Not `<letters>-...-<digits>`.
    #[error("`{0}` is not an AWS region name (like `eu-west-1`)")]
    Region(String),
    /// Not one of the partitions rolehop renders for.
    #[error("unknown partition `{0}` (aws, aws-cn, aws-us-gov)")]
    Partition(String),
    /// Not `arn:<partition>:iam::<account>:role/<path/name>`.
    #[error("`{0}` is not an IAM role ARN (like `arn:aws:iam::123456789012:role/deploy`)")]
    RoleArn(String),
}

impl HasExit for IdError {
    /// Standing alone, an id error comes from a flag or an environment variable; a file that
    /// holds a bad id reports it inside its own error (the topology's, exit 3).
    fn exit(&self) -> Exit {
        Exit::Usage
    }
}

/// Implements the string-view traits and serde for a newtype whose `as_str` is its text.
macro_rules! string_id {
    ($t:ty) => {
        impl Deref for $t {
            type Target = str;
            fn deref(&self) -> &str {
                self.as_str()
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }
        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
        impl PartialEq<String> for $t {
            fn eq(&self, other: &String) -> bool {
                self.as_str() == other
            }
        }
        impl PartialEq<$t> for str {
            fn eq(&self, other: &$t) -> bool {
                self == other.as_str()
            }
        }
        impl PartialEq<$t> for &str {
            fn eq(&self, other: &$t) -> bool {
                *self == other.as_str()
            }
        }
        impl PartialEq<$t> for String {
            fn eq(&self, other: &$t) -> bool {
                self == other.as_str()
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.as_str().to_owned()
            }
        }
        // SDK builders take `impl Into<String>`.
        impl From<&$t> for String {
            fn from(v: &$t) -> String {
                v.as_str().to_owned()
            }
        }
        impl TryFrom<String> for $t {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                s.parse()
            }
        }
        impl TryFrom<&str> for $t {
            type Error = IdError;
            fn try_from(s: &str) -> Result<Self, IdError> {
                s.parse()
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Account id
// ---------------------------------------------------------------------------------------------

/// A 12-digit AWS account id. Kept as text: leading zeros are part of it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId(String);

impl AccountId {
    /// Keeps text that failed to parse as an account id, only so a topology that is already failing
    /// (the parse error is reported) can still be built to find every other broken rule and
    /// compare ids as before; such a topology is never returned.
    pub(crate) fn invalid(raw: String) -> Self {
        AccountId(raw)
    }

    /// The 12 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for AccountId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(AccountId(s.to_owned()))
        } else {
            Err(IdError::AccountId(s.to_owned()))
        }
    }
}

string_id!(AccountId);

// Hash, Eq and Ord are derived from the one `String` field, so they agree with `str`'s, as
// `Borrow` requires: maps keyed by account id can be looked up with a `&str`.
impl std::borrow::Borrow<str> for AccountId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

// ---------------------------------------------------------------------------------------------
// Region
// ---------------------------------------------------------------------------------------------

/// An AWS region name such as `eu-west-1` or `us-gov-east-1`: lower-case words and a number,
/// joined by `-`. The shape is checked, not a list, so a region AWS opens tomorrow works.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Region(String);

impl Region {
    /// Keeps text that failed to parse as a region, only so a topology that is already failing
    /// (the parse error is reported) can still be built to find every other broken rule and
    /// compare ids as before; such a topology is never returned.
    pub(crate) fn invalid(raw: String) -> Self {
        Region(raw)
    }

    /// The region name, as STS endpoints and `AWS_REGION` spell it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Region {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let parts: Vec<&str> = s.split('-').collect();
        let ok = parts.len() >= 3
            && parts[..parts.len() - 1]
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
            && parts
                .last()
                .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if ok {
            Ok(Region(s.to_owned()))
        } else {
            Err(IdError::Region(s.to_owned()))
        }
    }
}

string_id!(Region);

// ---------------------------------------------------------------------------------------------
// Partition
// ---------------------------------------------------------------------------------------------

/// The AWS partitions rolehop renders for. A closed set: every ARN rolehop writes into a
/// template starts with one of these, and an unknown one is a typo, not a new partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Partition {
    /// The commercial regions.
    #[default]
    Aws,
    /// The China regions.
    AwsCn,
    /// AWS GovCloud (US).
    AwsUsGov,
}

impl Partition {
    /// Every partition, in the order messages list them.
    pub const ALL: [Partition; 3] = [Partition::Aws, Partition::AwsCn, Partition::AwsUsGov];

    /// The partition as it appears in ARNs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Partition::Aws => "aws",
            Partition::AwsCn => "aws-cn",
            Partition::AwsUsGov => "aws-us-gov",
        }
    }
}

impl FromStr for Partition {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Partition::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| IdError::Partition(s.to_owned()))
    }
}

string_id!(Partition);

// ---------------------------------------------------------------------------------------------
// Role ARN
// ---------------------------------------------------------------------------------------------

/// An IAM role ARN, `arn:<partition>:iam::<account>:role/<path/name>`, with IAM's characters
/// in the path (no space, control character or line break: these strings reach rendered
/// templates) and IAM's rule for the name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleArn {
    arn: String,
    partition: Partition,
    account: AccountId,
}

impl RoleArn {
    /// The role ARN of `path_and_name` in `account`. Only for names the caller has already
    /// checked with IAM's rules (the topology's role names): the result is not re-parsed.
    pub(crate) fn from_checked_parts(
        partition: Partition,
        account: &AccountId,
        path_and_name: &str,
    ) -> RoleArn {
        RoleArn {
            arn: format!("arn:{partition}:iam::{account}:role/{path_and_name}"),
            partition,
            account: account.clone(),
        }
    }

    /// Keeps text that failed to parse as a role ARN; see [`AccountId::invalid`].
    pub(crate) fn invalid(raw: String) -> Self {
        RoleArn {
            arn: raw,
            partition: Partition::Aws,
            account: AccountId::invalid(String::new()),
        }
    }

    /// The whole ARN.
    pub fn as_str(&self) -> &str {
        &self.arn
    }

    /// The partition the role lives in.
    pub fn partition(&self) -> Partition {
        self.partition
    }

    /// The account the role lives in.
    pub fn account_id(&self) -> &AccountId {
        &self.account
    }

    /// What follows `role/`: the role's path and name (`team/deploy`).
    pub fn path_and_name(&self) -> &str {
        self.arn.split_once(":role/").map_or("", |(_, n)| n)
    }
}

impl FromStr for RoleArn {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        if parts.len() == 6
            && parts[0] == "arn"
            && let Ok(partition) = parts[1].parse::<Partition>()
            && parts[2] == "iam"
            && parts[3].is_empty()
            && let Ok(account) = parts[4].parse::<AccountId>()
            && let Some(name) = parts[5].strip_prefix("role/")
            && iam_path_and_name(name, |n| iam_name("role name", n).is_ok())
        {
            return Ok(RoleArn {
                arn: s.to_owned(),
                partition,
                account,
            });
        }
        Err(IdError::RoleArn(s.to_owned()))
    }
}

string_id!(RoleArn);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids() {
        assert_eq!("012345678901".parse::<AccountId>().unwrap(), "012345678901");
        assert!("12345678901".parse::<AccountId>().is_err());
        assert!("12345678901a".parse::<AccountId>().is_err());
    }

    #[test]
    fn regions() {
        assert!("eu-west-1".parse::<Region>().is_ok());
        assert!("us-gov-east-1".parse::<Region>().is_ok());
        assert!("EU-west-1".parse::<Region>().is_err());
        assert!("euwest1".parse::<Region>().is_err());
    }

    #[test]
    fn partitions_round_trip() {
        for p in Partition::ALL {
            assert_eq!(p.as_str().parse::<Partition>(), Ok(p));
        }
        assert_eq!(
            "awsx".parse::<Partition>().unwrap_err().to_string(),
            "unknown partition `awsx` (aws, aws-cn, aws-us-gov)"
        );
    }

    #[test]
    fn role_arns() {
        let a: RoleArn = "arn:aws-cn:iam::123456789012:role/path/deploy"
            .parse()
            .unwrap();
        assert_eq!(a.account_id(), "123456789012");
        assert_eq!(a.partition(), Partition::AwsCn);
        assert_eq!(a.path_and_name(), "path/deploy");
        assert!("arn:aws:iam::123:role/x".parse::<RoleArn>().is_err());
        // Nothing but IAM's path characters, and known partitions only: these strings reach
        // rendered templates.
        assert!(
            "arn:aws:iam::123456789012:role/a b/x"
                .parse::<RoleArn>()
                .is_err()
        );
        assert!(
            "arn:aws:iam::123456789012:role/a\nResources:/x"
                .parse::<RoleArn>()
                .is_err()
        );
        assert!(
            "arn:awsx\n:iam::123456789012:role/x"
                .parse::<RoleArn>()
                .is_err()
        );
        assert!(
            "arn:aws:iam::123456789012:user/x"
                .parse::<RoleArn>()
                .is_err()
        );
    }

    #[test]
    fn serde_goes_through_the_parser() {
        let ok: AccountId = serde_json::from_str("\"111111111111\"").unwrap();
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"111111111111\"");
        assert!(serde_json::from_str::<AccountId>("\"1111\"").is_err());
    }
}
