//! Conformance against the iam-simulate case corpus in `shared/conformance/iam-simulate`:
//! every core case must be decided right; stretch cases are counted and printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use rolehop_policy::EvalOptions;
use rolehop_policy::cases::{Case, parse_cases};

/// The core set named in the corpus README (files or directories, relative to `cases/`).
const CORE: &[&str] = &[
    "anonymous.json",
    "basicResourcePolicies-DifferentAccount.json",
    "basicResourcePolicies-SameAccount.json",
    "blog.json",
    "boundaryNotPrincipalDenyResource.json",
    "commas.json",
    "conditions",
    "edgeCases/whitespaceActions.json",
    "identityExplicitDeny.json",
    "identityOnly.json",
    "noPrincipalElement.json",
    "notPrincipal.json",
    "permissionBoundaries-CrossAccount.json",
    "permissionBoundaries-SameAccount.json",
    "rcps.json",
    "resourceWildcards/crossPatternIntersections.json",
    "scps.json",
    "sessionPolicies.json",
    "sessions.json",
    "sts",
];

/// Walks up from this crate looking for `shared/conformance` (the repository's sibling).
fn cases_dir() -> PathBuf {
    let start = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in start.ancestors() {
        let candidate = dir.join("shared/conformance/iam-simulate/cases");
        if candidate.is_dir() {
            return candidate;
        }
    }
    panic!(
        "conformance corpus not found: no `shared/conformance/iam-simulate/cases` in any parent of `{}` \
         (the repository expects `shared/` next to it)",
        start.display()
    );
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

fn load(path: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(path).unwrap();
    parse_cases(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// (decided right, decided wrong with descriptions, skipped)
fn run(files: &[PathBuf], root: &Path) -> (usize, Vec<String>, usize) {
    let (mut pass, mut fail, mut skipped) = (0, Vec::new(), 0);
    for file in files {
        for case in load(file) {
            let Some(expected) = case.expected else {
                continue;
            };
            if case.simulation {
                skipped += 1;
                continue;
            }
            let got = case.evaluate();
            if got.decision == expected {
                pass += 1;
            } else {
                fail.push(format!(
                    "{}: `{}`: expected {expected}, got {} ({})",
                    file.strip_prefix(root).unwrap_or(file).display(),
                    case.name,
                    got.decision,
                    got.explanation
                ));
            }
        }
    }
    (pass, fail, skipped)
}

#[test]
fn core_cases_are_all_decided_right() {
    let root = cases_dir();
    let mut files = Vec::new();
    for entry in CORE {
        let p = root.join(entry);
        assert!(p.exists(), "core entry `{}` missing", p.display());
        json_files(&p, &mut files);
    }
    let (pass, fail, skipped) = run(&files, &root);
    println!(
        "core: {pass} passed, {} failed, {skipped} skipped (simulation)",
        fail.len()
    );
    assert!(
        fail.is_empty(),
        "core cases decided wrong:\n{}",
        fail.join("\n")
    );
    assert_eq!(pass, 185, "the README promises 185 core cases");
}

#[test]
fn stretch_cases_are_counted() {
    let root = cases_dir();
    let mut all = Vec::new();
    json_files(&root, &mut all);
    let core: Vec<PathBuf> = CORE.iter().map(|c| root.join(c)).collect();
    let stretch: Vec<PathBuf> = all
        .into_iter()
        .filter(|f| !core.iter().any(|c| f.starts_with(c)))
        .collect();
    let (pass, fail, skipped) = run(&stretch, &root);
    println!(
        "stretch: {pass} of {} passed, {skipped} skipped (simulation)",
        pass + fail.len()
    );
    for f in &fail {
        println!("  stretch miss: {f}");
    }
}

/// iam-simulate's discovery-mode cases (`simulation`), decided with
/// [`EvalOptions::discovery`]: only the response is compared (not the reported conditions),
/// and the count is informational.
#[test]
fn discovery_cases_are_counted() {
    let root = cases_dir();
    let mut all = Vec::new();
    json_files(&root, &mut all);
    let (mut pass, mut total) = (0, 0);
    for file in &all {
        for case in load(file) {
            let (true, Some(expected)) = (case.simulation, case.expected) else {
                continue;
            };
            total += 1;
            let got = case.evaluate_with(EvalOptions { discovery: true });
            if got.decision == expected {
                pass += 1;
            } else {
                println!(
                    "  discovery miss: {}: `{}`: expected {expected}, got {}",
                    file.strip_prefix(&root).unwrap_or(file).display(),
                    case.name,
                    got.decision
                );
            }
        }
    }
    println!("discovery: {pass} of {total} responses as expected");
}
