//! The chain under injected faults: a seeded proxy between rolehop and moto throttles, fails,
//! resets, slows and truncates STS answers. Transient faults must be retried away; a dead or
//! hung endpoint must end in exit code 6 with a message saying so; broken answers must give
//! a clear error, never a panic. Figures are printed (run with `--nocapture` to read them).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use rolehop_testkit::{Fault, FaultPlan, FaultProxy, Moto, free_port, seed_chain};

mod common;

use common::*;

/// A rolehop pointed at the proxy instead of moto.
fn via(proxy_url: &str, moto: &Moto, seed: &rolehop_testkit::SeededChain) -> assert_cmd::Command {
    let mut cmd = rolehop(moto, seed);
    cmd.env("AWS_ENDPOINT_URL", proxy_url)
        .env("ROLEHOP_LOG", "rolehop=debug,aws_smithy_runtime=debug,warn");
    cmd
}

fn no_panic(err: &str) {
    assert!(!err.contains("panicked"), "rolehop panicked:\n{err}");
    assert!(
        !err.contains("RUST_BACKTRACE"),
        "a stack trace hint:\n{err}"
    );
}

#[test]
fn twenty_chains_succeed_with_thirty_percent_transient_faults() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    // At most 3 faults in a row: rolehop makes 4 attempts per call, so every call can win.
    let proxy = FaultProxy::start(moto.port, FaultPlan::transient(0x5eed_2026, 0.30, 3));
    let chains = 20;
    let started = Instant::now();
    for i in 0..chains {
        let out = via(&proxy.url(), &moto, &seed)
            .args(["assume", "--format", "json"])
            .output()
            .unwrap();
        let err = stderr(&out);
        no_panic(&err);
        assert!(out.status.success(), "chain {i} failed:\n{err}");
        assert_eq!(json(&out)["account"], TARGET);
    }
    let stats = proxy.stats();
    let calls = chains * 2;
    let retries = stats.requests - calls;
    let mut by_kind = std::collections::BTreeMap::<String, u32>::new();
    for f in &stats.faults {
        *by_kind.entry(format!("{f:?}")).or_default() += 1;
    }
    eprintln!(
        "faults: {chains} chains ok, {} requests, {} faults ({:.0}%) {by_kind:?}, {retries} retries, {:.1} s",
        stats.requests,
        stats.faults.len(),
        100.0 * stats.faults.len() as f64 / stats.requests as f64,
        started.elapsed().as_secs_f64()
    );
    // Every injected fault cost exactly one retry, and the seed really did inject some.
    assert_eq!(retries as usize, stats.faults.len());
    assert!(stats.faults.len() >= 10, "{stats:?}");
}

#[test]
fn a_refused_connection_ends_in_exit_6_with_the_reason() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let dead = format!("http://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let out = via(&dead, &moto, &seed).args(["assume"]).output().unwrap();
    let took = started.elapsed();
    let err = stderr(&out);
    no_panic(&err);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(err.contains("could not reach STS"), "{err}");
    assert!(err.contains("service role hop failed"), "{err}");
    assert!(out.stdout.is_empty());
    eprintln!(
        "faults: refused endpoint failed after {:.1} s",
        took.as_secs_f64()
    );
}

#[test]
fn a_hung_endpoint_ends_in_exit_6_with_the_reason() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let proxy = FaultProxy::start(moto.port, FaultPlan::always(Fault::Hang));
    let started = Instant::now();
    let out = via(&proxy.url(), &moto, &seed)
        .args(["assume"])
        .output()
        .unwrap();
    let took = started.elapsed();
    let err = stderr(&out);
    no_panic(&err);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(err.contains("did not answer in time"), "{err}");
    assert!(out.stdout.is_empty());
    eprintln!(
        "faults: hung endpoint failed after {:.1} s and {} attempts",
        took.as_secs_f64(),
        proxy.stats().requests
    );
}

#[test]
fn slow_answers_within_the_attempt_timeout_still_succeed() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let proxy = FaultProxy::start(
        moto.port,
        FaultPlan::always(Fault::Slow(std::time::Duration::from_millis(1500))),
    );
    let out = via(&proxy.url(), &moto, &seed)
        .args(["assume", "--format", "json"])
        .output()
        .unwrap();
    no_panic(&stderr(&out));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(proxy.stats().requests, 2);
}

#[test]
fn truncated_and_garbled_answers_give_a_clear_error() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    for fault in [Fault::TruncateBody, Fault::CutConnection, Fault::Garbage] {
        let proxy = FaultProxy::start(moto.port, FaultPlan::always(fault));
        let out = via(&proxy.url(), &moto, &seed)
            .args(["assume"])
            .output()
            .unwrap();
        let err = stderr(&out);
        no_panic(&err);
        eprintln!(
            "faults: {fault:?}: exit {:?} after {} requests: {}",
            out.status.code(),
            proxy.stats().requests,
            err.lines()
                .filter(|l| l.starts_with("rolehop: error") || l.starts_with("  "))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        assert_eq!(out.status.code(), Some(6), "{fault:?}: {err}");
        assert!(err.contains("service role hop failed"), "{fault:?}: {err}");
        assert!(
            err.contains("could not be read") || err.contains("could not reach STS"),
            "{fault:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{fault:?}");
    }
}

/// Without the cap, four faults in a row can hit one call (0.3^4, under 1% per call): such a
/// chain must fail as unavailable (exit 6) naming the cause, and the others still succeed.
#[test]
fn uncapped_thirty_percent_faults_fail_only_as_unavailable() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let mut plan = FaultPlan::transient(0x0dd_5eed, 0.30, 0);
    plan.max_consecutive = None;
    let proxy = FaultProxy::start(moto.port, plan);
    let chains = 20;
    let mut ok = 0;
    for _ in 0..chains {
        let out = via(&proxy.url(), &moto, &seed)
            .args(["assume", "--format", "json"])
            .output()
            .unwrap();
        let err = stderr(&out);
        no_panic(&err);
        if out.status.success() {
            ok += 1;
        } else {
            assert_eq!(out.status.code(), Some(6), "{err}");
            assert!(
                err.contains("after bounded retries") || err.contains("could not reach STS"),
                "{err}"
            );
        }
    }
    let stats = proxy.stats();
    eprintln!(
        "faults: uncapped: {ok}/{chains} chains ok, {} requests, {} faults",
        stats.requests,
        stats.faults.len()
    );
    assert!(ok >= chains - 2, "{ok}/{chains}");
}
