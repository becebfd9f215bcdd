//! The schema pass: the TOML is parsed into spanned values first and deserialized into the
//! raw structs afterwards, so every unknown or mistyped key is reported at once (serde alone
//! stops at the first). The schema is the raw structs themselves (`raw.rs`): a key added
//! there is known here with no list to keep in step.
//!
//! Each schema error is recorded and its entry repaired or dropped (an integer where a string
//! belongs becomes that string, an unknown key goes), then deserialization is tried again;
//! when it succeeds the semantic rules still run on what was read, so one run reports schema
//! and semantic errors together.

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use super::Diagnostic;
use super::raw::RawTopology;
use crate::span::Location;

/// Enough for any real file; each round removes or repairs one entry, so this only bounds a
/// pathological input.
const MAX_ROUNDS: usize = 200;

/// Reads `src` into the raw model, with every syntax and schema error found. `None` when the
/// file could not be read far enough to check its meaning (a syntax error, a missing section).
pub(super) fn read(file: &str, src: &str) -> (Option<RawTopology>, Vec<Diagnostic>) {
    let at = |span: Range<usize>| Location::from_span(file, src, span);
    let (mut root, syntax) = DeTable::parse_recoverable(src);
    if !syntax.is_empty() {
        let mut out: Vec<Diagnostic> = Vec::new();
        for e in syntax {
            let location = e.span().map_or_else(|| Location::file_only(file), &at);
            // Recovery can report the same place twice; once is enough.
            if out.iter().any(|d| d.location == location) {
                continue;
            }
            out.push(Diagnostic {
                location,
                rule: "syntax",
                message: syntax_message(e.message(), src, e.span()),
            });
        }
        return (None, out);
    }
    let mut diagnostics = Vec::new();
    let mut removed: Vec<Vec<String>> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let de = toml::de::Deserializer::from(root.clone());
        let err = match RawTopology::deserialize(de) {
            Ok(raw) => return (Some(raw), diagnostics),
            Err(e) => e,
        };
        let message = err.message().trim().to_owned();
        let span = err.span().unwrap_or(0..0);
        let step = repair(root.get_mut(), &message, &span, &mut removed);
        let (found, go_on) = match step {
            Some(Step::Continue(f)) => (Some(f), true),
            Some(Step::Stop(f)) => (f, false),
            None => (
                Some(Found {
                    span: Some(span),
                    rule: "schema",
                    message,
                }),
                false,
            ),
        };
        diagnostics.extend(found.map(|d| Diagnostic {
            location: d.span.map_or_else(|| Location::file_only(file), &at),
            rule: d.rule,
            message: d.message,
        }));
        if !go_on {
            return (None, diagnostics);
        }
    }
    (None, diagnostics)
}

struct Found {
    /// `None` for the whole file (a top-level section missing has no line of its own).
    span: Option<Range<usize>>,
    rule: &'static str,
    message: String,
}

enum Step {
    /// The entry was repaired or removed: try again.
    Continue(Found),
    /// Nothing to repair (a required section is missing): report and stop. Nothing to report
    /// when the missing key is one an earlier round removed for its type.
    Stop(Option<Found>),
}

/// Records what serde refused at `span` and changes the document so the next round gets past
/// it; `None` when the refusal is not one this pass understands.
fn repair(
    root: &mut DeTable<'_>,
    message: &str,
    span: &Range<usize>,
    removed: &mut Vec<Vec<String>>,
) -> Option<Step> {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (key, expected) = rest.split_once('`')?;
        let known = backticked(expected);
        let (path, _) = remove_key(root, &[], span)?;
        let place = place(&path);
        let message = match did_you_mean(key, &known) {
            Some(k) => format!("unknown key `{key}` in {place}; did you mean `{k}`?"),
            None if known.is_empty() => format!("unknown key `{key}` in {place}"),
            None => format!(
                "unknown key `{key}` in {place}; known keys: {}",
                known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        return Some(Step::Continue(Found {
            span: Some(span.clone()),
            rule: "unknown-key",
            message,
        }));
    }
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|r| r.split_once('`'))
        .map(|(f, _)| f.to_owned())
    {
        let (path, table_span) =
            table_at(root, &[], span).map_or((Vec::new(), None), |(p, s)| (p, Some(s)));
        let mut full = path.clone();
        full.push(field.clone());
        if removed.contains(&full) {
            return Some(Step::Stop(None));
        }
        let message = if is_section(&field) {
            let header = format!("[{}]", full.join("."));
            if path.is_empty() {
                format!("the topology has no `{header}` section: add it")
            } else {
                format!("{} has no `{header}` section: add it", place(&path))
            }
        } else {
            format!("{} needs `{field}`", place(&path))
        };
        return Some(Step::Stop(Some(Found {
            span: table_span,
            rule: "missing-key",
            message,
        })));
    }
    if message.starts_with("invalid type: ") || message.starts_with("data did not match") {
        let (path, slot) = value_at(root, &[], span)?;
        let key = path.last().cloned().unwrap_or_default();
        let text = message_for(&path, &key, message);
        if !repair_type(slot, message, is_account(&path)) {
            remove_value(root, span);
            removed.push(path);
        }
        return Some(Step::Continue(Found {
            span: Some(span.clone()),
            rule: "wrong-type",
            message: text,
        }));
    }
    None
}

