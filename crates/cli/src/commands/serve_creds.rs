//! Refreshing credentials for `rolehop exec`'s command: the AWS SDKs' container-credentials
//! endpoint, served on loopback while the command runs.
//!
//! rolehop keeps the chain's inputs (the base identity included) in its own memory, runs the
//! chain again before each deployment session expires (`rolehop_core::refresh` decides when
//! and for how long), and answers `GET` requests that carry the per-run random token in
//! `Authorization`. The command gets only the endpoint's URL and that token
//! (`AWS_CONTAINER_CREDENTIALS_FULL_URI`, `AWS_CONTAINER_AUTHORIZATION_TOKEN`), which every
//! current AWS SDK and the aws CLI read, refreshing from it before their copy expires.
//! Each served profile (one per target account) refreshes on its own.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration as StdDuration;

use secrecy::ExposeSecret;
use serde_json::json;
use time::OffsetDateTime;

use rolehop_core::Secret;
use rolehop_core::credentials::{Credentials, rfc3339};
use rolehop_core::refresh::{self, Limits, Next};
use rolehop_core::secret::secret;

use super::selection::{self, Resolved};
use crate::exit::{CliError, CliResult, Exit};

/// The path of the default credentials (the first account).
pub const DEFAULT_PATH: &str = "/credentials";
/// The path of one named profile's credentials.
pub const PROFILE_PREFIX: &str = "/profile/";

/// One chain served under a name (a target account's profile).
pub struct Source {
    pub name: String,
    pub resolved: Resolved,
    /// The deployment session length the plan asked for, before clamping to the job.
    pub planned_secs: u64,
}

/// What a served profile currently holds.
struct Slot {
    name: String,
    creds: Option<Credentials>,
    /// Said to the command when it asks and nothing valid is left.
    failure: Option<String>,
}

struct Shared {
    slots: Mutex<Vec<Slot>>,
    stop: Mutex<bool>,
    wake: Condvar,
    refused: AtomicUsize,
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.lock().map_or(true, |s| *s)
    }

    /// Sleeps until `until` or until the server stops; true when it stopped.
    fn sleep_until(&self, until: OffsetDateTime) -> bool {
        let Ok(mut stop) = self.stop.lock() else {
            return true;
        };
        loop {
            if *stop {
                return true;
            }
            let left = until - OffsetDateTime::now_utc();
            if left <= time::Duration::ZERO {
                return false;
            }
            let wait = StdDuration::try_from(left).unwrap_or(StdDuration::from_secs(1));
            match self.wake.wait_timeout(stop, wait) {
                Ok((s, _)) => stop = s,
                Err(_) => return true,
            }
        }
    }
}

/// A per-run random token: 256 bits from the operating system, hex.
fn random_token() -> CliResult<Secret> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| CliError::msg(Exit::Internal, "the system's random source failed"))?;
    Ok(secret(
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
    ))
}

/// Equal in time independent of where they differ, so the token cannot be guessed byte by byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Which profile a request asks for, or why it is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    Default,
    Profile(String),
}

/// Why a request got no credentials: the HTTP status and a message safe to show anyone.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal(pub u16, pub &'static str);

