//! The chain against recorded traffic, without moto: the STS HTTP client and the gate's
//! transport are injected, each request is checked against what the recording was made for
//! (action, role, session name, SourceIdentity, tags, and which key signed it), and the
//! recorded answer is replayed. What this pins down: the deployment hop is signed with the
//! first hop's session, never with the base credential; behind the gate the token goes only to
//! the gate and the deployment hop sets no identity of its own; refusals are never retried.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::result_large_err
)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use secrecy::ExposeSecret;

use rolehop_aws::chain::{self, FailureKind, Origin};
use rolehop_aws::gate_client::{GateReply, GateTransport, TransportError};
use rolehop_aws::sts::StsSettings;
use rolehop_core::chain::{Base, ChainPlan, ChainRequest, GateTarget, GateUrl, StaticKeys, plan};
use rolehop_core::exit::{Exit, HasExit};
use rolehop_core::gitlab_ctx::JobContext;
use rolehop_core::secret::secret;

const SERVICE: &str = "arn:aws:iam::111111111111:role/rolehop-svc";
const DEPLOY: &str = "arn:aws:iam::222222222222:role/rolehop-deploy";
const BROKER_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
/// The access key in `service-assume-role.xml` (and `gate-answer.json`).
const SERVICE_SESSION_KEY: &str = "ASIARTXV5AHD73XPHYRL";
const DEPLOY_SESSION_KEY: &str = "ASIATHPL2AOHLVYBWZUD";

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/recorded/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One recorded STS exchange: what the request must say, and the answer.
struct Exchange {
    /// Form parameters the request must carry with exactly these values.
    params: Vec<(&'static str, String)>,
    /// Parameters the request must not carry at all.
    absent: Vec<&'static str>,
    /// The access key id the request must be signed with.
    signed_by: &'static str,
    answer: String,
}

#[derive(Debug, Default)]
struct Replay {
    script: Mutex<VecDeque<ExchangeBox>>,
    seen: Mutex<Vec<BTreeMap<String, String>>>,
}

impl Replay {
    /// A replay that answers `exchanges` in order, then refuses anything more.
    fn scripted(exchanges: impl IntoIterator<Item = Exchange>) -> Arc<Replay> {
        let replay = Replay::default();
        replay
            .script
            .lock()
            .unwrap()
            .extend(exchanges.into_iter().map(ExchangeBox));
        Arc::new(replay)
    }
}

struct ExchangeBox(Exchange);
impl std::fmt::Debug for ExchangeBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exchange")
    }
}

fn form(body: &str) -> BTreeMap<String, String> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        let mut out = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

impl HttpConnector for Replay {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let body = std::str::from_utf8(request.body().bytes().unwrap()).unwrap();
        let params = form(body);
        let auth = request.headers().get("authorization").unwrap_or("");
        let ExchangeBox(ex) = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| panic!("a request the recording does not have: {params:?}"));
        for (k, v) in &ex.params {
            assert_eq!(params.get(*k), Some(v), "{k} in {params:?}");
        }
        for k in &ex.absent {
            assert!(
                !params.keys().any(|p| p.starts_with(k)),
                "{k} sent: {params:?}"
            );
        }
        assert!(
            auth.contains(&format!("Credential={}/", ex.signed_by)),
            "signed by the wrong key: {auth}"
        );
        self.seen.lock().unwrap().push(params);
        // STS answers refusals with an `ErrorResponse` document and a 4xx status.
        let status = if ex.answer.contains("<ErrorResponse") {
            400u16
        } else {
            200
        };
        let resp = HttpResponse::new(
            StatusCode::try_from(status).unwrap(),
            SdkBody::from(ex.answer),
        );
        HttpConnectorFuture::ready(Ok(resp))
    }
}

fn settings(replay: Arc<Replay>) -> StsSettings {
    let mut s = StsSettings::new("eu-west-1", Some("https://sts.recorded.invalid".into()));
    s.initial_backoff = Duration::from_millis(1);
    s.http_client = Some(http_client_fn(move |_, _| {
        SharedHttpConnector::new(ReplayRef(replay.clone()))
    }));
    s
}

#[derive(Debug)]
struct ReplayRef(Arc<Replay>);
impl HttpConnector for ReplayRef {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        self.0.call(request)
    }
}

fn job() -> JobContext {
    JobContext {
        project_path: Some("acme/shop".into()),
        project_id: Some("42".into()),
        pipeline_id: Some("1001".into()),
        job_id: Some("5005".into()),
        ref_name: Some("main".into()),
        environment: Some("production".into()),
        ..JobContext::default()
    }
}