/// The user-facing text for a value of the wrong type (`serde_message` is serde's).
fn message_for(path: &[String], key: &str, serde_message: &str) -> String {
    let found = serde_message
        .strip_prefix("invalid type: ")
        .unwrap_or(serde_message);
    let is_account = is_account(path);
    if let Some(number) = found
        .strip_prefix("integer `")
        .and_then(|r| r.split_once('`'))
        .map(|(n, _)| n)
        .filter(|_| serde_message.contains("expected a string"))
    {
        if is_account {
            return format!(
                "account id `{key} = {number}` is a number: quote it, `{key} = \"{number:0>12}\"` (account ids are strings of 12 digits, so leading zeros survive)"
            );
        }
        return format!("`{key}` must be a string: quote it, `{key} = \"{number}\"`");
    }
    if serde_message.contains("expected a sequence")
        && let Some(s) = found
            .strip_prefix("string ")
            .and_then(|s| s.rsplit_once(", expected"))
            .map(|(s, _)| s)
    {
        return format!("`{key}` is a list: write `{key} = [{s}]`");
    }
    if serde_message.starts_with("data did not match") && key == "max_session" {
        return format!(
            "`{key}` must be a duration such as \"1h\", \"45m\" or a number of seconds"
        );
    }
    format!("`{key}` has the wrong type: {found}")
}

/// `broker.account_id` or an `environments.<name>.accounts` entry.
fn is_account(path: &[String]) -> bool {
    path == ["broker", "account_id"]
        || path.len() == 4 && path[0] == "environments" && path[2] == "accounts"
}

/// A bare account id becomes the string it was meant to be, a string where a list belongs
/// becomes a list of it, so the rules that follow still see the value; `false` when the value
/// cannot be read as meant (it is then removed, and the rules see it missing).
fn repair_type(slot: &mut Spanned<DeValue<'_>>, message: &str, account: bool) -> bool {
    let span = slot.span();
    let v = slot.get_mut();
    let repaired = match &*v {
        DeValue::Integer(i) if account && message.contains("expected a string") => {
            DeValue::String(i.as_str().to_owned().into())
        }
        DeValue::String(_) if message.contains("expected a sequence") => {
            let mut a = DeArray::new();
            a.push(Spanned::new(span, v.clone()));
            DeValue::Array(a)
        }
        _ => return false,
    };
    *v = repaired;
    true
}

/// Removes the value at `span`: its key from its table, or the item from its array.
fn remove_value(t: &mut DeTable<'_>, span: &Range<usize>) -> bool {
    if let Some(k) = t
        .iter()
        .find(|(_, v)| v.span() == *span)
        .map(|(k, _)| k.clone())
    {
        t.remove(&k);
        return true;
    }
    for (_, v) in t.iter_mut() {
        let found = match v.get_mut() {
            DeValue::Table(inner) => remove_value(inner, span),
            DeValue::Array(items) => remove_from_array(items, span),
            _ => false,
        };
        if found {
            return true;
        }
    }
    false
}

fn remove_from_array(items: &mut DeArray<'_>, span: &Range<usize>) -> bool {
    if items.iter().any(|i| i.span() == *span) {
        let mut kept = DeArray::new();
        for i in items.iter().filter(|i| i.span() != *span) {
            kept.push(i.clone());
        }
        *items = kept;
        return true;
    }
    items.iter_mut().any(|item| match item.get_mut() {
        DeValue::Table(inner) => remove_value(inner, span),
        _ => false,
    })
}

