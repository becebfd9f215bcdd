//! YAML injection through topology strings (issue 10, hole 7): every string field of the
//! topology gets every payload of a table, alone and appended to a valid value. Each value is
//! either refused by validation, with a rule name and the line of the field, or rendered;
//! then every rendered file is parsed by a YAML 1.1 parser (PyYAML, which reads NEL and the
//! Unicode separators as line breaks, as GitLab's and cfn-lint's loaders do) and must hold
//! exactly the resources, outputs and jobs of the untouched topology, the value must come
//! back exactly where it is rendered, and no raw control character or line separator may be
//! in the file at all. CloudFormation's short-form tags (`!Ref`, `!Sub`) are loaded as
//! `{"!Ref": ...}` so an injected tag shows up as a difference, not as a parse error.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use rolehop_core::Topology;
use rolehop_render::cfn::camel;
use rolehop_render::render;
use serde_json::Value;

const PAYLOADS: &[&str] = &[
    "x\nResources:\n  Evil:\n    Type: AWS::IAM::User",
    "x\n  Evil: injected",
    "x\r\nEvil: injected",
    "x # comment",
    "#x",
    "a: b",
    "'; Evil: x",
    "it's \"quoted\" \\ too",
    "{{resolve:ssm:/evil}}",
    "${AWS::AccountId}",
    "!Ref Evil",
    "!Sub '${Evil}'",
    "- item",
    "&anchor *alias",
    "| >",
    "a\u{2028}Resources:\u{2028}  Evil: {}",
    "a\u{2029}b",
    "a\u{85}Resources:",
    "a\0b",
    "a\tb\u{7f}\u{9b}\u{feff}",
    "é日本",
    ".inf",
    "true",
    "",
];

/// A topology with `@@slot@@` markers; `slots` gives each marker's untouched value.
struct Template {
    name: &'static str,
    text: &'static str,
}

const KEYS: Template = Template {
    name: "access-keys",
    text: r#"[broker]
account_id = "@@broker.account_id@@"
region = "@@broker.region@@"
partition = "@@broker.partition@@"
stack_name = "@@broker.stack_name@@"

[auth]
mode = "access-keys"

[gitlab]
url = "@@gitlab.url@@"
project = "@@gitlab.project@@"
access_key_var = "@@gitlab.access_key_var@@"
secret_key_var = "@@gitlab.secret_key_var@@"

[rollout]
stack_set_prefix = "@@rollout.stack_set_prefix@@"
permission_model = "@@rollout.permission_model@@"
administration_role_arn = "@@rollout.administration_role_arn@@"
execution_role_name = "@@rollout.execution_role_name@@"

[environments."@@env.name@@"]
protected = true
tier = "@@env.tier@@"
service_role = "@@env.service_role@@"
deployment_role = "@@env.deployment_role@@"
broker_user = "@@env.broker_user@@"
max_session = "@@env.max_session@@"
external_id = "@@env.external_id@@"

[environments."@@env.name@@".gitlab]
projects = ["@@access.project@@", "acme/tools/*"]
accept_project_globs = ["@@access.accept_project_glob@@"]
branches = ["@@access.branch@@", "release/*"]
tags = ["@@access.tag@@"]
protected_ref_globs = ["@@access.protected_ref_glob@@"]
environments = ["@@access.environment@@"]

[environments."@@env.name@@".accounts]
"@@account.name@@" = "@@account.id@@"

[environments."@@env.name@@".permissions]
managed_policies = ["@@permissions.managed_policy@@"]
inline_policies = ["@@permissions.inline_policy@@"]
boundary = "@@permissions.boundary@@"
"#,
};

