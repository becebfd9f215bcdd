//! `rolehop gate lambda`: the gate on Lambda's custom runtime, run as Lambda runs it (the
//! binary named `bootstrap`, no arguments, `AWS_LAMBDA_RUNTIME_API` and the rendered
//! `ROLEHOP_GATE_CONFIG` in its environment) against a fake Runtime API on loopback that
//! speaks the 2018-06-01 protocol and hands out function URL events; STS is moto's, tokens are
//! signed by the local GitLab-like issuer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use base64::Engine;
use common::{BROKER, TARGET};
use rolehop_testkit::oidc_issuer::OidcIssuer;
use rolehop_testkit::{Moto, SeededChain, seed_chain};
use serde_json::{Value, json};

const AUD: &str = "https://gate.rolehop.test";

/// The fake Runtime API: serves `events` in order, records every answer, then fails the next
/// `invocation/next` with HTTP 500 so the runtime stops.
struct FakeRuntimeApi {
    port: u16,
    answers: Arc<Mutex<Vec<(String, String)>>>,
    _thread: std::thread::JoinHandle<()>,
}

impl FakeRuntimeApi {
    fn start(events: Vec<Value>) -> FakeRuntimeApi {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let port = server.server_addr().to_ip().unwrap().port();
        let answers = Arc::new(Mutex::new(Vec::new()));
        let recorded = answers.clone();
        let mut queue: VecDeque<Value> = events.into();
        let mut n = 0;
        let thread = std::thread::spawn(move || {
            while let Ok(mut req) = server.recv() {
                let url = req.url().to_owned();
                let mut body = String::new();
                let _ = req.as_reader().read_to_string(&mut body);
                if url == "/2018-06-01/runtime/invocation/next" {
                    match queue.pop_front() {
                        Some(ev) => {
                            n += 1;
                            let id = format!("8476a536-e9f4-11e8-9739-2dfe598c3fc{n}");
                            let resp = tiny_http::Response::from_string(ev.to_string())
                                .with_header(
                                    tiny_http::Header::from_bytes(
                                        "Lambda-Runtime-Aws-Request-Id",
                                        id.as_bytes(),
                                    )
                                    .unwrap(),
                                )
                                .with_header(
                                    tiny_http::Header::from_bytes(
                                        "Lambda-Runtime-Deadline-Ms",
                                        "4102444800000",
                                    )
                                    .unwrap(),
                                );
                            let _ = req.respond(resp);
                        }
                        None => {
                            let _ = req.respond(
                                tiny_http::Response::from_string("done").with_status_code(500),
                            );
                            return;
                        }
                    }
                } else {
                    recorded.lock().unwrap().push((url, body));
                    let _ = req.respond(tiny_http::Response::from_string("").with_status_code(202));
                    if recorded
                        .lock()
                        .unwrap()
                        .last()
                        .unwrap()
                        .0
                        .ends_with("/init/error")
                    {
                        return;
                    }
                }
            }
        });
        FakeRuntimeApi {
            port,
            answers,
            _thread: thread,
        }
    }
}

fn config(issuer: &str, seed: &SeededChain) -> String {
    format!(
        r#"issuer = "{issuer}"
audience = "{AUD}"
region = "eu-west-1"

[environments.prod]
service_role_arn = "{}"

[environments.prod.rules]
project_ids = ["42"]
branches = ["main"]
ref_protected = true
"#,
        seed.service_role_arn
    )
}

/// A function URL event (payload format 2.0) as Lambda delivers it.
fn event(path: &str, method: &str, headers: Value, body: &str, b64: bool) -> Value {
    let body = if b64 {
        base64::engine::general_purpose::STANDARD.encode(body)
    } else {
        body.to_owned()
    };
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "domainName": "abc.lambda-url.eu-west-1.on.aws",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "rolehop"},
            "requestId": "r", "stage": "$default", "time": "05/Dec/2026:15:00:00 +0000", "timeEpoch": 0
        },
        "body": body,
        "isBase64Encoded": b64,
    })
}

