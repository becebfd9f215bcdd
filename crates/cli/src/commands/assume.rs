//! `rolehop assume`: run the chain and print the deployment credentials, or write them to an
//! AWS profile.

use std::io::Write;
use std::path::PathBuf;

use clap::ValueEnum;
use time::OffsetDateTime;

use rolehop_core::credentials::{self, ChainOutcome, Format, rfc3339};
use rolehop_core::gitlab_ctx::{Env, ProcessEnv};
use secrecy::ExposeSecret;

use super::selection::{self, Selection};
use crate::exit::{CliError, CliResult, Exit};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// `export` lines for `eval "$(rolehop assume ...)"`.
    Env,
    /// `KEY=value` lines (never upload them as a GitLab dotenv artifact: members can download those).
    Dotenv,
    /// Credentials, expiration, assumed role, account and each hop.
    Json,
    /// The AWS `credential_process` document.
    CredentialProcess,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Env => Format::Env,
            FormatArg::Dotenv => Format::Dotenv,
            FormatArg::Json => Format::Json,
            FormatArg::CredentialProcess => Format::CredentialProcess,
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub selection: Selection,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = FormatArg::Env)]
    pub format: FormatArg,
    /// Write the credentials to this AWS profile (shared credentials + config files, 0600)
    /// instead of printing them.
    #[arg(long, value_name = "NAME")]
    pub write_profile: Option<String>,
}

pub fn run(args: Args) -> CliResult {
    let env = ProcessEnv;
    // Before any STS call: a name the AWS files cannot hold is a usage error, not a chain run.
    if let Some(profile) = &args.write_profile {
        credentials::profile_name(profile).map_err(|m| CliError::msg(Exit::Usage, m))?;
    }
    let resolved = selection::resolve(&args.selection, &env, OffsetDateTime::now_utc())?;
    let outcome = selection::execute(&resolved)?;
    match &args.write_profile {
        Some(profile) => {
            write_profile(&env, profile, &resolved.settings.region, &outcome)?;
            eprintln!(
                "rolehop: wrote profile `{profile}` for {} (expires {})",
                outcome.assumed_role_arn(),
                rfc3339(outcome.credentials.expiration)
            );
        }
        None => print_stdout(&credentials::render(args.format.into(), &outcome))?,
    }
    Ok(Exit::Ok)
}

pub fn print_stdout(text: &str) -> CliResult<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| CliError::msg(Exit::Io, format!("cannot write to stdout: {e}")))
}

fn aws_file(env: &dyn Env, var: &str, name: &str) -> CliResult<PathBuf> {
    if let Some(p) = env.var(var) {
        return Ok(PathBuf::from(p));
    }
    let home = env.var("HOME").ok_or_else(|| {
        CliError::msg(
            Exit::Io,
            format!("cannot find the AWS {name} file: neither {var} nor HOME is set"),
        )
    })?;
    Ok(PathBuf::from(home).join(".aws").join(name))
}

/// Writes `profile` into the shared credentials and config files, keeping their other
/// sections. Each file is replaced atomically by a 0600 temporary file, so a crash leaves
/// either the old or the new file and never a readable half-written secret; a symlinked file
/// is replaced at its target.
fn write_profile(
    env: &dyn Env,
    profile: &str,
    region: &str,
    outcome: &ChainOutcome,
) -> CliResult<()> {
    credentials::profile_name(profile).map_err(|m| CliError::msg(Exit::Usage, m))?;
    let c = &outcome.credentials;
    let creds_path = aws_file(env, "AWS_SHARED_CREDENTIALS_FILE", "credentials")?;
    let config_path = aws_file(env, "AWS_CONFIG_FILE", "config")?;
    update_file(
        &creds_path,
        profile,
        &[
            ("aws_access_key_id", c.access_key_id.clone()),
            (
                "aws_secret_access_key",
                c.secret_access_key.expose_secret().to_owned(),
            ),
            (
                "aws_session_token",
                c.session_token.expose_secret().to_owned(),
            ),
        ],
    )?;
    let header = if profile == "default" {
        "default".to_owned()
    } else {
        format!("profile {profile}")
    };
    update_file(&config_path, &header, &[("region", region.to_owned())])
}

fn update_file(path: &std::path::Path, header: &str, body: &[(&str, String)]) -> CliResult<()> {
    let io = |what: &str, e: std::io::Error| {
        CliError::msg(Exit::Io, format!("cannot {what} `{}`: {e}", path.display()))
    };
    let existing = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io("read", e)),
    };
    // A symlinked file (dotfile managers) is replaced where it really lives, so the link
    // survives and the temporary file is in the real file's directory, as rename needs.
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| std::path::Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io("create the directory of", e))?;
    // NamedTempFile is created 0600, before any secret is written to it.
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| io("create a temporary file next to", e))?;
    tmp.write_all(credentials::upsert_ini_section(&existing, header, body).as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| io("write", e))?;
    tmp.persist(&target).map_err(|e| io("replace", e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &std::path::Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_symlinked_credentials_file_stays_a_symlink() {
        // Dotfile managers link ~/.aws/credentials into a repository; replacing the link with
        // a plain file would leave the real file stale and silently unlink the user's setup.
        let dir = tempfile::tempdir().unwrap();
        let real_dir = dir.path().join("dotfiles");
        std::fs::create_dir(&real_dir).unwrap();
        let real = real_dir.join("credentials");
        std::fs::write(&real, "[keep]\na = b\n").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o644)).unwrap();
        let link = dir.path().join("credentials");
        std::os::unix::fs::symlink(&real, &link).unwrap();

        update_file(&link, "deploy", &[("k", "v".into())]).unwrap();

        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink(),
            "the link was replaced by a file"
        );
        let text = std::fs::read_to_string(&real).unwrap();
        assert!(
            text.contains("[keep]") && text.contains("[deploy]\nk = v"),
            "{text}"
        );
        assert_eq!(
            mode(&real),
            0o600,
            "a replaced file holding secrets is 0600"
        );
    }

    #[test]
    fn a_replaced_file_is_0600_and_keeps_other_sections() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("credentials");
        std::fs::write(&f, "# mine\n[keep]\na = b\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        update_file(&f, "deploy", &[("k", "v".into())]).unwrap();
        assert_eq!(mode(&f), 0o600);
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "# mine\n[keep]\na = b\n\n[deploy]\nk = v\n"
        );
    }
}
