//! Deployment credentials and the formats they are handed out in.
//!
//! Formatting is pure: the caller decides where the text goes (stdout, a 0600 file, a child's
//! environment), so the secret only ever reaches the output the user asked for.

use std::fmt::Write as _;

use secrecy::ExposeSecret;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Secret;

/// Temporary AWS credentials (an assumed-role session).
#[derive(Debug, Clone)]
pub struct Credentials {
    /// `ASIA...`: printable, identifies the session in CloudTrail.
    pub access_key_id: String,
    /// Redacted except in the requested output.
    pub secret_access_key: Secret,
    /// Redacted except in the requested output.
    pub session_token: Secret,
    /// When STS ends the session; SDKs refresh before it.
    pub expiration: OffsetDateTime,
}

/// What one STS call gave: for the `json` output and for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HopOutcome {
    /// `service role` or `deployment role`, for messages.
    pub label: &'static str,
    /// The role asked for.
    pub role_arn: String,
    /// The session STS created (`arn:...:assumed-role/<role>/<session>`), as CloudTrail shows it.
    pub assumed_role_arn: String,
    /// The role session name (`gl-<project>-<pipeline>-<job>`).
    pub session_name: String,
    /// The SourceIdentity this hop set, if it set one.
    pub source_identity: Option<String>,
    /// How many session tags were sent.
    pub tags: usize,
    /// When this hop's session ends.
    pub expiration: OffsetDateTime,
}

/// The end of a chain: the deployment credentials and how they were reached.
#[derive(Debug, Clone)]
pub struct ChainOutcome {
    /// The deployment role's credentials.
    pub credentials: Credentials,
    /// Each hop in order, for the `json` output and CloudTrail-minded messages.
    pub hops: Vec<HopOutcome>,
}

impl ChainOutcome {
    /// The deployment role session's ARN.
    pub fn assumed_role_arn(&self) -> &str {
        self.hops.last().map_or("", |h| h.assumed_role_arn.as_str())
    }

    /// The target account (from the deployment role session's ARN).
    pub fn account(&self) -> &str {
        self.assumed_role_arn().split(':').nth(4).unwrap_or("")
    }
}

/// How the credentials are printed (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Format {
    /// `export K='v'` lines for `eval` in a shell.
    Env,
    /// `K=v` lines (docker `--env-file`, local `.env`; never a GitLab dotenv artifact).
    Dotenv,
    /// Everything, for programs.
    Json,
    /// The AWS CLI/SDK `credential_process` document.
    CredentialProcess,
}

/// RFC 3339 in UTC, as the AWS CLI and SDKs expect (`2026-11-25T10:00:00Z`).
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Quotes `v` for a POSIX shell: single quotes, embedded `'` closed and escaped.
pub fn shell_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', r"'\''"))
}

