//! The gate's verification and rules against the local GitLab-like issuer, every token signed
//! for real: each attack from issue 12 performed and refused with the status the HTTP layer
//! will answer; key rotation; the issuer down, slow or answering garbage; each claim rule.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rolehop_gate::request::verify_status;
use rolehop_gate::{
    Decision, FetchError, GitlabClaims, JwksCache, JwksSettings, KeySource, ManualClock, Rules,
    Status, TokenError, Verifier, VerifierSettings, VerifyError,
};
use rolehop_testkit::oidc_issuer::{IssuerFault, OidcIssuer, TestKey, tamper};
use serde_json::json;

const AUD: &str = "https://gate.rolehop.test";
const NOW: i64 = 1_900_000_000;

/// A plain HTTP GET on loopback with a 1 s timeout (the binary's rim uses ureq).
struct Loopback;

impl KeySource for Loopback {
    fn get(&self, url: &str, max: usize) -> Result<Vec<u8>, FetchError> {
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_at(rest.find('/').unwrap());
        let mut s = TcpStream::connect(host).map_err(|e| FetchError::Unavailable(e.to_string()))?;
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out)
            .map_err(|e| FetchError::Unavailable(format!("timed out: {e}")))?;
        let text = String::from_utf8_lossy(&out);
        let status: u16 = text.split_whitespace().nth(1).unwrap().parse().unwrap();
        let body = text.split_once("\r\n\r\n").unwrap().1.as_bytes().to_vec();
        match status {
            200 if body.len() > max => Err(FetchError::Bad(format!("more than {max} bytes"))),
            200 => Ok(body),
            s if s >= 500 => Err(FetchError::Unavailable(format!("HTTP {s}"))),
            s => Err(FetchError::Bad(format!("HTTP {s}"))),
        }
    }
}

struct Fixture {
    issuer: OidcIssuer,
    clock: ManualClock,
    verifier: Verifier,
}

fn fixture_with(f: impl FnOnce(&mut VerifierSettings)) -> Fixture {
    let issuer = OidcIssuer::start();
    let clock = ManualClock::at(NOW);
    let mut settings = VerifierSettings::new(issuer.url(), AUD);
    f(&mut settings);
    let cache = JwksCache::new(
        issuer.url(),
        settings.algorithms.clone(),
        JwksSettings::default(),
        Box::new(Loopback),
        Arc::new(clock.clone()),
    );
    let verifier = Verifier::new(settings, cache, Arc::new(clock.clone()));
    Fixture {
        issuer,
        clock,
        verifier,
    }
}

fn fixture() -> Fixture {
    fixture_with(|_| {})
}

impl Fixture {
    fn token(&self) -> rolehop_testkit::oidc_issuer::TokenBuilder {
        self.issuer.token_at(AUD, NOW)
    }
    fn refused(&self, token: &str) -> (Status, String) {
        let e = self.verifier.verify(token).unwrap_err();
        (verify_status(&e), e.to_string())
    }
}

#[test]
fn a_gitlab_token_verifies_with_every_claim_typed() {
    let f = fixture();
    let v = f.verifier.verify(&f.token().sign()).unwrap();
    let c = &v.claims;
    assert_eq!(
        (c.project_id.as_str(), c.project_path.as_str()),
        ("42", "acme/shop")
    );
    assert!(c.ref_protected);
    assert_eq!(c.environment_protected, Some(true));
    assert_eq!(c.runner_id.as_deref(), Some("17"));
    assert_eq!(v.kid, f.issuer.signing_key().kid);
    // A second token is answered from the cache.
    f.verifier.verify(&f.token().sign()).unwrap();
    assert_eq!(f.issuer.jwks_fetches(), 1);
}