const OIDC: Template = Template {
    name: "oidc",
    text: r#"[broker]
account_id = "@@broker.account_id@@"
region = "@@broker.region@@"

[auth]
mode = "oidc"
issuer = "@@auth.issuer@@"
audience = "@@auth.audience@@"

[environments."@@env.name@@"]
protected = true
external_id = "@@env.external_id@@"

[environments."@@env.name@@".gitlab]
projects = ["@@access.project@@"]
branches = ["@@access.branch@@"]
tags = ["@@access.tag@@"]
environments = ["@@access.environment@@", "@@access.environment_glob@@"]

[environments."@@env.name@@".accounts]
"@@account.name@@" = "@@account.id@@"

[environments."@@env.name@@".permissions]
inline_policies = ["@@permissions.inline_policy@@"]
"#,
};

const SERVICE_MANAGED: Template = Template {
    name: "service-managed",
    text: r#"[broker]
account_id = "111111111111"
region = "eu-west-1"

[auth]
mode = "oidc"
issuer = "https://gitlab.example.com"

[rollout]
permission_model = "service-managed"
call_as = "@@rollout.call_as@@"

[environments.prod]
organizational_units = ["@@env.organizational_unit@@"]

[environments.prod.gitlab]
projects = ["acme/shop"]
branches = ["main"]

[environments.prod.accounts]
prod-eu = "222222222222"
"#,
};

/// Where a slot's value shows up in the rendered files.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Shows {
    /// As a whole string value or key.
    Exact,
    /// Inside a string value or key (ARNs, `sub` patterns, descriptions).
    Inside,
    /// Only in comments, or transformed (a regex), or not at all: the structure check and
    /// the raw-character check apply.
    Elsewhere,
}

fn slots() -> BTreeMap<&'static str, (&'static str, Shows)> {
    use Shows::*;
    BTreeMap::from([
        ("broker.account_id", ("111111111111", Inside)),
        ("broker.region", ("eu-west-1", Elsewhere)),
        ("broker.partition", ("aws", Inside)),
        ("broker.stack_name", ("rolehop-broker", Elsewhere)),
        ("auth.issuer", ("https://gitlab.example.com", Exact)),
        ("auth.audience", ("https://aws.example.com", Exact)),
        ("gitlab.url", ("https://gitlab.example.com", Elsewhere)),
        ("gitlab.project", ("acme/shop", Elsewhere)),
        ("gitlab.access_key_var", ("AWS_ACCESS_KEY_ID", Elsewhere)),
        (
            "gitlab.secret_key_var",
            ("AWS_SECRET_ACCESS_KEY", Elsewhere),
        ),
        ("rollout.stack_set_prefix", ("rolehop", Elsewhere)),
        ("rollout.permission_model", ("self-managed", Elsewhere)),
        (
            "rollout.administration_role_arn",
            ("arn:aws:iam::111111111111:role/admin", Elsewhere),
        ),
        (
            "rollout.execution_role_name",
            ("AWSCloudFormationStackSetExecutionRole", Elsewhere),
        ),
        ("rollout.call_as", ("delegated-admin", Elsewhere)),
        ("env.name", ("prod", Inside)),
        ("env.tier", ("production", Elsewhere)),
        ("env.service_role", ("svc", Exact)),
        ("env.deployment_role", ("deploy", Exact)),
        ("env.broker_user", ("user", Exact)),
        ("env.max_session", ("1h", Elsewhere)),
        ("env.external_id", ("acme-prod", Exact)),
        ("env.organizational_unit", ("ou-abcd-12345678", Elsewhere)),
        ("access.project", ("acme/shop", Inside)),
        ("access.accept_project_glob", ("acme/tools/*", Elsewhere)),
        ("access.branch", ("main", Elsewhere)),
        ("access.tag", ("v1.0", Elsewhere)),
        ("access.protected_ref_glob", ("release/*", Elsewhere)),
        ("access.environment", ("production", Exact)),
        ("access.environment_glob", ("review/*", Elsewhere)),
        ("account.name", ("prod-eu", Inside)),
        ("account.id", ("222222222222", Inside)),
        (
            "permissions.managed_policy",
            ("arn:aws:iam::aws:policy/ReadOnlyAccess", Exact),
        ),
        (
            "permissions.inline_policy",
            ("policies/deploy.json", Elsewhere),
        ),
        (
            "permissions.boundary",
            ("arn:aws:iam::aws:policy/PowerUserAccess", Exact),
        ),
        // Not TOML fields, but strings from the topology's world that reach the files: a
        // value and a condition key inside the inline policy, the topology's file name.
        ("policy.value", ("arn:aws:s3:::bucket/*", Exact)),
        ("policy.key", ("aws:ResourceTag/team", Exact)),
        ("origin", ("rolehop.toml", Elsewhere)),
    ])
}

