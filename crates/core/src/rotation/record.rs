//! The rotation record kept in the IAM user's tag: the phase and the keys involved.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How far a rotation got. Each phase is recorded *before* the change it announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// About to create the new key (`new` unknown until created).
    Creating,
    /// The new key exists; its secret lives only in the creating process until stored.
    Created,
    /// Writing the key variable (one atomic write of `<id>:<secret>`, its description naming
    /// the key id).
    Storing,
    /// GitLab holds the new key; the old key is (being) deactivated and is deleted after the
    /// grace period counted from `since`.
    Retiring,
}

impl Phase {
    /// The phase as the record tag spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Creating => "creating",
            Phase::Created => "created",
            Phase::Storing => "storing",
            Phase::Retiring => "retiring",
        }
    }
}

/// The rotation record: `v1 phase=storing old=AKIA... new=AKIA... since=2026-01-02T03:04:05Z`.
/// IAM tag values allow only letters, digits, spaces and `_.:/=+-@` (so no JSON) and at most
/// 256 characters; this stays near 110.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// How far the interrupted or finished rotation got.
    pub phase: Phase,
    /// The key being replaced, if any.
    pub old: Option<String>,
    /// The key being introduced, once created.
    pub new: Option<String>,
    /// When the phase was entered: the grace period of `Retiring` counts from here.
    pub since: OffsetDateTime,
}

impl Record {
    /// The tag value (`v1 phase=... old=... new=... since=...`).
    pub fn encode(&self) -> String {
        let since = self
            .since
            .replace_nanosecond(0)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| self.since.unix_timestamp().to_string());
        format!(
            "v1 phase={} old={} new={} since={since}",
            self.phase.as_str(),
            self.old.as_deref().unwrap_or("-"),
            self.new.as_deref().unwrap_or("-"),
        )
    }

    /// Reads a tag value; the error says why it is not a record (it never holds a secret).
    pub fn parse(value: &str) -> Result<Record, String> {
        let mut parts = value.split_whitespace();
        if parts.next() != Some("v1") {
            return Err("it does not start with `v1`".into());
        }
        let (mut phase, mut old, mut new, mut since) = (None, None, None, None);
        for p in parts {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| format!("`{p}` is not `name=value`"))?;
            let id = || (v != "-").then(|| v.to_owned());
            match k {
                "phase" => {
                    phase = Some(match v {
                        "creating" => Phase::Creating,
                        "created" => Phase::Created,
                        "storing" => Phase::Storing,
                        "retiring" => Phase::Retiring,
                        other => return Err(format!("unknown phase `{other}`")),
                    })
                }
                "old" => old = id(),
                "new" => new = id(),
                "since" => {
                    since = Some(
                        OffsetDateTime::parse(v, &Rfc3339)
                            .map_err(|e| format!("`since` is not a timestamp: {e}"))?,
                    )
                }
                other => return Err(format!("unknown field `{other}`")),
            }
        }
        let phase = phase.ok_or("it has no `phase`")?;
        let since = since.ok_or("it has no `since`")?;
        if phase != Phase::Creating && new.is_none() {
            return Err(format!("phase `{}` needs `new`", phase.as_str()));
        }
        Ok(Record {
            phase,
            old,
            new,
            since,
        })
    }
}

/// The description rotate writes on the key variable: it names the key the value belongs to,
/// so a resumed run knows what GitLab holds even when the variable is hidden (GitLab 17.4+
/// answers hidden variables without their value).
pub fn key_description(user: &str, key_id: &str) -> String {
    format!("rolehop rotate: `<access key id>:<secret>` of IAM user {user} for key {key_id}")
}

/// The key id named by [`key_description`], if the description is one of ours.
pub fn described_key(description: &str) -> Option<&str> {
    description
        .strip_prefix("rolehop rotate: ")?
        .rsplit_once(" for key ")
        .map(|(_, k)| k.trim())
}
