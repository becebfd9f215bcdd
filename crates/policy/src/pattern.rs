//! Compiled glob patterns with IAM's two wildcards: `*` (any run of characters) and `?` (one
//! character). Matching is a linear scan with single-star backtracking, no regex, no allocation.

/// One element of a compiled glob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Lit(u8),
    Star,
    One,
}

/// A compiled glob, optionally case-insensitive (ASCII), as used for actions, resources,
/// principals and `StringLike`/`ArnLike` values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    raw: String,
    toks: Vec<Tok>,
    case_insensitive: bool,
    /// No wildcard at all: a plain comparison is enough.
    literal: bool,
}

impl Glob {
    /// Compiles `pattern`, treating `*` and `?` as wildcards.
    pub fn new(pattern: &str, case_insensitive: bool) -> Glob {
        let toks: Vec<Tok> = pattern
            .bytes()
            .map(|b| match b {
                b'*' => Tok::Star,
                b'?' => Tok::One,
                b => Tok::Lit(b),
            })
            .collect();
        let literal = toks.iter().all(|t| matches!(t, Tok::Lit(_)));
        Glob {
            raw: pattern.to_string(),
            toks,
            case_insensitive,
            literal,
        }
    }

    /// Compiles a glob from pieces, where literal pieces may contain `*`/`?` that must match
    /// themselves (the values of `${*}`, `${?}` or of substituted variables).
    pub fn from_pieces<'a>(
        pieces: impl IntoIterator<Item = (&'a str, bool)>,
        case_insensitive: bool,
    ) -> Glob {
        let mut raw = String::new();
        let mut toks = Vec::new();
        for (text, is_pattern) in pieces {
            raw.push_str(text);
            for b in text.bytes() {
                toks.push(match b {
                    b'*' if is_pattern => Tok::Star,
                    b'?' if is_pattern => Tok::One,
                    b => Tok::Lit(b),
                });
            }
        }
        let literal = toks.iter().all(|t| matches!(t, Tok::Lit(_)));
        Glob {
            raw,
            toks,
            case_insensitive,
            literal,
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether the pattern is exactly `*`.
    pub fn is_match_all(&self) -> bool {
        self.toks == [Tok::Star]
    }

    /// Whether the pattern has no wildcard.
    pub fn is_literal(&self) -> bool {
        self.literal
    }

    /// The literal text before the first wildcard.
    pub fn literal_prefix(&self) -> &str {
        let n = self
            .toks
            .iter()
            .position(|t| !matches!(t, Tok::Lit(_)))
            .unwrap_or(self.toks.len());
        self.raw.get(..n).unwrap_or("")
    }

    /// Splits at the first `n - 1` literal `:` into `n` globs (fewer when there are fewer
    /// colons); the last glob keeps the rest, colons included.
    pub fn split_colons(&self, n: usize) -> Vec<Glob> {
        let mut out = Vec::with_capacity(n);
        let mut start = 0;
        for (i, t) in self.toks.iter().enumerate() {
            if out.len() + 1 == n {
                break;
            }
            if *t == Tok::Lit(b':') {
                out.push(self.slice(start, i));
                start = i + 1;
            }
        }
        out.push(self.slice(start, self.toks.len()));
        out
    }

    fn slice(&self, from: usize, to: usize) -> Glob {
        let toks = self.toks[from..to].to_vec();
        Glob {
            raw: self.raw.get(from..to).unwrap_or("").to_string(),
            literal: toks.iter().all(|t| matches!(t, Tok::Lit(_))),
            toks,
            case_insensitive: self.case_insensitive,
        }
    }

    /// Whether `text` matches: `*` any run, `?` one character, nothing else special.
    pub fn matches(&self, text: &str) -> bool {
        let s = text.as_bytes();
        let eq = |a: u8, b: u8| {
            if self.case_insensitive {
                a.eq_ignore_ascii_case(&b)
            } else {
                a == b
            }
        };
        if self.literal {
            return self.toks.len() == s.len()
                && self
                    .toks
                    .iter()
                    .zip(s)
                    .all(|(t, &b)| matches!(t, Tok::Lit(c) if eq(*c, b)));
        }
        let (mut p, mut t) = (0usize, 0usize);
        let mut star: Option<usize> = None;
        let mut mark = 0usize;
        while t < s.len() {
            match self.toks.get(p) {
                Some(Tok::Star) => {
                    star = Some(p);
                    mark = t;
                    p += 1;
                    continue;
                }
                Some(Tok::One) => {
                    let len = utf8_len(s[t]);
                    if t + len <= s.len() {
                        t += len;
                        p += 1;
                        continue;
                    }
                }
                Some(Tok::Lit(c)) if eq(*c, s[t]) => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
            match star {
                Some(sp) => {
                    p = sp + 1;
                    mark += utf8_len(s[mark]);
                    t = mark;
                }
                None => return false,
            }
        }
        while matches!(self.toks.get(p), Some(Tok::Star)) {
            p += 1;
        }
        p == self.toks.len()
    }
}

impl Glob {
    /// Whether some string matches both globs (used when the request's resource is itself a
    /// pattern: an Allow applies when it may cover part of it).
    pub fn intersects(&self, other: &Glob) -> bool {
        let ci = self.case_insensitive || other.case_insensitive;
        walk_pairs(self.toks.len(), other.toks.len(), |i, j, stack| {
            let (a, b) = (self.toks.get(i), other.toks.get(j));
            if a == Some(&Tok::Star) {
                stack.push((i + 1, j));
                if b.is_some() {
                    stack.push((i, j + 1));
                }
            }
            if b == Some(&Tok::Star) {
                stack.push((i, j + 1));
                if a.is_some() {
                    stack.push((i + 1, j));
                }
            }
            if let (Some(x), Some(y)) = (a, b) {
                let ok = match (x, y) {
                    (Tok::Lit(p), Tok::Lit(q)) => {
                        if ci {
                            p.eq_ignore_ascii_case(q)
                        } else {
                            p == q
                        }
                    }
                    (Tok::One, Tok::Lit(_) | Tok::One) | (Tok::Lit(_), Tok::One) => true,
                    _ => false,
                };
                if ok {
                    stack.push((i + 1, j + 1));
                }
            }
        })
    }

    /// Whether every string matching `other` also matches `self` (used for Deny statements
    /// against a request pattern: a Deny applies only when it covers all of it). Sound, and
    /// exact for the patterns IAM policies use.
    pub fn covers(&self, other: &Glob) -> bool {
        let ci = self.case_insensitive;
        walk_pairs(self.toks.len(), other.toks.len(), |i, j, stack| {
            match (self.toks.get(i), other.toks.get(j)) {
                (Some(Tok::Star), b) => {
                    stack.push((i + 1, j));
                    if b.is_some() {
                        stack.push((i, j + 1));
                    }
                }
                (Some(Tok::One), Some(Tok::Lit(_) | Tok::One)) => stack.push((i + 1, j + 1)),
                (Some(Tok::Lit(p)), Some(Tok::Lit(q)))
                    if (ci && p.eq_ignore_ascii_case(q)) || p == q =>
                {
                    stack.push((i + 1, j + 1))
                }
                _ => {}
            }
        })
    }
}

/// Depth-first search over pairs of token positions of two globs (`n` and `m` tokens),
/// from the start of both, each pair visited once: true when some path uses both up.
/// `step(i, j, stack)` pushes the pairs reachable from `(i, j)`.
fn walk_pairs(
    n: usize,
    m: usize,
    mut step: impl FnMut(usize, usize, &mut Vec<(usize, usize)>),
) -> bool {
    let mut seen = vec![false; (n + 1) * (m + 1)];
    let mut stack = vec![(0usize, 0usize)];
    while let Some((i, j)) = stack.pop() {
        let idx = i * (m + 1) + j;
        if seen[idx] {
            continue;
        }
        seen[idx] = true;
        if i == n && j == m {
            return true;
        }
        step(i, j, &mut stack);
    }
    false
}

fn utf8_len(lead: u8) -> usize {
    match lead {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::Glob;

    #[test]
    fn globs_match_like_iam() {
        let cases: &[(&str, &str, bool, bool)] = &[
            ("*", "", false, true),
            ("*", "anything:at/all", false, true),
            ("s3:Get*", "s3:GetObject", false, true),
            ("s3:get*", "S3:GETOBJECT", true, true),
            ("s3:get*", "S3:GETOBJECT", false, false),
            ("s3:Get?bject", "s3:GetObject", false, true),
            ("s3:Get?bject", "s3:GetOObject", false, false),
            ("a*b*c", "aXXbYYc", false, true),
            ("a*b*c", "aXXbYY", false, false),
            ("a*", "a", false, true),
            ("?", "é", false, true),
            ("??", "é", false, false),
            ("abc", "abc", false, true),
            ("abc", "abcd", false, false),
            ("*abc", "ababc", false, true),
            ("a**", "abc", false, true),
        ];
        for &(p, t, ci, want) in cases {
            assert_eq!(Glob::new(p, ci).matches(t), want, "{p} vs {t}");
        }
    }

    #[test]
    fn glob_intersection_and_cover() {
        let g = |p: &str| Glob::new(p, false);
        assert!(g("*/AWSLogs/*").intersects(&g("example-bucket/*")));
        assert!(!g("*/AWSLogs/*").covers(&g("example-bucket/*")));
        assert!(g("example-bucket/*").covers(&g("example-bucket/a*")));
        assert!(g("*").covers(&g("a?c*")));
        assert!(!g("other-bucket/*").intersects(&g("example-bucket/*")));
        assert!(g("a?c").intersects(&g("*c")));
        assert!(!g("a?c").covers(&g("a*c")));
        assert!(g("abc").covers(&g("abc")));
    }

    #[test]
    fn pieces_keep_literal_wildcards() {
        let g = Glob::from_pieces([("a", true), ("*", false), ("*", true)], false);
        assert!(g.matches("a*xyz"));
        assert!(!g.matches("abxyz"));
    }
}
