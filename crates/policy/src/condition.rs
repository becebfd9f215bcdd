//! Condition operators (String*, Numeric*, Date*, Bool, BinaryEquals, IpAddress, Arn*, Null),
//! their `...IfExists` form and `ForAllValues:`/`ForAnyValue:` qualifiers. Values are compiled
//! at parse time; values holding policy variables are compiled per request.

use std::net::IpAddr;

use crate::arn::ArnPattern;
use crate::context::Context;
use crate::error::PolicyErrorKind;
use crate::pattern::Glob;
use crate::vars::Template;

/// The operator family and comparison.
///
/// The variants are IAM's operator names, spelled as in policies, and mean exactly what AWS's
/// condition operator reference says; a line each would only repeat the name.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BaseOp {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

impl BaseOp {
    fn from_name(name: &str) -> Option<BaseOp> {
        use BaseOp::*;
        const ALL: &[(&str, BaseOp)] = &[
            ("StringEquals", StringEquals),
            ("StringNotEquals", StringNotEquals),
            ("StringEqualsIgnoreCase", StringEqualsIgnoreCase),
            ("StringNotEqualsIgnoreCase", StringNotEqualsIgnoreCase),
            ("StringLike", StringLike),
            ("StringNotLike", StringNotLike),
            ("NumericEquals", NumericEquals),
            ("NumericNotEquals", NumericNotEquals),
            ("NumericLessThan", NumericLessThan),
            ("NumericLessThanEquals", NumericLessThanEquals),
            ("NumericGreaterThan", NumericGreaterThan),
            ("NumericGreaterThanEquals", NumericGreaterThanEquals),
            ("DateEquals", DateEquals),
            ("DateNotEquals", DateNotEquals),
            ("DateLessThan", DateLessThan),
            ("DateLessThanEquals", DateLessThanEquals),
            ("DateGreaterThan", DateGreaterThan),
            ("DateGreaterThanEquals", DateGreaterThanEquals),
            ("Bool", Bool),
            ("BinaryEquals", BinaryEquals),
            ("IpAddress", IpAddress),
            ("NotIpAddress", NotIpAddress),
            ("ArnEquals", ArnEquals),
            ("ArnLike", ArnLike),
            ("ArnNotEquals", ArnNotEquals),
            ("ArnNotLike", ArnNotLike),
            ("Null", Null),
        ];
        ALL.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, op)| *op)
    }

    /// Negated operators: true when no value matches (and when the key is absent).
    pub fn is_negated(self) -> bool {
        use BaseOp::*;
        matches!(
            self,
            StringNotEquals
                | StringNotEqualsIgnoreCase
                | StringNotLike
                | NumericNotEquals
                | DateNotEquals
                | NotIpAddress
                | ArnNotEquals
                | ArnNotLike
        )
    }

    /// The positive operator a negated one is the complement of.
    fn positive(self) -> BaseOp {
        use BaseOp::*;
        match self {
            StringNotEquals => StringEquals,
            StringNotEqualsIgnoreCase => StringEqualsIgnoreCase,
            StringNotLike => StringLike,
            NumericNotEquals => NumericEquals,
            DateNotEquals => DateEquals,
            NotIpAddress => IpAddress,
            ArnNotEquals => ArnEquals,
            ArnNotLike => ArnLike,
            op => op,
        }
    }
}

/// `ForAllValues:` / `ForAnyValue:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetOp {
    /// Every context value must match one policy value (true for an absent or empty key).
    ForAllValues,
    /// At least one context value must match one policy value.
    ForAnyValue,
}

/// A full operator such as `ForAnyValue:StringLikeIfExists`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// The operator as written, for explanations.
    pub name: String,
    /// The comparison.
    pub base: BaseOp,
    /// The set qualifier, for multi-valued keys.
    pub set: Option<SetOp>,
    /// `...IfExists`: the condition holds when the key is absent.
    pub if_exists: bool,
}

impl Operator {
    /// Parses an operator name (case-insensitive, as IAM accepts it).
    pub fn parse(name: &str) -> Option<Operator> {
        let (set, rest) = match name.split_once(':') {
            Some((q, rest)) if q.eq_ignore_ascii_case("ForAllValues") => {
                (Some(SetOp::ForAllValues), rest)
            }
            Some((q, rest)) if q.eq_ignore_ascii_case("ForAnyValue") => {
                (Some(SetOp::ForAnyValue), rest)
            }
            Some(_) => return None,
            None => (None, name),
        };
        let (base_name, if_exists) = match rest.len().checked_sub("IfExists".len()) {
            Some(cut)
                if rest.is_char_boundary(cut) && rest[cut..].eq_ignore_ascii_case("IfExists") =>
            {
                (&rest[..cut], true)
            }
            _ => (rest, false),
        };
        let base = BaseOp::from_name(base_name)?;
        if base == BaseOp::Null && if_exists {
            return None;
        }
        Some(Operator {
            name: name.to_string(),
            base,
            set,
            if_exists,
        })
    }
}