/// Decides a request from what the socket and the headers say; nothing else is trusted.
/// Only loopback peers (the listener is bound to 127.0.0.1 anyway), only this endpoint's own
/// `Host` (a page in a browser on the runner cannot rebind a name to it), only `GET` and only
/// with the run's token.
pub fn authorize(
    peer: Option<SocketAddr>,
    port: u16,
    method: &str,
    host: Option<&str>,
    authorization: Option<&str>,
    path: &str,
    token: &Secret,
) -> Result<Route, Refusal> {
    if !peer.is_some_and(|p| p.ip().is_loopback()) {
        return Err(Refusal(403, "only loopback clients are served"));
    }
    let hosts = [format!("127.0.0.1:{port}"), format!("localhost:{port}")];
    if !host.is_some_and(|h| hosts.iter().any(|want| h.eq_ignore_ascii_case(want))) {
        return Err(Refusal(403, "wrong Host"));
    }
    match authorization {
        None => return Err(Refusal(401, "the Authorization token is missing")),
        Some(a) if !same(a.trim().as_bytes(), token.expose_secret().as_bytes()) => {
            return Err(Refusal(401, "the Authorization token is wrong"));
        }
        Some(_) => {}
    }
    if method != "GET" {
        return Err(Refusal(405, "only GET"));
    }
    match path {
        DEFAULT_PATH => Ok(Route::Default),
        p => match p.strip_prefix(PROFILE_PREFIX) {
            Some(name) if !name.is_empty() => Ok(Route::Profile(name.to_owned())),
            _ => Err(Refusal(404, "no such path")),
        },
    }
}

/// The container-credentials document every SDK reads.
fn document(c: &Credentials) -> String {
    json!({
        "AccessKeyId": c.access_key_id,
        "SecretAccessKey": c.secret_access_key.expose_secret(),
        "Token": c.session_token.expose_secret(),
        "Expiration": rfc3339(c.expiration),
    })
    .to_string()
}

