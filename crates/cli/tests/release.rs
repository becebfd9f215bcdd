//! rolehop's own release pipeline (.gitlab-ci.yml) run for real with gitlab-ci-local: its jobs
//! and stages parse as GitLab would read them, and the image build stage turns a rolehop binary
//! into the minimal OCI image (scripts/build-image.sh): reproducible (built twice, one digest),
//! read by skopeo, unpacked by umoci and run by runc as the non-root user.
//! The portable-binary stage (a release build with cargo-zigbuild) is too slow for the suite;
//! docs/install.md records its run and the glibc baseline it checked.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use rolehop_testkit::{node_bin_dir, printed, tools_dir, venv_tool, workspace_root};

fn sh(cwd: &Path, cmd: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(cwd)
        .output()
        .unwrap();
    let text = printed(&out);
    assert!(out.status.success(), "`{cmd}` failed:\n{text}");
    text
}

#[test]
fn the_release_pipeline_builds_a_reproducible_image_that_runs_as_non_root() {
    let bin_dir = node_bin_dir();
    venv_tool("python");
    let root = workspace_root();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    // The pipeline and the scripts it runs, in a repository of their own (gitlab-ci-local
    // writes its state into the project folder).
    for path in [".gitlab-ci.yml", "scripts", "templates"] {
        sh(repo, &format!("cp -r '{}' .", root.join(path).display()));
    }
    std::fs::create_dir(repo.join("dist")).unwrap();
    // A stripped copy of the binary under test stands in for the portable build's output.
    sh(
        repo,
        &format!(
            "strip -o dist/rolehop-x86_64-linux-gnu '{}'",
            assert_cmd::cargo::cargo_bin("rolehop").display()
        ),
    );
    sh(
        repo,
        "git init -q -b main && git -c user.email=ci@example.com -c user.name=ci commit -q --allow-empty -m release \
         && git remote add origin https://gitlab.example.com/platform/rolehop.git",
    );
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let run = |args: &[&str]| {
        let out = Command::new("gitlab-ci-local")
            .args(args)
            .current_dir(repo)
            .env("PATH", &path)
            .output()
            .unwrap();
        (out.status.success(), printed(&out))
    };
    let (ok, list) = run(&["--list"]);
    assert!(ok, "{list}");
    for job in ["test", "build:binary", "build:image"] {
        assert!(
            list.contains(job),
            "`{job}` missing from the pipeline:\n{list}"
        );
    }
    // On a branch the publish and release jobs must not run: only a version tag publishes.
    for job in ["publish:package", "publish:image", "release"] {
        assert!(
            !list.contains(job),
            "`{job}` would run on a branch:\n{list}"
        );
    }
    let tools = format!("ROLEHOP_TOOLS_DIR={}", tools_dir().display());
    let (ok, out) = run(&[
        "--force-shell-executor",
        "--variable",
        &tools,
        "build:image",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("PASS  build:image"), "{out}");
    assert!(out.contains("runc ran it as uid 65532: rolehop "), "{out}");
    let inspect: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo.join("dist/image.inspect.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(inspect["Os"], "linux");
    assert_eq!(
        inspect["Layers"].as_array().map(Vec::len),
        Some(1),
        "{inspect}"
    );
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo.join("dist/image/index.json")).unwrap())
            .unwrap();
    assert_eq!(
        index["manifests"][0]["digest"], inspect["Digest"],
        "skopeo reads the manifest the build wrote"
    );
}