/// A TOML basic string's content: quotes, backslashes and control characters escaped.
fn toml_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

struct Case {
    template: &'static str,
    slot: &'static str,
    value: String,
}

/// The topology text with `slot` set to `value` and every other slot untouched, the file
/// name, and the policy document read for any inline policy path.
fn fill(t: &Template, slot: &str, value: &str) -> (String, String, String) {
    let mut text = t.text.to_owned();
    for (name, (default, _)) in slots() {
        let v = if name == slot { value } else { default };
        text = text.replace(&format!("@@{name}@@"), &toml_escape(v));
    }
    let pick = |name: &str| {
        if name == slot {
            value.to_owned()
        } else {
            slots()[name].0.to_owned()
        }
    };
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": pick("policy.value"),
            "Condition": {"StringEquals": {pick("policy.key"): "platform"}},
        }]
    })
    .to_string();
    (text, format!("topo/{}", pick("origin")), policy)
}

/// The 1-based line of the slot's marker in the template (the policy slots are reported at
/// the inline policy's path).
fn slot_line(t: &Template, slot: &str) -> usize {
    let marker = match slot {
        "policy.value" | "policy.key" => "@@permissions.inline_policy@@".to_owned(),
        s => format!("@@{s}@@"),
    };
    let at = t.text.find(&marker).unwrap();
    t.text[..at].matches('\n').count() + 1
}

/// Loads every document with PyYAML in one process; short-form tags become `{"!Tag": v}`.
fn load_all(docs: &[String]) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("docs.json");
    std::fs::write(&p, serde_json::to_vec(docs).unwrap()).unwrap();
    let py = r#"
import json, sys, yaml
class L(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    pass
def tagged(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        v = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        v = loader.construct_sequence(node, deep=True)
    else:
        v = loader.construct_mapping(node, deep=True)
    return {"!" + suffix: v}
L.add_multi_constructor("!", tagged)
out = []
for d in json.load(open(sys.argv[1])):
    try:
        out.append(yaml.load(d, Loader=L))
    except Exception as e:
        out.append({"__unparsable__": str(e)})
print(json.dumps(out, default=str))
"#;
    serde_json::from_value(rolehop_testkit::python_json(py, &p)).unwrap()
}

/// What must not change whatever a string says: per file, the top-level keys, each
/// resource's type, the outputs, and each job's keys, script and number of rules. Job names
/// carry environment and account names: `rename` maps the value under test back to the
/// untouched one there.
fn structure(file: &str, doc: &Value, rename: &dyn Fn(&str) -> String) -> Value {
    let keys = |v: &Value| -> Vec<String> {
        v.as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    if file.ends_with(".yml") {
        let jobs: BTreeMap<String, Value> = doc
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, job)| {
                (
                    rename(name),
                    serde_json::json!({
                        "keys": keys(job),
                        // The rotation job names its environment in the command.
                        "script": job["script"].as_array().map(|a| {
                            a.iter().map(|l| rename(l.as_str().unwrap_or_default())).collect::<Vec<_>>()
                        }),
                        "rules": job["rules"].as_array().map(Vec::len),
                        "variables": keys(&job["variables"]),
                    }),
                )
            })
            .collect();
        serde_json::json!(jobs)
    } else {
        let res = doc["Resources"].as_object().unwrap();
        let mut resources: Vec<Value> = res
            .values()
            .map(|r| serde_json::json!([r["Type"], keys(r)]))
            .collect();
        resources.sort_by_key(|v| v.to_string());
        let ids: BTreeSet<String> = res.keys().map(|id| rename(id)).collect();
        let outputs: Vec<String> = keys(&doc["Outputs"]).iter().map(|k| rename(k)).collect();
        serde_json::json!({
            "top": keys(doc),
            "resources": resources,
            "ids": ids,
            "outputs": outputs,
        })
    }
}