/// The endpoint while it runs: its address and token, for the command's environment.
pub struct Endpoint {
    pub port: u16,
    pub token: Secret,
    shared: Arc<Shared>,
    server: Arc<tiny_http::Server>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Endpoint {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Stops serving and renewing; the port is closed when this returns.
    pub fn stop(self) {
        if let Ok(mut s) = self.shared.stop.lock() {
            *s = true;
        }
        self.shared.wake.notify_all();
        self.server.unblock();
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Runs each source's chain once (failing as `exec` would), then serves and renews them.
pub fn start(sources: Vec<Source>, limits: Limits, window_checked: bool) -> CliResult<Endpoint> {
    let mut slots = Vec::new();
    let mut renewers = Vec::new();
    for mut s in sources {
        let now = OffsetDateTime::now_utc();
        let creds = run_chain(&mut s, now, &limits)?;
        if !window_checked {
            let secs = (creds.expiration - now).whole_seconds().max(0);
            refresh::check_window(limits.window_secs, u64::try_from(secs).unwrap_or(0))
                .map_err(|m| CliError::msg(Exit::Usage, format!("--refresh-before: {m}")))?;
        }
        // Warnings and notes were said on the first run; renewals repeat them no more.
        s.resolved.warnings.clear();
        s.resolved.plan.notes.clear();
        slots.push(Slot {
            name: s.name.clone(),
            creds: Some(creds),
            failure: None,
        });
        renewers.push(s);
    }
    let server = tiny_http::Server::http("127.0.0.1:0").map_err(|e| {
        CliError::msg(
            Exit::Io,
            format!("cannot listen on 127.0.0.1 for the credentials endpoint: {e}"),
        )
    })?;
    let port = server
        .server_addr()
        .to_ip()
        .map(|a| a.port())
        .ok_or_else(|| CliError::msg(Exit::Internal, "the endpoint has no TCP port"))?;
    let server = Arc::new(server);
    let shared = Arc::new(Shared {
        slots: Mutex::new(slots),
        stop: Mutex::new(false),
        wake: Condvar::new(),
        refused: AtomicUsize::new(0),
    });
    let token = random_token()?;
    let mut threads = Vec::new();
    {
        let (server, shared, token) = (server.clone(), shared.clone(), token.clone());
        threads.push(std::thread::spawn(move || {
            serve(&server, &shared, port, &token)
        }));
    }
    for (i, source) in renewers.into_iter().enumerate() {
        let shared = shared.clone();
        threads.push(std::thread::spawn(move || {
            renew(source, i, &shared, limits)
        }));
    }
    Ok(Endpoint {
        port,
        token,
        shared,
        server,
        threads,
    })
}

/// Runs the chain for `s` with a session cut to the job's remaining time.
fn run_chain(s: &mut Source, now: OffsetDateTime, limits: &Limits) -> CliResult<Credentials> {
    let (secs, note) = refresh::session_secs(s.planned_secs, now, limits);
    s.resolved.plan.deployment.duration_secs = secs;
    if let Some(n) = note {
        eprintln!("rolehop: note: {}: {n}", s.name);
    }
    Ok(selection::execute(&s.resolved)?.credentials)
}

/// How long to wait before trying a failed renewal again.
const RETRY_SECS: i64 = 30;

fn renew(mut source: Source, index: usize, shared: &Shared, limits: Limits) {
    loop {
        let expiration = shared.slots.lock().ok().and_then(|s| {
            s.get(index)
                .and_then(|s| s.creds.as_ref().map(|c| c.expiration))
        });
        let Some(expiration) = expiration else {
            return;
        };
        let now = OffsetDateTime::now_utc();
        let at = match refresh::next(expiration, now, &limits) {
            Next::RenewAt(at) => at,
            Next::Covered => {
                // Nothing left to do but wait for the command to end.
                shared.sleep_until(OffsetDateTime::now_utc() + time::Duration::days(365));
                return;
            }
            Next::Last(reason) => {
                let msg = refresh::last_session_message(reason, expiration);
                eprintln!("rolehop: warning: {}: {msg}", source.name);
                if let Ok(mut slots) = shared.slots.lock()
                    && let Some(slot) = slots.get_mut(index)
                {
                    slot.failure = Some(msg);
                }
                if shared.sleep_until(expiration) {
                    return;
                }
                // Expired: from now on the command is told why, on every request.
                if let Ok(mut slots) = shared.slots.lock()
                    && let Some(slot) = slots.get_mut(index)
                {
                    slot.creds = None;
                }
                return;
            }
        };
        if shared.sleep_until(at) {
            return;
        }
        match run_chain(&mut source, OffsetDateTime::now_utc(), &limits) {
            Ok(c) => {
                eprintln!(
                    "rolehop: renewed the credentials of `{}` (expire {})",
                    source.name,
                    rfc3339(c.expiration)
                );
                if let Ok(mut slots) = shared.slots.lock()
                    && let Some(slot) = slots.get_mut(index)
                {
                    slot.creds = Some(c);
                    slot.failure = None;
                }
            }
            Err(e) => {
                let msg = format!("{:#}", e.error);
                eprintln!(
                    "rolehop: warning: cannot renew the credentials of `{}` (the current ones expire {}); trying again in {RETRY_SECS}s: {msg}",
                    source.name,
                    rfc3339(expiration)
                );
                let now = OffsetDateTime::now_utc();
                if let Ok(mut slots) = shared.slots.lock()
                    && let Some(slot) = slots.get_mut(index)
                {
                    slot.failure = Some(msg);
                    if expiration <= now {
                        slot.creds = None;
                    }
                }
                if shared.sleep_until(now + time::Duration::seconds(RETRY_SECS)) {
                    return;
                }
            }
        }
    }
}

fn header<'a>(req: &'a tiny_http::Request, name: &str) -> Option<&'a str> {
    req.headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// Refusals are said on stderr, but only the first few: a flood must not drown the job log.
const REFUSALS_LOGGED: usize = 5;

fn serve(server: &tiny_http::Server, shared: &Shared, port: u16, token: &Secret) {
    for req in server.incoming_requests() {
        if shared.stopped() {
            break;
        }
        let route = authorize(
            req.remote_addr().copied(),
            port,
            req.method().as_str(),
            header(&req, "Host"),
            header(&req, "Authorization"),
            req.url().split('?').next().unwrap_or(""),
            token,
        );
        let (status, body) = match route {
            Err(Refusal(status, why)) => {
                if shared.refused.fetch_add(1, Ordering::Relaxed) < REFUSALS_LOGGED {
                    eprintln!(
                        "rolehop: warning: refused a request to the credentials endpoint from {}: {why}",
                        req.remote_addr()
                            .map_or_else(|| "?".to_owned(), |a| a.to_string())
                    );
                }
                (
                    status,
                    json!({"code": "Refused", "message": why}).to_string(),
                )
            }
            Ok(route) => answer(shared, &route),
        };
        let mut resp = tiny_http::Response::from_string(body).with_status_code(status);
        for (k, v) in [
            ("Content-Type", "application/json"),
            ("Cache-Control", "no-store"),
        ] {
            if let Ok(h) = tiny_http::Header::from_bytes(k, v) {
                resp = resp.with_header(h);
            }
        }
        let _ = req.respond(resp);
    }
}

fn answer(shared: &Shared, route: &Route) -> (u16, String) {
    let Ok(slots) = shared.slots.lock() else {
        return (
            500,
            json!({"code": "Internal", "message": "rolehop bug"}).to_string(),
        );
    };
    let slot = match route {
        Route::Default => slots.first(),
        Route::Profile(name) => slots.iter().find(|s| &s.name == name),
    };
    let Some(slot) = slot else {
        return (
            404,
            json!({"code": "NoSuchProfile", "message": "no such profile"}).to_string(),
        );
    };
    let now = OffsetDateTime::now_utc();
    match &slot.creds {
        Some(c) if c.expiration > now => (200, document(c)),
        _ => {
            let why = slot
                .failure
                .clone()
                .unwrap_or_else(|| "the deployment session expired".into());
            (
                503,
                json!({"code": "CredentialsUnavailable", "message": format!("rolehop cannot provide credentials for `{}`: {why}", slot.name)})
                    .to_string(),
            )
        }
    }
}

/// Runs `cmd` as a child (rolehop must stay alive to serve it), passes SIGTERM, SIGINT,
/// SIGHUP and SIGQUIT on to it, and returns its exit status as rolehop's: its own code, or
/// 128 + the signal that ended it, as a shell reports it.
pub fn run_child(mut cmd: std::process::Command, program: &str) -> CliResult<u8> {
    // The handlers are in place before the child exists, so no signal is lost in between.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (pid_tx, pid_rx) = std::sync::mpsc::channel::<u32>();
    let done = Arc::new(AtomicBool::new(false));
    {
        let done = done.clone();
        std::thread::spawn(move || forward_signals(&ready_tx, &pid_rx, &done));
    }
    let _ = ready_rx.recv_timeout(StdDuration::from_secs(5));
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rolehop: error: cannot run `{program}`: {e}");
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            return Ok(code);
        }
    };
    let _ = pid_tx.send(child.id());
    let status = child
        .wait()
        .map_err(|e| CliError::msg(Exit::Internal, format!("cannot wait for `{program}`: {e}")))?;
    done.store(true, Ordering::SeqCst);
    let _ = std::io::stderr().flush();
    Ok(exit_of(status))
}