fn env_pairs(c: &Credentials) -> [(&'static str, String); 4] {
    [
        ("AWS_ACCESS_KEY_ID", c.access_key_id.clone()),
        (
            "AWS_SECRET_ACCESS_KEY",
            c.secret_access_key.expose_secret().to_owned(),
        ),
        (
            "AWS_SESSION_TOKEN",
            c.session_token.expose_secret().to_owned(),
        ),
        ("AWS_CREDENTIAL_EXPIRATION", rfc3339(c.expiration)),
    ]
}

/// The variables a child process gets (`rolehop exec`).
pub fn environment(c: &Credentials) -> Vec<(&'static str, String)> {
    env_pairs(c).into()
}

/// Renders `outcome` in `format`. This is the only place secrets become text for stdout.
pub fn render(format: Format, outcome: &ChainOutcome) -> String {
    let c = &outcome.credentials;
    match format {
        Format::Env => {
            let mut s = String::new();
            for (k, v) in env_pairs(c) {
                let _ = writeln!(s, "export {k}={}", shell_quote(&v));
            }
            s
        }
        Format::Dotenv => {
            let mut s = String::new();
            for (k, v) in env_pairs(c) {
                let _ = writeln!(s, "{k}={v}");
            }
            s
        }
        Format::CredentialProcess => {
            let doc = json!({
                "Version": 1,
                "AccessKeyId": c.access_key_id,
                "SecretAccessKey": c.secret_access_key.expose_secret(),
                "SessionToken": c.session_token.expose_secret(),
                "Expiration": rfc3339(c.expiration),
            });
            format!("{doc}\n")
        }
        Format::Json => {
            let hops: Vec<_> = outcome
                .hops
                .iter()
                .map(|h| {
                    json!({
                        "hop": h.label,
                        "role_arn": h.role_arn,
                        "assumed_role_arn": h.assumed_role_arn,
                        "session_name": h.session_name,
                        "source_identity": h.source_identity,
                        "session_tags": h.tags,
                        "expiration": rfc3339(h.expiration),
                    })
                })
                .collect();
            let doc = json!({
                "credentials": {
                    "access_key_id": c.access_key_id,
                    "secret_access_key": c.secret_access_key.expose_secret(),
                    "session_token": c.session_token.expose_secret(),
                    "expiration": rfc3339(c.expiration),
                },
                "assumed_role_arn": outcome.assumed_role_arn(),
                "account": outcome.account(),
                "hops": hops,
            });
            let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
            s.push('\n');
            s
        }
    }
}

/// The section a line opens, read as botocore's configparser does: `[` up to the line's last
/// `]`, so `[deploy] # note` is section `deploy` (inline comments are not stripped).
fn section_name(line: &str) -> Option<&str> {
    let t = line.trim();
    let rest = t.strip_prefix('[')?;
    let end = rest.rfind(']')?;
    (end > 0).then(|| &rest[..end])
}

/// Checks that `name` can be written as `[name]` and `[profile name]` and read back by the
/// AWS CLI and SDKs: botocore ends lines at `\r` too, and splits `profile a b` or
/// `profile a'b` shell-like, silently ignoring the section.
pub fn profile_name(name: &str) -> Result<(), String> {
    let shown = name.escape_debug();
    if name.is_empty() {
        return Err("the profile name is empty".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || matches!(c, '[' | ']' | '\'' | '"' | '\\'))
    {
        return Err(format!(
            "profile name `{shown}` contains `{}`: the AWS config files allow no whitespace, control characters, brackets, quotes or backslashes there",
            c.escape_debug()
        ));
    }
    if name.starts_with(['#', ';']) {
        return Err(format!(
            "profile name `{shown}` starts with `{}`, which begins a comment in the AWS config files",
            &name[..1]
        ));
    }
    Ok(())
}

/// Settings that name where a profile's credentials come from. Left beside the keys rolehop
/// writes, they would take precedence (a `role_arn` turns the profile into an AssumeRole from
/// `source_profile`), so a replaced section drops them; every other setting (`output`,
/// `s3 = ...`, retries) is the user's and stays.
const CREDENTIAL_SOURCE_KEYS: [&str; 16] = [
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_security_token",
    "role_arn",
    "source_profile",
    "credential_source",
    "credential_process",
    "web_identity_token_file",
    "role_session_name",
    "external_id",
    "mfa_serial",
    "duration_seconds",
    "sso_session",
    "sso_account_id",
    "sso_role_name",
];

/// Whether a setting line of a replaced section stays: not one rolehop writes, and not one
/// that would decide the credentials instead (see [`CREDENTIAL_SOURCE_KEYS`]).
fn keeps_setting(key: &str, body: &[(&str, String)]) -> bool {
    let key = key.trim().to_ascii_lowercase();
    !body.iter().any(|(k, _)| k.eq_ignore_ascii_case(&key))
        && !CREDENTIAL_SOURCE_KEYS.contains(&key.as_str())
        && !key.starts_with("sso_")
}

/// Replaces (or appends) the `[header]` section of an INI-style AWS file, keeping every
/// other line of the user's file as it was, and the section's own settings that neither
/// rolehop writes nor decide where credentials come from.
pub fn upsert_ini_section(existing: &str, header: &str, body: &[(&str, String)]) -> String {
    let mut out = String::new();
    let mut skipping = false;
    let mut replaced = false;
    // Whether the current setting of a replaced section (and its indented sub-settings)
    // stays.
    let mut keep_setting = false;
    let mut section = String::new();
    let _ = writeln!(section, "[{header}]");
    for (k, v) in body {
        let _ = writeln!(section, "{k} = {v}");
    }
    for line in existing.lines() {
        if let Some(name) = section_name(line) {
            if name.trim() == header {
                // A second copy of the section is dropped, not rewritten: botocore refuses
                // duplicate sections.
                if !replaced {
                    out.push_str(&section);
                }
                skipping = true;
                replaced = true;
                keep_setting = false;
                continue;
            }
            skipping = false;
        }
        // Comments and blank lines may belong to the next section (and are the user's either
        // way); indented lines continue the setting above them.
        let t = line.trim_start();
        let keep = if !skipping || t.is_empty() || t.starts_with(['#', ';']) {
            true
        } else if t.len() < line.len() {
            keep_setting
        } else {
            keep_setting = t
                .split_once('=')
                .is_some_and(|(key, _)| keeps_setting(key, body));
            keep_setting
        };
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !replaced {
        if !out.is_empty() && !out.ends_with("\n\n") {
            out.push('\n');
        }
        out.push_str(&section);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::secret::secret;

    fn outcome() -> ChainOutcome {
        let exp = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        ChainOutcome {
            credentials: Credentials {
                access_key_id: "ASIAEXAMPLE".into(),
                secret_access_key: secret("se'cret/+="),
                session_token: secret("tok"),
                expiration: exp,
            },
            hops: vec![HopOutcome {
                label: "deployment role",
                role_arn: "arn:aws:iam::222222222222:role/d".into(),
                assumed_role_arn: "arn:aws:sts::222222222222:assumed-role/d/gl-1-2-3".into(),
                session_name: "gl-1-2-3".into(),
                source_identity: Some("acme.app@2".into()),
                tags: 0,
                expiration: exp,
            }],
        }
    }

    #[test]
    fn env_lines_survive_a_shell() {
        let s = render(Format::Env, &outcome());
        assert!(s.contains(r"export AWS_SECRET_ACCESS_KEY='se'\''cret/+='"));
        assert!(s.contains("export AWS_CREDENTIAL_EXPIRATION='2027-01-15T08:00:00Z'"));
    }

    #[test]
    fn credential_process_document_is_what_the_cli_reads() {
        let v: serde_json::Value =
            serde_json::from_str(&render(Format::CredentialProcess, &outcome())).unwrap();
        assert_eq!(v["Version"], 1);
        assert_eq!(v["SessionToken"], "tok");
        assert_eq!(v["Expiration"], "2027-01-15T08:00:00Z");
    }

    #[test]
    fn json_names_the_account_and_hops() {
        let v: serde_json::Value = serde_json::from_str(&render(Format::Json, &outcome())).unwrap();
        assert_eq!(v["account"], "222222222222");
        assert_eq!(v["hops"][0]["source_identity"], "acme.app@2");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let dbg = format!("{:?}", outcome());
        assert!(!dbg.contains("se'cret") && !dbg.contains("\"tok\""));
    }

    #[test]
    fn a_header_with_a_comment_is_replaced_not_duplicated() {
        // botocore (configparser) reads `[deploy] # note` as section `deploy`; a second
        // `[deploy]` appended after it makes every aws CLI call fail with "Unable to parse
        // config file", for every profile.
        let old = "[deploy] # staging keys\naws_access_key_id = OLD\n\n[other]\na = b\n";
        let new = upsert_ini_section(old, "deploy", &[("aws_access_key_id", "NEW".into())]);
        assert_eq!(new, "[deploy]\naws_access_key_id = NEW\n\n[other]\na = b\n");
        let new = upsert_ini_section(
            "[profile deploy]  ; x\nregion = a\n",
            "profile deploy",
            &[("region", "b".into())],
        );
        assert_eq!(new, "[profile deploy]\nregion = b\n");
    }

    #[test]
    fn comments_between_sections_survive_a_replace() {
        // A comment above the next profile belongs to the user, not to the replaced section.
        let old =
            "[deploy]\naws_access_key_id = OLD\n\n# production: rotate monthly\n[prod]\na = b\n";
        let new = upsert_ini_section(old, "deploy", &[("aws_access_key_id", "NEW".into())]);
        assert_eq!(
            new,
            "[deploy]\naws_access_key_id = NEW\n\n# production: rotate monthly\n[prod]\na = b\n"
        );
    }

    #[test]
    fn a_file_with_the_section_twice_is_repaired() {
        // Earlier versions appended a second `[deploy]` after `[deploy] # note`; botocore
        // refuses such a file, and rewriting both copies would keep it broken.
        let old = "[deploy] # note\nk = OLD1\n\n[deploy]\nk = OLD2\n";
        let new = upsert_ini_section(old, "deploy", &[("k", "NEW".into())]);
        assert_eq!(new, "[deploy]\nk = NEW\n\n");
    }

    #[test]
    fn profile_names_the_aws_files_can_hold() {
        for ok in [
            "deploy",
            "acme-prod_2",
            "team@acme.example",
            "a/b:c",
            "profile-x",
        ] {
            assert!(profile_name(ok).is_ok(), "{ok}");
        }
        // `\r` ends a line for botocore: the file would no longer parse at all. Whitespace
        // and quotes make `[profile a b]` a section botocore silently ignores.
        for bad in [
            "", "x\rfoo", "x\nfoo", "a]b", "[a", " deploy", "deploy ", "a b", "a\tb", "a'b",
            "a\"b", "a\\b", "#x", ";x",
        ] {
            let e = profile_name(bad).unwrap_err();
            assert!(e.contains("profile name"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn a_replaced_profile_keeps_the_users_settings_but_nothing_that_would_shadow_the_keys() {
        let old = "[profile deploy]\nregion = us-east-1\noutput = json\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = base\ns3 =\n  max_concurrent_requests = 20\ncredential_process = /bin/creds\n  --flag\nsso_start_url = https://x\n\n[profile other]\nregion = x\n";
        let new = upsert_ini_section(old, "profile deploy", &[("region", "eu-west-1".into())]);
        assert_eq!(
            new,
            "[profile deploy]\nregion = eu-west-1\noutput = json\ns3 =\n  max_concurrent_requests = 20\n\n[profile other]\nregion = x\n"
        );
    }

    #[test]
    fn ini_sections_are_replaced_in_place() {
        let old = "[default]\nregion = x\n\n[deploy]\naws_access_key_id = OLD\n\n[other]\na = b\n";
        let new = upsert_ini_section(old, "deploy", &[("aws_access_key_id", "NEW".into())]);
        assert_eq!(
            new,
            "[default]\nregion = x\n\n[deploy]\naws_access_key_id = NEW\n\n[other]\na = b\n"
        );
        let appended =
            upsert_ini_section("[default]\nregion = x\n", "deploy", &[("k", "v".into())]);
        assert_eq!(appended, "[default]\nregion = x\n\n[deploy]\nk = v\n");
    }
}
