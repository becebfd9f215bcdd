//! `rolehop simulate FILE...`: decide IAM requests offline from case files (a JSON array of
//! request -> expected decision cases), print one line per case, and with `--check` fail when
//! a decision differs from its expectation.

use std::io::Write;
use std::path::PathBuf;

use rolehop_policy::cases::{Case, parse_cases};

use crate::exit::{CliError, CliResult, Exit, HasExit};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Json,
    /// Aligned columns for humans.
    Table,
}

#[derive(clap::Args)]
pub struct Args {
    /// Case files: JSON arrays of `{name, request, identityPolicies, resourcePolicy, ...,
    /// expected}`.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// How to print the decisions: one JSON object per case (for scripts, the default since
    /// case runs mostly feed tools), or a table to read.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// Exit with status 1 when a case is decided differently than it expects, or states no
    /// expected decision (a check that checks nothing must not pass).
    #[arg(long)]
    check: bool,
}

/// One printed line.
struct Row {
    file: String,
    name: String,
    /// `None` for skipped cases.
    response: Option<&'static str>,
    expected: Option<&'static str>,
    explanation: String,
}

impl Row {
    fn pass(&self) -> Option<bool> {
        Some(self.response? == self.expected?)
    }
}

pub fn run(args: Args) -> CliResult {
    // Read and parse everything first so a malformed file stops the run before any output.
    let mut files: Vec<(String, Vec<Case>)> = Vec::new();
    for path in &args.files {
        let shown = path.display().to_string();
        let text = crate::config::read_text(path, "case file")?;
        let cases = parse_cases(&text).map_err(|e| {
            CliError::new(
                e.exit(),
                anyhow::Error::new(e).context(format!("case file `{shown}`")),
            )
        })?;
        files.push((shown, cases));
    }

    let mut rows = Vec::new();
    for (file, cases) in &files {
        for case in cases {
            let row = if case.simulation {
                Row {
                    file: file.clone(),
                    name: case.name.clone(),
                    response: None,
                    expected: case.expected.map(|d| d.as_str()),
                    explanation: "skipped: uses iam-simulate's discovery mode (`simulation`)"
                        .into(),
                }
            } else {
                let eval = case.evaluate();
                Row {
                    file: file.clone(),
                    name: case.name.clone(),
                    response: Some(eval.decision.as_str()),
                    expected: case.expected.map(|d| d.as_str()),
                    explanation: eval.explanation.to_string(),
                }
            };
            rows.push(row);
        }
    }

    let out = std::io::stdout();
    let mut out = out.lock();
    let written = match args.format {
        Format::Json => write_json(&mut out, &rows),
        Format::Table => write_table(&mut out, &rows),
    };
    written
        .and_then(|()| out.flush())
        .map_err(|e| CliError::msg(Exit::Io, format!("cannot write output: {e}")))?;

    let failed = rows.iter().filter(|r| r.pass() == Some(false)).count();
    let passed = rows.iter().filter(|r| r.pass() == Some(true)).count();
    let skipped = rows.iter().filter(|r| r.response.is_none()).count();
    let unchecked = rows
        .iter()
        .filter(|r| r.response.is_some() && r.expected.is_none())
        .count();
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "rolehop: {} cases: {passed} as expected, {failed} not as expected, {unchecked} without an expected decision, {skipped} skipped (discovery mode)",
        rows.len()
    );
    if args.check && failed > 0 {
        return Err(CliError::msg(
            Exit::CheckFailed,
            format!("{failed} case(s) decided differently than expected"),
        ));
    }
    if args.check && unchecked > 0 {
        return Err(CliError::msg(
            Exit::CheckFailed,
            format!(
                "{unchecked} case(s) state no expected decision (`expected.response`), so --check cannot check them"
            ),
        ));
    }
    Ok(Exit::Ok)
}

fn write_json(out: &mut impl Write, rows: &[Row]) -> std::io::Result<()> {
    for row in rows {
        let mut obj = serde_json::Map::new();
        obj.insert("file".into(), row.file.clone().into());
        obj.insert("name".into(), row.name.clone().into());
        match row.response {
            Some(r) => {
                obj.insert("response".into(), r.into());
            }
            None => {
                obj.insert("skipped".into(), true.into());
            }
        }
        if let Some(e) = row.expected {
            obj.insert("expected".into(), e.into());
        }
        if let Some(p) = row.pass() {
            obj.insert("pass".into(), p.into());
        }
        obj.insert("explanation".into(), row.explanation.clone().into());
        writeln!(out, "{}", serde_json::Value::Object(obj))?;
    }
    Ok(())
}

/// Case names come from files: drop control characters so they cannot drive the terminal.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn write_table(out: &mut impl Write, rows: &[Row]) -> std::io::Result<()> {
    let header = ["RESULT", "DECISION", "EXPECTED", "FILE", "NAME"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                match r.pass() {
                    Some(true) => "pass".to_string(),
                    Some(false) => "FAIL".to_string(),
                    None if r.response.is_none() => "skip".to_string(),
                    None => "-".to_string(),
                },
                r.response.unwrap_or("-").to_string(),
                r.expected.unwrap_or("-").to_string(),
                sanitize(&r.file),
                sanitize(&r.name),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cols: [&str; 5]| -> std::io::Result<()> {
        let mut s = String::new();
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            if i + 1 == cols.len() {
                s.push_str(c);
            } else {
                s.push_str(c);
                s.extend(std::iter::repeat_n(' ', w - c.chars().count() + 2));
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(out, header)?;
    for row in &cells {
        line(out, row.each_ref().map(String::as_str))?;
    }
    Ok(())
}