fn exit_of(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => u8::try_from(c & 0xff).unwrap_or(1),
        (None, Some(s)) => u8::try_from((128 + s) & 0xff).unwrap_or(1),
        _ => 1,
    }
}

/// Passes the runner's signals on to the command until it has ended.
fn forward_signals(
    ready: &std::sync::mpsc::Sender<()>,
    pid: &std::sync::mpsc::Receiver<u32>,
    done: &AtomicBool,
) {
    use rustix::process::{Pid, Signal, kill_process};
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        let _ = ready.send(());
        return;
    };
    rt.block_on(async {
        let streams = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
            signal(SignalKind::quit()),
        );
        let _ = ready.send(());
        let (Ok(mut term), Ok(mut int), Ok(mut hup), Ok(mut quit)) = streams else {
            return;
        };
        let Some(child) = pid
            .recv()
            .ok()
            .and_then(|p| i32::try_from(p).ok())
            .and_then(Pid::from_raw)
        else {
            return;
        };
        loop {
            let sig = tokio::select! {
                _ = term.recv() => Signal::TERM,
                _ = int.recv() => Signal::INT,
                _ = hup.recv() => Signal::HUP,
                _ = quit.recv() => Signal::QUIT,
                () = tokio::time::sleep(StdDuration::from_millis(100)) => {
                    if done.load(Ordering::SeqCst) {
                        return;
                    }
                    continue;
                }
            };
            let _ = kill_process(child, sig);
        }
    });
}