#[test]
fn forged_and_confused_signatures_are_401() {
    let f = fixture();
    let attacker = TestKey::load("attacker");
    let good = f.token().sign();
    // Signed with the attacker's key under the issuer's kid.
    let (s, m) = f.refused(&f.token().key(&attacker).sign());
    assert_eq!(s, Status(401));
    assert!(m.contains("signature does not verify"), "{m}");
    // A valid token with one claim changed after signing.
    let (s, m) = f.refused(&tamper(&good, "project_id", json!("43")));
    assert_eq!(
        (s, m.contains("signature does not verify")),
        (Status(401), true),
        "{m}"
    );
    // alg none, HS256 keyed with the public key, each named.
    let (s, m) = f.refused(&f.token().unsigned_none());
    assert_eq!(s, Status(401));
    assert!(m.contains("algorithm `none` is not allowed"), "{m}");
    let (s, m) = f.refused(&f.token().hs256_with_public_key());
    assert_eq!(s, Status(401));
    assert!(m.contains("algorithm `HS256` is not allowed"), "{m}");
    // RS384 is not on the default allow-list even with the right key.
    let (s, m) = f.refused(&f.token().header("alg", "RS384").sign());
    assert_eq!(
        (s, m.contains("`RS384` is not allowed")),
        (Status(401), true),
        "{m}"
    );
    // No kid: the gate never tries every key.
    let (s, m) = f.refused(&f.token().header("kid", json!(null)).sign());
    assert_eq!((s, m.contains("no `kid`")), (Status(401), true), "{m}");
}

#[test]
fn times_issuer_and_audience_are_enforced_with_leeway() {
    let f = fixture();
    let t = f.token().sign(); // iat NOW, nbf NOW-5, exp NOW+300
    f.clock.set(NOW + 300 + 60);
    f.verifier.verify(&t).unwrap(); // within the 60 s leeway
    f.clock.set(NOW + 300 + 61);
    let (s, m) = f.refused(&t);
    assert_eq!((s, m.contains("expired")), (Status(401), true), "{m}");

    f.clock.set(NOW);
    let early = f.token().claim("nbf", NOW + 120).sign();
    let (s, m) = f.refused(&early);
    assert_eq!(
        (s, m.contains("not valid before")),
        (Status(401), true),
        "{m}"
    );
    let future = f.token().claim("iat", NOW + 120).sign();
    assert!(f.refused(&future).1.contains("in the future"));
    // A long-lived token is still refused once older than max_token_age (1 h).
    let old = f
        .token()
        .claim("iat", NOW - 3700)
        .claim("exp", NOW + 3600)
        .sign();
    let (s, m) = f.refused(&old);
    assert_eq!(
        (s, m.contains("issued 3700s ago")),
        (Status(401), true),
        "{m}"
    );

    let (s, m) = f.refused(&f.token().claim("iss", "https://gitlab.com").sign());
    assert_eq!(s, Status(401));
    assert!(m.contains("issued by `https://gitlab.com`"), "{m}");
    let (s, m) = f.refused(&f.token().claim("aud", "https://vault.example").sign());
    assert_eq!(
        (s, m.contains("audience is `https://vault.example`")),
        (Status(401), true),
        "{m}"
    );
    // An array audience is accepted when it contains the gate's.
    f.verifier
        .verify(&f.token().claim("aud", json!(["x", AUD])).sign())
        .unwrap();
    // A token of another issuer never makes the gate fetch keys.
    assert_eq!(f.issuer.jwks_fetches(), 1);
}

#[test]
fn claims_of_the_wrong_type_are_401_naming_the_claim() {
    let f = fixture();
    for (claim, value, want) in [
        (
            "ref_protected",
            json!(true),
            "claim `ref_protected` must be the string \"true\" or \"false\"",
        ),
        (
            "ref_protected",
            json!("yes"),
            "claim `ref_protected` must be the string",
        ),
        (
            "project_id",
            json!(42),
            "claim `project_id` must be a string",
        ),
        (
            "project_id",
            json!("42abc"),
            "claim `project_id` must be a string of digits",
        ),
        ("exp", json!("soon"), "claim `exp` must be a number"),
        (
            "aud",
            json!({"a": 1}),
            "claim `aud` must be a string or an array",
        ),
        (
            "environment_protected",
            json!(1),
            "claim `environment_protected` must be the string",
        ),
    ] {
        let (s, m) = f.refused(&f.token().claim(claim, value).sign());
        assert_eq!(s, Status(401), "{claim}");
        assert!(m.contains(want), "{claim}: {m}");
    }
    let (s, m) = f.refused(&f.token().without("project_id").sign());
    assert_eq!(
        (s, m.as_str()),
        (Status(401), "claim `project_id` is missing")
    );
}

#[test]
fn oversized_tokens_are_413_and_never_fetched_for() {
    let f = fixture();
    let big = f.token().claim("pad", "x".repeat(20_000)).sign();
    let (s, m) = f.refused(&big);
    assert_eq!(s, Status(413), "{m}");
    assert_eq!(f.issuer.jwks_fetches(), 0);
}

