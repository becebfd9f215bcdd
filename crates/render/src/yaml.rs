//! A small block-style YAML writer for JSON values, with comments between entries. Rendered
//! files are read by people first, so the output is plain where YAML allows it and quoted
//! wherever a plain scalar could be misread (numbers, booleans, `: `, leading symbols).

use std::fmt::Write;

use serde_json::Value;

/// A mapping entry with the comment lines written above it.
pub(crate) struct Entry {
    pub comment: Vec<String>,
    pub key: String,
    pub value: Value,
}

impl Entry {
    pub(crate) fn new(key: impl Into<String>, value: Value) -> Self {
        Entry {
            comment: Vec::new(),
            key: key.into(),
            value,
        }
    }

    pub(crate) fn with_comment(mut self, lines: &[&str]) -> Self {
        self.comment.extend(lines.iter().map(|l| (*l).to_owned()));
        self
    }
}

/// Appends `# line` for each comment line at `indent` spaces (an empty line stays `#`).
/// Lines carry topology text (file names, paths, names): every character that would end the
/// comment or is not printable YAML is written as its escape, so nothing in a comment can
/// start a line of YAML.
pub(crate) fn comment(out: &mut String, indent: usize, lines: &[String]) {
    for l in lines {
        if l.is_empty() {
            let _ = writeln!(out, "{:indent$}#", "");
        } else {
            let _ = writeln!(out, "{:indent$}# {}", "", escape_unsafe(l));
        }
    }
}

/// Writes the entries as a mapping at `indent` spaces.
pub(crate) fn entries(out: &mut String, indent: usize, items: &[Entry]) {
    for e in items {
        comment(out, indent, &e.comment);
        key_value(out, indent, &e.key, &e.value);
    }
}

/// The longest key written as `key: value` (YAML's limit for implicit keys is 1024
/// characters, the indentation and `:` not counted; a margin costs nothing).
const IMPLICIT_KEY_MAX: usize = 1000;

/// Writes `key: value` at `indent`, nesting collections below it.
pub(crate) fn key_value(out: &mut String, indent: usize, key: &str, value: &Value) {
    let key = scalar(key);
    if key.chars().count() > IMPLICIT_KEY_MAX {
        // YAML limits implicit keys to 1024 characters; longer ones need the explicit form.
        let _ = write!(out, "{:indent$}? {key}\n{:indent$}:", "", "");
    } else {
        let _ = write!(out, "{:indent$}{key}:", "");
    }
    match value {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            mapping(out, indent + 2, m);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            sequence(out, indent + 2, a);
        }
        v => {
            let _ = writeln!(out, " {}", inline(v));
        }
    }
}

fn mapping(out: &mut String, indent: usize, m: &serde_json::Map<String, Value>) {
    for (k, v) in m {
        key_value(out, indent, k, v);
    }
}

fn sequence(out: &mut String, indent: usize, a: &[Value]) {
    for v in a {
        let _ = write!(out, "{:indent$}-", "");
        match v {
            Value::Object(m) if !m.is_empty() => {
                // The first key shares the dash's line; the rest align under it.
                let mut first = true;
                for (k, v) in m {
                    if first {
                        let mut sub = String::new();
                        key_value(&mut sub, 0, k, v);
                        // Re-indent the nested lines of the first entry under the dash.
                        let mut lines = sub.lines();
                        if let Some(l) = lines.next() {
                            let _ = writeln!(out, " {l}");
                        }
                        for l in lines {
                            let _ = writeln!(out, "{:w$}{l}", "", w = indent + 2);
                        }
                        first = false;
                    } else {
                        key_value(out, indent + 2, k, v);
                    }
                }
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                sequence(out, indent + 2, inner);
            }
            v => {
                let _ = writeln!(out, " {}", inline(v));
            }
        }
    }
}

/// A value that fits on the key's line: scalars, `[]` and `{}`.
fn inline(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => scalar(s),
        Value::Array(_) => "[]".to_owned(),
        Value::Object(_) => "{}".to_owned(),
    }
}

/// A string as a YAML scalar: plain when it cannot be misread, else single-quoted, else
/// double-quoted with every character that is not printable YAML, or that a YAML 1.1 parser
/// (GitLab's, cfn-lint's) takes for a line break (U+0085, U+2028, U+2029), escaped. Every
/// string the renderer writes goes through here, so no value can end its scalar.
pub(crate) fn scalar(s: &str) -> String {
    if is_plain_safe(s) {
        s.to_owned()
    } else if !s.contains('\'') && s.chars().all(|c| escape(c).is_none()) {
        format!("'{s}'")
    } else {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c => match escape(c) {
                    Some(e) => out.push_str(&e),
                    None => out.push(c),
                },
            }
        }
        out.push('"');
        out
    }
}

