//! Waivers: findings a team has accepted, each with a reason and an expiry, in a TOML file
//! (`audit --waivers FILE`). A waived finding leaves the findings (and so `--fail-on` and
//! `--fail-on-new`) and is listed as waived; a waiver past its expiry waives nothing and is a
//! finding itself (RH040), and one that matches no finding is reported so it gets removed
//! (RH041). Expiry is judged at the audit's clock (`--now`), never the machine's directly.
//!
//! ```toml
//! [[waiver]]
//! id = "RH015"                                   # the rule
//! resource = "arn:aws:iam::111111111111:role/rolehop-prod-service"   # exact, or a `*` glob
//! title = "..."                                  # optional: one finding of several
//! reason = "v* tags are protected in acme/shop (sec review 2026-11)"
//! expires = 2027-03-31                           # a date (UTC midnight) or an RFC 3339 time
//! ```

use rolehop_policy::pattern::Glob;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Report;
use crate::findings::{Finding, Severity};

/// The rules this module raises (id, title), for SARIF and the docs.
pub const RULES: [(&str, &str); 2] = [
    ("RH040", "waiver expired: the finding it accepted is back"),
    ("RH041", "waiver matches no finding"),
];

/// A waivers file that cannot be used: where and what.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct WaiverError {
    /// The waivers file, as named on the command line.
    pub file: String,
    /// The 1-based line of the waiver (or of the TOML error) to fix.
    pub line: usize,
    /// What is wrong there.
    pub message: String,
}

/// One accepted finding.
#[derive(Debug, Clone)]
pub struct Waiver {
    /// The rule id the waiver accepts; checked against the known rules when parsed.
    pub id: String,
    resource: Glob,
    /// When set, only the finding with exactly this title is waived (one of several on the
    /// resource).
    pub title: Option<String>,
    /// Why the finding is accepted; never empty, and carried into the report with the waived
    /// finding.
    pub reason: String,
    /// As written, for messages.
    pub expires_text: String,
    /// Unix seconds; the waiver holds while the audit's clock is before it.
    pub expires: i64,
    /// The 1-based line of its `[[waiver]]`, so RH040/RH041 point at the entry to renew or remove.
    pub line: usize,
}

impl Waiver {
    /// The resource pattern as written (exact or a `*` glob), for findings about the waiver.
    pub fn resource(&self) -> &str {
        self.resource.as_str()
    }

    fn matches(&self, f: &Finding) -> bool {
        self.id == f.id
            && self.resource.matches(&f.resource)
            && self.title.as_ref().is_none_or(|t| *t == f.title)
    }
}

/// A waivers file.
#[derive(Debug, Clone, Default)]
pub struct Waivers {
    /// The file's name, to locate waivers in RH040/RH041 findings.
    pub file: String,
    /// The waivers in file order; the first active match waives a finding.
    pub waivers: Vec<Waiver>,
}

/// A finding a waiver accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Waived {
    /// The finding as it would have been reported; flattened so a waived entry reads like a
    /// finding.
    #[serde(flatten)]
    pub finding: Finding,
    /// The waiver's reason, so the report shows why the finding is accepted.
    pub reason: String,
    /// The waiver's expiry as written, so readers see when the acceptance lapses.
    pub expires: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    waiver: Vec<toml::Spanned<RawWaiver>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWaiver {
    id: Option<String>,
    resource: Option<String>,
    title: Option<String>,
    reason: Option<String>,
    expires: Option<toml::Value>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl Waivers {
    /// Parses and validates a waivers file; `known` says which rule ids exist. Every waiver
    /// needs `id`, `resource`, a non-empty `reason` and `expires`.
    pub fn parse(
        file: &str,
        text: &str,
        known: impl Fn(&str) -> bool,
    ) -> Result<Waivers, WaiverError> {
        let err = |line: usize, message: String| WaiverError {
            file: file.to_owned(),
            line,
            message,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            err(line, e.message().to_owned())
        })?;
        let mut waivers = Vec::new();
        for (n, w) in raw.waiver.into_iter().enumerate() {
            let line = line_of(text, w.span().start);
            let w = w.into_inner();
            let missing = |k: &str| err(line, format!("waiver {}: `{k}` is missing", n + 1));
            let id = w.id.ok_or_else(|| missing("id"))?;
            if !known(&id) {
                return Err(err(line, format!("waiver {}: unknown rule `{id}`", n + 1)));
            }
            let resource = w.resource.ok_or_else(|| missing("resource"))?;
            let reason = w.reason.ok_or_else(|| missing("reason"))?;
            if reason.trim().is_empty() {
                return Err(err(
                    line,
                    format!(
                        "waiver {}: `reason` is empty: say why the finding is accepted",
                        n + 1
                    ),
                ));
            }
            let expires = w.expires.ok_or_else(|| missing("expires"))?;
            let expires_text = match &expires {
                toml::Value::String(s) => s.clone(),
                toml::Value::Datetime(d) => d.to_string(),
                other => other.to_string(),
            };
            let at = parse_expiry(&expires_text).ok_or_else(|| {
                err(
                    line,
                    format!(
                        "waiver {}: `expires = {expires_text}` is not a date (`2027-03-31`) or an RFC 3339 time",
                        n + 1
                    ),
                )
            })?;
            waivers.push(Waiver {
                id,
                resource: Glob::new(&resource, false),
                title: w.title,
                reason,
                expires_text,
                expires: at,
                line,
            });
        }
        Ok(Waivers {
            file: file.to_owned(),
            waivers,
        })
    }
}