fn request(base: Base) -> ChainRequest {
    ChainRequest {
        base,
        service_role_arn: Some(SERVICE.into()),
        deploy_role_arn: DEPLOY.into(),
        duration_secs: None,
        environment_max_secs: None,
        external_id: None,
        tags: true,
        source_identity: true,
        deployment_session: Default::default(),
    }
}

fn deploy_exchange(absent: Vec<&'static str>) -> Exchange {
    Exchange {
        params: vec![
            ("Action", "AssumeRole".into()),
            ("RoleArn", DEPLOY.into()),
            ("RoleSessionName", "gl-42-1001-5005".into()),
            ("DurationSeconds", "3600".into()),
        ],
        absent,
        signed_by: SERVICE_SESSION_KEY,
        answer: fixture("deploy-assume-role.xml"),
    }
}

fn run(
    plan: &ChainPlan,
    s: &StsSettings,
    gate: Arc<dyn GateTransport>,
) -> Result<rolehop_core::credentials::ChainOutcome, chain::ChainError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(chain::run_with(plan, s, gate))
}

/// A gate transport that must never be called.
struct NoGate;
impl GateTransport for NoGate {
    fn post(&self, url: &str, _: &rolehop_core::Secret) -> Result<GateReply, TransportError> {
        panic!("the gate at {url} was called in a chain without one")
    }
}

