//! The GitLab client against the local GitLab server: documented shapes, errors and faults.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rolehop_core::rotation::{StoreErrorKind, VariableStore, VariableWrite};
use rolehop_core::secret::secret;
use rolehop_gitlab::{
    ClientOptions, GitlabClient, GitlabError, GitlabVariables, NewVariable, Target,
};
use rolehop_testkit::gitlab::{Fault, GitlabServer, REPORTER_TOKEN, TOKEN};
use secrecy::ExposeSecret;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn client(srv: &GitlabServer, token: &str) -> (GitlabClient, Arc<Mutex<Vec<Duration>>>) {
    let slept = Arc::new(Mutex::new(Vec::new()));
    let s = slept.clone();
    let opts = ClientOptions {
        timeout: Duration::from_millis(800),
        ..ClientOptions::default()
    };
    let c = GitlabClient::new(&srv.url(), secret(token), opts)
        .unwrap()
        .with_sleeper(Arc::new(move |d| s.lock().unwrap().push(d)));
    (c, slept)
}

fn shop() -> Target {
    Target::Project("acme/shop".into())
}

fn new_var(key: &str, value: &str, scope: &str) -> NewVariable {
    NewVariable {
        key: key.into(),
        value: secret(value),
        protected: true,
        masked: true,
        environment_scope: scope.into(),
        description: "test".into(),
    }
}

#[test]
fn create_read_and_update_one_scope_as_documented() {
    let srv = GitlabServer::start();
    let (c, _) = client(&srv, TOKEN);
    assert!(
        c.get_variable(&shop(), "AWS_SECRET_ACCESS_KEY", "production")
            .unwrap()
            .is_none()
    );
    let v = c
        .create_variable(
            &shop(),
            &new_var("AWS_SECRET_ACCESS_KEY", SECRET, "production"),
        )
        .unwrap();
    assert_eq!(v.environment_scope, "production");
    assert!(v.masked && v.protected && v.raw);
    // The same key in another scope is a different variable.
    c.create_variable(
        &shop(),
        &new_var("AWS_SECRET_ACCESS_KEY", "otherScope+Value/123", "staging"),
    )
    .unwrap();
    c.update_variable(
        &shop(),
        &new_var(
            "AWS_SECRET_ACCESS_KEY",
            "updated/Value+0123456789",
            "production",
        ),
    )
    .unwrap();
    let got = c
        .get_variable(&shop(), "AWS_SECRET_ACCESS_KEY", "production")
        .unwrap()
        .unwrap();
    assert_eq!(got.value.expose_secret(), "updated/Value+0123456789");
    let staging = srv
        .variable("projects/acme/shop", "AWS_SECRET_ACCESS_KEY", "staging")
        .unwrap();
    assert_eq!(staging["value"], "otherScope+Value/123");
    let reqs = srv.requests();
    assert!(
        reqs.contains(&"POST /api/v4/projects/acme%2Fshop/variables".to_owned()),
        "{reqs:?}"
    );
    assert!(
        reqs.iter().any(|r| r.starts_with("PUT /api/v4/projects/acme%2Fshop/variables/AWS_SECRET_ACCESS_KEY?filter%5Benvironment_scope%5D=production")),
        "{reqs:?}"
    );
}

#[test]
fn group_variables_use_the_group_endpoints() {
    let srv = GitlabServer::start();
    let (c, _) = client(&srv, TOKEN);
    let g = Target::Group("acme".into());
    c.create_variable(
        &g,
        &new_var("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE", "*"),
    )
    .unwrap();
    assert!(
        srv.variable("groups/acme", "AWS_ACCESS_KEY_ID", "*")
            .is_some()
    );
    assert!(srv.requests()[0].starts_with("POST /api/v4/groups/acme/variables"));
}

#[test]
fn errors_say_what_to_fix() {
    let srv = GitlabServer::start();
    let (bad, _) = client(&srv, "glpat-wrong");
    let e = bad.get_variable(&shop(), "X_Y", "*").unwrap_err();
    assert!(matches!(e, GitlabError::Unauthorized { .. }));
    let m = e.to_string();
    assert!(
        m.contains("`api` scope") && m.contains("CI_JOB_TOKEN"),
        "{m}"
    );
    assert!(!m.contains("glpat-wrong"), "token leaked: {m}");

    let (reporter, _) = client(&srv, REPORTER_TOKEN);
    let m = reporter
        .get_variable(&shop(), "X_Y", "*")
        .unwrap_err()
        .to_string();
    assert!(m.contains("Maintainer role"), "{m}");

    let (c, _) = client(&srv, TOKEN);
    let m = c
        .get_variable(&Target::Project("acme/nope".into()), "X_Y", "*")
        .unwrap_err()
        .to_string();
    assert!(
        m.contains("404 Project Not Found") && m.contains("`acme/nope`"),
        "{m}"
    );

    let e = c
        .create_variable(
            &shop(),
            &new_var("AWS_SECRET_ACCESS_KEY", "has space in it", "*"),
        )
        .unwrap_err();
    assert!(matches!(e, GitlabError::Invalid { .. }), "{e:?}");
    assert!(
        !e.to_string().contains("has space in it"),
        "value leaked: {e}"
    );
}

