//! Attacks on the credentials rolehop keeps on the runner: the refresh endpoint `rolehop exec`
//! serves on loopback and the credential-process cache. No IAM request is involved: each is
//! refused by rolehop's own check or by the OS, through the real binary.
//!
//! Who these defend against: other processes and users on the runner (another job on a shell
//! runner, a browser page doing DNS rebinding, a co-tenant user). Not the job's author: the
//! job holds the endpoint's token and the cache's key derivation inputs by design.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;

use rolehop_testkit::{Moto, seed_chain};

use crate::common::{self, Serving};
use crate::suite::Threat;

pub fn threats() -> Vec<Threat> {
    vec![
        Threat::new(
            "the_refresh_endpoint_refuses_a_request_without_the_token",
            "another process on the runner takes the job's served credentials",
            "GET the endpoint's URL with no `Authorization` header, or an empty one",
            "rolehop (`exec`'s endpoint: 401 unless the per-run random token is sent; the refusal is logged without the token)",
        )
        .with_cli("rolehop exec --refresh on", endpoint_without_token),
        Threat::new(
            "the_refresh_endpoint_refuses_a_wrong_token",
            "another process guesses or reuses a token",
            "GET with a token one character off the real one (256 random bits, compared in constant time)",
            "rolehop (401)",
        )
        .with_cli("rolehop exec --refresh on", endpoint_wrong_token),
        Threat::new(
            "the_refresh_endpoint_serves_only_get",
            "a request that is not an SDK's credentials fetch (a form POST from a browser page) gets credentials",
            "POST to the endpoint with the right token",
            "rolehop (405)",
        )
        .with_cli("rolehop exec --refresh on", endpoint_post),
        Threat::new(
            "the_refresh_endpoint_is_loopback_only",
            "a machine on the network asks the runner for the job's credentials",
            "connect to the endpoint's port on another address than 127.0.0.1 (here 127.0.0.2, since tests stay on loopback)",
            "the OS (the listener is bound to 127.0.0.1 alone); rolehop also answers 403 to a non-loopback peer, which is **unit-tested only** (`serve_creds::tests`): tests never leave loopback",
        )
        .with_cli("rolehop exec --refresh on (kernel)", endpoint_other_address),
        Threat::new(
            "the_refresh_endpoint_refuses_a_foreign_host_header",
            "a web page open on the runner rebinds its name to 127.0.0.1 (DNS rebinding) and reads the endpoint",
            "GET with the right path but `Host: evil.example:<port>`, with and without the token",
            "rolehop (403 unless `Host` is `127.0.0.1:<port>` or `localhost:<port>`)",
        )
        .with_cli("rolehop exec --refresh on", endpoint_wrong_host),
        Threat::new(
            "the_refresh_endpoint_is_gone_after_exec_exits",
            "a process asks the endpoint for credentials after the job's command ended",
            "GET with the right token once `rolehop exec` has exited",
            "the OS (rolehop closed the listener; nothing answers on the port)",
        )
        .with_cli("rolehop exec --refresh on (kernel)", endpoint_after_exit),
        Threat::new(
            "another_user_cannot_read_the_credential_cache",
            "another user on a shared runner reads a job's cached credentials",
            "as user `nobody`, `cat` the cache entries of root's job",
            "the OS (the cache directory is 0700 and each entry 0600, made so by rolehop); needs root to act as another user, skipped otherwise",
        )
        .with_cli("rolehop credential-process (OS permissions)", cache_other_user_reads),
        Threat::new(
            "another_job_never_gets_this_jobs_cached_credentials",
            "a later job of the same user on a shell runner is served an earlier job's session (another environment's, another project's)",
            "job 5006 of the same user runs `credential-process` with the same key and cache directory right after job 5005",
            "rolehop (the entry's name and key derive from the job id, the chain inputs and the base secret; the other job's entry cannot be found or opened)",
        )
        .with_cli("rolehop credential-process", cache_other_job),
        Threat::new(
            "a_planted_cache_entry_is_never_served",
            "a process of the same user plants credentials of its choosing where the job's entry lives",
            "overwrite the job's entry with a forged plaintext entry (0600, right owner)",
            "rolehop (entries are sealed with ChaCha20-Poly1305 under a key from the job's secret inputs; one that does not open is ignored and the chain runs)",
        )
        .with_cli("rolehop credential-process", cache_planted_entry),
        Threat::new(
            "a_symlink_in_the_credential_cache_is_not_followed",
            "a symlink makes rolehop read a forged entry or overwrite another file",
            "replace the entry with a symlink to a forged entry; replace the cache directory with a symlink to a directory the attacker controls",
            "rolehop (entries opened with O_NOFOLLOW, written by rename over the link; a symlinked directory is not used)",
        )
        .with_cli("rolehop credential-process", cache_symlinks),
        Threat::new(
            "a_cache_directory_made_by_another_user_is_not_used",
            "another user creates the job user's cache directory first (in a shared /tmp) to read or feed its entries",
            "as `nobody`, `mkdir -m 777` the directory root's job would use, then run the job",
            "rolehop (the directory must be this user's and closed to others, else nothing is cached and the job says so); needs root to act as another user, skipped otherwise",
        )
        .with_cli("rolehop credential-process", cache_foreign_directory),
    ]
}

