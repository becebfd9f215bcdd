//! `rolehop gate serve` on loopback between the local GitLab-like issuer and moto's STS: a job's
//! real signed ID token becomes service-role credentials carrying the attested session name;
//! every bad request, bad token and refused rule gets its status; neither the token nor the
//! credentials ever reach the gate's log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::gate::{AUD, serve};
use common::{BROKER, TARGET, issued_in, stderr};
use rolehop_testkit::oidc_issuer::{OidcIssuer, TestKey};
use rolehop_testkit::{Moto, http_request, seed_chain};
use serde_json::json;

#[test]
fn a_protected_main_job_gets_service_role_credentials_with_the_attested_session_name() {
    let (moto, issuer) = (Moto::start(), OidcIssuer::start());
    let seed = seed_chain(&moto, BROKER, TARGET);
    let gate = serve(&moto, &seed, &issuer, &[]);

    let token = issuer.token(AUD).claim("job_id", "5005").sign();
    let (status, v) = gate.exchange("prod", &token);
    assert_eq!(status, 200, "{v}");
    let session = "arn:aws:sts::111111111111:assumed-role/rolehop-test-service/gl-42-1001-5005";
    assert_eq!(v["assumed_role_arn"], session);
    assert_eq!(v["hops"][0]["source_identity"], "acme.shop@1001");
    assert_eq!(v["hops"][0]["session_tags"], 13);
    let who = common::caller_identity(&moto, &v["credentials"]);
    assert_eq!(who["Arn"], session);

    // The same token again: refused as a replay (jti checking is on in this config).
    let (status, v) = gate.exchange("prod", &token);
    assert_eq!(
        (
            status,
            v["error"].as_str().unwrap().contains("already used")
        ),
        (401, true),
        "{v}"
    );

    // The token as a bearer header works too.
    let bearer = format!("Bearer {}", issuer.token(AUD).sign());
    let (status, v) = gate.post(&[("Authorization", &bearer)], r#"{"environment":"prod"}"#);
    assert_eq!(status, 200, "{v}");

    let log = gate.log();
    assert!(log.contains("issued session \"gl-42-1001-5005\""), "{log}");
    let issued = issued_in(&serde_json::to_string(&v).unwrap());
    assert!(!issued.is_empty());
    for secret in issued
        .iter()
        .chain([&token, &bearer[7..].to_owned(), &seed.secret_access_key])
    {
        assert!(
            !log.contains(secret.as_str()),
            "a secret reached the gate's log"
        );
    }
    let sig = token.rsplit('.').next().unwrap();
    assert!(!log.contains(sig));
}

#[test]
fn refusals_get_their_status_and_name_the_rule_without_echoing_the_token() {
    let (moto, issuer) = (Moto::start(), OidcIssuer::start());
    let seed = seed_chain(&moto, BROKER, TARGET);
    let gate = serve(&moto, &seed, &issuer, &[]);

    // An unprotected branch whose `sub` a `ref:release/*` trust policy would admit, posted
    // straight to the gate without rolehop.
    let evil = issuer.token(AUD).branch("release/evil", false).sign();
    let (status, v) = gate.exchange("prod", &evil);
    assert_eq!(status, 403, "{v}");
    assert_eq!(v["rule"], "ref_protected");
    assert_eq!(v["actual"], "`false` for branch `release/evil`");

    let mr = issuer
        .token(AUD)
        .claim("pipeline_source", "merge_request_event")
        .sign();
    assert_eq!(gate.exchange("prod", &mr).1["rule"], "pipeline_sources");

    let forged = issuer.token(AUD).key(&TestKey::load("attacker")).sign();
    let (status, v) = gate.exchange("prod", &forged);
    assert_eq!(status, 401, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("signature does not verify")
    );
    assert_eq!(
        gate.exchange("prod", &issuer.token(AUD).unsigned_none()).0,
        401
    );
    assert_eq!(
        gate.exchange("prod", &issuer.token(AUD).hs256_with_public_key())
            .0,
        401
    );
    let (status, v) = gate.exchange("staging", &issuer.token(AUD).sign());
    assert_eq!(status, 404, "{v}");

    for (body, headers, want) in [
        ("not json", vec![], 400),
        (r#"{"environment":"prod"}"#, vec![], 400),
        (
            r#"{"environment":"prod","token":"a.b.c","extra":1}"#,
            vec![],
            400,
        ),
        (
            r#"{"environment":"prod","token":"x"}"#,
            vec![("Authorization", "Bearer y")],
            400,
        ),
        (
            r#"{"environment":"prod"}"#,
            vec![("Authorization", "Basic eDp5")],
            400,
        ),
    ] {
        let (status, v) = gate.post(&headers, body);
        assert_eq!(status, want, "{body}: {v}");
    }
    let huge = json!({"environment": "prod", "token": "a".repeat(30_000)}).to_string();
    assert_eq!(gate.post(&[], &huge).0, 413);
    let long_token = issuer.token(AUD).claim("pad", "x".repeat(20_000)).sign();
    let (status, v) = gate.post(
        &[],
        &json!({"environment": "prod", "token": long_token}).to_string(),
    );
    assert_eq!(status, 413, "{v}");
    let (status, _) = http_request(gate.port, "GET", "/", &[], "").unwrap();
    assert_eq!(status, 405);

    let log = gate.log();
    assert!(
        log.contains("403 env=\"prod\" project=\"acme/shop\" (42) ref=\"release/evil\""),
        "{log}"
    );
    for t in [&evil, &mr, &forged] {
        assert!(
            !log.contains(t.rsplit('.').next().unwrap()),
            "a token reached the log"
        );
    }
}

#[test]
fn dry_run_answers_the_attested_session_and_never_calls_sts() {
    let (moto, issuer) = (Moto::start(), OidcIssuer::start());
    let seed = seed_chain(&moto, BROKER, TARGET);
    let gate = serve(&moto, &seed, &issuer, &["--dry-run"]);
    let (status, v) = gate.exchange("prod", &issuer.token(AUD).claim("job_id", "77").sign());
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["session_name"], "gl-42-1001-77");
    assert_eq!(v["session_tags"]["gitlab:ref_protected"], "true");
    assert!(v.get("credentials").is_none());
}

#[test]
fn a_broken_config_is_refused_at_start_with_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.toml");
    std::fs::write(
        &path,
        r#"issuer = "http://gitlab.example.com"
audience = "x"
algorithms = ["HS256"]
[environments.prod]
service_role_arn = "nope"
[environments.prod.rules]
project_paths = ["*"]
"#,
    )
    .unwrap();
    let out = assert_cmd::Command::cargo_bin("rolehop")
        .unwrap()
        .args(["gate", "serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    for want in [
        "issuer: `http://gitlab.example.com` must be an https URL",
        "algorithms: `HS256` is not allowed",
        "environments.prod.service_role_arn: `nope` is not an IAM role ARN",
        "environments.prod.rules.branches: name the refs",
        "environments.prod.rules.project_paths: `*` admits every project path",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
}
