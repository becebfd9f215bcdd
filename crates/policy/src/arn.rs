//! ARN patterns for `Resource`/`NotResource` and ARN condition operators: a pattern is split
//! into its six segments and each is matched on its own, so a wildcard never crosses a `:`
//! except inside the final resource segment (which may itself contain colons).

use crate::context::Context;
use crate::pattern::Glob;
use crate::vars::Template;

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// `*`.
    Any,
    /// `arn:partition:service:region:account:resource`, one glob per segment.
    Segments(Box<[Glob; 6]>),
    /// Not an ARN: matched as one glob over the whole resource string.
    Whole(Glob),
    /// Contains policy variables: compiled per request after substitution.
    Template(Template),
}

/// A compiled resource pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct ArnPattern {
    raw: String,
    kind: Kind,
}

impl ArnPattern {
    /// Compiles `pattern`; `variables` says whether `${...}` is interpreted.
    pub fn new(pattern: &str, variables: bool) -> ArnPattern {
        let kind = match variables.then(|| Template::parse(pattern)).flatten() {
            Some(t) => Kind::Template(t),
            None => compile(&Glob::new(pattern, false), pattern),
        };
        ArnPattern {
            raw: pattern.to_string(),
            kind,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether the pattern is `*`.
    pub fn is_any(&self) -> bool {
        matches!(self.kind, Kind::Any)
    }

    /// Matches a resource ARN, resolving policy variables from `ctx`.
    pub fn matches(&self, resource: &str, ctx: &Context) -> bool {
        match &self.kind {
            Kind::Any => true,
            Kind::Segments(segs) => match_segments(segs, resource),
            Kind::Whole(g) => g.matches(resource),
            Kind::Template(t) => {
                let Some(pieces) = t.resolve(ctx) else {
                    return false;
                };
                let text: String = pieces.iter().map(|(t, _)| *t).collect();
                let glob = Glob::from_pieces(pieces, false);
                match compile(&glob, &text) {
                    Kind::Any => true,
                    Kind::Segments(segs) => match_segments(&segs, resource),
                    Kind::Whole(g) => g.matches(resource),
                    Kind::Template(_) => false,
                }
            }
        }
    }
}

fn compile(glob: &Glob, text: &str) -> Kind {
    if glob.is_match_all() {
        return Kind::Any;
    }
    if text.starts_with("arn:") && text.matches(':').count() >= 5 {
        // Split the compiled pieces by re-compiling each text segment; `*`/`?` that came from
        // variables are literal, so split the original pieces rather than the text.
        let segs = split_glob(glob);
        if let Ok(segs) = <[Glob; 6]>::try_from(segs) {
            return Kind::Segments(Box::new(segs));
        }
    }
    Kind::Whole(glob.clone())
}

/// Splits a glob at its first five literal `:` into six globs.
fn split_glob(glob: &Glob) -> Vec<Glob> {
    glob.split_colons(6)
}

fn match_segments(segs: &[Glob; 6], resource: &str) -> bool {
    let mut parts = resource.splitn(6, ':');
    for seg in segs.iter() {
        match parts.next() {
            Some(p) if seg.matches(p) => {}
            _ => return false,
        }
    }
    true
}

/// Splits an ARN into its six segments (`None` when it is not an ARN).
pub fn split_arn(arn: &str) -> Option<[&str; 6]> {
    let mut it = arn.splitn(6, ':');
    let parts = [
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
    ];
    (parts[0] == "arn").then_some(parts)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn wildcards_stay_within_segments() {
        let ctx = Context::new();
        let cases: &[(&str, &str, bool)] = &[
            ("*", "arn:aws:s3:::b/k", true),
            ("arn:aws:s3:::b/*", "arn:aws:s3:::b/k/x:y", true),
            ("arn:aws:s3:::b*", "arn:aws:s3:::bucket", true),
            (
                "arn:aws:iam::*:role/x",
                "arn:aws:iam::123456789012:role/x",
                true,
            ),
            ("arn:aws:iam::1*2:role/x", "arn:aws:iam::1:2:role/x", false),
            (
                "arn:aws:*:role/x",
                "arn:aws:iam::123456789012:role/x",
                false,
            ),
            (
                "arn:aws:iam::123456789012:role/*",
                "arn:aws:iam::123456789012:role/a/b",
                true,
            ),
            (
                "arn:aws:iam::123456789012:role/*",
                "arn:aws:iam::123456789012:user/a",
                false,
            ),
            ("arn:aws:s3:::b/?", "arn:aws:s3:::b/k", true),
        ];
        for &(p, r, want) in cases {
            assert_eq!(
                ArnPattern::new(p, false).matches(r, &ctx),
                want,
                "{p} vs {r}"
            );
        }
    }

    #[test]
    fn variables_resolve_per_request() {
        let p = ArnPattern::new("arn:aws:s3:::b/${aws:username}/*", true);
        let alice = Context::new().with("aws:username", "alice");
        assert!(p.matches("arn:aws:s3:::b/alice/x", &alice));
        assert!(!p.matches("arn:aws:s3:::b/bob/x", &alice));
        assert!(!p.matches("arn:aws:s3:::b/alice/x", &Context::new()));
        let lit = ArnPattern::new("arn:aws:s3:::b/${*}", true);
        assert!(lit.matches("arn:aws:s3:::b/*", &alice));
        assert!(!lit.matches("arn:aws:s3:::b/x", &alice));
    }
}