// ---------------------------------------------------------------------------------------------
// The refresh endpoint.

/// Starts `exec` serving, runs `attack` on it, then checks the command still ran to its own
/// end and the log named a refusal without the token.
fn with_endpoint(attack: impl FnOnce(&Serving)) {
    let moto = Moto::start();
    let seed = seed_chain(&moto, common::BROKER, common::TARGET);
    let s = Serving::start(&moto, &seed);
    assert!(s.url.starts_with("http://127.0.0.1:"), "{}", s.url);
    // The control: the command's own request is served.
    let (status, body) = s.request("GET", &[("Authorization", &s.token)]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("SecretAccessKey"));
    attack(&s);
    let (out, _, _, token) = s.release();
    assert_eq!(
        out.status.code(),
        Some(3),
        "the command's exit code is the job's"
    );
    let err = common::stderr(&out);
    assert!(!err.contains(&token), "the token reached the log");
    assert!(!err.contains(&seed.secret_access_key), "{err}");
}

fn refused(status: u16, body: &str, want: u16, what: &str) {
    assert_eq!(status, want, "{what}: {body}");
    assert!(!body.contains("SecretAccessKey"), "{what}: {body}");
}

fn endpoint_without_token() {
    with_endpoint(|s| {
        let (st, b) = s.request("GET", &[]);
        refused(st, &b, 401, "no token");
        let (st, b) = s.request("GET", &[("Authorization", "")]);
        refused(st, &b, 401, "empty token");
    });
}

fn endpoint_wrong_token() {
    with_endpoint(|s| {
        let mut wrong = s.token.clone();
        wrong.replace_range(0..1, if s.token.starts_with('0') { "1" } else { "0" });
        let (st, b) = s.request("GET", &[("Authorization", &wrong)]);
        refused(st, &b, 401, "wrong token");
    });
}

fn endpoint_post() {
    with_endpoint(|s| {
        let (st, b) = s.request("POST", &[("Authorization", &s.token)]);
        refused(st, &b, 405, "POST");
    });
}

fn endpoint_other_address() {
    with_endpoint(|s| {
        assert!(
            std::net::TcpStream::connect(("127.0.0.2", s.port)).is_err(),
            "something answers on 127.0.0.2:{}",
            s.port
        );
    });
}

/// A request with a Host header of the attacker's choosing (testkit's client always sends
/// the right one).
fn raw_get(port: u16, path: &str, host: &str, token: Option<&str>) -> (u16, String) {
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: {t}\r\n"));
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    (status, out)
}

fn endpoint_wrong_host() {
    with_endpoint(|s| {
        let host = format!("evil.example:{}", s.port);
        for token in [Some(s.token.as_str()), None] {
            let (st, b) = raw_get(s.port, &s.path, &host, token);
            refused(st, &b, 403, "foreign Host");
        }
        // The control through the same raw client: the right Host is served.
        let (st, _) = raw_get(
            s.port,
            &s.path,
            &format!("localhost:{}", s.port),
            Some(&s.token),
        );
        assert_eq!(st, 200);
    });
}

