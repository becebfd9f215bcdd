//! The claim gate's threats (examples/oidc-gate): who may assume a gate-mode service role and
//! with which attested tags, decided by both IAM engines on the rendered trust and gate-role
//! policies; and the rules only the gate can check (protected refs, merge requests, project
//! ids), run through `rolehop gate serve` with the config `rolehop render` writes.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rolehop_gate::{AttestedSession, GitlabClaims};
use rolehop_render::gate::gate_role_policy;
use rolehop_testkit::oidc_issuer::OidcIssuer;
use rolehop_testkit::{free_port, http_request};
use serde_json::json;

use crate::suite::{Probe, Threat};
use crate::world::{self, Ask, World, assume, session_of};

pub fn gate_world() -> World {
    World::example("oidc-gate")
}

/// The verified claims of the legitimate prod job (acme/shop, protected main, production).
fn prod_claims() -> GitlabClaims {
    GitlabClaims {
        iss: "https://gitlab.example.com".into(),
        sub: "project_path:acme/shop:ref_type:branch:ref:main".into(),
        aud: vec!["https://gate.rolehop.example.com".into()],
        exp: 2_000_000_000,
        iat: 1_999_999_000,
        nbf: None,
        jti: None,
        namespace_id: "7".into(),
        namespace_path: "acme".into(),
        project_id: "42".into(),
        project_path: "acme/shop".into(),
        user_id: None,
        user_login: None,
        user_email: None,
        user_access_level: None,
        pipeline_id: "1001".into(),
        pipeline_source: "push".into(),
        job_id: "5005".into(),
        ref_name: "main".into(),
        ref_type: "branch".into(),
        ref_path: None,
        ref_protected: true,
        environment: Some("production".into()),
        environment_protected: Some(true),
        deployment_tier: Some("production".into()),
        environment_action: None,
        runner_id: None,
        runner_environment: Some("gitlab-hosted".into()),
        sha: None,
        ci_config_ref_uri: None,
        ci_config_sha: None,
        project_visibility: None,
    }
}

/// A nonprod job: a feature branch (unprotected) deploying to staging.
fn nonprod_claims() -> GitlabClaims {
    GitlabClaims {
        ref_name: "feature-x".into(),
        ref_protected: false,
        environment: Some("staging".into()),
        environment_protected: Some(false),
        deployment_tier: Some("staging".into()),
        ..prod_claims()
    }
}

/// What the gate asks STS for with these claims: its attested session, exactly.
fn attested(c: &GitlabClaims) -> Ask {
    let s = AttestedSession::from_claims(c);
    Ask {
        tags: s
            .tags
            .iter()
            .map(|t| (t.key.clone(), t.value.clone()))
            .collect(),
        transitive: s.transitive_keys(),
        source_identity: Some(s.source_identity),
        external_id: None,
    }
}

/// A session of an environment's gate role (Lambda names it after the function).
fn gate_session(w: &World, env: &str) -> world::Who {
    let e = w.env(env);
    world::Who {
        arn: session_of(
            &w.topo.gate_role_arn(e).unwrap(),
            &format!("rolehop-{env}-gate"),
        ),
        identity: vec![gate_role_policy(&w.topo, e)],
    }
}

fn to_service(w: &World, who: &world::Who, env: &str, label: &str, ask: &Ask) -> Probe {
    Probe::hop(label, assume(who, &w.service_role(env), ask))
}

fn legit_prod(w: &World) -> Probe {
    to_service(
        w,
        &gate_session(w, "prod"),
        "prod",
        "prod gate (protected main of acme/shop, production) -> prod service role (the gate)",
        &attested(&prod_claims()),
    )
}

fn legit_nonprod(w: &World) -> Probe {
    to_service(
        w,
        &gate_session(w, "nonprod"),
        "nonprod",
        "nonprod gate (feature-x of acme/shop, staging) -> nonprod service role (the gate)",
        &attested(&nonprod_claims()),
    )
}