#[test]
fn key_rotation_works_after_one_refetch_and_random_kids_cannot_hammer_the_issuer() {
    let f = fixture();
    f.verifier.verify(&f.token().sign()).unwrap();
    assert_eq!(f.issuer.jwks_fetches(), 1);

    // GitLab rotates: publish key 2, sign with it, retire key 1.
    let k1 = f.issuer.signing_key();
    let k2 = TestKey::load("gitlab-2");
    f.issuer.publish(&k2);
    f.issuer.sign_with(&k2);
    f.issuer.retire(&k1.kid);
    let v = f.verifier.verify(&f.token().sign()).unwrap();
    assert_eq!(v.kid, k2.kid);
    assert_eq!(f.issuer.jwks_fetches(), 2, "one refetch for the new kid");

    // A flood of unknown kids: one refetch per interval at most.
    f.clock.advance(61);
    for i in 0..50 {
        let (s, m) = f.refused(&f.token().header("kid", format!("random-{i}")).sign());
        assert_eq!(s, Status(401));
        assert!(m.contains("no key `random-"), "{m}");
    }
    assert_eq!(f.issuer.jwks_fetches(), 3);
    // The retired key no longer verifies (its tokens are refused, not trusted from memory).
    let old = f.token().key(&k1).header("kid", k1.kid.clone()).sign();
    assert_eq!(f.refused(&old).0, Status(401));
    // Genuine tokens keep verifying during the flood.
    f.verifier.verify(&f.token().sign()).unwrap();
}

#[test]
fn replayed_tokens_are_refused_when_jti_checking_is_on() {
    let f = fixture_with(|s| s.replay_capacity = Some(1000));
    let t = f.token().sign();
    let v = f.verifier.verify(&t).unwrap();
    let (s, m) = f.refused(&t);
    assert_eq!((s, m.contains("already used")), (Status(401), true), "{m}");
    // STS failed after acceptance: the job may retry with the same token.
    f.verifier.release(&v);
    f.verifier.verify(&t).unwrap();
    let (s, m) = f.refused(&f.token().without("jti").sign());
    assert_eq!((s, m.as_str()), (Status(401), "claim `jti` is missing"));
}

#[test]
fn issuer_down_slow_or_garbage_fails_closed_without_hammering() {
    let f = fixture();
    f.issuer.set_fault(Some(IssuerFault::Down));
    let (s, m) = f.refused(&f.token().sign());
    assert_eq!(s, Status(503));
    assert!(
        m.contains("unavailable, so no token is accepted") && m.contains("HTTP 503"),
        "{m}"
    );
    let before = f.issuer.requests().len();
    for _ in 0..20 {
        assert_eq!(f.refused(&f.token().sign()).0, Status(503));
    }
    assert_eq!(
        f.issuer.requests().len(),
        before,
        "no fetch within the interval"
    );

    f.clock.advance(61);
    f.issuer.set_fault(Some(IssuerFault::GarbageJwks));
    let (s, m) = f.refused(&f.token().sign());
    assert_eq!(
        (s, m.contains("the JWKS is not JSON")),
        (Status(502), true),
        "{m}"
    );

    f.clock.advance(61);
    f.issuer.set_fault(Some(IssuerFault::HugeJwks));
    let (s, m) = f.refused(&f.token().sign());
    assert_eq!(s, Status(502), "{m}");

    f.clock.advance(61);
    f.issuer
        .set_fault(Some(IssuerFault::Slow(Duration::from_secs(3))));
    let (s, m) = f.refused(&f.token().sign());
    assert_eq!((s, m.contains("timed out")), (Status(503), true), "{m}");

    // Back up: accepted again after the interval, and keys expire after their TTL.
    f.clock.advance(61);
    f.issuer.set_fault(None);
    f.verifier
        .verify(&f.issuer.token_at(AUD, NOW + 244).sign())
        .unwrap();
    f.issuer.set_fault(Some(IssuerFault::Down));
    f.clock.advance(601);
    let (s, _) = f.refused(&f.issuer.token_at(AUD, NOW + 845).sign());
    assert_eq!(
        s,
        Status(503),
        "stale keys are not used once the issuer is down"
    );
}

