#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `rolehop audit` as a merge-request gate and with GitLab: a hand-built estate (names of
//! its own, no rolehop tags) exported as `get-account-authorization-details`, audited
//! through the binary against a baseline report, with waivers, and cross-checked with the
//! local GitLab API server's protected branches, tags and environments.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use rolehop_testkit::gitlab::{GitlabServer, TOKEN};
use serde_json::{Value, json};

const BROKER: &str = "111111111111";
const PROD: &str = "222222222222";

fn rolehop() -> Command {
    Command::cargo_bin("rolehop").unwrap()
}

/// The CI entry role of a hand-built estate: GitLab subjects -> `ci-entry` (broker) ->
/// `shop-deployer` (production account). `subs` are the trusted `sub` patterns.
fn exports(dir: &Path, subs: &[&str]) -> Vec<PathBuf> {
    let chain = json!(["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]);
    let entry = json!({
        "Path": "/", "RoleName": "ci-entry", "RoleId": "AROACIENTRY",
        "Arn": format!("arn:aws:iam::{BROKER}:role/ci-entry"),
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": format!("arn:aws:iam::{BROKER}:oidc-provider/gitlab.example.com")},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {"gitlab.example.com:aud": "https://aws.example.com"},
                "StringLike": {"gitlab.example.com:sub": subs}
            }}]},
        "RolePolicyList": [{"PolicyName": "hop", "PolicyDocument": {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": chain,
                "Resource": format!("arn:aws:iam::{PROD}:role/shop-deployer")}]}}],
        "AttachedManagedPolicies": [], "Tags": [{"Key": "Environment", "Value": "production"}],
    });
    let deployer = json!({
        "Path": "/", "RoleName": "shop-deployer", "RoleId": "AROASHOPDEPLOYER",
        "Arn": format!("arn:aws:iam::{PROD}:role/shop-deployer"),
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{BROKER}:role/ci-entry")},
            "Action": chain, "Condition": {"Null": {"sts:SourceIdentity": "false"}}}]},
        "RolePolicyList": [{"PolicyName": "app", "PolicyDocument": {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": "*"}]}}],
        "AttachedManagedPolicies": [], "Tags": [{"Key": "Environment", "Value": "production"}],
    });
    let mut files = Vec::new();
    for (acct, role) in [(BROKER, entry), (PROD, deployer)] {
        let p = dir.join(format!("acct-{acct}.json"));
        let v = json!({"UserDetailList": [], "GroupDetailList": [], "RoleDetailList": [role], "Policies": []});
        std::fs::write(&p, v.to_string()).unwrap();
        files.push(p);
    }
    files
}

