//! `cargo bench -p rolehop-gate`: latency of one gate decision with a warm JWKS cache — verify
//! an RS256 GitLab token (form, allow-list, key lookup, signature, claims, times), evaluate a
//! production rule set and derive the attested session — as p50/p99/max over individually
//! timed calls, plus the signature alone. Tokens are signed for real by the test-only key and
//! all distinct (a job id each). A plain harness keeps dependencies out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use rolehop_gate::{
    Alg, AttestedSession, Decision, FetchError, JwksCache, JwksSettings, KeySource, ManualClock,
    Rules, Verifier, VerifierSettings,
};
use rolehop_testkit::oidc_issuer::{OidcIssuer, TestKey};

const AUD: &str = "https://gate.rolehop.test";
const NOW: i64 = 1_900_000_000;

/// The issuer's documents from memory: the bench measures the gate, not a socket.
struct Fixed {
    issuer: String,
    jwks: String,
}

impl KeySource for Fixed {
    fn get(&self, url: &str, _max: usize) -> Result<Vec<u8>, FetchError> {
        Ok(if url.ends_with("/openid-configuration") {
            format!(
                r#"{{"issuer":"{0}","jwks_uri":"{0}/oauth/discovery/keys"}}"#,
                self.issuer
            )
        } else {
            self.jwks.clone()
        }
        .into_bytes())
    }
}

fn percentiles(name: &str, mut ns: Vec<u64>) {
    ns.sort_unstable();
    let p = |q: f64| ns[((ns.len() as f64 * q) as usize).min(ns.len() - 1)] as f64 / 1000.0;
    println!(
        "{name:<44} p50 {:>7.1} us  p99 {:>7.1} us  max {:>8.1} us  ({} calls)",
        p(0.50),
        p(0.99),
        *ns.last().unwrap() as f64 / 1000.0,
        ns.len()
    );
}

fn main() {
    let issuer = OidcIssuer::start();
    let key = TestKey::load("gitlab-1");
    let clock = ManualClock::at(NOW);
    let cache = JwksCache::new(
        issuer.url(),
        vec![Alg::RS256],
        JwksSettings::default(),
        Box::new(Fixed {
            issuer: issuer.url(),
            jwks: serde_json::json!({ "keys": [key.jwk] }).to_string(),
        }),
        Arc::new(clock.clone()),
    );
    let verifier = Verifier::new(
        VerifierSettings::new(issuer.url(), AUD),
        cache,
        Arc::new(clock),
    );
    let rules = Rules::from_json(
        r#"{"project_ids":["42"],"project_paths":["acme/shop"],"branches":["main","release/*"],"tags":["v*"],
            "ref_protected":true,"environments":["production"],"environment_protected":true,
            "deployment_tiers":["production"],"pipeline_sources":{"deny":["merge_request_event"]}}"#,
    )
    .unwrap();
    let tokens: Vec<String> = (0..2000)
        .map(|i| {
            issuer
                .token_at(AUD, NOW)
                .claim("job_id", format!("{}", 10_000 + i))
                .sign()
        })
        .collect();
    // Warm the cache (one fetch) and the CPU.
    for t in tokens.iter().take(200) {
        verifier.verify(t).unwrap();
    }
    let rounds = 10;
    let mut decide = Vec::with_capacity(tokens.len() * rounds);
    for _ in 0..rounds {
        for t in &tokens {
            let start = Instant::now();
            let v = verifier.verify(black_box(t)).unwrap();
            assert_eq!(rules.evaluate(&v.claims), Decision::Allowed);
            black_box(AttestedSession::from_claims(&v.claims));
            decide.push(start.elapsed().as_nanos() as u64);
        }
    }
    percentiles("verify + rules + session (warm JWKS)", decide);

    let decoding =
        jsonwebtoken::DecodingKey::from_jwk(&serde_json::from_value(key.jwk.clone()).unwrap())
            .unwrap();
    let mut sig = Vec::with_capacity(tokens.len() * rounds);
    for _ in 0..rounds {
        for t in &tokens {
            let (input, s) = t.rsplit_once('.').unwrap();
            let start = Instant::now();
            let ok = jsonwebtoken::crypto::verify(
                s,
                input.as_bytes(),
                &decoding,
                jsonwebtoken::Algorithm::RS256,
            )
            .unwrap();
            sig.push(start.elapsed().as_nanos() as u64);
            assert!(ok);
        }
    }
    percentiles("RS256 signature alone (aws-lc)", sig);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at the end: {}", load.trim());
}