/// Every string and mapping key of a parsed document.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => {
            for (k, x) in m {
                out.push(k.clone());
                strings(x, out);
            }
        }
        _ => {}
    }
}

/// Characters that must never be raw in a rendered file: all control characters but the
/// newline, the YAML 1.1 line breaks NEL/LS/PS, the BOM and the non-characters.
fn raw_unsafe(text: &str) -> Option<char> {
    text.chars().find(|&c| {
        (c.is_control() && c != '\n')
            || matches!(
                c,
                '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
            )
    })
}

#[test]
fn no_topology_string_can_change_what_the_rendered_yaml_means() {
    let templates = [&KEYS, &OIDC, &SERVICE_MANAGED];
    let long = "a".repeat(5000);
    let mut cases = Vec::new();
    for t in templates {
        for (slot, (default, _)) in slots() {
            let present = match slot {
                "policy.value" | "policy.key" => t.text.contains("@@permissions.inline_policy@@"),
                "origin" => true,
                s => t.text.contains(&format!("@@{s}@@")),
            };
            if !present {
                continue;
            }
            for p in PAYLOADS.iter().copied().chain([long.as_str()]) {
                for value in [p.to_owned(), format!("{default}{p}")] {
                    cases.push(Case {
                        template: t.name,
                        slot,
                        value,
                    });
                }
            }
        }
    }

    // Baselines: each template untouched.
    let mut baseline: BTreeMap<&str, BTreeMap<String, Value>> = BTreeMap::new();
    let mut rendered = Vec::new(); // (case index or None for baseline, file name, text)
    let template = |name: &str| *templates.iter().find(|t| t.name == name).unwrap();
    for t in templates {
        let (text, file, policy) = fill(t, "", "");
        let topo = Topology::parse(&file, &text, &mut |_| Ok(policy.clone()))
            .unwrap_or_else(|e| panic!("{}: {e}", t.name));
        for (name, content) in render(&topo).files {
            rendered.push((None::<usize>, t.name, name, content));
        }
    }

    let mut refused = 0;
    let mut rules: BTreeSet<&str> = BTreeSet::new();
    for (i, c) in cases.iter().enumerate() {
        let t = template(c.template);
        let (text, file, policy) = fill(t, c.slot, &c.value);
        match Topology::parse(&file, &text, &mut |_| Ok(policy.clone())) {
            Err(e) => {
                refused += 1;
                let line = slot_line(t, c.slot);
                for d in &e.diagnostics {
                    assert_ne!(d.rule, "syntax", "{} {:?}: {e}", c.slot, c.value);
                    assert!(!d.message.is_empty());
                    rules.insert(d.rule);
                }
                // The message quotes the value without letting it reach the terminal raw.
                assert_eq!(
                    raw_unsafe(&e.to_string()),
                    None,
                    "{} {:?}: {e}",
                    c.slot,
                    c.value
                );
                assert!(
                    e.diagnostics.iter().any(|d| d.location.line == line),
                    "{} {}={:?}: no diagnostic at line {line}: {e}",
                    c.template,
                    c.slot,
                    c.value
                );
            }
            Ok(topo) => {
                for (name, content) in render(&topo).files {
                    rendered.push((Some(i), c.template, name, content));
                }
            }
        }
    }

    for (i, _, name, content) in &rendered {
        if let Some(ch) = raw_unsafe(content) {
            let c = &cases[i.unwrap_or(0)];
            panic!(
                "{name} of {} {}={:?} holds a raw {:?}",
                c.template, c.slot, c.value, ch
            );
        }
    }
    // Job files are TOML: each must read back as a job file (the values round trip in
    // rolehop-core's tests); the YAML checks below are for the YAML files.
    for (i, _, name, content) in &rendered {
        if name.ends_with(".toml")
            && let Err(e) = rolehop_core::job_file::parse(name, content)
        {
            panic!("{name} of case {i:?} does not read back: {e}\n{content}");
        }
    }
    rendered.retain(|r| !r.2.ends_with(".toml"));
    let docs: Vec<String> = rendered.iter().map(|r| r.3.clone()).collect();
    let parsed = load_all(&docs);
    for ((i, tname, name, _), doc) in rendered.iter().zip(&parsed) {
        if i.is_none() {
            assert!(doc.get("__unparsable__").is_none(), "{tname} {name}: {doc}");
            baseline
                .entry(tname)
                .or_default()
                .insert(name.clone(), doc.clone());
        }
    }

    let mut checked = 0;
    let mut by_case: BTreeMap<usize, Vec<(&String, &Value)>> = BTreeMap::new();
    for ((i, _, name, _), doc) in rendered.iter().zip(&parsed) {
        if let Some(i) = i {
            by_case.entry(*i).or_default().push((name, doc));
        }
    }
    for (i, files) in &by_case {
        let c = &cases[*i];
        let what = format!("{} {}={:?}", c.template, c.slot, c.value);
        let base = &baseline[c.template];
        let default = slots()[c.slot].0;
        // Names derived from an environment's name: file and job names carry it as it is,
        // logical ids as CamelCase.
        let rename = |n: &str| {
            if c.value.is_empty() {
                n.to_owned()
            } else {
                n.replace(&c.value, default)
                    .replace(&camel(&c.value), &camel(default))
            }
        };
        let names: BTreeSet<String> = files.iter().map(|(n, _)| rename(n)).collect();
        assert_eq!(
            names,
            base.keys().cloned().collect::<BTreeSet<_>>(),
            "{what}: the rendered files"
        );
        let mut all = Vec::new();
        for (name, doc) in files {
            assert!(
                doc.get("__unparsable__").is_none(),
                "{what}: {name} does not parse: {doc}"
            );
            let mut got = structure(name, doc, &rename);
            let mut want = structure(name, &base[&rename(name)], &|n: &str| n.to_owned());
            if c.slot == "permissions.inline_policy" {
                // The file's name is the policy's name, and so its logical id.
                for s in [&mut got, &mut want] {
                    s.as_object_mut().unwrap().remove("ids");
                }
            }
            assert_eq!(
                got, want,
                "{what}: {name} no longer holds exactly the expected resources, outputs and jobs"
            );
            strings(doc, &mut all);
        }
        // Projects and refs are written verbatim only into the OIDC trust's `sub` patterns.
        let shows = match (c.template, c.slot) {
            ("access-keys", "access.project") => Shows::Elsewhere,
            ("oidc", "access.branch" | "access.tag") => Shows::Inside,
            (_, slot) => slots()[slot].1,
        };
        match shows {
            Shows::Exact => assert!(
                all.iter().any(|s| s == &c.value),
                "{what}: the value does not come back exactly"
            ),
            Shows::Inside => assert!(
                all.iter().any(|s| s.contains(&c.value)),
                "{what}: the value does not come back exactly inside a string"
            ),
            Shows::Elsewhere => {}
        }
        checked += 1;
    }
    // The table really exercised both paths, and the refusals carry named rules.
    assert!(
        checked > 100 && refused > 100,
        "{checked} rendered, {refused} refused"
    );
    for expected in [
        "account-id",
        "region",
        "stack-name",
        "policy-arn",
        "role-name",
        "gitlab-environment",
        "oidc-audience",
        "oidc-issuer",
        "policy-file",
        "external-id",
    ] {
        assert!(
            rules.contains(expected),
            "no `{expected}` refusal in {rules:?}"
        );
    }
    eprintln!(
        "{} cases: {checked} rendered and parsed, {refused} refused; rules: {rules:?}",
        cases.len()
    );
}
