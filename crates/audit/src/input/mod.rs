//! Turning what the user hands in into an [`Estate`](crate::model::Estate): a topology (through
//! render's IAM documents), authorization-details exports, SCP levels and a credential report.

pub mod gaad;
pub mod labels;
pub mod topology;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::InputError;
use crate::model::{AccessKey, Estate, ScpLevel};

/// Reads the SCP file: `[{"orgIdentifier": "r-root", "policies": [...], "accounts": [...]}]`,
/// one entry per organisation level (root, OUs, account) as in the conformance cases'
/// `serviceControlPolicies`; `accounts` (optional, rolehop's addition) limits a level to some
/// accounts, and without it the level applies to every account.
pub fn add_scps(estate: &mut Estate, file: &str, text: &str) -> Result<(), InputError> {
    let v: Value = serde_json::from_str(text).map_err(|e| InputError::Json {
        file: file.to_owned(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let shape = |m: String| InputError::Shape {
        file: file.to_owned(),
        message: m,
    };
    let levels = v
        .as_array()
        .ok_or_else(|| shape("expected a list of `{\"orgIdentifier\", \"policies\"}`".into()))?;
    for (i, l) in levels.iter().enumerate() {
        let id = l
            .get("orgIdentifier")
            .and_then(Value::as_str)
            .ok_or_else(|| shape(format!("[{i}].orgIdentifier is missing")))?;
        let mut policies = Vec::new();
        let ps = l
            .get("policies")
            .and_then(Value::as_array)
            .ok_or_else(|| shape(format!("[{i}].policies must be a list")))?;
        for (j, p) in ps.iter().enumerate() {
            let doc = rolehop_policy::parse::document_value(p.clone())
                .map_err(|m| shape(format!("[{i}].policies[{j}]: {m}")))?;
            policies.push(doc);
        }
        let accounts = l
            .get("accounts")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        estate.scps.push(ScpLevel {
            id: id.to_owned(),
            policies,
            accounts,
        });
    }
    Ok(())
}

/// Reads an IAM credential report (CSV) for access-key ages and use.
pub fn add_credential_report(
    estate: &mut Estate,
    file: &str,
    text: &str,
) -> Result<(), InputError> {
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let err = |m: String| InputError::Shape {
        file: file.to_owned(),
        message: m,
    };
    let headers = rdr
        .headers()
        .map_err(|e| err(format!("cannot read the header: {e}")))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let arn_col =
        col("arn").ok_or_else(|| err("no `arn` column: not a credential report".into()))?;
    for (n, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| err(format!("row {}: {e}", n + 2)))?;
        let arn = rec.get(arn_col).unwrap_or("");
        if arn.ends_with(":root") {
            continue;
        }
        for slot in [1u8, 2] {
            let get = |f: &str| {
                col(&format!("access_key_{slot}_{f}"))
                    .and_then(|c| rec.get(c))
                    .unwrap_or("N/A")
            };
            // A time that does not parse would read as "never rotated/used" and change the
            // findings without a word; refuse the report instead.
            let time = |f: &str| {
                let raw = get(f);
                match parse_time(raw) {
                    None if !is_no_time(raw) => Err(err(format!(
                        "row {}: `access_key_{slot}_{f}` is `{raw}`, not a time like `2026-01-02T00:00:00+00:00`",
                        n + 2
                    ))),
                    t => Ok(t),
                }
            };
            let active = get("active") == "true";
            let last_rotated = time("last_rotated")?;
            let last_used = time("last_used_date")?;
            if !active && last_rotated.is_none() {
                continue;
            }
            estate.access_keys.push(AccessKey {
                user_arn: arn.to_owned(),
                slot,
                active,
                last_rotated,
                last_used,
            });
        }
    }
    Ok(())
}

/// The credential report's ways of saying "no time here".
fn is_no_time(s: &str) -> bool {
    matches!(s.trim(), "" | "N/A" | "no_information" | "not_supported")
}

/// An AWS timestamp (`2023-03-09T10:41:45+00:00`, or with a space) as Unix seconds.
pub fn parse_time(s: &str) -> Option<i64> {
    if is_no_time(s) {
        return None;
    }
    let s = s.trim();
    let fixed = s.replacen(' ', "T", 1);
    OffsetDateTime::parse(&fixed, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}
