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
    /// `arn:partition:service:region:account:resource`, one glob per segment. A pattern with
    /// fewer segments matches the request split into as many (its last segment takes the
    /// rest), so a wildcard still never crosses a colon it does not own.
    Segments(Vec<Glob>, Glob),
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

    /// The pattern as the policy wrote it, for explanations.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether the pattern is `*`.
    pub fn is_any(&self) -> bool {
        matches!(self.kind, Kind::Any)
    }

    /// Whether every policy variable in the pattern has a value in `ctx` (always true
    /// without variables).
    pub fn resolves(&self, ctx: &Context) -> bool {
        match &self.kind {
            Kind::Template(t) => t.resolve(ctx).is_some(),
            _ => true,
        }
    }

    /// Matches a resource ARN, resolving policy variables from `ctx`.
    pub fn matches(&self, resource: &str, ctx: &Context) -> bool {
        self.matches_target(&Target::Exact(resource), ctx, Mode::Exact)
    }

    /// Matches a request resource that may itself be a pattern (`arn:aws:s3:::bucket/*`).
    pub fn matches_target(&self, target: &Target<'_>, ctx: &Context, mode: Mode) -> bool {
        match &self.kind {
            Kind::Template(t) => {
                let Some(pieces) = t.resolve(ctx) else {
                    return false;
                };
                let text: String = pieces.iter().map(|(t, _)| *t).collect();
                let glob = Glob::from_pieces(pieces, false);
                match_kind(&compile(&glob, &text), target, mode)
            }
            kind => match_kind(kind, target, mode),
        }
    }
}

/// A request's resource: an exact ARN, or a pattern when the caller asks about many
/// resources at once (`arn:aws:s3:::bucket/*`).
#[derive(Debug, Clone)]
pub enum Target<'a> {
    /// One resource: matched against each policy pattern.
    Exact(&'a str),
    /// Many resources: a statement applies when its pattern can overlap this one.
    Pattern {
        /// The pattern as one glob over the whole ARN.
        whole: Glob,
        /// The pattern split at `:` into six segments when it is an ARN, so overlap is
        /// decided segment by segment (a `*` never crosses a `:` in IAM's ARN matching).
        segments: Option<Vec<Glob>>,
    },
}

impl<'a> Target<'a> {
    /// Treats `*` and `?` in the resource as wildcards.
    pub fn new(resource: &'a str) -> Target<'a> {
        if !resource.contains(['*', '?']) {
            return Target::Exact(resource);
        }
        let whole = Glob::new(resource, false);
        let segments = split_arn(resource).is_some().then(|| whole.split_colons(6));
        Target::Pattern { whole, segments }
    }
}

/// How a pattern must relate to a request pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Exact resource: plain matching.
    Exact,
    /// The policy pattern matches some of the requested resources (for Allow).
    Intersects,
    /// The policy pattern matches all of the requested resources (for Deny).
    Covers,
}

fn match_kind(kind: &Kind, target: &Target<'_>, mode: Mode) -> bool {
    match (kind, target) {
        (Kind::Any, _) => true,
        (Kind::Template(_), _) => false,
        (Kind::Segments(segs, _), Target::Exact(r)) => match_segments(segs, r),
        (Kind::Whole(g), Target::Exact(r)) => g.matches(r),
        (
            Kind::Segments(segs, _),
            Target::Pattern {
                segments: Some(req),
                ..
            },
        ) => segs.len() == req.len() && segs.iter().zip(req).all(|(p, r)| relate(p, r, mode)),
        // A request for `*` (every resource) is not an ARN: compare whole patterns.
        (Kind::Segments(_, g), Target::Pattern { whole, .. }) => relate(g, whole, mode),
        (Kind::Whole(g), Target::Pattern { whole, .. }) => relate(g, whole, mode),
    }
}

fn relate(policy: &Glob, request: &Glob, mode: Mode) -> bool {
    match mode {
        Mode::Covers => policy.covers(request),
        Mode::Intersects | Mode::Exact => policy.intersects(request),
    }
}

fn compile(glob: &Glob, text: &str) -> Kind {
    if glob.is_match_all() {
        return Kind::Any;
    }
    if text.starts_with("arn:") {
        // Split the compiled glob, not the text: `*`/`?` that came from variables are literal.
        return Kind::Segments(glob.split_colons(6), glob.clone());
    }
    Kind::Whole(glob.clone())
}

fn match_segments(segs: &[Glob], resource: &str) -> bool {
    let mut parts = resource.splitn(segs.len(), ':');
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
