//! Conformance on the project's own corpus (`tests/corpus/`, one file per topic, each decision
//! taken from AWS's documented evaluation logic): rolehop must decide every case as expected,
//! and the independent engine (@cloud-copilot/iam-simulate) must agree with every case except
//! those filed under `known-differences/` with the analysis of which engine is right.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use rolehop_policy::cases::parse_cases;
use serde_json::Value;

/// Floors: a corpus that shrinks, or an engine that stops agreeing, fails instead of passing
/// on fewer cases.
const MIN_CASES: usize = 230;
const MIN_AGREEMENTS: usize = 200;
const MIN_OIDC_SKIPS: usize = 20;

/// `foreignEngine` value of cases iam-simulate cannot decide: it drops custom OIDC condition
/// keys (`gitlab.example.com:sub`) on AssumeRoleWithWebIdentity.
const SKIP_OIDC_KEYS: &str = "skip-oidc-keys";

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn json_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for e in entries {
            json_files(&e, out);
        }
    } else if path.extension().is_some_and(|e| e == "json") {
        out.push(path.to_path_buf());
    }
}

/// One case as written (for the other engine and the corpus fields rolehop ignores), with
/// where it lives.
struct Raw {
    /// `file: name`, for messages.
    label: String,
    known_difference: bool,
    value: Value,
}

impl Raw {
    fn str_field(&self, key: &str) -> Option<&str> {
        self.value.get(key).and_then(Value::as_str)
    }

    fn expected(&self) -> &str {
        self.value["expected"]["response"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no `expected.response`", self.label))
    }

    /// Context keys of an OIDC provider (`<host>:<claim>`): the prefix is a host name.
    fn oidc_keys(&self) -> Vec<String> {
        self.value["request"]["context"]
            .as_object()
            .map(|ctx| {
                ctx.keys()
                    .filter(|k| k.split_once(':').is_some_and(|(p, _)| p.contains('.')))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn corpus() -> Vec<Raw> {
    let root = corpus_dir();
    let mut files = Vec::new();
    json_files(&root, &mut files);
    let mut out = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&root).unwrap();
        let text = std::fs::read_to_string(file).unwrap();
        let values: Vec<Value> = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not a JSON array: {e}", rel.display()));
        assert!(!values.is_empty(), "{}: an empty case file", rel.display());
        for v in values {
            let name = v["name"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: a case without a name", rel.display()));
            out.push(Raw {
                label: format!("{}: `{name}`", rel.display()),
                known_difference: rel.starts_with("known-differences"),
                value: v,
            });
        }
    }
    out
}

#[test]
fn every_case_is_decided_as_expected_by_rolehop() {
    let root = corpus_dir();
    let mut files = Vec::new();
    json_files(&root, &mut files);
    let (mut total, mut wrong) = (0, Vec::new());
    for file in &files {
        let rel = file.strip_prefix(&root).unwrap().display().to_string();
        let cases = parse_cases(&std::fs::read_to_string(file).unwrap())
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        for case in cases {
            total += 1;
            // A case that decides nothing would pass silently: every case states its answer.
            let Some(expected) = case.expected else {
                wrong.push(format!(
                    "{rel}: `{}`: no `expected` decision (every corpus case must state one)",
                    case.name
                ));
                continue;
            };
            assert!(
                !case.simulation,
                "{rel}: `{}`: discovery-mode cases (`simulation`) are not part of the corpus",
                case.name
            );
            let got = case.evaluate();
            if got.decision != expected {
                wrong.push(format!(
                    "{rel}: `{}`: expected {expected}, got {} ({})",
                    case.name, got.decision, got.explanation
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {total} cases decided wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(
        total >= MIN_CASES,
        "the corpus shrank: {total} cases, at least {MIN_CASES} expected"
    );
}

#[test]
fn every_case_names_the_rule_that_decides_it_once() {
    let cases = corpus();
    let mut names = std::collections::BTreeSet::new();
    for c in &cases {
        assert!(
            c.str_field("note").is_some_and(|n| n.len() > 20),
            "{}: no `note` citing the AWS rule that decides it",
            c.label
        );
        assert!(names.insert(c.label.clone()), "{}: named twice", c.label);
        if c.known_difference {
            assert!(
                c.str_field("note")
                    .is_some_and(|n| n.contains("Known difference: ")),
                "{}: a known difference must say which engine is right and why",
                c.label
            );
        }
    }
}

/// The same requests decided by the independent engine. Agreement is required except for
/// cases in `known-differences/` (each explains which engine is right) and web-identity cases
/// that depend on custom OIDC keys, which iam-simulate drops: for those the test checks that
/// the engine indeed reported every such key as ignored, so the exclusion is measured, not
/// assumed.
#[test]
fn iam_simulate_agrees_except_documented_differences() {
    let cases = corpus();
    let batch = Value::Array(cases.iter().map(|c| c.value.clone()).collect());
    let answers = rolehop_testkit::iam_simulate::decide(&batch);
    let (mut agreed, mut skipped, mut differ) = (0, 0, 0);
    let mut problems = Vec::new();
    for (c, a) in cases.iter().zip(&answers) {
        let expected = c.expected();
        match c.str_field("foreignEngine") {
            Some(SKIP_OIDC_KEYS) => {
                let keys = c.oidc_keys();
                let not_ignored: Vec<&String> = keys
                    .iter()
                    .filter(|k| !a.ignored_context_keys.contains(k))
                    .collect();
                if keys.is_empty() || !not_ignored.is_empty() {
                    problems.push(format!(
                        "{}: marked `{SKIP_OIDC_KEYS}` but the engine did not ignore {not_ignored:?} \
                         (OIDC keys in the context: {keys:?}, ignored: {:?}): compare it instead",
                        c.label, a.ignored_context_keys
                    ));
                }
                skipped += 1;
                continue;
            }
            Some(other) => panic!("{}: unknown `foreignEngine` value `{other}`", c.label),
            None => {}
        }
        let got = a.decision.as_deref();
        if c.known_difference {
            differ += 1;
            if got == Some(expected) {
                problems.push(format!(
                    "{}: filed as a known difference but iam-simulate now agrees ({expected}): \
                     move it out of known-differences/",
                    c.label
                ));
            }
        } else if got == Some(expected) {
            agreed += 1;
        } else {
            problems.push(format!(
                "{}: expected {expected}, iam-simulate decided {} (ignored keys {:?}): find which \
                 engine is right and fix rolehop or file the case under known-differences/ with why",
                c.label,
                got.map_or_else(|| format!("nothing: {:?}", a.error), str::to_string),
                a.ignored_context_keys
            ));
        }
    }
    println!(
        "iam-simulate: {agreed} of {} cases agree, {differ} known differences, {skipped} left to other checks (custom OIDC keys)",
        cases.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        agreed >= MIN_AGREEMENTS,
        "only {agreed} agreements, at least {MIN_AGREEMENTS} expected"
    );
    assert!(
        skipped >= MIN_OIDC_SKIPS,
        "only {skipped} web-identity cases left to other checks, at least {MIN_OIDC_SKIPS} expected"
    );
    assert_eq!(agreed + skipped + differ, cases.len());
}
