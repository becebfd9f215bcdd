//! Policy variables (`${aws:username}`, `${aws:PrincipalTag/team, 'none'}`, `${*}`, `${?}`,
//! `${$}`): templates are split once at parse time and filled from the request context.

use crate::context::Context;

/// One part of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text from the policy: its `*`/`?` stay wildcards.
    Text(String),
    /// A literal character (`${*}` -> `*`), never a wildcard.
    Literal(String),
    /// A context key (lowercased) with an optional default value.
    Var {
        /// The context key, lowercased.
        key: String,
        /// `${key, 'default'}`: used when the request lacks the key.
        default: Option<String>,
    },
}

/// A string that may contain policy variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Text and variables in order.
    pub parts: Vec<Part>,
}

impl Template {
    /// Splits `s` into text and variables; `None` when it has no `${` (nothing to resolve).
    pub fn parse(s: &str) -> Option<Template> {
        if !s.contains("${") {
            return None;
        }
        let mut parts = Vec::new();
        let mut rest = s;
        let mut text = String::new();
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                break;
            };
            text.push_str(&rest[..start]);
            let inner = &after[..end];
            let part = match inner.trim() {
                "*" => Part::Literal("*".into()),
                "?" => Part::Literal("?".into()),
                "$" => Part::Literal("$".into()),
                var => {
                    let (key, default) = match var.split_once(',') {
                        Some((k, d)) => {
                            let d = d.trim();
                            let d = d
                                .strip_prefix('\'')
                                .and_then(|d| d.strip_suffix('\''))
                                .unwrap_or(d);
                            (k.trim(), Some(d.to_string()))
                        }
                        None => (var, None),
                    };
                    Part::Var {
                        key: key.to_ascii_lowercase(),
                        default,
                    }
                }
            };
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(part);
            rest = &after[end + 1..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Some(Template { parts })
    }

    /// Fills the template: pieces of `(text, is_pattern)`. `None` when a variable has no
    /// single value in the context and no default (AWS then treats the element as not
    /// matching).
    pub fn resolve<'a>(&'a self, ctx: &'a Context) -> Option<Vec<(&'a str, bool)>> {
        let mut out = Vec::with_capacity(self.parts.len());
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push((t.as_str(), true)),
                Part::Literal(t) => out.push((t.as_str(), false)),
                Part::Var { key, default } => {
                    let value = ctx.get(key).filter(|v| !v.multi && v.values.len() == 1);
                    match (value, default) {
                        (Some(v), _) => out.push((v.values[0].as_str(), false)),
                        (None, Some(d)) => out.push((d.as_str(), false)),
                        (None, None) => return None,
                    }
                }
            }
        }
        Some(out)
    }

    /// Fills the template into a plain string.
    pub fn resolve_string(&self, ctx: &Context) -> Option<String> {
        self.resolve(ctx)
            .map(|pieces| pieces.into_iter().map(|(t, _)| t).collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn variables_resolve_with_defaults_and_escapes() {
        let ctx = Context::new().with("aws:username", "alice");
        let t = Template::parse("home/${aws:UserName}/${*}${?}${$}").unwrap();
        assert_eq!(t.resolve_string(&ctx).unwrap(), "home/alice/*?$");
        let t = Template::parse("${aws:PrincipalTag/team, 'ops'}").unwrap();
        assert_eq!(t.resolve_string(&ctx).unwrap(), "ops");
        let t = Template::parse("${aws:PrincipalTag/team}").unwrap();
        assert_eq!(t.resolve_string(&ctx), None);
        assert!(Template::parse("plain").is_none());
    }
}
