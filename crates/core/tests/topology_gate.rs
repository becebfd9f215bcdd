//! Gate mode of `rolehop.toml` (`auth.mode = "oidc-gate"`): the model with its defaults, and
//! each broken rule reported with its rule name at the offending value.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rolehop_core::Topology;
use rolehop_core::topology::{Auth, GateRules, PipelineSourceRules};

const GATE: &str = r#"[broker]
account_id = "111111111111"
region = "eu-west-1"

[auth]
mode = "oidc-gate"
issuer = "https://gitlab.example.com"
audience = "https://gate.example.com"
gate_url = "https://abc.lambda-url.eu-west-1.on.aws/"

[environments.prod]
protected = true

[environments.prod.gitlab]
projects = ["acme/shop"]
branches = ["main"]
environments = ["production"]

[environments.prod.gate]
project_ids = ["42"]
namespace_ids = ["7"]
pipeline_sources = { deny = ["merge_request_event"] }
environment_protected = true
deployment_tiers = ["production"]
runner_environments = ["gitlab-hosted"]
user_access_levels = ["maintainer", "owner"]

[environments.prod.accounts]
prod-eu = "222222222222"

[environments.dev]

[environments.dev.gitlab]
projects = ["acme/*"]
branches = ["*"]

[environments.dev.accounts]
dev = "333333333333"
"#;

fn parse(src: &str) -> Result<Topology, rolehop_core::TopologyError> {
    Topology::parse("rolehop.toml", src, &mut |_| Err("no files".into()))
}

#[test]
fn gate_mode_carries_the_gate_and_each_environments_rules() {
    let t = parse(GATE).unwrap();
    assert_eq!(
        t.auth,
        Auth::OidcGate {
            issuer: "https://gitlab.example.com".into(),
            audience: "https://gate.example.com".into(),
            gate_url: Some("https://abc.lambda-url.eu-west-1.on.aws/".into()),
        }
    );
    let prod = t.environment("prod").unwrap();
    assert_eq!(
        prod.gate,
        Some(GateRules {
            project_ids: vec!["42".into()],
            namespace_ids: vec!["7".into()],
            namespace_paths: vec![],
            pipeline_sources: PipelineSourceRules {
                allow: vec![],
                deny: vec!["merge_request_event".into()],
            },
            ref_protected: true,
            ref_protected_explicit: false,
            environment_protected: true,
            deployment_tiers: vec!["production".into()],
            runner_environments: vec!["gitlab-hosted".into()],
            user_access_levels: vec!["maintainer".into(), "owner".into()],
        })
    );
    // Without a `[gate]` table: the defaults, protected refs only where the environment is.
    let dev = t.environment("dev").unwrap();
    assert_eq!(dev.gate, Some(GateRules::defaults(false)));
    assert!(!dev.gate.as_ref().unwrap().ref_protected);
    // One gate identity per environment; no OIDC provider in gate mode.
    assert_eq!(
        t.gate_role_arn(prod).as_deref(),
        Some("arn:aws:iam::111111111111:role/rolehop-prod-gate")
    );
    assert_eq!(t.oidc_provider_arn(), None);
    assert_eq!(t.auth.issuer(), Some("https://gitlab.example.com"));
}

#[test]
fn an_explicit_ref_protected_is_kept_and_marked_explicit() {
    let src = GATE.replace(
        "project_ids = [\"42\"]\n",
        "project_ids = [\"42\"]\nref_protected = false\n",
    );
    let t = parse(&src).unwrap();
    let g = t.environment("prod").unwrap().gate.clone().unwrap();
    assert!(!g.ref_protected);
    assert!(g.ref_protected_explicit);
}

#[test]
fn a_loopback_http_issuer_is_accepted_for_local_gates_only() {
    let local = GATE.replace("https://gitlab.example.com", "http://127.0.0.1:8080");
    assert!(parse(&local).is_ok());
    let remote = GATE.replace("https://gitlab.example.com", "http://gitlab.example.com");
    let err = parse(&remote).unwrap_err();
    assert_eq!(err.diagnostics[0].rule, "oidc-issuer", "{err}");
}

