//! Renders both example topologies: every file is snapshot-tested, and every CloudFormation
//! template must pass the real cfn-lint without errors or warnings.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

use rolehop_core::Topology;
use rolehop_render::{Rendered, render};

const EXAMPLES: [&str; 2] = ["access-keys", "oidc"];

fn example(name: &str) -> Topology {
    let dir = rolehop_testkit::workspace_root()
        .join("examples")
        .join(name);
    let src = std::fs::read_to_string(dir.join("rolehop.toml")).unwrap();
    let mut read = |p: &str| std::fs::read_to_string(dir.join(p)).map_err(|e| e.to_string());
    Topology::parse(&format!("examples/{name}/rolehop.toml"), &src, &mut read).unwrap()
}

#[test]
fn every_rendered_file_matches_its_snapshot() {
    for ex in EXAMPLES {
        let Rendered { files } = render(&example(ex));
        let mut names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "broker.yaml",
                "gitlab-ci.yml",
                "target-nonprod.yaml",
                "target-prod.yaml"
            ],
            "{ex}"
        );
        for (name, content) in files {
            insta::assert_snapshot!(format!("{ex}__{name}"), content);
        }
    }
}

#[test]
fn rendering_is_deterministic() {
    for ex in EXAMPLES {
        assert_eq!(render(&example(ex)), render(&example(ex)), "{ex}");
    }
}

#[test]
fn templates_pass_cfn_lint_without_errors_or_warnings() {
    let cfn_lint = rolehop_testkit::venv_tool("cfn-lint");
    let dir = tempfile::tempdir().unwrap();
    let mut templates: Vec<PathBuf> = Vec::new();
    for ex in EXAMPLES {
        for (name, content) in render(&example(ex)).files {
            if name.ends_with(".yaml") {
                let p = dir.path().join(format!("{ex}-{name}"));
                std::fs::write(&p, content).unwrap();
                templates.push(p);
            }
        }
    }
    assert_eq!(templates.len(), 6);
    let out = Command::new(cfn_lint)
        .args(["-f", "json", "--"])
        .args(&templates)
        .output()
        .unwrap();
    let code = out.status.code().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Exit code bitmask: 2 errors, 4 warnings, 8 informational.
    assert_eq!(
        code & 0b110,
        0,
        "cfn-lint exit {code}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let findings: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for f in findings.as_array().unwrap() {
        assert_eq!(f["Level"], "Informational", "{f:#}");
    }
}
