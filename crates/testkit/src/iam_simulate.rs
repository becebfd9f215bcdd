//! The independent IAM engine: `@cloud-copilot/iam-simulate`, installed by `scripts/tools.sh
//! --node` into the tools folder and run as a separate Node program (`js/iam-simulate.mjs`).
//! Tests hand it cases in rolehop's case-file format and compare its decisions with rolehop's
//! evaluator. It shares no code with rolehop: agreement between the two is evidence, not echo.
//!
//! Known limit (measured with 0.1.173): on `sts:AssumeRoleWithWebIdentity` it drops custom OIDC
//! condition keys such as `gitlab.example.com:sub` (returned in `ignored_context_keys`), so
//! every such request is implicitly denied, the legitimate one included. Callers must leave
//! web-identity trust to another check and say so.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::tools_dir;

/// What iam-simulate decided for one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// `Allowed`, `ImplicitlyDenied` or `ExplicitlyDenied`; `None` when the engine refused the
    /// input (see `error`).
    pub decision: Option<String>,
    /// Context keys the engine dropped before evaluating (not applicable to the action).
    pub ignored_context_keys: Vec<String>,
    pub error: Option<String>,
}

/// Decides every case of `cases` (a JSON array in the case-file format) in one Node process.
pub fn decide(cases: &Value) -> Vec<Decision> {
    let node_dir = tools_dir().join("node");
    let node = node_dir.join("node_modules/.bin/node");
    assert!(
        node_dir
            .join("node_modules/@cloud-copilot/iam-simulate")
            .is_dir(),
        "iam-simulate is missing from {}: run the test command from the README (scripts/test.sh), \
         which installs it with scripts/tools.sh --node",
        node_dir.display()
    );
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("js/iam-simulate.mjs");
    let mut child = Command::new(&node)
        .arg(&script)
        .env("ROLEHOP_IAMSIM_DIR", &node_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", node.display()));
    let input = serde_json::to_vec(cases).unwrap();
    // Written from a thread so a large batch cannot deadlock against a full stdout pipe.
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "iam-simulate failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "iam-simulate answered no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let n = cases.as_array().map_or(0, Vec::len);
    assert_eq!(
        answers.len(),
        n,
        "iam-simulate answered {} of {n} cases",
        answers.len()
    );
    answers
        .into_iter()
        .map(|a| Decision {
            decision: a["decision"].as_str().map(str::to_string),
            ignored_context_keys: a["ignoredContextKeys"]
                .as_array()
                .map(|ks| {
                    ks.iter()
                        .filter_map(|k| k.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            error: a["error"].as_str().map(str::to_string),
        })
        .collect()
}
