//! The IAM estate the auditor reasons about, whatever it was read from (a topology through
//! render's documents, or `get-account-authorization-details` exports): principals with their
//! policies, managed policies, SCPs, access keys, and what environment each thing belongs to.
//! Policy documents stay the JSON text that was read (the input record, see [`Document`]);
//! `graph::Prepared` parses each one once, reports what does not parse (RH090), and nothing
//! else reads them.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

/// What part a principal plays in the broker pattern (from the topology, or guessed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    /// An IAM user in the broker account whose keys GitLab jobs hold.
    BrokerUser,
    /// A broker role jobs enter first (from a broker user or an OIDC token).
    ServiceRole,
    /// A role in a target account that jobs deploy with.
    DeploymentRole,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    User,
    Role,
}

/// An environment label: its name and whether it counts as production.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Env {
    pub name: String,
    pub prod: bool,
}

#[derive(Debug, Clone)]
pub struct NamedDoc {
    pub name: String,
    pub doc: Document,
}

/// A policy document as read, kept as its compact JSON text. An organisation of 200,000 roles
/// holds 400,000 documents; as `serde_json::Value` trees they took about five times the
/// memory of their text (1.6 GiB at 10,000 accounts), and only `graph::Prepared` reads them,
/// once, to parse them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document(Box<str>);

impl Document {
    /// The JSON text (or, for a document handed in as text, that text as given).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Value> for Document {
    fn from(v: Value) -> Document {
        Document::from(&v)
    }
}

impl From<&Value> for Document {
    fn from(v: &Value) -> Document {
        match v {
            // A document given as text (JSON or URL-encoded) is kept as that text.
            Value::String(s) => Document(s.as_str().into()),
            other => Document(other.to_string().into_boxed_str()),
        }
    }
}

/// An IAM user or role.
#[derive(Debug, Clone)]
pub struct Principal {
    pub kind: Kind,
    pub arn: String,
    pub account: String,
    pub name: String,
    /// `AIDA...`/`AROA...`: trust policies show it when the named principal was deleted.
    pub unique_id: Option<String>,
    pub inline: Vec<NamedDoc>,
    pub managed: Vec<String>,
    /// Group ARNs (users).
    pub groups: Vec<String>,
    pub boundary: Option<String>,
    /// Roles only.
    pub trust: Option<Document>,
    pub max_session_secs: Option<u64>,
    /// The longest session the topology itself will request (deployment roles).
    pub requested_session_secs: Option<u64>,
    pub last_used: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub env: Option<Env>,
    pub part: Part,
    /// The file and line that declare it, for report locations.
    pub origin: Option<Origin>,
    /// The GitLab access the topology declares for a service role's environment (`--config`
    /// only): what its trust's globs were acknowledged as. Exports have none.
    pub declared: Option<rolehop_core::topology::GitlabAccess>,
}