/// (what to replace in GATE, with what, rule, line, a word of the message)
const CASES: &[(&str, &str, &str, usize, &str)] = &[
    (
        "audience = \"https://gate.example.com\"\n",
        "",
        "oidc-audience",
        5,
        "needs `audience`",
    ),
    (
        "issuer = \"https://gitlab.example.com\"\n",
        "",
        "oidc-issuer",
        5,
        "needs `issuer`",
    ),
    (
        "https://abc.lambda-url.eu-west-1.on.aws/",
        "http://gate.internal/",
        "gate-url",
        9,
        "clear text",
    ),
    ("[\"42\"]", "[\"acme\"]", "gate-id", 20, "digits only"),
    ("[\"7\"]", "[\"\"]", "gate-id", 21, "namespace id"),
    (
        "deny = [\"merge_request_event\"]",
        "deny = [\"merge_request\"]",
        "gate-pipeline-source",
        22,
        "merge_request_event",
    ),
    (
        "deny = [\"merge_request_event\"]",
        "allow = [\"push\"], deny = [\"push\"]",
        "gate-pipeline-source",
        22,
        "both allowed and denied",
    ),
    (
        "[\"production\"]\nrunner",
        "[\"prod\"]\nrunner",
        "gate-deployment-tier",
        24,
        "deployment_tier",
    ),
    (
        "[\"gitlab-hosted\"]",
        "[\"shared\"]",
        "gate-runner-environment",
        25,
        "self-hosted",
    ),
    (
        "[\"maintainer\", \"owner\"]",
        "[\"admin\"]",
        "gate-user-access-level",
        26,
        "maintainer",
    ),
    (
        "namespace_ids = [\"7\"]",
        "namespace_paths = [\"*\"]",
        "gate-namespace",
        21,
        "top-level group",
    ),
    (
        "namespace_ids = [\"7\"]",
        "namespace_path = [\"acme\"]",
        "unknown-key",
        21,
        "did you mean `namespace_paths`?",
    ),
];

#[test]
fn every_broken_gate_rule_is_located() {
    for (from, to, rule, line, word) in CASES {
        assert!(GATE.contains(from), "case {rule}: `{from}` not in GATE");
        let src = GATE.replacen(from, to, 1);
        let err = parse(&src).expect_err(&format!("{rule}: accepted\n{src}"));
        let d = err
            .diagnostics
            .iter()
            .find(|d| d.rule == *rule)
            .unwrap_or_else(|| panic!("{rule}: not reported; got {err}"));
        assert_eq!(d.location.line, *line, "{rule}: {d}");
        assert!(
            d.message.contains(word),
            "{rule}: `{}` lacks `{word}`",
            d.message
        );
    }
}

#[test]
fn gate_rules_outside_gate_mode_are_refused_not_ignored() {
    for mode in [
        "mode = \"oidc\"\nissuer = \"https://gitlab.example.com\"",
        "mode = \"access-keys\"",
    ] {
        let src = GATE
            .replace(
                "mode = \"oidc-gate\"\nissuer = \"https://gitlab.example.com\"\naudience = \"https://gate.example.com\"\ngate_url = \"https://abc.lambda-url.eu-west-1.on.aws/\"",
                mode,
            );
        let err = parse(&src).unwrap_err();
        let rules: Vec<&str> = err.diagnostics.iter().map(|d| d.rule).collect();
        assert_eq!(rules, ["gate-mode"], "{mode}: {err}");
        assert!(
            err.diagnostics[0]
                .message
                .contains("[environments.prod.gate]"),
            "{err}"
        );
    }
    let src = GATE.replace("mode = \"oidc-gate\"", "mode = \"oidc\"");
    let err = parse(&src).unwrap_err();
    assert!(
        err.diagnostics
            .iter()
            .any(|d| d.rule == "auth-mode" && d.message.contains("gate_url")),
        "{err}"
    );
}
