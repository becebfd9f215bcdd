//! `rolehop rotate` against moto (IAM, STS) and the local GitLab server: the command as users
//! run it, plus the rotation machine over the real IAM and GitLab stores with a crash after
//! every step and GitLab faults at every request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use assert_cmd::Command;
use rolehop_aws::iam::IamKeyStore;
use rolehop_core::rotation::{KeyStore, Rotator, Settings, Step, SystemClock, Verification};
use rolehop_core::secret::secret;
use rolehop_gitlab::{ClientOptions, GitlabClient, GitlabVariables, Target};
use rolehop_testkit::gitlab::{Fault, GitlabServer, TOKEN};
use rolehop_testkit::{Moto, xml_value};

const USER: &str = "rolehop-prod";
const OWNER: &str = "projects/acme/shop";
const SCOPE: &str = "production";
const AK: &str = "AWS_ACCESS_KEY_ID";
const SK: &str = "AWS_SECRET_ACCESS_KEY";
const KV: &str = "ROLEHOP_BROKER_KEY";

/// moto's default account, where credentials it does not know act.
const ACCOUNT: &str = "123456789012";

/// Every `open`...`close` run in `s`, for lists in IAM answers.
fn between<'a>(s: &'a str, open: &str, close: &str) -> Vec<&'a str> {
    s.split(open)
        .skip(1)
        .filter_map(|p| p.split(close).next())
        .collect()
}

/// The broker user with one key, returned with its secret.
fn seed_user(moto: &Moto) -> (String, String) {
    moto.iam(ACCOUNT, "CreateUser", &[("UserName", USER)]);
    let body = moto.iam(ACCOUNT, "CreateAccessKey", &[("UserName", USER)]);
    (
        xml_value(&body, "AccessKeyId").unwrap(),
        xml_value(&body, "SecretAccessKey").unwrap(),
    )
}

/// `(key id, status)` of the user's keys.
fn keys(moto: &Moto) -> Vec<(String, String)> {
    let body = moto.iam(ACCOUNT, "ListAccessKeys", &[("UserName", USER)]);
    between(&body, "<member>", "</member>")
        .into_iter()
        .map(|m| {
            (
                xml_value(m, "AccessKeyId").unwrap(),
                xml_value(m, "Status").unwrap(),
            )
        })
        .collect()
}

fn record(moto: &Moto) -> Option<String> {
    let body = moto.iam(ACCOUNT, "ListUserTags", &[("UserName", USER)]);
    between(&body, "<Value>", "</Value>")
        .first()
        .map(|v| v.to_string())
}

fn gitlab_value(srv: &GitlabServer, key: &str) -> Option<String> {
    srv.variable(OWNER, key, SCOPE)
        .map(|v| v["value"].as_str().unwrap().to_owned())
}

/// The pair jobs get from GitLab: the combined variable's, else the legacy two.
fn held_pair(srv: &GitlabServer) -> Option<(String, String)> {
    match gitlab_value(srv, KV) {
        Some(v) => v.split_once(':').map(|(a, b)| (a.to_owned(), b.to_owned())),
        None => Some((gitlab_value(srv, AK)?, gitlab_value(srv, SK)?)),
    }
}

/// sts:GetCallerIdentity signed with exactly `id`/`secret`, with moto's signature checks on
/// (switched off again after: the rest of the test seeds and inspects with them off).
fn authenticates(moto: &Moto, id: &str, sec: &str) -> Result<String, String> {
    moto.enable_auth();
    let result = IamKeyStore::connect_with(
        "eu-west-1",
        USER,
        Some(&moto.url()),
        Some(("AKIAADMIN00000000000", &secret("admin-secret"))),
    )
    .map_err(|e| e.to_string())
    .and_then(|mut k| k.verify(id, &secret(sec)).map_err(|e| e.to_string()));
    let (status, body) = moto.request(
        "POST",
        "/moto-api/reset-auth",
        &[("Content-Type", "text/plain")],
        "inf",
    );
    assert_eq!(status, 200, "{body}");
    match result? {
        Verification::Accepted { arn } => Ok(arn),
        Verification::Rejected { reason } => Err(reason),
    }
}