/// A policy-side value compiled for its operator.
#[derive(Debug, Clone, PartialEq)]
pub enum Compiled {
    /// Compared as text (`StringEquals`, lower-cased for `...IgnoreCase`).
    Text(String),
    /// `StringLike` with `*` and `?`.
    Glob(Glob),
    /// A `Numeric*` value.
    Number(f64),
    /// A `Date*` value, as epoch seconds.
    Date(f64),
    /// A `Bool` or `Null` value.
    Bool(bool),
    /// An `IpAddress` network.
    Cidr(Cidr),
    /// An `Arn*` pattern.
    Arn(ArnPattern),
    /// Failed to compile (a malformed number, date or CIDR): never matches.
    Invalid,
}

/// One value of a condition.
#[derive(Debug, Clone, PartialEq)]
pub struct CondValue {
    /// The value as written, for explanations.
    pub raw: String,
    /// Present when the value has policy variables; compiled per request then.
    template: Option<Template>,
    compiled: Compiled,
}

/// One `operator: { key: values }` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// How the values are compared.
    pub operator: Operator,
    /// The key as written.
    pub key: String,
    /// The key lowercased, for case-insensitive lookups.
    key_lower: String,
    /// The policy's values: a positive operator holds when the request's value matches any
    /// of them, a negated one when it matches none.
    pub values: Vec<CondValue>,
}

impl Condition {
    /// Builds a condition; values that cannot be compiled for the operator are reported by
    /// index so the parser can point at them.
    pub fn new(
        operator: Operator,
        key: &str,
        raw_values: Vec<String>,
        variables: bool,
    ) -> Result<Condition, (usize, PolicyErrorKind)> {
        let mut values = Vec::with_capacity(raw_values.len());
        for (i, raw) in raw_values.into_iter().enumerate() {
            // Variables are only substituted in string-like and ARN operators.
            let template = if variables && supports_variables(operator.base) {
                Template::parse(&raw)
            } else {
                None
            };
            let compiled = if template.is_some() {
                Compiled::Invalid
            } else {
                let c = compile(operator.base, &raw, variables);
                if c == Compiled::Invalid {
                    return Err((i, describe_invalid(operator.base, &raw)));
                }
                c
            };
            values.push(CondValue {
                raw,
                template,
                compiled,
            });
        }
        Ok(Condition {
            key_lower: key.to_ascii_lowercase(),
            key: key.to_string(),
            operator,
            values,
        })
    }

    /// The key lowercased.
    pub fn key_lower(&self) -> &str {
        &self.key_lower
    }

    /// Like [`Condition::holds`], but `None` (unknown) when `discovery` is set and the key is
    /// absent from the context: the caller cannot know the value, so the condition is neither
    /// assumed true nor false here.
    pub fn check(&self, ctx: &Context, discovery: bool) -> Option<bool> {
        if discovery && ctx.get(&self.key_lower).is_none() {
            return None;
        }
        Some(self.holds(ctx))
    }

    /// Whether the condition holds for `ctx`.
    pub fn holds(&self, ctx: &Context) -> bool {
        let op = &self.operator;
        let entry = ctx.get(&self.key_lower);
        if op.base == BaseOp::Null {
            let absent = entry.is_none_or(|e| e.values.is_empty());
            return self.values.iter().any(|v| match v.compiled {
                Compiled::Bool(want_absent) => want_absent == absent,
                _ => false,
            });
        }
        let ctx_values: &[String] = match entry {
            Some(e) => &e.values,
            None => &[],
        };
        let negated = op.base.is_negated();
        let positive = op.base.positive();
        // Only values with policy variables need per-request compilation.
        let resolved = if self.values.iter().any(|v| v.template.is_some()) {
            Some(self.resolve(positive, ctx))
        } else {
            None
        };
        // A value whose variable the request cannot fill: a positive operator just has one
        // value fewer, but a negated one fails (AWS: an unresolvable variable can make the
        // whole statement invalid; "is not X" cannot be known when X is unknown).
        let unresolved = negated
            && resolved
                .as_ref()
                .is_some_and(|r| r.len() < self.values.len());
        let matches_one = |v: &str| match &resolved {
            _ if unresolved => true,
            Some(r) => r.iter().any(|c| compare(positive, c, v)),
            None => self
                .values
                .iter()
                .any(|c| compare(positive, &c.compiled, v)),
        };
        match op.set {
            Some(SetOp::ForAllValues) => {
                // Vacuously true for an absent or empty key.
                ctx_values.iter().all(|v| matches_one(v) != negated)
            }
            Some(SetOp::ForAnyValue) => {
                // False for an absent or empty key, `IfExists` or not: AWS applies `IfExists`
                // to each value inside the ForAnyValue loop, so it never sees the key missing
                // (ForAnyValue:StringEqualsIfExists on an absent aws:TagKeys does not match).
                if ctx_values.is_empty() {
                    return false;
                }
                ctx_values.iter().any(|v| matches_one(v) != negated)
            }
            None => {
                if ctx_values.is_empty() {
                    return op.if_exists || negated;
                }
                let any = ctx_values.iter().any(|v| matches_one(v));
                any != negated
            }
        }
    }

