//! The IAM estate the auditor reasons about, whatever it was read from (a topology through
//! render's documents, or `get-account-authorization-details` exports): principals with their
//! policies, managed policies, SCPs, access keys, and what environment each thing belongs to.
//! Policy documents stay the JSON text that was read (the input record, see [`Document`]);
//! `graph::Prepared` parses each one once, reports what does not parse (RH090), and nothing
//! else reads them.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::Value;

/// What part a principal plays in the broker pattern: declared by a topology, or inferred
/// from an export's structure ([`crate::infer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    /// An IAM user in the broker account whose keys GitLab jobs hold.
    BrokerUser,
    /// A broker role jobs enter first (from a broker user or an OIDC token).
    ServiceRole,
    /// A role in a target account that jobs deploy with.
    DeploymentRole,
    /// The claim gate's execution role (gate mode): it assumes its environment's service role
    /// for jobs whose signed claims pass the gate's rules.
    GateRole,
    /// Anything else: admin users, other workloads' roles.
    Other,
}

/// User or role: users hold long-lived keys, roles are only assumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// An IAM user.
    User,
    /// An IAM role.
    Role,
}

/// An environment label: its name and whether it counts as production.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Env {
    /// The environment's name.
    pub name: String,
    /// Production findings weigh more (a prod credential reaching non-prod, or the reverse).
    pub prod: bool,
}

/// An inline policy: its name and document.
#[derive(Debug, Clone)]
pub struct NamedDoc {
    /// The policy's name, as findings quote it.
    pub name: String,
    /// The document as read; parsed once by `graph::Prepared`.
    pub doc: Document,
}

/// A policy document as read, kept as its compact JSON text. An organisation of 200,000 roles
/// holds 400,000 documents; as `serde_json::Value` trees they took about five times the
/// memory of their text (1.6 GiB at 10,000 accounts), and only `graph::Prepared` reads them,
/// once, to parse them.
///
/// Equal texts read through one [`Texts`] share one allocation: an organisation repeats its
/// documents by the thousand (every Lambda role's trust, a policy copied into each account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document(Arc<str>);

impl Document {
    /// The JSON text (or, for a document handed in as text, that text as given).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Where the text lives: documents read through one [`Texts`] with equal text have the
    /// same address, so `graph::Prepared` recognises a repeat without hashing the text.
    pub fn address(&self) -> usize {
        self.0.as_ptr() as usize
    }
}

/// The document texts read so far, each kept once (see [`Document`]).
#[derive(Debug, Clone, Default)]
pub struct Texts(crate::fasthash::FastSet<Arc<str>>);

impl Texts {
    /// The document `v`, sharing its text with an equal one read before.
    pub fn document(&mut self, v: &Value) -> Document {
        let text = document_text(v);
        if let Some(a) = self.0.get(text.as_ref()) {
            return Document(Arc::clone(a));
        }
        let a: Arc<str> = Arc::from(text.as_ref());
        self.0.insert(Arc::clone(&a));
        Document(a)
    }
}

/// A document given as text (JSON or URL-encoded) is kept as that text, any other as its
/// compact JSON.
fn document_text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s.as_str()),
        other => Cow::Owned(other.to_string()),
    }
}

impl From<Value> for Document {
    fn from(v: Value) -> Document {
        Document::from(&v)
    }
}

impl From<&Value> for Document {
    fn from(v: &Value) -> Document {
        Document(Arc::from(document_text(v).as_ref()))
    }
}

/// An IAM user or role.
#[derive(Debug, Clone)]
pub struct Principal {
    /// User or role.
    pub kind: Kind,
    /// Its ARN, which findings name.
    pub arn: String,
    /// Its account.
    pub account: String,
    /// Its name (after any path).
    pub name: String,
    /// `AIDA...`/`AROA...`: trust policies show it when the named principal was deleted.
    pub unique_id: Option<String>,
    /// Inline policies.
    pub inline: Vec<NamedDoc>,
    /// Attached managed policy ARNs.
    pub managed: Vec<String>,
    /// Group ARNs (users).
    pub groups: Vec<String>,
    /// The permissions boundary's ARN.
    pub boundary: Option<String>,
    /// Roles only.
    pub trust: Option<Document>,
    /// The role's maximum session duration.
    pub max_session_secs: Option<u64>,
    /// The longest session the topology itself will request (deployment roles).
    pub requested_session_secs: Option<u64>,
    /// When the role was last used, as the export says.
    pub last_used: Option<String>,
    /// Its tags: `rolehop:part` and environment tags place it in the broker pattern.
    pub tags: BTreeMap<String, String>,
    /// The environment it belongs to, if known.
    pub env: Option<Env>,
    /// Its part in the broker pattern.
    pub part: Part,
    /// The file and line that declare it, for report locations.
    pub origin: Option<Origin>,
    /// The GitLab access the topology declares for a service role's environment (`--config`
    /// only): what its trust's globs were acknowledged as. Exports have none.
    /// (Boxed: 144 bytes that every one of an organisation's 200,000 exported principals
    /// would otherwise carry empty.)
    pub declared: Option<Box<rolehop_core::topology::GitlabAccess>>,
    /// Part and environment were declared (a topology), not guessed: inference keeps them.
    pub exact: bool,
}

impl Principal {
    /// A principal with nothing attached; account and name are read from `arn`.
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
            exact: false,
        }
    }
}

/// An IAM group: its policies apply to every member user.
#[derive(Debug, Clone)]
pub struct Group {
    /// The group's ARN.
    pub arn: String,
    /// Inline policies.
    pub inline: Vec<NamedDoc>,
    /// Attached managed policy ARNs.
    pub managed: Vec<String>,
}