/// `s` with every character that must not appear raw in YAML replaced by its escape (for
/// comments, where nothing is unescaped: a `\` stays itself).
fn escape_unsafe(s: &str) -> String {
    s.chars()
        .map(|c| escape(c).unwrap_or_else(|| c.to_string()))
        .collect()
}

/// The YAML double-quoted escape of `c` when it must not appear raw: control characters,
/// DEL and C1 controls, the line and paragraph separators, the byte order mark and the
/// non-characters U+FFFE/U+FFFF (outside YAML's printable set). Tabs are escaped too, so a
/// value reads the same in every editor.
fn escape(c: char) -> Option<String> {
    let e = match c {
        '\0' => "\\0",
        '\u{7}' => "\\a",
        '\u{8}' => "\\b",
        '\t' => "\\t",
        '\n' => "\\n",
        '\u{b}' => "\\v",
        '\u{c}' => "\\f",
        '\r' => "\\r",
        '\u{1b}' => "\\e",
        '\u{85}' => "\\N",
        '\u{2028}' => "\\L",
        '\u{2029}' => "\\P",
        c if c.is_control() => return Some(format!("\\x{:02X}", u32::from(c))),
        '\u{feff}' | '\u{fffe}' | '\u{ffff}' => return Some(format!("\\u{:04X}", u32::from(c))),
        _ => return None,
    };
    Some(e.to_owned())
}

fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    // YAML 1.1 and 1.2 booleans, nulls and special floats (`.inf` starts like a hidden job).
    const KEYWORDS: [&str; 14] = [
        "true", "false", "yes", "no", "on", "off", "null", "y", "n", "~", "nan", "inf", ".nan",
        ".inf",
    ];
    // A leading `.` (GitLab's hidden jobs) is plain YAML when a letter follows.
    let body = s.strip_prefix('.').unwrap_or(s);
    let lead_ok = first.is_ascii_alphabetic()
        || (first == '.' && body.starts_with(|c: char| c.is_ascii_alphabetic()));
    lead_ok
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:-$ (),*=+@".contains(c))
        && !s.ends_with([':', ' '])
        && !s.contains(": ")
        && !s.contains(" #")
        && !KEYWORDS.contains(&s.to_ascii_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use serde_json::json;

    #[test]
    fn quotes_what_yaml_would_misread() {
        assert_eq!(scalar("111111111111"), "'111111111111'");
        assert_eq!(scalar("2012-10-17"), "'2012-10-17'");
        assert_eq!(scalar("true"), "'true'");
        assert_eq!(scalar("No"), "'No'");
        assert_eq!(scalar(""), "''");
        assert_eq!(scalar("a: b"), "'a: b'");
        assert_eq!(scalar("*"), "'*'");
        assert_eq!(scalar("it's"), "\"it's\"");
        assert_eq!(scalar("a\nb"), "\"a\\nb\"");
        assert_eq!(scalar(".inf"), "'.inf'");
        assert_eq!(scalar(".NaN"), "'.NaN'");
    }

    #[test]
    fn escapes_what_would_end_a_scalar_or_a_comment() {
        // YAML 1.1 parsers break lines at NEL and the Unicode separators.
        assert_eq!(scalar("a\u{2028}b\u{85}c\u{2029}"), "\"a\\Lb\\Nc\\P\"");
        assert_eq!(
            scalar("a\0b\u{7f}\u{9b}\u{feff}"),
            "\"a\\0b\\x7F\\x9B\\uFEFF\""
        );
        assert_eq!(scalar("it's \"x\" \\ y"), "\"it's \\\"x\\\" \\\\ y\"");
        assert_eq!(scalar("!Ref X"), "'!Ref X'");
        assert_eq!(scalar("é"), "'é'");
        let mut out = String::new();
        comment(&mut out, 2, &["x\nResources:\u{2028}Evil: \\".to_owned()]);
        assert_eq!(out, "  # x\\nResources:\\LEvil: \\\n");
        let long = "k".repeat(1001);
        let mut out = String::new();
        key_value(&mut out, 2, &long, &json!({"a": "b"}));
        assert_eq!(out, format!("  ? {long}\n  :\n    a: b\n"));
        assert_eq!(
            scalar("arn:aws:iam::111111111111:role/x"),
            "arn:aws:iam::111111111111:role/x"
        );
    }

    #[test]
    fn nests_sequences_of_mappings_under_the_dash() {
        let mut out = String::new();
        key_value(
            &mut out,
            0,
            "Statement",
            &json!([{"Effect": "Allow", "Action": ["a:b", "c:d"], "Condition": {"Null": {"k": "false"}}}, "x"]),
        );
        assert_eq!(
            out,
            "Statement:\n  - Effect: Allow\n    Action:\n      - a:b\n      - c:d\n    Condition:\n      'Null':\n        k: 'false'\n  - x\n"
        );
    }
}
