//! Turning byte offsets in a user's file into `file:line:column` and a quoted source line.

use std::fmt;
use std::ops::Range;

/// A place in a user's file, 1-based line and column (columns count characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file as the user named it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The whole source line, for a caret under the column.
    pub source_line: String,
}

impl Location {
    /// Locates `span.start` inside `src`.
    pub fn from_span(file: &str, src: &str, span: Range<usize>) -> Self {
        let start = span.start.min(src.len());
        let before = src.get(..start).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = src
            .get(line_start..start)
            .map_or(1, |s| s.chars().count() + 1);
        let source_line = src
            .get(line_start..)
            .unwrap_or("")
            .lines()
            .next()
            .unwrap_or("")
            .to_owned();
        Self {
            file: file.to_owned(),
            line,
            column,
            source_line,
        }
    }

    /// A location that only names the file (for errors without a position).
    pub fn file_only(file: &str) -> Self {
        Self {
            file: file.to_owned(),
            line: 0,
            column: 0,
            source_line: String::new(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}:{}", self.file, self.line, self.column)
        }
    }
}

/// `s` with control characters, line separators, the BOM and bidirectional overrides written
/// as Rust escapes (`\n`, `\u{1b}`): user text in a message must not move the cursor, colour a terminal or a job
/// log, or start a line that looks like another message.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else if matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            // Line separators, the byte order mark and the bidirectional overrides, which
            // reorder what a reader sees.
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// Renders the source line with a caret under the column, indented, or nothing.
pub fn caret(loc: &Location) -> String {
    if loc.line == 0 || loc.source_line.is_empty() {
        return String::new();
    }
    let before: String = loc
        .source_line
        .chars()
        .take(loc.column.saturating_sub(1))
        .collect();
    let pad = " ".repeat(printable(&before).chars().count());
    format!(
        "\n  {:>4} | {}\n       | {}^",
        loc.line,
        printable(&loc.source_line),
        pad
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_cannot_reach_the_terminal_raw() {
        assert_eq!(
            printable("a\u{1b}[31mb\nc\u{9b}\u{2028}é"),
            "a\\u{1b}[31mb\\nc\\u{9b}\\u{2028}é"
        );
        let loc = Location {
            file: "t.toml".into(),
            line: 2,
            column: 4,
            source_line: "\u{9b}x = \"y\"".into(),
        };
        // The caret stays under the column the escape moved.
        assert_eq!(
            caret(&loc),
            "\n     2 | \\u{9b}x = \"y\"\n       |         ^"
        );
    }
}
