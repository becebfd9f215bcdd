//! `credential-process`'s per-job cache, end to end: the real aws CLI reads a profile whose
//! `credential_process` is rolehop, through a counting proxy in front of moto, so the test
//! sees how many times the chain really ran. Attacks: another job, another user, and files
//! planted where the cache lives.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rolehop_testkit::{FaultPlan, FaultProxy, Moto, seed_chain, venv_tool};

mod common;

use common::*;

const DEPLOY_SESSION: &str =
    "arn:aws:sts::222222222222:assumed-role/rolehop-test-deploy/gl-42-1001-5005";

fn counting_proxy(moto: &Moto) -> FaultProxy {
    FaultProxy::start(
        moto.port,
        FaultPlan {
            seed: 0,
            rate: 0.0,
            faults: Vec::new(),
            max_consecutive: None,
        },
    )
}

/// AssumeRole calls `proxy` saw from job `job`'s chain.
fn chain_calls(proxy: &FaultProxy, job: &str) -> usize {
    let session = format!("gl-42-1001-{job}");
    proxy
        .stats()
        .seen
        .iter()
        .filter(|r| r.contains("Action=AssumeRole") && r.contains(&session))
        .count()
}

/// An AWS config with a `deploy` profile whose credentials come from `rolehop
/// credential-process` (the rolehop under test).
fn config(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("config");
    std::fs::write(
        &p,
        format!(
            "[profile deploy]\nregion = eu-west-1\ncredential_process = {} credential-process\n",
            assert_cmd::cargo::cargo_bin("rolehop").display()
        ),
    )
    .unwrap();
    p
}

/// `aws sts get-caller-identity --profile deploy` `n` times in one job script; its output.
fn script(n: usize) -> String {
    format!(
        "for i in $(seq {n}); do \"{}\" sts get-caller-identity --profile deploy --query Arn --output text || exit 1; done",
        venv_tool("aws").display()
    )
}