pub fn threats() -> Vec<Threat> {
    let g = gate_world();
    let prod = attested(&prod_claims());
    vec![
        Threat::new(
            "only_the_environments_gate_role_can_assume_its_service_role",
            "a compromised gate (or anything else in the broker account) reaches another environment",
            "nonprod's gate role asks for the prod service role with prod's attested tags; prod's gate asks for nonprod's; a broker-account role allowed everything and a prod deployment session ask for the prod service role",
            "AWS: each gate role's identity policy names only its environment's service role, and each gate-mode service role trusts only its environment's gate role (no web-identity trust)",
        )
        .control(legit_prod(&g))
        .control(legit_nonprod(&g))
        .refused(to_service(
            &g,
            &gate_session(&g, "nonprod"),
            "prod",
            "nonprod gate -> prod service role (prod's tags)",
            &prod,
        ))
        .refused(to_service(
            &g,
            &gate_session(&g, "prod"),
            "nonprod",
            "prod gate -> nonprod service role",
            &attested(&nonprod_claims()),
        ))
        .refused(to_service(
            &g,
            &world::Who {
                arn: "arn:aws:iam::111111111111:role/ops-admin".into(),
                identity: vec![world::allow_everything()],
            },
            "prod",
            "broker-account role allowed everything -> prod service role",
            &prod,
        ))
        .refused(to_service(
            &g,
            &g.deploy_session("prod", "prod-eu"),
            "prod",
            "prod deployment session (Allow *) -> prod service role",
            &prod,
        )),
        Threat::new(
            "a_gate_request_without_the_attested_tags_is_refused",
            "a gate whose rules were loosened (a stale or hand-edited config, a bug) hands prod to a job the topology does not admit",
            "prod's gate role asks for the prod service role with `gitlab:ref_protected=false`, another `gitlab:project_id`, environment `staging`, `gitlab:environment_protected=false`, no tags, no SourceIdentity, or a tag key the gate never sets",
            "AWS: the prod service role's trust requires the tags its rules pin (`aws:RequestTag/gitlab:ref_protected = true`, project id, environment, tier) and a SourceIdentity of its projects; rolehop's gate sets them only from signed claims. Not against a compromised gate role, which picks its tags: that is bounded by one gate per environment",
        )
        .control(legit_prod(&g))
        .refused(to_service(
            &g,
            &gate_session(&g, "prod"),
            "prod",
            "prod gate, unprotected ref -> prod service role",
            &attested(&GitlabClaims {
                ref_protected: false,
                ..prod_claims()
            }),
        ))
        .refused(to_service(
            &g,
            &gate_session(&g, "prod"),
            "prod",
            "prod gate, fork (project id 43) -> prod service role",
            &attested(&GitlabClaims {
                project_id: "43".into(),
                ..prod_claims()
            }),
        ))
        .refused(to_service(
            &g,
            &gate_session(&g, "prod"),
            "prod",
            "prod gate, environment staging -> prod service role",
            &attested(&GitlabClaims {
                environment: Some("staging".into()),
                ..prod_claims()
            }),
        ))
        .refused(to_service(
            &g,
            &gate_session(&g, "prod"),
            "prod",
            "prod gate, unprotected GitLab environment -> prod service role",
            &attested(&GitlabClaims {
                environment_protected: Some(false),
                ..prod_claims()
            }),
        ))
        .refused(to_service(
            &g,
            &gate_session(&g, "prod"),
            "prod",
            "prod gate, no session tags -> prod service role",
            &Ask {
                tags: vec![],
                transitive: vec![],
                ..prod.clone()
            },
        ))
        .refused(to_service(
            &g,
            &gate_session(&g, "prod"),
            "prod",
            "prod gate, no SourceIdentity -> prod service role",
            &prod.clone().source_identity(None),
        ))
        .refused(to_service(
            &g,
            &gate_session(&g, "prod"),
            "prod",
            "prod gate, extra tag key -> prod service role",
            &prod.clone().tag("team", "ops"),
        )),
        Threat::new(
            "an_unprotected_branch_is_refused_by_the_gate_whatever_its_sub",
            "a developer pushes an unprotected branch (or opens a merge request, or forks) and posts its ID token straight to the prod gate, without rolehop",
            "tokens signed by the issuer for branch `main` unprotected, a `merge_request_event` pipeline and a fork (project id 43 at path acme/shop) posted to `rolehop gate serve` running the rendered gate-prod.toml",
            "rolehop's gate on claims GitLab signed (403 naming `ref_protected`, `pipeline_sources`, `project_ids`); GitLab sets those claims from its protected-branch and environment settings, which the job author cannot change",
        )
        .with_cli("rolehop gate serve (rendered config)", cli_gate_refuses_unprotected_refs),
    ]
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The rendered gate-prod.toml of examples/oidc-gate, pointed at the local issuer, served in
/// dry-run mode (no STS: the rules are what is attacked); real signed tokens.
pub fn cli_gate_refuses_unprotected_refs() {
    let issuer = OidcIssuer::start();
    let w = gate_world();
    let config = rolehop_render::gate::gate_config(&w.topo, w.env("prod"))
        .unwrap()
        .replace("https://gitlab.example.com", &issuer.url());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate-prod.toml");
    std::fs::write(&path, config).unwrap();
    let port = free_port();
    let _gate = Serve(
        Command::new(assert_cmd::cargo::cargo_bin("rolehop"))
            .args(["gate", "serve", "--dry-run", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--config")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !matches!(http_request(port, "GET", "/healthz", &[], ""), Ok((200, _))) {
        assert!(Instant::now() < deadline, "the gate did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let aud = "https://gate.rolehop.example.com";
    let post = |token: String| -> (u16, serde_json::Value) {
        let body = json!({"environment": "prod", "token": token}).to_string();
        let (s, text) = http_request(port, "POST", "/", &[], &body).unwrap();
        (s, serde_json::from_str(&text).unwrap())
    };
    let (s, v) = post(issuer.token(aud).sign());
    assert_eq!(s, 200, "the legitimate prod job: {v}");
    for (label, token, rule) in [
        (
            "unprotected main",
            issuer.token(aud).branch("main", false).sign(),
            "ref_protected",
        ),
        (
            "merge request pipeline",
            issuer
                .token(aud)
                .claim("pipeline_source", "merge_request_event")
                .sign(),
            "pipeline_sources",
        ),
        (
            "fork at the same path",
            issuer.token(aud).claim("project_id", "43").sign(),
            "project_ids",
        ),
        (
            "unprotected GitLab environment",
            issuer
                .token(aud)
                .claim("environment_protected", "false")
                .sign(),
            "environment_protected",
        ),
    ] {
        let (s, v) = post(token);
        assert_eq!(s, 403, "{label}: {v}");
        assert_eq!(v["rule"], rule, "{label}: {v}");
    }
}
