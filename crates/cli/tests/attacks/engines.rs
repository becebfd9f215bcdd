//! The judges. Every request of the suite goes to two IAM engines that share no code:
//! rolehop's evaluator (`rolehop_policy`, through the case-file reader `rolehop simulate` uses)
//! and `@cloud-copilot/iam-simulate` (one Node process for the whole suite). For
//! `sts:AssumeRoleWithWebIdentity`, where iam-simulate drops GitLab's `sub`/`aud` keys, a third
//! judge written here from IAM's documented `StringEquals`/`StringLike` semantics decides the
//! trust policy instead; it must not borrow anything from `rolehop_policy`.

use std::collections::BTreeMap;

use rolehop_policy::Decision;
use rolehop_policy::cases::parse_cases;
use rolehop_testkit::iam_simulate;
use serde_json::Value;

/// rolehop's evaluator on each case.
pub fn rolehop(cases: &[Value]) -> Vec<Decision> {
    let text = serde_json::to_string(cases).unwrap();
    parse_cases(&text)
        .unwrap_or_else(|e| panic!("the suite wrote a case rolehop cannot read: {e}"))
        .iter()
        .map(|c| c.evaluate().decision)
        .collect()
}

/// iam-simulate on each case, in one Node process.
pub fn iam_simulate(cases: &[Value]) -> Vec<iam_simulate::Decision> {
    iam_simulate::decide(&Value::Array(cases.to_vec()))
}

/// IAM's `StringLike`: `*` matches any run of characters, `/` and `:` included; `?` exactly
/// one character; everything else itself, case-sensitively.
pub fn string_like(pattern: &str, value: &str) -> bool {
    assert!(
        !pattern.contains("${"),
        "the in-test matcher does not expand policy variables: `{pattern}`"
    );
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    // Greedy walk with one backtrack point: the last `*` seen and where its run ended.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < v.len() {
        if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if i < p.len() && (p[i] == '?' || p[i] == v[j]) {
            i += 1;
            j += 1;
        } else if let Some((si, sj)) = star {
            star = Some((si, sj + 1));
            i = si + 1;
            j = sj + 1;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .unwrap_or_else(|| panic!("not a string: {x}"))
                    .to_owned()
            })
            .collect(),
        Value::Null => Vec::new(),
        other => panic!("the in-test matcher expected strings, found {other}"),
    }
}

/// Whether every condition of a statement holds for the token's claims. IAM condition keys are
/// case-insensitive, values are not. A claim the token lacks fails every positive operator.
fn conditions_hold(condition: &Value, claims: &BTreeMap<String, String>) -> bool {
    let Some(ops) = condition.as_object() else {
        assert!(condition.is_null(), "malformed Condition: {condition}");
        return true;
    };
    ops.iter().all(|(op, block)| {
        let block = block
            .as_object()
            .unwrap_or_else(|| panic!("malformed `{op}` block: {block}"));
        block.iter().all(|(key, wanted)| {
            let claim = claims
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.as_str());
            let wanted = strings(wanted);
            match op.as_str() {
                "StringEquals" => claim.is_some_and(|c| wanted.iter().any(|w| w == c)),
                "StringLike" => claim.is_some_and(|c| wanted.iter().any(|w| string_like(w, c))),
                other => panic!("the in-test matcher does not know the operator `{other}`"),
            }
        })
    })
}

/// Whether a role's trust policy lets `provider` call `sts:AssumeRoleWithWebIdentity` with a
/// token carrying `claims` (full condition keys such as `gitlab.example.com:sub`).
pub fn web_trust_admits(trust: &Value, provider: &str, claims: &BTreeMap<String, String>) -> bool {
    let statements = match &trust["Statement"] {
        Value::Array(a) => a.clone(),
        s @ Value::Object(_) => vec![s.clone()],
        other => panic!("malformed trust policy: {other}"),
    };
    let mut allowed = false;
    for s in &statements {
        for unsupported in ["NotPrincipal", "NotAction"] {
            assert!(
                s.get(unsupported).is_none(),
                "the in-test matcher does not handle {unsupported}"
            );
        }
        let principal = &s["Principal"];
        let names_provider = principal == "*"
            || strings(&principal["Federated"])
                .iter()
                .any(|f| f == provider);
        let actions = strings(&s["Action"]);
        assert!(
            actions.iter().all(|a| !a.contains('*') && !a.contains('?')),
            "the in-test matcher does not expand action wildcards: {actions:?}"
        );
        let web = actions
            .iter()
            .any(|a| a.eq_ignore_ascii_case("sts:AssumeRoleWithWebIdentity"));
        if !names_provider || !web || !conditions_hold(&s["Condition"], claims) {
            continue;
        }
        match s["Effect"].as_str() {
            Some("Allow") => allowed = true,
            Some("Deny") => return false,
            other => panic!("malformed Effect {other:?}"),
        }
    }
    allowed
}

#[cfg(test)]
mod tests {
    use super::string_like;

    #[test]
    fn string_like_follows_iam() {
        for (p, v, want) in [
            ("main", "main", true),
            ("main", "Main", false),
            ("main", "main2", false),
            ("v*", "v1.2", true),
            ("v*", "v", true),
            ("v*", "xv1", false),
            ("acme/*", "acme/sub/x", true),
            ("acme/shop", "acme/shop-evil", false),
            ("a*b*c", "a-b-b-c", true),
            ("a*b*c", "a-b-b-", false),
            ("v?", "v1", true),
            ("v?", "v12", false),
            (
                "p:acme/shop:ref_type:branch:ref:*",
                "p:acme/shop:ref_type:tag:ref:x",
                false,
            ),
            ("p:*:ref:main", "p:acme/x:ref_type:tag:ref:main", true),
        ] {
            assert_eq!(string_like(p, v), want, "{p} ~ {v}");
        }
    }
}
