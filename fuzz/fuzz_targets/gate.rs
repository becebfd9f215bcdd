//! Fuzzes the claim gate's parsers: a token through the whole verifier (against a fixed JWKS
//! of the test-only key `gitlab-1`), its header and payload through the claim reader, the rules
//! and the attested session; a JWKS, a discovery document and a request body on their own.
//! The first byte picks the input kind (`T`oken, `J`WKS, `D`iscovery, `R`equest). Any input
//! must give a value or an error, never a panic; errors never repeat the token; derived
//! session names, SourceIdentity and tags always fit STS.
#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use rolehop_gate::jwks::{parse_discovery, parse_jwks};
use rolehop_gate::request::parse_request;
use rolehop_gate::{
    Alg, AttestedSession, FetchError, GitlabClaims, JwksCache, JwksSettings, KeySource,
    ManualClock, Rules, Verifier, VerifierSettings,
};

const ISSUER: &str = "https://gitlab.example.com";
const JWKS: &str = include_str!("gate_jwks.json");

struct Fixed;

impl KeySource for Fixed {
    fn get(&self, url: &str, _max: usize) -> Result<Vec<u8>, FetchError> {
        if url.ends_with("/openid-configuration") {
            Ok(
                format!(r#"{{"issuer":"{ISSUER}","jwks_uri":"{ISSUER}/oauth/discovery/keys"}}"#)
                    .into_bytes(),
            )
        } else {
            Ok(JWKS.as_bytes().to_vec())
        }
    }
}

static VERIFIER: LazyLock<Verifier> = LazyLock::new(|| {
    let clock = Arc::new(ManualClock::at(1_900_000_000));
    let cache = JwksCache::new(
        ISSUER,
        vec![Alg::RS256],
        JwksSettings::default(),
        Box::new(Fixed),
        clock.clone(),
    );
    Verifier::new(
        VerifierSettings::new(ISSUER, "https://gate.rolehop.test"),
        cache,
        clock,
    )
});

static RULES: LazyLock<Option<Rules>> = LazyLock::new(|| {
    Rules::from_json(r#"{"project_ids":["42"],"project_paths":["acme/*"],"branches":["main","release/*"],"tags":["v*"],"environments":["prod*"],"environment_protected":true,"pipeline_sources":{"deny":["merge_request_event"]}}"#).ok()
});

fn sts_name(s: &str) -> bool {
    (2..=64).contains(&s.chars().count())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
}

fn check_claims(c: &GitlabClaims) {
    if let Some(rules) = RULES.as_ref() {
        let _ = rules.evaluate(c);
    }
    let s = AttestedSession::from_claims(c);
    assert!(
        sts_name(&s.session_name),
        "session name {:?}",
        s.session_name
    );
    assert!(sts_name(&s.source_identity) && !s.source_identity.starts_with("aws:"));
    assert!(s.tags.len() <= 50);
    for t in &s.tags {
        assert!(t.value.chars().count() <= 256 && t.key.len() <= 128);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    match kind {
        b'T' => {
            let Ok(token) = std::str::from_utf8(rest) else {
                return;
            };
            match VERIFIER.verify(token) {
                Ok(v) => check_claims(&v.claims),
                Err(e) => {
                    let t = token.trim();
                    if t.len() >= 24 {
                        assert!(!e.to_string().contains(t), "the error repeats the token");
                    }
                }
            }
            if let Ok(p) = rolehop_gate::jwt::parse(token, &[Alg::RS256, Alg::ES256])
                && let Ok(c) = GitlabClaims::from_payload(&p.payload)
            {
                check_claims(&c);
            }
        }
        b'J' => {
            let _ = parse_jwks(rest, &[Alg::RS256, Alg::ES256]);
        }
        b'D' => {
            let _ = parse_discovery(rest, ISSUER);
        }
        b'R' => {
            let _ = parse_request("POST", None, rest, false);
        }
        _ => {}
    }
});