/// What GitLab holds authenticates: GetCallerIdentity with exactly the stored pair signs as the
/// broker user, and the key is active (moto ignores key status, AWS does not).
fn assert_invariant(moto: &Moto, srv: &GitlabServer, ctx: &str) {
    let (held, sec) = held_pair(srv).expect("GitLab holds a pair");
    let ks = keys(moto);
    assert!(
        ks.iter().any(|(id, st)| id == &held && st == "Active"),
        "{ctx}: GitLab holds `{held}`, not an active key of {ks:?}"
    );
    let arn = authenticates(moto, &held, &sec)
        .unwrap_or_else(|e| panic!("{ctx}: the pair GitLab holds does not authenticate: {e}"));
    assert!(arn.ends_with(&format!(":user/{USER}")), "{ctx}: {arn}");
}

/// One active key, in the combined variable with its own secret (it authenticates), its
/// description naming it, the legacy variables gone, no record, not `old`.
fn assert_converged(moto: &Moto, srv: &GitlabServer, old: &str, ctx: &str) {
    let ks = keys(moto);
    assert_eq!(ks.len(), 1, "{ctx}: {ks:?}");
    assert_eq!(ks[0].1, "Active", "{ctx}");
    assert_ne!(ks[0].0, old, "{ctx}: not rotated");
    let kv = srv.variable(OWNER, KV, SCOPE).expect("the key variable");
    assert!(
        kv["value"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}:", ks[0].0)),
        "{ctx}: the key variable does not hold the active key"
    );
    assert!(
        kv["description"]
            .as_str()
            .unwrap_or_default()
            .ends_with(&ks[0].0),
        "{ctx}: {}",
        kv["description"]
    );
    assert_eq!(kv["masked"], true);
    assert_eq!(kv["protected"], true);
    assert_invariant(moto, srv, ctx);
    assert_eq!(
        gitlab_value(srv, AK),
        None,
        "{ctx}: legacy id variable left"
    );
    assert_eq!(
        gitlab_value(srv, SK),
        None,
        "{ctx}: legacy secret variable left"
    );
    assert_eq!(record(moto), None, "{ctx}: record left");
}

/// A world with the user's one key in GitLab as earlier setups stored it (two variables, so
/// every run also migrates); returns the old key id and secret.
fn fresh_world(moto: &Moto, srv: &GitlabServer) -> (String, String) {
    let (status, _) = moto.request("POST", "/moto-api/reset", &[], "");
    assert_eq!(status, 200);
    let (id, sec) = seed_user(moto);
    srv.set_variable(OWNER, AK, SCOPE, &id);
    srv.set_variable(OWNER, SK, SCOPE, &sec);
    (id, sec)
}

/// Like [`fresh_world`], with the key already in the combined variable.
fn fresh_world_combined(moto: &Moto, srv: &GitlabServer) -> (String, String) {
    let (status, _) = moto.request("POST", "/moto-api/reset", &[], "");
    assert_eq!(status, 200);
    let (id, sec) = seed_user(moto);
    srv.set_variable(OWNER, KV, SCOPE, &format!("{id}:{sec}"));
    (id, sec)
}

fn settings(delete_after: Duration) -> Settings {
    Settings {
        user: USER.into(),
        key_var: KV.into(),
        legacy_vars: Some((AK.into(), SK.into())),
        gitlab_place: "project `acme/shop` (scope `production`)".into(),
        protected: true,
        delete_after,
        delete_inactive_extra: false,
        verify_delays: vec![Duration::from_millis(10); 5],
    }
}