    /// Compiled values, substituting policy variables from `ctx` where present.
    fn resolve<'c>(&'c self, base: BaseOp, ctx: &Context) -> Vec<std::borrow::Cow<'c, Compiled>> {
        use std::borrow::Cow;
        let mut out = Vec::with_capacity(self.values.len());
        for v in &self.values {
            match &v.template {
                None => out.push(Cow::Borrowed(&v.compiled)),
                Some(t) => {
                    let Some(pieces) = t.resolve(ctx) else {
                        continue;
                    };
                    let c = match base {
                        BaseOp::StringLike => Compiled::Glob(Glob::from_pieces(pieces, false)),
                        BaseOp::ArnLike | BaseOp::ArnEquals => {
                            let text: String = pieces.iter().map(|(t, _)| *t).collect();
                            Compiled::Arn(ArnPattern::new(&text, false))
                        }
                        _ => {
                            let text: String = pieces.iter().map(|(t, _)| *t).collect();
                            compile(base, &text, false)
                        }
                    };
                    out.push(Cow::Owned(c));
                }
            }
        }
        out
    }
}

impl std::fmt::Display for Condition {
    /// `StringLike` `aws:SourceIp` [`10.0.0.0/8`, ...], as policies write it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` `{}` [", self.operator.name, self.key)?;
        for (i, v) in self.values.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "`{}`", v.raw)?;
        }
        f.write_str("]")
    }
}

fn supports_variables(base: BaseOp) -> bool {
    use BaseOp::*;
    matches!(
        base.positive(),
        StringEquals | StringEqualsIgnoreCase | StringLike | ArnEquals | ArnLike
    )
}

fn compile(base: BaseOp, raw: &str, _variables: bool) -> Compiled {
    use BaseOp::*;
    match base.positive() {
        StringEquals | BinaryEquals => Compiled::Text(raw.to_string()),
        StringEqualsIgnoreCase => Compiled::Text(raw.to_lowercase()),
        StringLike => Compiled::Glob(Glob::new(raw, false)),
        NumericEquals
        | NumericLessThan
        | NumericLessThanEquals
        | NumericGreaterThan
        | NumericGreaterThanEquals => parse_number(raw).map_or(Compiled::Invalid, Compiled::Number),
        DateEquals
        | DateLessThan
        | DateLessThanEquals
        | DateGreaterThan
        | DateGreaterThanEquals => parse_date(raw).map_or(Compiled::Invalid, Compiled::Date),
        Bool | Null => parse_bool(raw).map_or(Compiled::Invalid, Compiled::Bool),
        IpAddress => Cidr::parse(raw).map_or(Compiled::Invalid, Compiled::Cidr),
        ArnEquals | ArnLike => Compiled::Arn(ArnPattern::new(raw, false)),
        _ => Compiled::Invalid,
    }
}

fn describe_invalid(base: BaseOp, raw: &str) -> PolicyErrorKind {
    use BaseOp::*;
    let what = match base.positive() {
        NumericEquals
        | NumericLessThan
        | NumericLessThanEquals
        | NumericGreaterThan
        | NumericGreaterThanEquals => "a number",
        DateEquals
        | DateLessThan
        | DateLessThanEquals
        | DateGreaterThan
        | DateGreaterThanEquals => "an ISO 8601 date or epoch seconds",
        Bool | Null => "`true` or `false`",
        IpAddress => "an IPv4 or IPv6 address or CIDR block",
        _ => "a valid value",
    };
    PolicyErrorKind::BadConditionValue {
        value: raw.to_owned(),
        expected: what,
    }
}