/// `2027-03-31` (midnight UTC) or an RFC 3339 time, as Unix seconds.
fn parse_expiry(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    let date =
        time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp())
}

/// Applies `waivers` to `report` at `now` (Unix seconds): waived findings move to
/// `report.waived`; expired and unused waivers become findings.
pub fn apply(report: &mut Report, waivers: &Waivers, now: i64) {
    let mut used = vec![false; waivers.waivers.len()];
    let mut kept = Vec::new();
    for f in std::mem::take(&mut report.findings) {
        let active = waivers
            .waivers
            .iter()
            .enumerate()
            .find(|(_, w)| w.expires > now && w.matches(&f));
        match active {
            Some((i, w)) => {
                used[i] = true;
                report.waived.push(Waived {
                    finding: f,
                    reason: w.reason.clone(),
                    expires: w.expires_text.clone(),
                });
            }
            None => kept.push(f),
        }
    }
    for (i, w) in waivers.waivers.iter().enumerate() {
        let at = format!("{}:{}", waivers.file, w.line);
        if w.expires <= now {
            let hits = kept.iter().filter(|f| w.matches(f)).count();
            kept.push(Finding {
                id: "RH040",
                fix: crate::fixes::fix("RH040").to_owned(),
                severity: Severity::Medium,
                resource: w.resource().to_owned(),
                title: format!(
                    "waiver of {} on `{}` expired on {}",
                    w.id,
                    w.resource(),
                    w.expires_text
                ),
                detail: format!(
                    "the waiver at {at} (\"{}\") no longer applies, so {hits} finding(s) it accepted are reported again; fix them, or review the reason and renew the waiver with a new expiry",
                    w.reason
                ),
            });
        } else if !used[i] {
            kept.push(Finding {
                id: "RH041",
                fix: crate::fixes::fix("RH041").to_owned(),
                severity: Severity::Info,
                resource: w.resource().to_owned(),
                title: format!("waiver of {} on `{}` matches no finding", w.id, w.resource()),
                detail: format!(
                    "the waiver at {at} accepts nothing any more (the finding was fixed, or its resource or title changed): remove it, so it cannot silently accept a future finding"
                ),
            });
        }
    }
    crate::sort_findings(&mut kept);
    report.findings = kept;
    report.waived.sort_by(|a, b| {
        (a.finding.id, &a.finding.resource, &a.finding.title).cmp(&(
            b.finding.id,
            &b.finding.resource,
            &b.finding.title,
        ))
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn any(_: &str) -> bool {
        true
    }

    #[test]
    fn every_waiver_needs_a_reason_and_an_expiry_and_errors_say_the_line() {
        let e = Waivers::parse(
            "w.toml",
            "[[waiver]]\nid = \"RH015\"\nresource = \"x\"\nreason = \"ok\"\nexpires = 2027-01-01\n\n[[waiver]]\nid = \"RH015\"\nresource = \"x\"\nexpires = 2027-01-01\n",
            any,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "w.toml:7: waiver 2: `reason` is missing");
        let e = Waivers::parse(
            "w.toml",
            "[[waiver]]\nid = \"RH015\"\nresource = \"x\"\nreason = \"ok\"\nexpires = \"soon\"\n",
            any,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("`expires = soon` is not a date"),
            "{e}"
        );
        let e = Waivers::parse("w.toml", "[[waiver]]\nid = \"RH999\"\n", |id| id != "RH999")
            .unwrap_err();
        assert!(e.to_string().contains("unknown rule `RH999`"), "{e}");
        let e = Waivers::parse("w.toml", "[[waiver]]\nid = 3\n", any).unwrap_err();
        assert!(e.to_string().starts_with("w.toml:2:"), "{e}");
    }

    #[test]
    fn dates_expire_at_utc_midnight_and_times_as_written() {
        assert_eq!(parse_expiry("2027-01-01"), Some(1_798_761_600));
        assert_eq!(parse_expiry("2027-01-01T12:00:00Z"), Some(1_798_804_800));
        assert_eq!(parse_expiry("01/01/2027"), None);
    }
}