#[test]
fn server_errors_are_retried_with_backoff_then_given_up() {
    let srv = GitlabServer::start();
    let (c, slept) = client(&srv, TOKEN);
    srv.inject(0, 2, Fault::Status(502));
    assert!(c.get_variable(&shop(), "A_B", "*").unwrap().is_none());
    assert_eq!(slept.lock().unwrap().len(), 2);

    srv.inject(0, 10, Fault::Status(500));
    let e = c.get_variable(&shop(), "A_B", "*").unwrap_err();
    assert!(
        matches!(e, GitlabError::Unavailable { attempts: 5, .. }),
        "{e:?}"
    );
    let waits = slept.lock().unwrap().clone();
    // Exponential from 500 ms, with jitter: each wait at least the base delay.
    assert!(
        waits[2..]
            .iter()
            .zip([500u64, 1000, 2000, 4000])
            .all(|(w, min)| w.as_millis() as u64 >= min),
        "{waits:?}"
    );
}

#[test]
fn too_many_requests_waits_as_long_as_retry_after_says() {
    let srv = GitlabServer::start();
    let (c, slept) = client(&srv, TOKEN);
    srv.inject(0, 1, Fault::TooManyRequests { retry_after: 7 });
    assert!(c.get_variable(&shop(), "A_B", "*").unwrap().is_none());
    assert_eq!(*slept.lock().unwrap(), vec![Duration::from_secs(7)]);

    srv.inject(0, 1, Fault::TooManyRequests { retry_after: 3600 });
    let m = c.get_variable(&shop(), "A_B", "*").unwrap_err().to_string();
    assert!(m.contains("asks to wait 3600s"), "{m}");
}

#[test]
fn a_slow_answer_times_out_and_is_retried() {
    let srv = GitlabServer::start();
    let (c, slept) = client(&srv, TOKEN);
    srv.inject(0, 1, Fault::Slow(Duration::from_secs(3)));
    assert!(c.get_variable(&shop(), "A_B", "*").unwrap().is_none());
    assert_eq!(slept.lock().unwrap().len(), 1);
}

#[test]
fn listing_follows_pagination() {
    let srv = GitlabServer::start();
    for i in 0..250 {
        srv.set_variable(
            "projects/acme/shop",
            &format!("VAR_{i:03}"),
            "*",
            "value-123456",
        );
    }
    let (c, _) = client(&srv, TOKEN);
    let all = c.list_variables(&shop()).unwrap();
    assert_eq!(all.len(), 250);
    let pages = srv
        .requests()
        .iter()
        .filter(|r| r.contains("page="))
        .count();
    assert_eq!(pages, 3);
}

#[test]
fn the_store_creates_then_updates_and_survives_a_lost_create_answer() {
    let srv = GitlabServer::start();
    let (c, _) = client(&srv, TOKEN);
    let mut store = GitlabVariables::new(c, shop(), "production");
    let w = |v: &str| VariableWrite {
        key: "AWS_SECRET_ACCESS_KEY".into(),
        value: secret(v),
        masked: true,
        protected: false,
        description: "d".into(),
    };
    // The GET finds nothing; the POST is carried out but its answer is lost (502), the retry
    // finds the key taken, and the store updates instead.
    srv.inject(1, 1, Fault::AppliedThen502);
    store.put(&w(SECRET)).unwrap();
    store.put(&w("second/Value+0123456789")).unwrap();
    let got = store.get("AWS_SECRET_ACCESS_KEY").unwrap().unwrap();
    assert_eq!(got.value.expose_secret(), "second/Value+0123456789");
    assert!(!got.protected && got.masked);
    assert_eq!(got.description.as_deref(), Some("d"));

    srv.inject(0, 1, Fault::Unauthorized);
    let e = store.get("AWS_SECRET_ACCESS_KEY").unwrap_err();
    assert_eq!(e.kind, StoreErrorKind::Denied);
}

#[test]
fn the_store_tells_an_old_gitlab_without_descriptions_from_a_null_one() {
    let srv = GitlabServer::start();
    srv.set_variable(
        "projects/acme/shop",
        "AWS_SECRET_ACCESS_KEY",
        "production",
        SECRET,
    );
    let (c, _) = client(&srv, TOKEN);
    let mut store = GitlabVariables::new(c, shop(), "production");
    let v = store.get("AWS_SECRET_ACCESS_KEY").unwrap().unwrap();
    assert!(v.descriptions_supported && v.description.is_none());
    srv.without_descriptions();
    let v = store.get("AWS_SECRET_ACCESS_KEY").unwrap().unwrap();
    assert!(!v.descriptions_supported);
}