/// Variables the command must not inherit when it reads the endpoint: any of them would win
/// over the container provider in the SDKs' credential chains.
pub const SHADOWING: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn addr(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn only_a_loopback_get_with_the_token_and_the_right_host_is_served() {
        let t = secret("abc123");
        let ok = |peer, host, auth, path| authorize(addr(peer), 4000, "GET", host, auth, path, &t);
        assert_eq!(
            ok(
                "127.0.0.1:5000",
                Some("127.0.0.1:4000"),
                Some("abc123"),
                DEFAULT_PATH
            ),
            Ok(Route::Default)
        );
        assert_eq!(
            ok(
                "127.0.0.1:5000",
                Some("127.0.0.1:4000"),
                Some("abc123"),
                "/profile/net"
            ),
            Ok(Route::Profile("net".into()))
        );
        assert_eq!(
            ok("127.0.0.1:5000", Some("127.0.0.1:4000"), None, DEFAULT_PATH)
                .unwrap_err()
                .0,
            401
        );
        assert_eq!(
            ok(
                "127.0.0.1:5000",
                Some("127.0.0.1:4000"),
                Some("abc124"),
                DEFAULT_PATH
            )
            .unwrap_err()
            .0,
            401
        );
        assert_eq!(
            ok(
                "127.0.0.1:5000",
                Some("127.0.0.1:4000"),
                Some("abc12"),
                DEFAULT_PATH
            )
            .unwrap_err()
            .0,
            401
        );
        assert_eq!(
            ok(
                "10.0.0.5:5000",
                Some("127.0.0.1:4000"),
                Some("abc123"),
                DEFAULT_PATH
            )
            .unwrap_err()
            .0,
            403
        );
        assert_eq!(
            ok(
                "127.0.0.1:5000",
                Some("evil.example:4000"),
                Some("abc123"),
                DEFAULT_PATH
            )
            .unwrap_err()
            .0,
            403
        );
        assert_eq!(
            authorize(
                addr("127.0.0.1:1"),
                4000,
                "POST",
                Some("127.0.0.1:4000"),
                Some("abc123"),
                DEFAULT_PATH,
                &t
            )
            .unwrap_err()
            .0,
            405
        );
        assert_eq!(
            ok(
                "127.0.0.1:5000",
                Some("127.0.0.1:4000"),
                Some("abc123"),
                "/"
            )
            .unwrap_err()
            .0,
            404
        );
    }

    #[test]
    fn the_document_is_what_the_sdks_read() {
        let c = Credentials {
            access_key_id: "ASIAX".into(),
            secret_access_key: secret("s"),
            session_token: secret("t"),
            expiration: time::macros::datetime!(2026-12-05 11:00 UTC),
        };
        let d: serde_json::Value = serde_json::from_str(&document(&c)).unwrap();
        assert_eq!(
            d,
            json!({"AccessKeyId": "ASIAX", "SecretAccessKey": "s", "Token": "t", "Expiration": "2026-12-05T11:00:00Z"})
        );
    }

    #[test]
    fn a_signal_ends_with_128_plus_its_number() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(exit_of(ExitStatus::from_raw(15)), 143);
        assert_eq!(exit_of(ExitStatus::from_raw(3 << 8)), 3);
    }
}