#[test]
fn access_keys_chain_replays_and_signs_the_second_hop_with_the_first_session() {
    let replay = Replay::scripted([
        Exchange {
            params: vec![
                ("Action", "AssumeRole".into()),
                ("RoleArn", SERVICE.into()),
                ("RoleSessionName", "gl-42-1001-5005".into()),
                ("DurationSeconds", "900".into()),
                ("SourceIdentity", "acme.shop@1001".into()),
                ("Tags.member.1.Key", "gitlab:project".into()),
                ("Tags.member.1.Value", "acme/shop".into()),
                ("TransitiveTagKeys.member.5", "gitlab:environment".into()),
            ],
            absent: vec!["ExternalId"],
            signed_by: BROKER_KEY,
            answer: fixture("service-assume-role.xml"),
        },
        deploy_exchange(vec!["SourceIdentity", "Tags.", "TransitiveTagKeys."]),
    ]);
    let keys = StaticKeys {
        access_key_id: BROKER_KEY.into(),
        secret_access_key: secret("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        session_token: None,
    };
    let p = plan(&request(Base::AccessKeys(keys)), &job()).unwrap();
    let out = run(&p, &settings(replay.clone()), Arc::new(NoGate)).unwrap();

    assert_eq!(out.credentials.access_key_id, DEPLOY_SESSION_KEY);
    assert_eq!(
        out.assumed_role_arn(),
        "arn:aws:sts::222222222222:assumed-role/rolehop-deploy/gl-42-1001-5005"
    );
    assert_eq!(out.account(), "222222222222");
    let labels: Vec<_> = out.hops.iter().map(|h| h.label).collect();
    assert_eq!(labels, ["service role", "deployment role"]);
    assert_eq!(out.hops[0].tags, 5);
    // The identity set on the first hop persists; the record says so on both hops.
    assert_eq!(
        out.hops[1].source_identity, None,
        "moto's recorded answer carries none"
    );
    assert_eq!(
        out.hops[0].source_identity.as_deref(),
        Some("acme.shop@1001")
    );
    assert!(
        replay.script.lock().unwrap().is_empty(),
        "an exchange was skipped"
    );
}

/// A scripted gate: answers in order, and records what it was sent.
struct ScriptedGate {
    answers: Mutex<VecDeque<Result<GateReply, TransportError>>>,
    bodies: Mutex<Vec<serde_json::Value>>,
}

impl ScriptedGate {
    fn new(answers: Vec<Result<(u16, String), &str>>) -> Arc<ScriptedGate> {
        Arc::new(ScriptedGate {
            answers: Mutex::new(
                answers
                    .into_iter()
                    .map(|a| {
                        a.map(|(status, body)| GateReply {
                            status,
                            body: secret(body),
                        })
                        .map_err(|d| TransportError { detail: d.into() })
                    })
                    .collect(),
            ),
            bodies: Mutex::new(Vec::new()),
        })
    }
}

impl GateTransport for ScriptedGate {
    fn post(&self, url: &str, body: &rolehop_core::Secret) -> Result<GateReply, TransportError> {
        assert_eq!(url, "https://gate.example.com/");
        self.bodies
            .lock()
            .unwrap()
            .push(serde_json::from_str(body.expose_secret()).unwrap());
        self.answers
            .lock()
            .unwrap()
            .pop_front()
            .expect("the gate was asked more often than recorded")
    }
}

const TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";

fn gate_plan() -> ChainPlan {
    let mut r = request(Base::Gate {
        gate: GateTarget {
            url: GateUrl::parse("https://gate.example.com/").unwrap(),
            environment: "prod".into(),
        },
        token: secret(TOKEN),
    });
    r.service_role_arn = None;
    plan(&r, &job()).unwrap()
}

#[test]
fn gate_chain_replays_a_transient_failure_then_the_gates_credentials() {
    let replay = Arc::new(Replay::default());
    // Behind the gate the deployment hop sets no SourceIdentity or tags: the gate's session
    // carries them from signed claims, and STS refuses to have them set again.
    replay
        .script
        .lock()
        .unwrap()
        .push_back(ExchangeBox(deploy_exchange(vec![
            "SourceIdentity",
            "Tags.",
            "TransitiveTagKeys.",
            "WebIdentityToken",
        ])));
    let gate = ScriptedGate::new(vec![
        Ok((
            503,
            r#"{"status":503,"error":"the issuer is unreachable"}"#.into(),
        )),
        Err("connection refused"),
        Ok((200, fixture("gate-answer.json"))),
    ]);
    let out = run(&gate_plan(), &settings(replay.clone()), gate.clone()).unwrap();

    let bodies = gate.bodies.lock().unwrap();
    assert_eq!(bodies.len(), 3, "two transient failures, then the answer");
    assert_eq!(bodies[0]["environment"], "prod");
    assert_eq!(bodies[0]["token"], TOKEN);
    assert_eq!(out.credentials.access_key_id, DEPLOY_SESSION_KEY);
    assert_eq!(out.hops[0].label, "service role");
    assert_eq!(
        out.hops[0].assumed_role_arn,
        "arn:aws:sts::111111111111:assumed-role/rolehop-svc/gl-42-1001-5005"
    );
    assert_eq!(out.hops[0].tags, 13);
    assert_eq!(
        out.hops[0].source_identity.as_deref(),
        Some("acme.shop@1001")
    );
    assert_eq!(out.hops[1].label, "deployment role");
    // No STS call carried the ID token: it went to the gate only.
    for params in replay.seen.lock().unwrap().iter() {
        assert!(params.values().all(|v| v != TOKEN));
    }
}

#[test]
fn a_gate_refusal_is_final_names_the_rule_and_never_the_token() {
    let refusal = format!(
        r#"{{"status":403,"error":"rule `ref_protected` refused the job (token {TOKEN})","rule":"ref_protected","expected":"true","actual":"false"}}"#
    );
    let gate = ScriptedGate::new(vec![Ok((403, refusal))]);
    let replay = Arc::new(Replay::default());
    let e = run(&gate_plan(), &settings(replay), gate.clone()).unwrap_err();

    assert_eq!(
        gate.bodies.lock().unwrap().len(),
        1,
        "a refusal was retried"
    );
    assert_eq!(e.kind, FailureKind::Denied);
    assert_eq!(e.exit(), Exit::Denied);
    assert!(matches!(&e.origin, Origin::Gate { environment, .. } if environment == "prod"));
    let text = e.to_string();
    assert!(
        text.contains("rule `ref_protected`, expected true, actual false"),
        "{text}"
    );
    assert!(text.contains("HTTP 403"), "{text}");
    assert!(
        !text.contains(TOKEN),
        "the token reached the message: {text}"
    );
}

#[test]
fn a_gate_that_stays_down_is_unavailable_after_the_bounded_attempts() {
    let gate = ScriptedGate::new(vec![
        Err("timed out"),
        Ok((502, "{}".into())),
        Ok((429, "{}".into())),
        Ok((503, r#"{"status":503,"error":"STS is unreachable"}"#.into())),
    ]);
    let e = run(
        &gate_plan(),
        &settings(Arc::new(Replay::default())),
        gate.clone(),
    )
    .unwrap_err();
    assert_eq!(gate.bodies.lock().unwrap().len(), 4);
    assert_eq!(e.exit(), Exit::Unavailable);
    assert!(e.to_string().contains("STS is unreachable"), "{e}");

    // A 200 that is not credentials (a login page in between) is never credentials.
    let gate = ScriptedGate::new(vec![Ok((200, "<html>sign in</html>".into()))]);
    let e = run(&gate_plan(), &settings(Arc::new(Replay::default())), gate).unwrap_err();
    assert_eq!(e.exit(), Exit::Unavailable);
    assert!(e.to_string().contains("could not be read"), "{e}");
}

/// The deployment hop of a plan with a session policy and one optional tag, from a web
/// identity first hop (whose recording is the service-role answer).
fn session_plan(optional_tags: bool) -> ChainPlan {
    let mut req = request(Base::AccessKeys(broker_keys()));
    req.deployment_session = rolehop_core::chain::DeploymentSession {
        policy: Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"*"}]}"#.into()),
        policy_arns: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()],
        optional_tags: if optional_tags {
            vec![rolehop_core::chain::Tag {
                key: "team".into(),
                value: "payments".into(),
            }]
        } else {
            Vec::new()
        },
    };
    plan(&req, &job()).unwrap()
}