/// Records the head of every request it receives and answers each with `200 []`; acting as
/// a proxy, it accepts `CONNECT` and records the request sent through the tunnel too.
fn capturing_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            loop {
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let connect = head.starts_with("CONNECT ");
                s.lock().unwrap().push(head);
                if connect {
                    let _ = conn.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                    continue;
                }
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]",
                );
                break;
            }
        }
    });
    (port, seen)
}

#[test]
fn the_token_never_follows_a_redirect_to_another_origin() {
    // A GitLab behind a misconfigured proxy, or one that was taken over, answers with a
    // redirect to elsewhere (plain http, another host). The PRIVATE-TOKEN header must not go
    // along: ureq strips `Authorization` on redirects, but not custom headers.
    let (port, seen) = capturing_server();
    let redirect = rolehop_testkit::fault::CannedServer::start(
        format!(
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}/api/v4/projects/1/variables\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_bytes(),
    );
    let c = GitlabClient::new(&redirect.url(), secret(TOKEN), ClientOptions::default()).unwrap();
    let result = c.list_variables(&shop());
    let heads = seen.lock().unwrap().clone();
    assert!(
        heads.iter().all(|h| !h.contains(TOKEN)),
        "the token was sent to the redirect target: {heads:?}"
    );
    let m = result.unwrap_err().to_string();
    assert!(m.contains("302") && !m.contains(TOKEN), "{m}");
}

#[test]
fn plain_http_to_loopback_never_goes_through_a_proxy() {
    // Runners often set HTTP_PROXY. ureq reads it by default, so a plain-http loopback URL
    // (allowed because it never leaves the machine) sent the token in clear text to the proxy.
    // The environment is the process's: the check runs in a child copy of this test binary.
    const CHILD: &str = "ROLEHOP_TEST_PROXY_CHILD_URL";
    if let Ok(url) = std::env::var(CHILD) {
        let c = GitlabClient::new(&url, secret(TOKEN), ClientOptions::default()).unwrap();
        let _ = c.list_variables(&shop());
        return;
    }
    let srv = GitlabServer::start();
    let (proxy_port, seen) = capturing_server();
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "plain_http_to_loopback_never_goes_through_a_proxy",
            "--test-threads=1",
        ])
        .env(CHILD, srv.url())
        .env("HTTP_PROXY", &proxy)
        .env("http_proxy", &proxy)
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let heads = seen.lock().unwrap().clone();
    assert!(
        heads.iter().all(|h| !h.contains(TOKEN)),
        "the token went to the proxy: {heads:?}"
    );
    assert!(
        srv.requests().iter().any(|r| r.contains("/variables")),
        "the request reached GitLab directly"
    );
}

/// Every form a secret can take in an echoed body: what a test looks for in error messages.
fn leaks(text: &str, value: &str) -> Vec<String> {
    let half = value.rsplit_once(':').map_or(value, |(_, h)| h);
    let mut forms = Vec::new();
    for v in [value, half] {
        forms.push(v.to_owned());
        forms.push(v.replace('/', "\\/"));
        forms.push(v.replace('/', "\\u002f").replace('+', "\\u002b"));
        // Any 12-character run of the secret, whatever surrounds it.
        for w in v.as_bytes().windows(12) {
            forms.push(String::from_utf8_lossy(w).into_owned());
        }
    }
    forms.into_iter().filter(|f| text.contains(f)).collect()
}

#[test]
fn error_bodies_that_echo_the_value_never_reach_a_message_in_any_encoding() {
    // A combined `<id>:<secret>` value with `/` and `+`, which JSON may escape.
    let value = format!("AKIAIOSFODNN7EXAMPLE:{SECRET}");
    for (fault, count) in [
        (Fault::EchoRequest(502), 5), // outlasts the retries: a 5xx body in the final error
        (Fault::EchoRequest(500), 5),
        (Fault::EchoRequest(400), 1), // a validation error echoing the request
        (Fault::EchoRequest(403), 1),
        (Fault::EchoRequest(418), 1),
    ] {
        for update in [false, true] {
            let srv = GitlabServer::start();
            let (c, _) = client(&srv, TOKEN);
            let var = new_var("ROLEHOP_BROKER_KEY", &value, "production");
            if update {
                c.create_variable(
                    &shop(),
                    &new_var(
                        "ROLEHOP_BROKER_KEY",
                        "AKIAOLD0000000000000:old",
                        "production",
                    ),
                )
                .ok();
            }
            srv.inject(0, count, fault.clone());
            let e = if update {
                c.update_variable(&shop(), &var)
            } else {
                c.create_variable(&shop(), &var)
            }
            .unwrap_err()
            .to_string();
            assert!(
                e.contains("upstream failed on"),
                "{fault:?}: the echo did not reach the message, so the test proves nothing: {e}"
            );
            assert!(e.contains("[redacted]"), "{fault:?}: {e}");
            let found = leaks(&e, &value);
            assert!(
                found.is_empty(),
                "{fault:?} (update: {update}) leaks {found:?} in: {e}"
            );
        }
    }
}