#[test]
fn an_issuer_nobody_listens_on_is_503() {
    let port = rolehop_testkit::free_port();
    let clock = ManualClock::at(NOW);
    let url = format!("http://127.0.0.1:{port}");
    let cache = JwksCache::new(
        url.clone(),
        vec![rolehop_gate::Alg::RS256],
        JwksSettings::default(),
        Box::new(Loopback),
        Arc::new(clock.clone()),
    );
    let v = Verifier::new(
        VerifierSettings::new(url.clone(), AUD),
        cache,
        Arc::new(clock),
    );
    let issuer = OidcIssuer::start();
    let t = issuer.token_at(AUD, NOW).claim("iss", url).sign();
    let e = v.verify(&t).unwrap_err();
    assert_eq!(verify_status(&e), Status(503));
    assert!(matches!(e, VerifyError::Keys(_)));
}

fn prod_rules() -> Rules {
    Rules::from_json(
        r#"{"project_ids":["42"],"project_paths":["acme/shop"],"namespace_ids":["7"],"namespace_paths":["acme"],
            "branches":["main","release/*"],"tags":["v*"],"ref_protected":true,
            "environments":["production"],"environment_protected":true,"deployment_tiers":["production"],
            "pipeline_sources":{"deny":["merge_request_event"]},"runner_environments":["gitlab-hosted"],
            "user_access_levels":["maintainer","owner"]}"#,
    )
    .unwrap()
}

fn claims(f: &Fixture, b: rolehop_testkit::oidc_issuer::TokenBuilder) -> GitlabClaims {
    f.verifier.verify(&b.sign()).unwrap().claims
}

#[test]
fn every_claim_rule_is_enforced_and_named() {
    let f = fixture();
    let rules = prod_rules();
    assert_eq!(rules.evaluate(&claims(&f, f.token())), Decision::Allowed);
    let tag = f.token().claim("ref", "v1.2").claim("ref_type", "tag");
    assert_eq!(rules.evaluate(&claims(&f, tag)), Decision::Allowed);
    let cases = [
        (f.token().claim("project_id", "43"), "project_ids", "`43`"),
        (
            f.token().claim("project_path", "acme/shop-fork"),
            "project_paths",
            "`acme/shop-fork`",
        ),
        (f.token().claim("namespace_id", "8"), "namespace_ids", "`8`"),
        (
            f.token().claim("namespace_path", "mallory"),
            "namespace_paths",
            "`mallory`",
        ),
        (
            f.token().claim("pipeline_source", "merge_request_event"),
            "pipeline_sources",
            "`merge_request_event`",
        ),
        (
            f.token().branch("feature/x", true),
            "branches",
            "branch `feature/x`",
        ),
        // A branch named like a release tag is not a tag.
        (f.token().branch("v9", true), "branches", "branch `v9`"),
        (
            f.token().claim("ref_type", "tag").claim("ref", "nightly"),
            "tags",
            "tag `nightly`",
        ),
        (
            f.token().branch("release/evil", false),
            "ref_protected",
            "`false` for branch `release/evil`",
        ),
        (
            f.token().claim("environment", "staging"),
            "environments",
            "`staging`",
        ),
        (
            f.token().without("environment"),
            "environments",
            "nothing (claim absent)",
        ),
        (
            f.token().claim("environment_protected", "false"),
            "environment_protected",
            "`false`",
        ),
        (
            f.token().claim("deployment_tier", "staging"),
            "deployment_tiers",
            "`staging`",
        ),
        (
            f.token().claim("runner_environment", "self-hosted"),
            "runner_environments",
            "`self-hosted`",
        ),
        (
            f.token().claim("user_access_level", "developer"),
            "user_access_levels",
            "`developer`",
        ),
    ];
    for (b, rule, actual) in cases {
        match rules.evaluate(&claims(&f, b)) {
            Decision::Refused(r) => {
                assert_eq!(r.rule, rule);
                assert!(r.actual.contains(actual), "{rule}: {}", r.actual);
            }
            Decision::Allowed => panic!("{rule} not enforced"),
        }
    }
}

