//! `rolehop render` as a user runs it: files land in the output directory, a second run gives
//! the same bytes, and a broken topology yields no template but a located error (exit 3).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assert_cmd::Command;
use predicates::prelude::*;

use rolehop_testkit::example;

/// The files below `dir` (one level of folders), by relative path.
fn read_all(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().is_dir() {
            for (n, c) in read_all(&e.path()) {
                files.push((format!("{name}/{n}"), c));
            }
        } else {
            files.push((name, std::fs::read_to_string(e.path()).unwrap()));
        }
    }
    files.sort();
    files
}

#[test]
fn renders_every_file_of_both_examples_deterministically() {
    for ex in ["access-keys", "oidc"] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("rendered");
        Command::cargo_bin("rolehop")
            .unwrap()
            .args(["render", "--config"])
            .arg(example(ex))
            .arg("--out")
            .arg(&out)
            .assert()
            .success()
            .stdout(predicate::str::contains("broker.yaml"));
        let first = read_all(&out);
        let names: Vec<&str> = first.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "broker.yaml",
                "gitlab-ci.yml",
                "jobs/nonprod.toml",
                "jobs/prod.toml",
                "target-nonprod.yaml",
                "target-prod.yaml"
            ]
        );
        Command::cargo_bin("rolehop")
            .unwrap()
            .args(["render", "--config"])
            .arg(example(ex))
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        assert_eq!(read_all(&out), first, "{ex}: a second render changed bytes");
    }
}

/// Renders `src` as a topology beside a copy of example `ex`'s policy files; asserts that
/// it fails with exit 3, writes nothing, and returns its stderr.
fn render_refused(ex: &str, src: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("rolehop.toml");
    std::fs::write(&config, src).unwrap();
    std::fs::create_dir_all(tmp.path().join("policies")).unwrap();
    std::fs::copy(
        example(ex).with_file_name("policies/deploy-app.json"),
        tmp.path().join("policies/deploy-app.json"),
    )
    .unwrap();
    let out = tmp.path().join("rendered");
    let done = Command::cargo_bin("rolehop")
        .unwrap()
        .args(["render", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(3);
    assert!(
        !out.exists(),
        "no template may be written for a refused topology"
    );
    String::from_utf8_lossy(&done.get_output().stderr).into_owned()
}

#[test]
fn a_broken_topology_renders_nothing_and_points_at_the_problem() {
    let src = std::fs::read_to_string(example("access-keys"))
        .unwrap()
        .replace("prod-eu = \"222222222222\"", "prod-eu = \"22222\"");
    let line = 1 + src.lines().position(|l| l.contains("\"22222\"")).unwrap();
    let err = render_refused("access-keys", &src);
    assert!(err.contains(&format!("rolehop.toml:{line}:")), "{err}");
    assert!(err.contains("22222"), "{err}");
}

#[test]
fn a_trust_policy_aws_would_refuse_for_its_size_renders_nothing() {
    let many: Vec<String> = (0..40)
        .map(|i| format!("\"acme/service-{i:02}\""))
        .collect();
    let src = std::fs::read_to_string(example("oidc")).unwrap().replacen(
        "projects = [\"acme/shop\"]",
        &format!("projects = [{}]", many.join(", ")),
        1,
    );
    let err = render_refused("oidc", &src);
    for part in [
        "the service role trust policy of environment `prod`",
        "over IAM's limit of 2048",
        "[trust-size]",
    ] {
        assert!(err.contains(part), "{err}");
    }
}

/// Rendering into a folder leaves exactly the current output: the files an earlier render
/// wrote for an environment the topology dropped are removed (and said so), a file rolehop
/// did not write is kept and named in a warning.
#[test]
fn render_removes_what_an_earlier_render_wrote_and_keeps_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let example = rolehop_testkit::workspace_root().join("examples/access-keys");
    let src = std::fs::read_to_string(example.join("rolehop.toml")).unwrap();
    let cut = src.find("[environments.nonprod]").unwrap();
    std::fs::create_dir_all(d.join("policies")).unwrap();
    std::fs::copy(
        example.join("policies/deploy-app.json"),
        d.join("policies/deploy-app.json"),
    )
    .unwrap();
    std::fs::write(d.join("rolehop.toml"), &src).unwrap();
    let render = || {
        let mut c = Command::cargo_bin("rolehop").unwrap();
        c.current_dir(d).args(["render", "-o", "out"]);
        c
    };
    render().assert().success();
    std::fs::write(d.join("out/README.md"), "ours\n").unwrap();
    std::fs::write(d.join("rolehop.toml"), &src[..cut]).unwrap();
    let out = render().output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("removed out/target-nonprod.yaml")
            && stdout.contains("removed out/jobs/nonprod.toml"),
        "{stdout}"
    );
    assert!(
        stderr.contains("`out/README.md` was not written by `rolehop render`: left in place"),
        "{stderr}"
    );
    let mut left: Vec<String> = std::fs::read_dir(d.join("out"))
        .unwrap()
        .chain(std::fs::read_dir(d.join("out/jobs")).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "README.md",
            "broker.yaml",
            "gitlab-ci.yml",
            "jobs",
            "prod.toml",
            "target-prod.yaml"
        ]
    );
}