/// Compares one context value with one compiled policy value under a positive operator.
fn compare(base: BaseOp, policy: &Compiled, value: &str) -> bool {
    use BaseOp::*;
    match (base, policy) {
        (StringEquals | BinaryEquals, Compiled::Text(t)) => t == value,
        (StringEqualsIgnoreCase, Compiled::Text(t)) => *t == value.to_lowercase(),
        (StringLike, Compiled::Glob(g)) => g.matches(value),
        (NumericEquals, Compiled::Number(n)) => parse_number(value).is_some_and(|v| v == *n),
        (NumericLessThan, Compiled::Number(n)) => parse_number(value).is_some_and(|v| v < *n),
        (NumericLessThanEquals, Compiled::Number(n)) => {
            parse_number(value).is_some_and(|v| v <= *n)
        }
        (NumericGreaterThan, Compiled::Number(n)) => parse_number(value).is_some_and(|v| v > *n),
        (NumericGreaterThanEquals, Compiled::Number(n)) => {
            parse_number(value).is_some_and(|v| v >= *n)
        }
        (DateEquals, Compiled::Date(d)) => parse_date(value).is_some_and(|v| v == *d),
        (DateLessThan, Compiled::Date(d)) => parse_date(value).is_some_and(|v| v < *d),
        (DateLessThanEquals, Compiled::Date(d)) => parse_date(value).is_some_and(|v| v <= *d),
        (DateGreaterThan, Compiled::Date(d)) => parse_date(value).is_some_and(|v| v > *d),
        (DateGreaterThanEquals, Compiled::Date(d)) => parse_date(value).is_some_and(|v| v >= *d),
        (Bool, Compiled::Bool(b)) => parse_bool(value) == Some(*b),
        (IpAddress, Compiled::Cidr(c)) => value
            .trim()
            .parse::<IpAddr>()
            .is_ok_and(|ip| c.contains(ip)),
        (ArnEquals | ArnLike, Compiled::Arn(p)) => p.matches(value, &Context::new()),
        _ => false,
    }
}

fn parse_number(s: &str) -> Option<f64> {
    let n: f64 = s.trim().parse().ok()?;
    n.is_finite().then_some(n)
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Parses an ISO 8601 date/time (`2024-05-01`, `2024-05-01T12:00:00Z`, with fraction or
/// offset) or epoch seconds into epoch seconds.
pub fn parse_date(s: &str) -> Option<f64> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<f64>().ok();
    }
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let year = num(0, 4)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let month = num(5, 2)?;
    let day = num(8, 2)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut secs = days_from_civil(year, month, day) as f64 * 86400.0;
    let mut rest = &s[10..];
    if rest.is_empty() {
        return Some(secs);
    }
    if !(rest.starts_with('T') || rest.starts_with('t') || rest.starts_with(' ')) {
        return None;
    }
    rest = &rest[1..];
    let hh: i64 = rest.get(0..2)?.parse().ok()?;
    if rest.get(2..3)? != ":" {
        return None;
    }
    let mm: i64 = rest.get(3..5)?.parse().ok()?;
    rest = &rest[5..];
    let mut ss = 0.0;
    if let Some(r) = rest.strip_prefix(':') {
        let end = r
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(r.len());
        ss = r[..end].parse().ok()?;
        rest = &r[end..];
    }
    secs += (hh * 3600 + mm * 60) as f64 + ss;
    match rest {
        "" | "Z" | "z" => Some(secs),
        off => {
            let sign = match off.as_bytes().first()? {
                b'+' => -1.0,
                b'-' => 1.0,
                _ => return None,
            };
            let off = &off[1..];
            let (oh, om) = match off.split_once(':') {
                Some((h, m)) => (h.parse::<i64>().ok()?, m.parse::<i64>().ok()?),
                None if off.len() == 4 => (off[..2].parse().ok()?, off[2..].parse().ok()?),
                None => (off.parse().ok()?, 0),
            };
            Some(secs + sign * (oh * 3600 + om * 60) as f64)
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// An IPv4 or IPv6 network (a bare address is a /32 or /128).
/// An IP network from an `IpAddress` condition; a bare address is its own /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `10.0.0.0/8`, `2001:db8::/32` or a bare address; `None` for anything IAM would refuse.
    pub fn parse(s: &str) -> Option<Cidr> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    /// Whether `ip` is in the network (never across IPv4 and IPv6).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V4(ip)) => net.to_ipv4_mapped().is_some_and(|_| {
                Cidr {
                    addr: IpAddr::V6(net),
                    prefix: self.prefix,
                }
                .contains(IpAddr::V6(ip.to_ipv6_mapped()))
            }),
            (IpAddr::V4(_), IpAddr::V6(ip)) => ip
                .to_ipv4_mapped()
                .is_some_and(|v4| self.contains(IpAddr::V4(v4))),
        }
    }
}