#[test]
fn an_unprotected_branch_whose_sub_matches_a_prod_pattern_is_refused_for_ref_protected() {
    // A trust policy on `sub` alone (`...:ref_type:branch:ref:release/*`) would admit it.
    let f = fixture();
    let rules =
        Rules::from_json(r#"{"project_ids":["42"],"branches":["main","release/*"]}"#).unwrap();
    let Decision::Refused(r) = rules.evaluate(&claims(&f, f.token().branch("release/evil", false)))
    else {
        panic!("admitted");
    };
    assert_eq!(r.rule, "ref_protected");
    assert_eq!(
        r.to_string(),
        "rule `ref_protected` refused the job: expected `true` (a protected branch or tag), the token says `false` for branch `release/evil`"
    );
}

#[test]
fn rule_sets_that_admit_anything_are_refused() {
    for (json, want) in [
        (
            r#"{"branches":["main"]}"#,
            "rules.project_ids: name the projects",
        ),
        (r#"{"project_ids":["42"]}"#, "rules.branches: name the refs"),
        (
            r#"{"project_paths":["*"],"branches":["main"]}"#,
            "admits every project path",
        ),
        (
            r#"{"project_ids":["acme"],"branches":["main"]}"#,
            "not a GitLab id",
        ),
        (
            r#"{"project_ids":["42"],"branches":["main"],"refs":["x"]}"#,
            "unknown field `refs`",
        ),
    ] {
        let e = Rules::from_json(json).unwrap_err();
        let text = e
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        assert!(text.contains(want), "{json}: {text}");
    }
}

#[test]
fn the_attested_session_comes_from_signed_claims() {
    let f = fixture();
    let c = claims(&f, f.token().claim("job_id", "5005"));
    let s = rolehop_gate::AttestedSession::from_claims(&c);
    assert_eq!(s.session_name, "gl-42-1001-5005");
    assert_eq!(s.source_identity, "acme.shop@1001");
    let tag = |k: &str| s.tags.iter().find(|t| t.key == k).map(|t| t.value.as_str());
    assert_eq!(tag("gitlab:ref_protected"), Some("true"));
    assert_eq!(tag("gitlab:environment_protected"), Some("true"));
    assert_eq!(tag("gitlab:project_id"), Some("42"));
    assert_eq!(tag("gitlab:project"), Some("acme/shop"));
    assert_eq!(tag("gitlab:runner_environment"), Some("gitlab-hosted"));
    assert!(s.tags.len() <= 50);
    let odd = claims(&f, f.token().branch("feat/x#1", true));
    let s = rolehop_gate::AttestedSession::from_claims(&odd);
    assert_eq!(tag_of(&s, "gitlab:ref"), Some("feat/x=231".to_owned()));
}

fn tag_of(s: &rolehop_gate::AttestedSession, k: &str) -> Option<String> {
    s.tags.iter().find(|t| t.key == k).map(|t| t.value.clone())
}

#[test]
fn token_errors_never_carry_the_token() {
    let f = fixture();
    let t = f.token().key(&TestKey::load("attacker")).sign();
    let sig = t.rsplit('.').next().unwrap();
    let (_, m) = f.refused(&t);
    assert!(!m.contains(sig) && !m.contains(&t[..40]));
    let _ = TokenError::MissingKid;
}

#[test]
fn the_config_file_becomes_validated_settings() {
    let c = rolehop_gate::GateConfig::from_toml(
        r#"issuer = "https://gitlab.example.com/"
audience = "https://gate.example"
region = "eu-west-1"
algorithms = ["RS256", "ES256"]
leeway = "30s"
max_token_age = "2h"
replay = true
jwks_ttl = "5m"
jwks_refetch_interval = 30
[environments.prod]
service_role_arn = "arn:aws:iam::111111111111:role/rolehop-prod-service"
[environments.prod.rules]
project_ids = ["42"]
tags = ["v*"]
"#,
        "gate.toml",
    )
    .unwrap();
    let v = &c.verifier;
    assert_eq!(v.issuer, "https://gitlab.example.com");
    assert_eq!(
        v.algorithms,
        [rolehop_gate::Alg::RS256, rolehop_gate::Alg::ES256]
    );
    assert_eq!(
        (v.leeway_secs, v.max_token_age_secs, v.replay_capacity),
        (30, 7200, Some(100_000))
    );
    assert_eq!((c.jwks.ttl_secs, c.jwks.refetch_interval_secs), (300, 30));
    let prod = &c.environments["prod"];
    assert!(
        prod.rules.ref_protected,
        "protected refs only unless said otherwise"
    );
    assert!(prod.rules.branches.is_empty());

    let e = rolehop_gate::GateConfig::from_toml(
        "issuer = \"https://x\"\naudience = \"a\"\nleeway = \"10m\"\nbogus = 1\n",
        "g.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("g.toml: ") && e.contains("unknown field `bogus`"),
        "{e}"
    );
    let e = rolehop_gate::GateConfig::from_toml(
        "issuer = \"https://x\"\naudience = \"a\"\nleeway = \"10m\"\n",
        "g.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("leeway: at most 5m")
            && e.contains("environments: the gate serves no environment"),
        "{e}"
    );
}