fn audit(files: &[PathBuf], extra: &[&str]) -> std::process::Output {
    rolehop()
        .arg("audit")
        .arg("--authz-details")
        .args(files)
        .args(["--now", "2026-12-01T00:00:00Z"])
        .args(extra)
        .env("GITLAB_TOKEN", TOKEN)
        .output()
        .unwrap()
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn ids(v: &Value, list: &str) -> Vec<String> {
    v[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect()
}

const MAIN: &str = "project_path:acme/shop:ref_type:branch:ref:main";
const FEATURE: &str = "project_path:acme/shop:ref_type:branch:ref:feature/*";

#[test]
fn a_change_that_lets_feature_branches_reach_production_is_reported_as_what_it_adds() {
    let dir = tempfile::tempdir().unwrap();
    let before_dir = dir.path().join("before");
    let after_dir = dir.path().join("after");
    std::fs::create_dir_all(&before_dir).unwrap();
    std::fs::create_dir_all(&after_dir).unwrap();
    let before = exports(&before_dir, &[MAIN]);
    let after = exports(&after_dir, &[MAIN, FEATURE]);

    // The main branch's report is the baseline.
    let base = audit(&before, &["--format", "json"]);
    assert!(
        base.status.success(),
        "{}",
        String::from_utf8_lossy(&base.stderr)
    );
    let base_file = dir.path().join("base.json");
    std::fs::write(&base_file, &base.stdout).unwrap();
    let base_json = json_of(&base);
    assert!(
        base_json["edges"].as_array().unwrap().len() >= 2,
        "{base_json}"
    );

    // The merge request's comment says, in words, what the change adds.
    let out = audit(
        &after,
        &[
            "--baseline",
            base_file.to_str().unwrap(),
            "--format",
            "markdown",
            "--fail-on-new",
            "high",
        ],
    );
    let md = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(10),
        "{md}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        md.contains(&format!(
            "- `acme/shop@feature/*` (new) now reaches **{BROKER}**"
        )),
        "{md}"
    );
    assert!(
        md.contains(&format!(
            "**{PROD}** (prod, production: role `shop-deployer`)"
        )),
        "{md}"
    );
    assert!(md.contains("### New findings"), "{md}");
    assert!(
        md.contains("| critical | RH006 |") || md.contains("| high | RH015 |"),
        "{md}"
    );
    // Unchanged findings are not repeated: the main branch's subject reaches nothing new.
    assert!(!md.contains("acme/shop@main"), "{md}");

    // The same change against itself adds nothing and passes the gate.
    let after_file = dir.path().join("after.json");
    let full = audit(&after, &["--format", "json"]);
    std::fs::write(&after_file, &full.stdout).unwrap();
    let out = audit(
        &after,
        &[
            "--baseline",
            after_file.to_str().unwrap(),
            "--format",
            "markdown",
            "--fail-on-new",
            "low",
        ],
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Nothing new"));

    // JSON keeps the whole report (usable as the next baseline) and adds the delta.
    let out = audit(
        &after,
        &[
            "--baseline",
            base_file.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    let v = json_of(&out);
    assert!(
        v["findings"].as_array().unwrap().len()
            >= v["delta"]["new_findings"].as_array().unwrap().len()
    );
    let reach = &v["delta"]["new_reach"][0];
    assert_eq!(
        reach["principal"],
        format!("oidc:gitlab.example.com:{FEATURE}")
    );
    assert_eq!(reach["new_principal"], true);
    assert!(
        v["delta"]["new_edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["from"] == format!("oidc:gitlab.example.com:{FEATURE}"))
    );
    // The baseline's own findings are not new.
    assert!(
        v["delta"]["resolved_findings"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn waivers_accept_findings_until_they_expire_and_then_are_findings_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let files = exports(dir.path(), &[MAIN, FEATURE]);
    let all = json_of(&audit(&files, &["--format", "json"]));
    let target = all["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["resource"].as_str().unwrap().ends_with(":role/ci-entry"))
        .unwrap()
        .clone();
    let waivers = dir.path().join("waivers.toml");
    let write = |expires: &str| {
        std::fs::write(
            &waivers,
            format!(
                "# accepted findings\n[[waiver]]\nid = \"{}\"\nresource = \"arn:aws:iam::{BROKER}:role/*\"\ntitle = {}\nreason = \"feature branches deploy to prod during the migration (SEC-42)\"\nexpires = {expires}\n\n[[waiver]]\nid = \"RH012\"\nresource = \"arn:aws:iam::{BROKER}:role/gone\"\nreason = \"old\"\nexpires = 2027-06-01\n",
                target["id"].as_str().unwrap(),
                target["title"]
            ),
        )
        .unwrap();
    };

    write("2027-01-01");
    let v = json_of(&audit(
        &files,
        &["--format", "json", "--waivers", waivers.to_str().unwrap()],
    ));
    let waived: Vec<&Value> = v["waived"].as_array().unwrap().iter().collect();
    assert_eq!(waived.len(), 1, "{v}");
    assert_eq!(waived[0]["title"], target["title"]);
    assert_eq!(
        waived[0]["reason"],
        "feature branches deploy to prod during the migration (SEC-42)"
    );
    assert!(
        !v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["title"] == target["title"])
    );
    // A waiver that accepts nothing is reported so it gets removed.
    assert!(ids(&v, "findings").contains(&"RH041".to_owned()), "{v}");

    // After its expiry (the audit's clock, `--now`), the finding is back and the waiver is one.
    write("2026-11-30");
    let v = json_of(&audit(
        &files,
        &["--format", "json", "--waivers", waivers.to_str().unwrap()],
    ));
    assert!(v["waived"].as_array().unwrap().is_empty());
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["title"] == target["title"])
    );
    let expired = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "RH040")
        .unwrap();
    assert_eq!(expired["severity"], "medium");
    assert!(
        expired["title"]
            .as_str()
            .unwrap()
            .contains("expired on 2026-11-30"),
        "{expired}"
    );
    assert!(
        expired["detail"]
            .as_str()
            .unwrap()
            .contains("waivers.toml:2"),
        "{expired}"
    );

    // A waiver without a reason is refused with its line, before anything is audited.
    std::fs::write(
        &waivers,
        "[[waiver]]\nid = \"RH015\"\nresource = \"x\"\nexpires = 2027-01-01\n",
    )
    .unwrap();
    let out = audit(&files, &["--waivers", waivers.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("waivers.toml:1: waiver 1: `reason` is missing"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_baseline_that_is_not_a_report_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let files = exports(dir.path(), &[MAIN]);
    let bad = dir.path().join("base.json");
    std::fs::write(&bad, r#"{"results": []}"#).unwrap();
    let out = audit(&files, &["--baseline", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a rolehop audit JSON report"));
    let out = rolehop()
        .args(["audit", "--authz-details"])
        .args(&files)
        .args(["--fail-on-new", "high"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "--fail-on-new needs --baseline");
}

fn gitlab_with_shop() -> GitlabServer {
    let gl = GitlabServer::start();
    gl.protect_branch("acme/shop", "main", 0, 40);
    gl.protect_tag("acme/shop", "v*", 30);
    gl.protect_environment("acme/shop", "production", 40);
    gl
}

fn findings_with(v: &Value, id: &str) -> Vec<Value> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == id)
        .cloned()
        .collect()
}

#[test]
fn gitlab_cross_check_flags_trusted_refs_gitlab_does_not_protect() {
    let dir = tempfile::tempdir().unwrap();
    let files = exports(
        dir.path(),
        &[
            MAIN,
            "project_path:acme/shop:ref_type:branch:ref:release/*",
            "project_path:acme/shop:ref_type:tag:ref:v*",
            "project_path:acme/ghost:ref_type:branch:ref:main",
        ],
    );
    let gl = gitlab_with_shop();
    let out = audit(&files, &["--format", "json", "--gitlab", &gl.url()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_of(&out);
    let open = findings_with(&v, "RH050");
    assert_eq!(open.len(), 1, "{v:#}");
    assert_eq!(open[0]["severity"], "critical");
    let title = open[0]["title"].as_str().unwrap();
    assert!(
        title.contains("release/*") && title.contains("branches"),
        "{title}"
    );
    assert!(
        open[0]["detail"]
            .as_str()
            .unwrap()
            .contains("a branch named `release/rolehop-unprotected`"),
        "{}",
        open[0]["detail"]
    );
    // `main` is protected, push: no one: nothing to say. `v*` tags are protected, but
    // developers may create them.
    let devs = findings_with(&v, "RH052");
    assert_eq!(devs.len(), 1, "{v:#}");
    assert!(
        devs[0]["title"]
            .as_str()
            .unwrap()
            .contains("Developers + Maintainers may create it")
    );
    // A project that does not exist is a squatting risk.
    let ghost = findings_with(&v, "RH053");
    assert_eq!(ghost.len(), 1);
    assert!(ghost[0]["title"].as_str().unwrap().contains("acme/ghost"));
    // It asked GitLab only for what the trust names, paginated.
    let reqs = gl.requests();
    assert!(
        reqs.iter().any(|r| r.starts_with(
            "GET /api/v4/projects/acme%2Fshop/protected_branches?per_page=100&page=1"
        )),
        "{reqs:?}"
    );
    assert!(reqs.iter().all(|r| r.starts_with("GET ")), "{reqs:?}");

    // Protecting `release/*` closes it; the same data as an export file gives the same answer.
    gl.protect_branch("acme/shop", "release/*", 0, 40);
    let v = json_of(&audit(&files, &["--format", "json", "--gitlab", &gl.url()]));
    assert!(findings_with(&v, "RH050").is_empty(), "{v:#}");
}

#[test]
fn gitlab_cross_check_reads_exports_old_versions_and_free_tier() {
    let dir = tempfile::tempdir().unwrap();
    let files = exports(
        dir.path(),
        &[MAIN, "project_path:acme/shop-*:ref_type:branch:ref:main"],
    );
    let gl = gitlab_with_shop();
    gl.add_project("acme/shop-api", 7);
    gl.protect_branch("acme/shop-api", "dev*", 0, 40);
    gl.like_gitlab_13();
    gl.like_gitlab_free();
    let v = json_of(&audit(&files, &["--format", "json", "--gitlab", &gl.url()]));
    // The glob was expanded through the group's project list; acme/shop-api's `main` is open.
    let open = findings_with(&v, "RH050");
    assert_eq!(open.len(), 1, "{v:#}");
    assert!(
        open[0]["title"]
            .as_str()
            .unwrap()
            .contains("`acme/shop-api`")
    );
    assert!(
        gl.requests()
            .iter()
            .any(|r| r.contains("/groups/acme/projects?include_subgroups=true"))
    );

    // An export file of the API's shape: protected environments unknown (null) are fine.
    let export = dir.path().join("gitlab.json");
    std::fs::write(
        &export,
        json!({"projects": [
            {"path": "acme/shop", "id": 1,
             "protected_branches": [{"name": "main", "push_access_levels": [{"access_level": 40, "access_level_description": "Maintainers"}]}],
             "protected_tags": [], "protected_environments": null},
            {"path": "acme/shop-api", "id": 7, "protected_branches": [], "protected_tags": []}
        ], "group_projects": ["acme/shop", "acme/shop-api"]})
        .to_string(),
    )
    .unwrap();
    let v = json_of(&audit(
        &files,
        &["--format", "json", "--gitlab", export.to_str().unwrap()],
    ));
    assert_eq!(findings_with(&v, "RH050").len(), 1, "{v:#}");

    // Without a token the API is not asked, and the error says what is needed.
    let out = rolehop()
        .args(["audit", "--authz-details"])
        .args(&files)
        .args(["--gitlab", &gl.url()])
        .env_remove("GITLAB_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`GITLAB_TOKEN` is not set"));
    // A broken export names the file.
    std::fs::write(&export, "{\"projects\": 3}").unwrap();
    let out = audit(&files, &["--gitlab", export.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("gitlab.json"));
}

#[test]
fn gitlab_cross_check_covers_gate_rules_and_topology_environments() {
    let dir = tempfile::tempdir().unwrap();
    let gl = GitlabServer::start();
    gl.protect_branch("acme/shop", "main", 0, 40);
    gl.protect_tag("acme/shop", "v*", 40);
    // `production` is not protected in GitLab: the example topology's prod relies on it.
    gl.protect_environment("acme/shop", "staging", 30);
    let cfg = rolehop_testkit::example("oidc");
    let out = rolehop()
        .args(["audit", "--config"])
        .arg(&cfg)
        .args(["--format", "json", "--gitlab", &gl.url()])
        .env("GITLAB_TOKEN", TOKEN)
        .output()
        .unwrap();
    let v = json_of(&out);
    let env = findings_with(&v, "RH055");
    assert_eq!(env.len(), 1, "{v:#}");
    assert!(env[0]["title"].as_str().unwrap().contains("`production`"));
    assert!(findings_with(&v, "RH050").is_empty(), "{v:#}");

    // Gate rules of the production environment: by default the gate requires
    // `ref_protected`, so an open `hotfix/*` never passes it; turned off, it is a finding.
    let gate = dir.path().join("gate.toml");
    let with_gate = |ref_protected: &str| {
        std::fs::write(
            &gate,
            format!("issuer = \"https://gitlab.example.com\"\naudience = \"https://gate.example.com\"\n\n[environments.prod]\nservice_role_arn = \"arn:aws:iam::111111111111:role/rolehop-prod-service\"\n\n[environments.prod.rules]\nproject_paths = [\"acme/shop\"]\nbranches = [\"main\", \"hotfix/*\"]\n{ref_protected}"),
        )
        .unwrap();
        let out = rolehop()
            .args(["audit", "--config"])
            .arg(&cfg)
            .args(["--format", "json", "--gitlab", &gl.url(), "--gate"])
            .arg(&gate)
            .env("GITLAB_TOKEN", TOKEN)
            .output()
            .unwrap();
        json_of(&out)
    };
    assert!(findings_with(&with_gate(""), "RH051").is_empty());
    let v = with_gate("ref_protected = false\n");
    let g = findings_with(&v, "RH051");
    assert_eq!(g.len(), 1, "{v:#}");
    assert_eq!(g[0]["resource"], "gate:prod");
    assert!(g[0]["title"].as_str().unwrap().contains("hotfix/*"));
}