impl Principal {
    pub fn new(kind: Kind, arn: &str) -> Principal {
        let (account, name) = split_arn(arn);
        Principal {
            kind,
            arn: arn.to_owned(),
            account,
            name,
            unique_id: None,
            inline: vec![],
            managed: vec![],
            groups: vec![],
            boundary: None,
            trust: None,
            max_session_secs: None,
            requested_session_secs: None,
            last_used: None,
            tags: BTreeMap::new(),
            env: None,
            part: Part::Other,
            origin: None,
            declared: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Group {
    pub arn: String,
    pub inline: Vec<NamedDoc>,
    pub managed: Vec<String>,
}

/// One organisation level of SCPs (root, OU, account): every level must allow.
#[derive(Debug, Clone)]
pub struct ScpLevel {
    pub id: String,
    pub policies: Vec<Value>,
    /// The accounts it applies to; empty means every account.
    pub accounts: Vec<String>,
}

/// One access key, from a credential report.
#[derive(Debug, Clone)]
pub struct AccessKey {
    pub user_arn: String,
    pub slot: u8,
    pub active: bool,
    /// Unix seconds.
    pub last_rotated: Option<i64>,
    pub last_used: Option<i64>,
}

/// Something the input itself got wrong (unreadable policy, unknown managed policy ...); it
/// becomes a finding.
#[derive(Debug, Clone)]
pub struct Problem {
    pub kind: ProblemKind,
    pub resource: String,
    pub message: String,
}

/// What went wrong, which decides the finding: an unreadable trust policy hides who may
/// assume the role, so it weighs more than an unreadable permissions policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// A permissions policy, SCP or export entry that could not be read (RH090).
    Unreadable,
    /// A role's trust policy that could not be read (RH092).
    UnreadableTrust,
    /// A managed policy neither in the input nor known to rolehop (RH091).
    UnknownManaged,
}

/// The whole estate.
#[derive(Debug, Clone, Default)]
pub struct Estate {
    pub principals: Vec<Principal>,
    pub groups: HashMap<String, Group>,
    /// Managed policy ARN -> default version document.
    pub managed: HashMap<String, Value>,
    pub scps: Vec<ScpLevel>,
    pub access_keys: Vec<AccessKey>,
    pub problems: Vec<Problem>,
    /// Where the estate came from, for SARIF/Code Quality locations.
    pub source: String,
}

/// Where a resource was declared: a topology line, or the export file that listed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    /// 1-based; exports do not keep lines, so 1.
    pub line: usize,
}

/// `arn:aws:iam::123:role/path/name` -> ("123", "name").
pub fn split_arn(arn: &str) -> (String, String) {
    let mut parts = arn.splitn(6, ':');
    let account = parts.nth(4).unwrap_or("").to_owned();
    let res = parts.next().unwrap_or("");
    let name = res.rsplit('/').next().unwrap_or(res).to_owned();
    (account, name)
}

/// The account of an ARN (`arn:aws:iam::123:...` -> `123`).
pub fn arn_account(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or("")
}

/// The partition of an ARN, `aws` if it has none.
pub fn arn_partition(arn: &str) -> &str {
    arn.split(':')
        .nth(1)
        .filter(|p| !p.is_empty())
        .unwrap_or("aws")
}

/// Guesses an environment from tags, then from name tokens: an `environment`/`env` tag (any
/// case, also `rolehop:environment`) wins; otherwise a name token among `prod`, `production`,
/// `prd`, `live` means production, `staging`/`stage`/`stg`, `nonprod`, `dev`/`development`,
/// `test`/`testing`/`qa`, `sandbox` name the others. Tokens are split on `-_./` so that
/// `nonprod` is not read as `prod`. For rolehop's own names (`rolehop-<env>-service`,
/// `rolehop-<env>-deploy`, user `rolehop-<env>`) the `<env>` part is used as is.
pub fn guess_env(name: &str, tags: &BTreeMap<String, String>) -> Option<Env> {
    for (k, v) in tags {
        let k = k.to_ascii_lowercase();
        if matches!(
            k.as_str(),
            "environment" | "env" | "rolehop:environment" | "stage" | "tier"
        ) && !v.is_empty()
        {
            return Some(env_from_word(v));
        }
    }
    if let Some(rest) = name.strip_prefix("rolehop-") {
        let env = rest
            .strip_suffix("-service")
            .or_else(|| rest.strip_suffix("-deploy"))
            .unwrap_or(rest);
        if !env.is_empty() && !env.contains('-') {
            return Some(env_from_word(env));
        }
    }
    let lower = name.to_ascii_lowercase();
    for tok in lower.split(['-', '_', '.', '/']) {
        let known = matches!(
            tok,
            "prod"
                | "production"
                | "prd"
                | "live"
                | "staging"
                | "stage"
                | "stg"
                | "nonprod"
                | "dev"
                | "development"
                | "test"
                | "testing"
                | "qa"
                | "sandbox"
        );
        if known {
            return Some(env_from_word(tok));
        }
    }
    None
}

fn env_from_word(w: &str) -> Env {
    let l = w.to_ascii_lowercase();
    let prod = matches!(l.as_str(), "prod" | "production" | "prd" | "live");
    let name = if prod { "prod".to_owned() } else { l };
    Env { name, prod }
}

/// Guesses the broker-pattern part from tags (`rolehop:part` = broker-user, service-role,
/// deployment-role) or rolehop's default names.
pub fn guess_part(kind: Kind, name: &str, tags: &BTreeMap<String, String>) -> Part {
    if let Some(v) = tags.get("rolehop:part") {
        match v.as_str() {
            "broker-user" => return Part::BrokerUser,
            "service-role" => return Part::ServiceRole,
            "deployment-role" => return Part::DeploymentRole,
            _ => {}
        }
    }
    match kind {
        Kind::User if name.starts_with("rolehop-") => Part::BrokerUser,
        Kind::Role if name.ends_with("-service") && name.starts_with("rolehop-") => {
            Part::ServiceRole
        }
        Kind::Role if name.ends_with("-deploy") || name.ends_with("-deployment") => {
            Part::DeploymentRole
        }
        _ => Part::Other,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn env_heuristic_reads_names_and_tags() {
        let none = BTreeMap::new();
        assert_eq!(guess_env("app-prod-deploy", &none).unwrap().name, "prod");
        assert!(!guess_env("app-nonprod-deploy", &none).unwrap().prod);
        assert_eq!(guess_env("rolehop-qa2-service", &none).unwrap().name, "qa2");
        assert!(guess_env("reporting", &none).is_none());
        let tags = BTreeMap::from([("Environment".to_owned(), "Production".to_owned())]);
        assert!(guess_env("x", &tags).unwrap().prod);
    }
}