/// One organisation level of SCPs (root, OU, account): every level must allow.
#[derive(Debug, Clone)]
pub struct ScpLevel {
    /// The root, OU or account id.
    pub id: String,
    /// The SCP documents at this level.
    pub policies: Vec<Value>,
    /// The accounts it applies to; empty means every account.
    pub accounts: Vec<String>,
}

/// One access key, from a credential report.
#[derive(Debug, Clone)]
pub struct AccessKey {
    /// The user the key belongs to.
    pub user_arn: String,
    /// Key 1 or 2 (a user holds at most two).
    pub slot: u8,
    /// Whether the key can sign.
    pub active: bool,
    /// Unix seconds.
    pub last_rotated: Option<i64>,
    /// Unix seconds, if ever used.
    pub last_used: Option<i64>,
}

/// Something the input itself got wrong (unreadable policy, unknown managed policy ...); it
/// becomes a finding.
#[derive(Debug, Clone)]
pub struct Problem {
    /// Which finding it becomes.
    pub kind: ProblemKind,
    /// The ARN or file it is about.
    pub resource: String,
    /// What could not be read and why.
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
    /// Every user and role.
    pub principals: Vec<Principal>,
    /// The export reader's texts: equal documents it reads share one allocation. Estates
    /// read in parts (the CLI's readers, one per core) are merged without it: documents stay
    /// shared within each part.
    pub texts: Texts,
    /// Groups by ARN.
    pub groups: HashMap<String, Group>,
    /// Managed policy ARN -> default version document.
    pub managed: HashMap<String, Value>,
    /// SCP levels, root first.
    pub scps: Vec<ScpLevel>,
    /// Access keys from the credential report.
    pub access_keys: Vec<AccessKey>,
    /// What the input got wrong; each becomes a finding.
    pub problems: Vec<Problem>,
    /// Where the estate came from, for SARIF/Code Quality locations.
    pub source: String,
    /// Environment labels the user handed in (`--env-map`, an Organizations export).
    pub labels: crate::infer::EnvLabels,
    /// Gate mode (`--config` only): which GitLab jobs each claim gate admits.
    pub gates: Vec<GateAdmission>,
    /// `--config` only: the session policy each group of jobs gets on the deployment hop.
    pub sessions: Vec<SessionScope>,
}

/// Which jobs of an environment get which session policy on the deployment hop (from a
/// topology's `session_policies`), or the role's full rights (`session: None`).
#[derive(Debug, Clone)]
pub struct SessionScope {
    /// The environment.
    pub env: Env,
    /// The jobs, in words (`project acme/shop on branch main`).
    pub jobs: String,
    /// The environment's deployment roles, one per target account.
    pub deployment_roles: Vec<String>,
    /// `None`: no rule matches these jobs and they get the role's full rights.
    pub session: Option<SessionDocs>,
    /// Where the rule (or the environment) is declared.
    pub origin: Origin,
}

/// A rule's session policies: the inline document and the managed ARNs (`PolicyArns`).
#[derive(Debug, Clone)]
pub struct SessionDocs {
    /// The inline session policy, if any.
    pub inline: Option<Document>,
    /// Managed session policy ARNs; `${AWS::AccountId}` resolved for the first account.
    pub managed: Vec<String>,
}

/// What a claim gate admits, from the topology: its rules on signed claims and the role it
/// acts as. The edge from the claim set to the gate role is rolehop's (the gate's rules), not
/// IAM's.
#[derive(Debug, Clone)]
pub struct GateAdmission {
    /// The claim set in words; the graph node's id (`gate:<environment>: ...`).
    pub claims: String,
    /// The gate's execution role, which the admitted jobs reach through it.
    pub gate_role_arn: String,
    /// The environment it serves.
    pub env: Env,
    /// The environment is protected: its gate should require protected refs.
    pub protected: bool,
    /// The topology's GitLab access for the environment.
    pub access: rolehop_core::topology::GitlabAccess,
    /// The claim rules the gate enforces beyond that access.
    pub rules: rolehop_core::topology::GateRules,
}

/// Where a resource was declared: a topology line, or the export file that listed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file's name.
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
    if let Some((_, v)) = env_tag(tags) {
        return Some(env_from_word(v));
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
    // Compared without lowering a copy of the name: this runs once per role of an
    // organisation (200,000 at 10,000 accounts).
    const KNOWN: [&str; 14] = [
        "prod",
        "production",
        "prd",
        "live",
        "staging",
        "stage",
        "stg",
        "nonprod",
        "dev",
        "development",
        "test",
        "testing",
        "qa",
        "sandbox",
    ];
    name.split(['-', '_', '.', '/'])
        .find_map(|tok| KNOWN.iter().find(|k| tok.eq_ignore_ascii_case(k)))
        .map(|k| env_from_word(k))
}

/// The tag that names an environment (`environment`, `env`, `rolehop:environment`, `stage`,
/// `tier`, any case), as `(key, value)`.
pub fn env_tag(tags: &BTreeMap<String, String>) -> Option<(&str, &str)> {
    tags.iter()
        .find(|(k, v)| {
            ["environment", "env", "rolehop:environment", "stage", "tier"]
                .iter()
                .any(|known| k.eq_ignore_ascii_case(known))
                && !v.is_empty()
        })
        .map(|(k, v)| (k.as_str(), v.as_str()))
}

/// An environment named by a word: `prod`, `production`, `prd` and `live` are production
/// (and all read as `prod`); anything else is its own non-production environment.
pub fn env_from_word(w: &str) -> Env {
    let l = w.to_ascii_lowercase();
    let prod = matches!(l.as_str(), "prod" | "production" | "prd" | "live");
    let name = if prod { "prod".to_owned() } else { l };
    Env { name, prod }
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