fn endpoint_after_exit() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, common::BROKER, common::TARGET);
    let s = Serving::start(&moto, &seed);
    let (out, port, path, token) = s.release();
    assert_eq!(out.status.code(), Some(3));
    let after = rolehop_testkit::http_request(port, "GET", &path, &[("Authorization", &token)], "");
    assert!(
        after.is_err() || after.as_ref().is_ok_and(|(s, _)| *s != 200),
        "credentials served after exit: {after:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The credential-process cache.

struct CacheJob {
    _moto: Moto,
    seed: rolehop_testkit::SeededChain,
    proxy: rolehop_testkit::FaultProxy,
    dir: tempfile::TempDir,
    cache: std::path::PathBuf,
    config: std::path::PathBuf,
}

impl CacheJob {
    fn new() -> CacheJob {
        let moto = Moto::start();
        let seed = seed_chain(&moto, common::BROKER, common::TARGET);
        let proxy = common::counting_proxy(&moto);
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        std::fs::create_dir(&cache).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let config = common::credential_process_config(dir.path());
        CacheJob {
            _moto: moto,
            seed,
            proxy,
            dir,
            cache,
            config,
        }
    }

    /// `credential-process` of job `job`: its output, which must succeed.
    fn run(&self, job: &str) -> std::process::Output {
        let vars = common::job_vars(&self.seed, &self.proxy, &self.cache, &self.config, job);
        let out = common::credential_process(&vars);
        assert!(out.status.success(), "{}", common::stderr(&out));
        assert!(!common::stderr(&out).contains(&self.seed.secret_access_key));
        out
    }

    fn own_dir(&self) -> std::path::PathBuf {
        self.cache.join(format!("rolehop-cache-{}", common::uid()))
    }

    fn entry(&self) -> std::path::PathBuf {
        let mut entries: Vec<_> = std::fs::read_dir(self.own_dir())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert_eq!(entries.len(), 1, "{entries:?}");
        entries.remove(0)
    }
}

const FORGED: &str = r#"{"v":1,"access_key_id":"ASIAPLANTEDPLANTED00","secret_access_key":"planted","session_token":"planted","expiration":4102444800}"#;

fn as_nobody(cmd: &str) -> std::process::Output {
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
}

fn skipped_without_root() -> bool {
    let skip = common::uid() != 0;
    if skip {
        eprintln!("skipped: acting as another user needs root");
    }
    skip
}

fn cache_other_user_reads() {
    if skipped_without_root() {
        return;
    }
    let j = CacheJob::new();
    j.run("5005");
    assert_eq!(common::mode(&j.own_dir()), 0o700);
    assert_eq!(common::mode(&j.entry()), 0o600);
    let read = as_nobody(&format!("cat {}/*", j.own_dir().display()));
    assert!(!read.status.success(), "another user read the cache");
    assert!(String::from_utf8_lossy(&read.stderr).contains("Permission denied"));
}

fn cache_other_job() {
    let j = CacheJob::new();
    let first = common::json(&j.run("5005"));
    let other = common::json(&j.run("5006"));
    assert_ne!(first["AccessKeyId"], other["AccessKeyId"]);
    assert_eq!(common::chain_calls(&j.proxy, "5006"), 2, "its own chain");
    assert_eq!(std::fs::read_dir(j.own_dir()).unwrap().count(), 2);
    // The control: job 5005 again is served from its entry.
    let again = common::json(&j.run("5005"));
    assert_eq!(again["AccessKeyId"], first["AccessKeyId"]);
    assert_eq!(common::chain_calls(&j.proxy, "5005"), 2);
}

fn cache_planted_entry() {
    let j = CacheJob::new();
    let first = common::json(&j.run("5005"));
    let entry = j.entry();
    std::fs::write(&entry, FORGED).unwrap();
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o600)).unwrap();
    let second = common::json(&j.run("5005"));
    assert_ne!(second["AccessKeyId"], "ASIAPLANTEDPLANTED00");
    assert_ne!(
        second["AccessKeyId"], first["AccessKeyId"],
        "the chain ran again"
    );
    assert_eq!(common::chain_calls(&j.proxy, "5005"), 4);
}

fn cache_symlinks() {
    let j = CacheJob::new();
    j.run("5005");
    let entry = j.entry();
    // The entry becomes a link to a forged entry the attacker owns.
    let forged = j.dir.path().join("forged.json");
    std::fs::write(&forged, FORGED).unwrap();
    std::fs::set_permissions(&forged, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::remove_file(&entry).unwrap();
    std::os::unix::fs::symlink(&forged, &entry).unwrap();
    let out = common::json(&j.run("5005"));
    assert_ne!(out["AccessKeyId"], "ASIAPLANTEDPLANTED00");
    assert_eq!(
        std::fs::read_to_string(&forged).unwrap(),
        FORGED,
        "written through the link"
    );
    assert!(
        !std::fs::symlink_metadata(&entry).unwrap().is_symlink(),
        "the link stayed"
    );
    // The whole directory becomes a link to one the attacker reads.
    let theirs = j.dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::remove_dir_all(j.own_dir()).unwrap();
    std::os::unix::fs::symlink(&theirs, j.own_dir()).unwrap();
    let vars = common::job_vars(&j.seed, &j.proxy, &j.cache, &j.config, "5005");
    let out = common::credential_process(&vars);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(
        common::stderr(&out).contains("not caching credentials"),
        "{}",
        common::stderr(&out)
    );
    assert_eq!(
        std::fs::read_dir(&theirs).unwrap().count(),
        0,
        "written into their directory"
    );
}

fn cache_foreign_directory() {
    if skipped_without_root() {
        return;
    }
    let j = CacheJob::new();
    let made = as_nobody(&format!("mkdir -m 777 {}", j.own_dir().display()));
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let vars = common::job_vars(&j.seed, &j.proxy, &j.cache, &j.config, "5005");
    let out = common::credential_process(&vars);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let err = common::stderr(&out);
    assert!(
        err.contains("not caching credentials") && err.contains("belongs to user 65534"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(j.own_dir()).unwrap().count(),
        0,
        "nothing written there"
    );
}