fn stores(moto: &Moto, srv: &GitlabServer) -> (IamKeyStore, GitlabVariables) {
    let keys = IamKeyStore::connect_with(
        "eu-west-1",
        USER,
        Some(&moto.url()),
        Some(("AKIAADMIN00000000000", &secret("admin-secret"))),
    )
    .unwrap();
    let opts = ClientOptions {
        timeout: Duration::from_secs(1),
        ..ClientOptions::default()
    };
    let client = GitlabClient::new(&srv.url(), secret(TOKEN), opts)
        .unwrap()
        .with_sleeper(Arc::new(|_| {}));
    let vars = GitlabVariables::new(client, Target::Project("acme/shop".into()), SCOPE);
    (keys, vars)
}

#[test]
fn a_crash_after_any_step_against_moto_and_gitlab_converges_on_the_next_run() {
    let moto = Moto::start();
    let s = settings(Duration::ZERO);
    // The stored pair's check has teeth: a wrong secret does not authenticate.
    {
        let srv = GitlabServer::start();
        let (old, _) = fresh_world(&moto, &srv);
        assert!(authenticates(&moto, &old, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGKEY").is_err());
    }
    for (name, world) in [
        (
            "legacy pair",
            fresh_world as fn(&Moto, &GitlabServer) -> (String, String),
        ),
        ("combined", fresh_world_combined),
    ] {
        crash_matrix(&moto, &s, name, world);
    }
}

fn crash_matrix(
    moto: &Moto,
    s: &Settings,
    name: &str,
    world: fn(&Moto, &GitlabServer) -> (String, String),
) {
    // How many steps a clean rotation takes.
    let total = {
        let srv = GitlabServer::start();
        let (old, _) = world(moto, &srv);
        let (mut k, mut v) = stores(moto, &srv);
        let mut r = Rotator::new(&mut k, &mut v, &SystemClock, s);
        let mut n = 0;
        while !matches!(r.step().unwrap(), Step::Done(_)) {
            n += 1;
        }
        assert_converged(moto, &srv, &old, "clean run");
        n
    };
    assert!(total >= 9, "{total} steps");
    for k in 0..=total {
        let ctx = format!("crash after step {k} (from {name})");
        let srv = GitlabServer::start();
        let (old, _) = world(moto, &srv);
        {
            let (mut ks, mut vs) = stores(moto, &srv);
            let mut r = Rotator::new(&mut ks, &mut vs, &SystemClock, s);
            for _ in 0..k {
                r.step().unwrap();
            }
        }
        assert_invariant(moto, &srv, &ctx);
        let (mut ks, mut vs) = stores(moto, &srv);
        Rotator::new(&mut ks, &mut vs, &SystemClock, s)
            .run(|_| {})
            .unwrap_or_else(|e| panic!("{ctx}: {e}"));
        assert_converged(moto, &srv, &old, &ctx);
    }
}

#[test]
fn gitlab_faults_at_any_request_leave_a_working_pair_and_a_rerun_converges() {
    let moto = Moto::start();
    let s = settings(Duration::ZERO);
    let requests = {
        let srv = GitlabServer::start();
        let (old, _) = fresh_world(&moto, &srv);
        let (mut k, mut v) = stores(&moto, &srv);
        Rotator::new(&mut k, &mut v, &SystemClock, &s)
            .run(|_| {})
            .unwrap();
        assert_converged(&moto, &srv, &old, "clean");
        srv.requests()
    };
    let writes: Vec<usize> = (0..requests.len())
        .filter(|i| !requests[*i].starts_with("GET"))
        .collect();
    // The combined variable, then the two legacy variables deleted once it is proven.
    assert_eq!(writes.len(), 3, "{requests:?}");
    assert!(requests[writes[0]].starts_with("POST"), "{requests:?}");
    assert!(
        requests[writes[1]].starts_with("DELETE") && requests[writes[2]].starts_with("DELETE"),
        "{requests:?}"
    );
    let mut cases: Vec<(usize, Fault, usize, bool)> = Vec::new();
    for i in 0..requests.len() {
        // Five 502s outlast the client's retries: the run fails at this request.
        cases.push((i, Fault::Status(502), 5, true));
        cases.push((i, Fault::Unauthorized, 1, true));
    }
    for &i in &writes {
        cases.push((i, Fault::AppliedThen502, 1, false));
        cases.push((i, Fault::TooManyRequests { retry_after: 1 }, 1, false));
        cases.push((i, Fault::Slow(Duration::from_secs(2)), 1, false));
    }
    for (i, fault, count, fails) in cases {
        let ctx = format!("{fault:?} x{count} at GitLab request {i} ({})", requests[i]);
        let srv = GitlabServer::start();
        let (old, _) = fresh_world(&moto, &srv);
        srv.inject(i, count, fault);
        let first = {
            let (mut ks, mut vs) = stores(&moto, &srv);
            Rotator::new(&mut ks, &mut vs, &SystemClock, &s).run(|_| {})
        };
        assert_eq!(first.is_err(), fails, "{ctx}: {first:?}");
        // A write the client gave up on may still land: the next scheduled run comes long
        // after, so let it land before checking and rerunning.
        srv.wait_idle();
        assert_invariant(&moto, &srv, &ctx);
        let (mut ks, mut vs) = stores(&moto, &srv);
        Rotator::new(&mut ks, &mut vs, &SystemClock, &s)
            .run(|_| {})
            .unwrap_or_else(|e| panic!("{ctx}: rerun: {e}"));
        assert_converged(&moto, &srv, &old, &ctx);
    }
}

// ---------------------------------------------------------------------------------------------
// The command
// ---------------------------------------------------------------------------------------------

/// The topology, naming the local GitLab as `[gitlab] url` (which rotate must follow).
fn topology(dir: &tempfile::TempDir, gitlab_url: &str) -> PathBuf {
    let p = dir.path().join("rolehop.toml");
    std::fs::write(
        &p,
        r#"
[broker]
account_id = "123456789012"
region = "eu-west-1"

[auth]
mode = "access-keys"

[gitlab]
url = "GITLAB_URL"
project = "acme/shop"

[environments.prod]
protected = true

[environments.prod.gitlab]
projects = ["acme/shop"]
branches = ["main"]
environments = ["production"]

[environments.prod.accounts]
prod-eu = "222222222222"
"#
        .replace("GITLAB_URL", gitlab_url),
    )
    .unwrap();
    p
}

fn rolehop(moto: &Moto, cfg: &PathBuf) -> Command {
    let mut c = Command::cargo_bin("rolehop").unwrap();
    c.args(["rotate", "--config"])
        .arg(cfg)
        .args(["--env", "prod"])
        .env("AWS_ENDPOINT_URL", moto.url())
        .env("AWS_ACCESS_KEY_ID", "AKIAADMIN00000000000")
        .env("AWS_SECRET_ACCESS_KEY", "admin-secret-value-0000")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("GITLAB_TOKEN", TOKEN)
        .env_remove("CI_SERVER_URL")
        .env_remove("GITLAB_CI")
        .env_remove("ROLEHOP_ROTATOR_KEY")
        .env_remove("AWS_PROFILE")
        .env_remove("ROLEHOP_LOG");
    c
}

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(c: &mut Command) -> Ran {
    let o = c.output().unwrap();
    Ran {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn rotate_with_vv_logs_every_step_and_never_a_secret() {
    let moto = Moto::start();
    let srv = GitlabServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = topology(&dir, &srv.url());
    let (old, old_secret) = fresh_world(&moto, &srv);

    let r = run(rolehop(&moto, &cfg).args(["-vv"]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let (new, new_secret) = held_pair(&srv).unwrap();
    assert_ne!(new, old);
    assert_ne!(new_secret, old_secret);
    let all = format!("{}{}", r.stdout, r.stderr);
    for (name, s) in [
        ("old secret", old_secret.as_str()),
        ("new secret", new_secret.as_str()),
        ("GitLab token", TOKEN),
        ("admin secret", "admin-secret-value-0000"),
    ] {
        assert!(!all.contains(s), "the {name} appears in the output:\n{all}");
    }
    for step in [
        "created access key",
        "verified key",
        "wrote key `",
        "proved the pair in `ROLEHOP_BROKER_KEY` authenticates",
        "deleted the legacy variable `AWS_ACCESS_KEY_ID`",
        "deleted the legacy variable `AWS_SECRET_ACCESS_KEY`",
        "deactivated the old key",
    ] {
        assert!(
            r.stderr.contains(step),
            "missing `{step}` in:\n{}",
            r.stderr
        );
    }
    assert!(
        r.stdout.contains(&format!("GitLab now holds key `{new}`")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("will be deleted by a run after"),
        "{}",
        r.stdout
    );
    // The old key is kept, inactive, for the grace period; the record says so.
    let ks = keys(&moto);
    assert!(ks.contains(&(old.clone(), "Inactive".into())), "{ks:?}");
    assert!(record(&moto).unwrap().starts_with("v1 phase=retiring"));

    // A second run inside the grace period changes nothing and says when to come back.
    let r = run(&mut rolehop(&moto, &cfg));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("nothing to rotate yet"), "{}", r.stdout);
    assert_eq!(keys(&moto).len(), 2);

    // `--delete-after 0` ends the grace period: the old key goes, then a new rotation runs.
    let r = run(rolehop(&moto, &cfg).args(["--delete-after", "0"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("deleted access key `{old}`")),
        "{}",
        r.stderr
    );
    assert_converged(&moto, &srv, &new, "after delete");
}

#[test]
fn a_retired_pair_written_back_after_rotation_is_rotated_away() {
    let moto = Moto::start();
    let srv = GitlabServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = topology(&dir, &srv.url());
    let (old, old_secret) = fresh_world(&moto, &srv);
    let r = run(&mut rolehop(&moto, &cfg));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (new, _) = held_pair(&srv).unwrap();

    // What a write GitLab applied after the client had given up on it could leave behind: the
    // old pair, whose key is now inactive (moto would still accept it; AWS would not).
    srv.set_variable(OWNER, KV, SCOPE, &format!("{old}:{old_secret}"));
    let r = run(&mut rolehop(&moto, &cfg));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("starting over"), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("deleted access key `{new}`")),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains(&old_secret) && !r.stdout.contains(&old_secret));
    assert_invariant(&moto, &srv, "after rotating the retired pair away");

    let r = run(rolehop(&moto, &cfg).args(["--delete-after", "0"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_converged(&moto, &srv, &old, "old key deleted");
}

#[test]
fn dry_run_says_what_it_would_do_and_changes_nothing() {
    let moto = Moto::start();
    let srv = GitlabServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = topology(&dir, &srv.url());
    let (old, old_secret) = fresh_world(&moto, &srv);
    let r = run(rolehop(&moto, &cfg).args(["--dry-run", "-vv"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("nothing was changed"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("created access key `DRYRUNNEWKEY0000000000001`"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains(&format!("deactivated the old key `{old}`")),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains(&old_secret) && !r.stderr.contains(&old_secret));
    assert_eq!(keys(&moto), vec![(old.clone(), "Active".into())]);
    assert_eq!(record(&moto), None);
    assert_eq!(gitlab_value(&srv, AK), Some(old));
    assert!(srv.requests().iter().all(|r| r.starts_with("GET")));
}

#[test]
fn an_extra_key_is_refused_and_an_inactive_one_deleted_only_with_the_flag() {
    let moto = Moto::start();
    let srv = GitlabServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = topology(&dir, &srv.url());
    let (old, _) = fresh_world(&moto, &srv);
    let body = moto.iam(ACCOUNT, "CreateAccessKey", &[("UserName", USER)]);
    let extra = xml_value(&body, "AccessKeyId").unwrap();

    let r = run(&mut rolehop(&moto, &cfg));
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "active access key `{extra}` that GitLab does not hold"
        )),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("aws iam update-access-key"),
        "{}",
        r.stderr
    );
    assert_eq!(keys(&moto).len(), 2);

    moto.iam(
        ACCOUNT,
        "UpdateAccessKey",
        &[
            ("UserName", USER),
            ("AccessKeyId", &extra),
            ("Status", "Inactive"),
        ],
    );
    let r = run(&mut rolehop(&moto, &cfg));
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("--delete-inactive-extra"), "{}", r.stderr);
    assert_eq!(keys(&moto).len(), 2);

    let r = run(rolehop(&moto, &cfg).args(["--delete-inactive-extra", "--delete-after", "0"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("deleted access key `{extra}`")),
        "{}",
        r.stderr
    );
    assert_converged(&moto, &srv, &old, "extra deleted");
}

#[test]
fn missing_token_oidc_mode_and_a_bad_token_are_explained() {
    let moto = Moto::start();
    let srv = GitlabServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = topology(&dir, &srv.url());
    fresh_world(&moto, &srv);

    let r = run(rolehop(&moto, &cfg).env_remove("GITLAB_TOKEN"));
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(
        r.stderr.contains("`GITLAB_TOKEN` is not set"),
        "{}",
        r.stderr
    );

    let r = run(rolehop(&moto, &cfg)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY"));
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(
        r.stderr.contains("no AWS credentials found"),
        "{}",
        r.stderr
    );

    let r = run(rolehop(&moto, &cfg).env("GITLAB_TOKEN", "glpat-revoked-000000"));
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(
        r.stderr.contains("401 Unauthorized") && r.stderr.contains("`api` scope"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("glpat-revoked-000000"));

    let oidc = dir.path().join("oidc.toml");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "mode = \"access-keys\"",
        "mode = \"oidc\"\nissuer = \"https://gitlab.example.com\"",
    );
    std::fs::write(&oidc, text).unwrap();
    let r = run(&mut rolehop(&moto, &oidc));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("no broker access keys to rotate"),
        "{}",
        r.stderr
    );
}

/// Nothing changed anywhere: the user's one key, active, no record, GitLab untouched.
fn assert_untouched(moto: &Moto, srv: &GitlabServer, old: &str, ctx: &str) {
    assert_eq!(keys(moto), vec![(old.to_owned(), "Active".into())], "{ctx}");
    assert_eq!(record(moto), None, "{ctx}");
    assert_eq!(gitlab_value(srv, AK).as_deref(), Some(old), "{ctx}");
    assert_eq!(gitlab_value(srv, KV), None, "{ctx}");
}

#[test]
fn the_topologys_gitlab_url_wins_and_a_different_one_is_refused() {
    let moto = Moto::start();
    let srv = GitlabServer::start();
    let elsewhere = GitlabServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = topology(&dir, &srv.url());
    let (old, _) = fresh_world(&moto, &srv);
    // A pipeline variable (or a flag) pointing at another GitLab: the token and the new secret
    // would go there.
    for (label, cmd) in [
        (
            "CI_SERVER_URL",
            rolehop(&moto, &cfg).env("CI_SERVER_URL", elsewhere.url()),
        ),
        (
            "--gitlab-url",
            rolehop(&moto, &cfg).args(["--gitlab-url", &elsewhere.url()]),
        ),
    ] {
        let r = run(cmd);
        assert_eq!(r.code, 4, "{label}: {}", r.stderr);
        assert!(
            r.stderr
                .contains(&format!("but {label} is `{}`", elsewhere.url())),
            "{label}: {}",
            r.stderr
        );
        assert!(
            elsewhere.requests().is_empty(),
            "{label}: the other GitLab was called"
        );
        assert_untouched(&moto, &srv, &old, label);
    }
    // The same URL, spelled with a trailing slash, is the same GitLab.
    let r = run(rolehop(&moto, &cfg).env("CI_SERVER_URL", format!("{}/", srv.url())));
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn a_fresh_secret_never_goes_over_plain_http_off_the_machine() {
    let moto = Moto::start();
    let srv = GitlabServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (old, _) = fresh_world(&moto, &srv);
    let remote = topology(&dir, "http://gitlab.example.com");
    let r = run(&mut rolehop(&moto, &remote));
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "refusing to write a fresh secret to GitLab `http://gitlab.example.com` over plain http"
        ),
        "{}",
        r.stderr
    );
    // IAM answers CreateAccessKey with the secret: the same rule for the AWS endpoint.
    let cfg = topology(&dir, &srv.url());
    let r = run(rolehop(&moto, &cfg).env("AWS_ENDPOINT_URL", "http://10.1.2.3:5000"));
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("refusing to create an access key through `http://10.1.2.3:5000`"),
        "{}",
        r.stderr
    );
    assert_untouched(&moto, &srv, &old, "plain http");
    assert!(srv.requests().is_empty());
}

#[test]
fn in_a_job_rotate_runs_only_as_the_rotator_and_never_as_a_broker_user() {
    let moto = Moto::start();
    let srv = GitlabServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = topology(&dir, &srv.url());
    let (old, old_secret) = fresh_world(&moto, &srv);

    // In a job, the ambient AWS_* variables may be the broker key itself: they are not used.
    let r = run(rolehop(&moto, &cfg).env("GITLAB_CI", "true"));
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(
        r.stderr.contains("`ROLEHOP_ROTATOR_KEY` is not set"),
        "{}",
        r.stderr
    );
    assert_untouched(&moto, &srv, &old, "no rotator key");

    // The broker key given as the rotator's, or as the ambient credentials: refused.
    let broker_pair = format!("{old}:{old_secret}");
    for (label, cmd) in [
        (
            "as ROLEHOP_ROTATOR_KEY",
            rolehop(&moto, &cfg)
                .env("GITLAB_CI", "true")
                .env("ROLEHOP_ROTATOR_KEY", &broker_pair),
        ),
        (
            "as the ambient credentials",
            rolehop(&moto, &cfg)
                .env("AWS_ACCESS_KEY_ID", &old)
                .env("AWS_SECRET_ACCESS_KEY", &old_secret),
        ),
    ] {
        let r = run(cmd);
        assert_eq!(r.code, 4, "{label}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!(":user/{USER}`"))
                && r.stderr.contains("refusing to rotate as"),
            "{label}: {}",
            r.stderr
        );
        assert!(!r.stderr.contains(&old_secret), "{label}");
        assert_untouched(&moto, &srv, &old, label);
    }

    // A malformed rotator key is named, never shown.
    let r = run(rolehop(&moto, &cfg).env("ROLEHOP_ROTATOR_KEY", "oops-not-a-pair"));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(!r.stderr.contains("oops-not-a-pair"), "{}", r.stderr);

    // The rotator's own key (ambient AWS_* variables still the broker's): it rotates.
    moto.iam(ACCOUNT, "CreateUser", &[("UserName", "rolehop-rotator")]);
    let body = moto.iam(
        ACCOUNT,
        "CreateAccessKey",
        &[("UserName", "rolehop-rotator")],
    );
    let rotator = format!(
        "{}:{}",
        xml_value(&body, "AccessKeyId").unwrap(),
        xml_value(&body, "SecretAccessKey").unwrap()
    );
    let r = run(rolehop(&moto, &cfg)
        .env("GITLAB_CI", "true")
        .env("ROLEHOP_ROTATOR_KEY", &rotator)
        .env("AWS_ACCESS_KEY_ID", &old)
        .env("AWS_SECRET_ACCESS_KEY", &old_secret)
        .args(["--delete-after", "0"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_converged(&moto, &srv, &old, "rotated by the rotator");
}