/// The environment of job `job_id`: what `common::rolehop` sets, with STS behind `proxy`, the
/// AWS config `config` and the cache under `cache`.
fn job_vars(
    seed: &rolehop_testkit::SeededChain,
    proxy: &FaultProxy,
    cache: &Path,
    config: &Path,
    job_id: &str,
) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = [
        ("PATH", std::env::var("PATH").unwrap()),
        ("HOME", "/nonexistent".into()),
        ("AWS_ENDPOINT_URL", proxy.url()),
        ("AWS_REGION", "eu-west-1".into()),
        ("AWS_ACCESS_KEY_ID", seed.access_key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY", seed.secret_access_key.clone()),
        ("ROLEHOP_SERVICE_ROLE_ARN", seed.service_role_arn.clone()),
        ("ROLEHOP_DEPLOY_ROLE_ARN", seed.deploy_role_arn.clone()),
        ("AWS_CONFIG_FILE", config.display().to_string()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("ROLEHOP_CACHE_DIR", cache.display().to_string()),
        ("CI_PROJECT_PATH", "acme/shop".into()),
        ("CI_PROJECT_ID", "42".into()),
        ("CI_PIPELINE_ID", "1001".into()),
        ("CI_JOB_ID", job_id.into()),
        ("CI_COMMIT_REF_NAME", "main".into()),
        ("CI_COMMIT_BRANCH", "main".into()),
        ("CI_COMMIT_REF_PROTECTED", "true".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    v.sort();
    v
}

/// `sh -c script` in a job's environment.
fn sh(vars: &[(String, String)], script: &str) -> std::process::Output {
    std::process::Command::new("sh")
        .env_clear()
        .envs(vars.iter().cloned())
        .args(["-c", script])
        .output()
        .unwrap()
}

/// `rolehop credential-process` in a job's environment.
fn credential_process(vars: &[(String, String)]) -> std::process::Output {
    assert_cmd::Command::cargo_bin("rolehop")
        .unwrap()
        .env_clear()
        .envs(vars.iter().cloned())
        .arg("credential-process")
        .output()
        .unwrap()
}

#[test]
fn a_job_runs_the_chain_once_for_many_aws_cli_calls_and_another_job_never_shares_it() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let proxy = counting_proxy(&moto);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    let cfg = config(dir.path());

    let out = sh(&job_vars(&seed, &proxy, &cache, &cfg, "5005"), &script(6));
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), 6);
    assert!(lines.iter().all(|l| *l == DEPLOY_SESSION), "{lines:?}");
    assert_eq!(
        chain_calls(&proxy, "5005"),
        2,
        "one chain (two hops) for six calls"
    );

    // The entry: a 0600 file in a 0700 directory, no secret readable in it.
    let own = cache.join(format!("rolehop-cache-{}", uid()));
    assert_eq!(mode(&own), 0o700);
    let entries: Vec<_> = std::fs::read_dir(&own).unwrap().flatten().collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(mode(&entries[0].path()), 0o600);
    let raw = std::fs::read(entries[0].path()).unwrap();
    assert!(
        !String::from_utf8_lossy(&raw).contains("ASIA"),
        "stored in clear"
    );

    // Another job of the same user, same key, same directory: its own chain, its own entry.
    let out = sh(&job_vars(&seed, &proxy, &cache, &cfg, "5006"), &script(2));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(chain_calls(&proxy, "5006"), 2);
    assert_eq!(std::fs::read_dir(&own).unwrap().count(), 2);

    // `--no-cache` runs the chain every time.
    let nocache = dir.path().join("nocache-config");
    std::fs::write(
        &nocache,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("credential-process", "credential-process --no-cache"),
    )
    .unwrap();
    let out = sh(
        &job_vars(&seed, &proxy, &cache, &nocache, "5007"),
        &script(2),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(chain_calls(&proxy, "5007"), 4);
}

/// Attack: a file planted in the entry's place by the same user (another job on a shell
/// runner) holding credentials of the attacker's choosing. rolehop cannot open it with the
/// job's key, ignores it and runs the chain: the deploy never gets the planted credentials.
#[test]
fn a_planted_cache_entry_is_never_served() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let proxy = counting_proxy(&moto);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    let cfg = config(dir.path());
    let run = || {
        let out = credential_process(&job_vars(&seed, &proxy, &cache, &cfg, "5005"));
        assert!(out.status.success(), "{}", stderr(&out));
        json(&out)
    };
    let first = run();
    let own = cache.join(format!("rolehop-cache-{}", uid()));
    let entry = std::fs::read_dir(&own)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let forged = r#"{"v":1,"access_key_id":"ASIAPLANTEDPLANTED00","secret_access_key":"planted","session_token":"planted","expiration":4102444800}"#;
    std::fs::write(&entry, forged).unwrap();
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o600)).unwrap();
    let second = run();
    assert_ne!(second["AccessKeyId"], "ASIAPLANTEDPLANTED00");
    assert_ne!(
        second["AccessKeyId"], first["AccessKeyId"],
        "the chain ran again"
    );
    assert_eq!(chain_calls(&proxy, "5005"), 4);
}

/// Attacks by another user on the runner: reading the cache (the directory is 0700, so the
/// kernel refuses), and making the cache directory first, in a shared /tmp-like directory, to
/// feed or read entries (rolehop refuses a directory it does not own and runs uncached).
/// Needs root to act as `nobody`; CI runs as root.
#[test]
fn another_user_can_neither_read_nor_plant_the_cache() {
    if uid() != 0 {
        eprintln!("skipped: acting as another user needs root");
        return;
    }
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let proxy = counting_proxy(&moto);
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = config(dir.path());
    let as_nobody = |cmd: &str| {
        std::process::Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "sh",
                "-c",
                cmd,
            ])
            .output()
            .unwrap()
    };

    let out = credential_process(&job_vars(&seed, &proxy, &shared, &cfg, "5005"));
    assert!(out.status.success(), "{}", stderr(&out));
    let own = shared.join(format!("rolehop-cache-{}", uid()));
    let read = as_nobody(&format!("cat {}/*", own.display()));
    assert!(!read.status.success(), "another user read the cache");
    assert!(String::from_utf8_lossy(&read.stderr).contains("Permission denied"));

    // Another user makes the directory of a user who has none yet.
    std::fs::remove_dir_all(&own).unwrap();
    let made = as_nobody(&format!("mkdir -m 777 {}", own.display()));
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let out = credential_process(&job_vars(&seed, &proxy, &shared, &cfg, "5005"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not caching credentials")
            && stderr(&out).contains("belongs to user 65534"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_dir(&own).unwrap().count(),
        0,
        "nothing written there"
    );
}

fn uid() -> u32 {
    let out = std::process::Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}