/// Runs the binary as Lambda does: a file called `bootstrap`, started without arguments.
fn run_bootstrap(api: &FakeRuntimeApi, env: &[(&str, String)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let bootstrap: PathBuf = dir.path().join("bootstrap");
    std::os::unix::fs::symlink(assert_cmd::cargo::cargo_bin("rolehop"), &bootstrap).unwrap();
    let mut cmd = Command::new(&bootstrap);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{}", api.port))
        .env("AWS_REGION", "eu-west-1")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn function_url_events_get_the_gates_answers_through_the_runtime_api() {
    let (moto, issuer) = (Moto::start(), OidcIssuer::start());
    let seed = seed_chain(&moto, BROKER, TARGET);
    let good = issuer.token(AUD).claim("job_id", "5005").sign();
    let evil = issuer.token(AUD).branch("main-evil", false).sign();
    let unprotected_main = issuer.token(AUD).branch("main", false).sign();
    let json_ct = json!({"content-type": "application/json"});
    let api = FakeRuntimeApi::start(vec![
        event(
            "/",
            "POST",
            json_ct.clone(),
            &json!({"environment": "prod", "token": good}).to_string(),
            false,
        ),
        event(
            "/",
            "POST",
            json!({"authorization": format!("Bearer {unprotected_main}")}),
            "{\"environment\":\"prod\"}",
            true,
        ),
        event(
            "/",
            "POST",
            json_ct.clone(),
            &json!({"environment": "prod", "token": evil}).to_string(),
            false,
        ),
        event("/healthz", "GET", json!({}), "", false),
        event("/", "GET", json!({}), "", false),
        json!({"Records": [{"eventSource": "aws:s3"}]}),
    ]);
    let out = run_bootstrap(
        &api,
        &[
            ("ROLEHOP_GATE_CONFIG", config(&issuer.url(), &seed)),
            ("AWS_ENDPOINT_URL", moto.url()),
            ("AWS_ACCESS_KEY_ID", seed.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", seed.secret_access_key.clone()),
            ("ROLEHOP_LOG", "trace".into()),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // The fake API ends the run with HTTP 500 on `next`: an I/O failure, exit code 8.
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    assert!(
        stderr.contains("the Lambda Runtime API failed (invocation/next): HTTP 500"),
        "{stderr}"
    );

    let answers = api.answers.lock().unwrap().clone();
    let ids: Vec<&str> = answers.iter().map(|(u, _)| u.as_str()).collect();
    assert_eq!(ids.len(), 6, "{ids:?}\n{stderr}");
    for (i, url) in ids.iter().enumerate() {
        assert_eq!(
            *url,
            format!(
                "/2018-06-01/runtime/invocation/8476a536-e9f4-11e8-9739-2dfe598c3fc{}/response",
                i + 1
            )
        );
    }
    let resp: Vec<Value> = answers
        .iter()
        .map(|(_, b)| serde_json::from_str(b).unwrap())
        .collect();
    let body =
        |i: usize| -> Value { serde_json::from_str(resp[i]["body"].as_str().unwrap()).unwrap() };
    let statuses: Vec<i64> = resp
        .iter()
        .map(|r| r["statusCode"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 403, 403, 200, 405, 400], "{resp:#?}");
    for r in &resp {
        assert_eq!(r["headers"]["content-type"], "application/json");
        assert_eq!(r["headers"]["cache-control"], "no-store");
    }
    // Real credentials of the service role, with the attested session name.
    let session = "arn:aws:sts::111111111111:assumed-role/rolehop-test-service/gl-42-1001-5005";
    assert_eq!(body(0)["assumed_role_arn"], session);
    assert_eq!(
        common::caller_identity(&moto, &body(0)["credentials"])["Arn"],
        session
    );
    // Unprotected refs are refused by rule, whichever way the token came.
    assert_eq!(body(1)["rule"], "ref_protected");
    assert_eq!(body(2)["rule"], "branches");
    assert!(
        body(5)["error"]
            .as_str()
            .is_some_and(|e| e.contains("not a Lambda function URL event")),
        "{}",
        body(5)
    );
    // The log has one line per request, and never a token or a secret.
    assert_eq!(stderr.matches("rolehop gate: 403 ").count(), 2, "{stderr}");
    for t in [&good, &evil, &unprotected_main] {
        assert!(
            !stderr.contains(t.rsplit('.').next().unwrap()),
            "a token reached the log"
        );
    }
    let secret = body(0)["credentials"]["secret_access_key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!stderr.contains(&secret), "credentials reached the log");
}

#[test]
fn a_broken_config_is_reported_to_lambda_as_an_init_error() {
    let api = FakeRuntimeApi::start(vec![]);
    let out = run_bootstrap(
        &api,
        &[(
            "ROLEHOP_GATE_CONFIG",
            "issuer = \"http://gitlab.example.com\"\naudience = \"\"\n".into(),
        )],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let answers = api.answers.lock().unwrap().clone();
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0].0, "/2018-06-01/runtime/init/error");
    let err: Value = serde_json::from_str(&answers[0].1).unwrap();
    assert_eq!(err["errorType"], "Rolehop.GateConfig");
    let msg = err["errorMessage"].as_str().unwrap();
    assert!(msg.contains("ROLEHOP_GATE_CONFIG: issuer:"), "{msg}");
    assert!(msg.contains("audience: must not be empty"), "{msg}");
}

#[test]
fn outside_lambda_the_command_says_where_it_runs() {
    let out = Command::new(assert_cmd::cargo::cargo_bin("rolehop"))
        .args(["gate", "lambda"])
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("runs inside AWS Lambda"));
}