/// Sections of the topology whose absence deserves the header to add, not just a key name.
fn is_section(field: &str) -> bool {
    matches!(
        field,
        "broker" | "auth" | "gitlab" | "accounts" | "permissions"
    )
}

/// `[environments.prod]`, or `the top level`.
fn place(path: &[String]) -> String {
    if path.is_empty() {
        "the top level".to_owned()
    } else {
        format!("`[{}]`", path.join("."))
    }
}

/// The backticked words of serde's "expected one of `a`, `b`" list.
fn backticked(s: &str) -> Vec<String> {
    s.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

/// The known key closest to `key`, if it is close enough to be a typo.
fn did_you_mean<'k>(key: &str, known: &'k [String]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), k))
        .filter(|(d, k)| {
            *d <= (k.chars().count() / 3).max(1) || k.contains(key) || key.contains(k.as_str())
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Removes the entry whose key sits at `span`; returns the path of its table.
fn remove_key(
    t: &mut DeTable<'_>,
    path: &[String],
    span: &Range<usize>,
) -> Option<(Vec<String>, ())> {
    if let Some(k) = t.keys().find(|k| k.span() == *span).cloned() {
        t.remove(&k);
        return Some((path.to_vec(), ()));
    }
    for (k, v) in t.iter_mut() {
        let mut p = path.to_vec();
        p.push(k.get_ref().to_string());
        match v.get_mut() {
            DeValue::Table(inner) => {
                if let Some(found) = remove_key(inner, &p, span) {
                    return Some(found);
                }
            }
            // Arrays of tables (`[[environments.<name>.session_policies]]`).
            DeValue::Array(items) => {
                for item in items.iter_mut() {
                    if let DeValue::Table(inner) = item.get_mut()
                        && let Some(found) = remove_key(inner, &p, span)
                    {
                        return Some(found);
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// The table whose span is `span` (where serde reports a missing field): its path, and where
/// to point: its header line, or for a table only implied by a deeper header, that header.
fn table_at(
    t: &DeTable<'_>,
    path: &[String],
    span: &Range<usize>,
) -> Option<(Vec<String>, Range<usize>)> {
    for (k, v) in t.iter() {
        if let DeValue::Table(inner) = v.get_ref() {
            let mut p = path.to_vec();
            p.push(k.get_ref().to_string());
            if v.span() == *span {
                return Some((p, k.span()));
            }
            if let Some(found) = table_at(inner, &p, span) {
                return Some(found);
            }
        }
    }
    None
}

/// The value at `span` (keyed or in an array), with its key path.
fn value_at<'t, 'i>(
    t: &'t mut DeTable<'i>,
    path: &[String],
    span: &Range<usize>,
) -> Option<(Vec<String>, &'t mut Spanned<DeValue<'i>>)> {
    for (k, v) in t.iter_mut() {
        let mut p = path.to_vec();
        p.push(k.get_ref().to_string());
        if v.span() == *span {
            return Some((p, v));
        }
        match v.get_mut() {
            DeValue::Table(inner) => {
                if let Some(found) = value_at(inner, &p, span) {
                    return Some(found);
                }
            }
            DeValue::Array(items) => {
                for item in items.iter_mut() {
                    if item.span() == *span {
                        return Some((p, item));
                    }
                    if let DeValue::Table(inner) = item.get_mut()
                        && let Some(found) = value_at(inner, &p, span)
                    {
                        return Some(found);
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// TOML's own message, with the quoting hint where an account id was written as a bare
/// number that TOML cannot read (a leading zero).
fn syntax_message(message: &str, src: &str, span: Option<Range<usize>>) -> String {
    let message = message.trim();
    let token: String = span
        .and_then(|s| src.get(s.start..))
        .unwrap_or("")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    if token.len() > 1 && token.starts_with('0') {
        return format!("{message}: account ids are strings of 12 digits, quote it: `\"{token}\"`");
    }
    message.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_is_matched_to_the_key_it_misspells() {
        let known: Vec<String> = ["protected", "tier", "max_session", "external_id"]
            .map(str::to_owned)
            .to_vec();
        assert_eq!(did_you_mean("protectd", &known), Some("protected"));
        assert_eq!(did_you_mean("max-session", &known), Some("max_session"));
        assert_eq!(did_you_mean("colour", &known), None);
    }
}