fn broker_keys() -> StaticKeys {
    StaticKeys {
        access_key_id: BROKER_KEY.into(),
        secret_access_key: secret("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        session_token: None,
    }
}

fn service_exchange() -> Exchange {
    Exchange {
        params: vec![("RoleArn", SERVICE.into())],
        absent: vec!["Policy"],
        signed_by: BROKER_KEY,
        answer: fixture("service-assume-role.xml"),
    }
}

/// The deployment hop's request with the session policy, with or without the extra tag.
fn session_deploy(with_tag: bool, answer: String) -> Exchange {
    let mut params = vec![
        ("RoleArn", DEPLOY.into()),
        ("Policy", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"*"}]}"#.into()),
        ("PolicyArns.member.1.arn", "arn:aws:iam::aws:policy/ReadOnlyAccess".into()),
    ];
    let mut absent = vec!["TransitiveTagKeys."];
    if with_tag {
        params.push(("Tags.member.1.Key", "team".into()));
        params.push(("Tags.member.1.Value", "payments".into()));
    } else {
        absent.push("Tags.");
    }
    Exchange {
        params,
        absent,
        signed_by: SERVICE_SESSION_KEY,
        answer,
    }
}

#[test]
fn the_deployment_hop_carries_the_session_policy_and_drops_optional_tags_once_when_sts_finds_it_too_large()
 {
    let replay = Replay::scripted([
        service_exchange(),
        session_deploy(true, fixture("packed-policy-too-large.xml")),
        session_deploy(false, fixture("deploy-assume-role.xml")),
    ]);
    let out = run(
        &session_plan(true),
        &settings(replay.clone()),
        Arc::new(NoGate),
    )
    .unwrap();
    assert_eq!(out.credentials.access_key_id, DEPLOY_SESSION_KEY);
    assert_eq!(replay.seen.lock().unwrap().len(), 3);
    assert!(replay.script.lock().unwrap().is_empty());
}

#[test]
fn a_second_packed_policy_refusal_fails_the_deploy_with_the_denied_exit_code() {
    let replay = Replay::scripted([
        service_exchange(),
        session_deploy(true, fixture("packed-policy-too-large.xml")),
        session_deploy(false, fixture("packed-policy-too-large.xml")),
    ]);
    let e = run(
        &session_plan(true),
        &settings(replay.clone()),
        Arc::new(NoGate),
    )
    .unwrap_err();
    assert_eq!(e.exit(), Exit::Denied);
    assert_eq!(e.code.as_deref(), Some("PackedPolicyTooLarge"));
    let text = e.to_string();
    assert!(
        text.contains("deployment role hop failed") && text.contains("session policies"),
        "{text}"
    );
    // Exactly one retry: a third request would not be in the recording.
    assert_eq!(replay.seen.lock().unwrap().len(), 3);
}

#[test]
fn without_optional_tags_a_packed_policy_refusal_is_not_retried() {
    let replay = Replay::scripted([
        service_exchange(),
        session_deploy(false, fixture("packed-policy-too-large.xml")),
    ]);
    let e = run(
        &session_plan(false),
        &settings(replay.clone()),
        Arc::new(NoGate),
    )
    .unwrap_err();
    assert_eq!(e.exit(), Exit::Denied);
    assert_eq!(replay.seen.lock().unwrap().len(), 2);
}
