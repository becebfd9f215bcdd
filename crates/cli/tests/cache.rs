//! `credential-process`'s per-job cache, end to end: the real aws CLI reads a profile whose
//! `credential_process` is rolehop, through a counting proxy in front of moto, so the test
//! sees how many times the chain really ran. The attacks on the cache (another user, another
//! job, planted files, symlinks, a foreign directory) are in `attacks/local.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rolehop_testkit::{Moto, seed_chain};

mod common;

use common::*;

#[test]
fn a_job_runs_the_chain_once_for_many_aws_cli_calls_and_another_job_never_shares_it() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let proxy = counting_proxy(&moto);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    let cfg = credential_process_config(dir.path());

    let out = sh(
        &job_vars(&seed, &proxy, &cache, &cfg, "5005"),
        &aws_cli_script(6),
    );
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
    let out = sh(
        &job_vars(&seed, &proxy, &cache, &cfg, "5006"),
        &aws_cli_script(2),
    );
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
        &aws_cli_script(2),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(chain_calls(&proxy, "5007"), 4);
}
