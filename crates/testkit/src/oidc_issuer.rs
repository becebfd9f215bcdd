//! A GitLab-like OIDC issuer for tests: the discovery document at
//! `/.well-known/openid-configuration`, the JWKS at GitLab's `/oauth/discovery/keys`, RS256
//! tokens signed for real with test-only RSA keys (`crates/testkit/keys`, public, never to be
//! trusted anywhere), key rotation (publish a key, switch the signing key, retire the old one),
//! tokens with GitLab's full claim set from a builder with overrides, and faults (down, slow,
//! garbage JWKS). Also the forgeries an attacker would try: `alg: none`, HS256 keyed with the
//! issuer's public key, a foreign key under the issuer's kid.
//!
//! For scripts (the demo, through the `rolehop-test-issuer` binary) it also mints tokens over
//! HTTP: `POST /-/mint` with `{"aud": ..., "claims": {overrides}}` answers `{"token": ...}`.
//! GitLab has no such endpoint; it stands in for GitLab handing a job its ID token.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Map, Value, json};

/// A test-only RSA key pair shipped in `crates/testkit/keys`.
#[derive(Clone)]
pub struct TestKey {
    pub name: &'static str,
    /// GitLab's style: the key's RFC 7638 SHA-256 thumbprint.
    pub kid: String,
    pub encoding: EncodingKey,
    /// The public key as PEM text (what an attacker feeds HS256 as its secret).
    pub public_pem: &'static str,
    /// The public JWK as the issuer publishes it.
    pub jwk: Value,
}

impl TestKey {
    /// `gitlab-1`, `gitlab-2` (the issuer's) or `attacker`.
    pub fn load(name: &'static str) -> TestKey {
        let (private, public_pem): (&[u8], &str) = match name {
            "gitlab-1" => (
                include_bytes!("../keys/test-only-gitlab-1.pem"),
                include_str!("../keys/test-only-gitlab-1.pub.pem"),
            ),
            "gitlab-2" => (
                include_bytes!("../keys/test-only-gitlab-2.pem"),
                include_str!("../keys/test-only-gitlab-2.pub.pem"),
            ),
            "attacker" => (
                include_bytes!("../keys/test-only-attacker.pem"),
                include_str!("../keys/test-only-attacker.pub.pem"),
            ),
            other => panic!("no test key `{other}`"),
        };
        let encoding = EncodingKey::from_rsa_pem(private).unwrap();
        let jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).unwrap();
        let kid = jwk.thumbprint(ThumbprintHash::SHA256).unwrap();
        let mut v = serde_json::to_value(&jwk).unwrap();
        v["kid"] = json!(kid);
        v["use"] = json!("sig");
        v["alg"] = json!("RS256");
        TestKey {
            name,
            kid,
            encoding,
            public_pem,
            jwk: v,
        }
    }
}

/// What the issuer does wrong for every request until cleared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerFault {
    /// Every request answers 503 (GitLab down behind its load balancer).
    Down,
    /// Answers normally after this long (longer than the gate's fetch timeout).
    Slow(Duration),
    /// The JWKS is not JSON.
    GarbageJwks,
    /// The JWKS is a valid document far larger than any issuer's.
    HugeJwks,
}

struct State {
    published: Vec<TestKey>,
    signing: TestKey,
    fault: Option<IssuerFault>,
    /// Paths requested, in order.
    requests: Vec<String>,
}

/// The local issuer; stopped on drop.
pub struct OidcIssuer {
    pub port: u16,
    server: Arc<tiny_http::Server>,
    state: Arc<Mutex<State>>,
    thread: Option<JoinHandle<()>>,
    jti: Arc<AtomicU64>,
}

pub const JWKS_PATH: &str = "/oauth/discovery/keys";
/// Where scripts ask for a signed token (test issuer only; see the module docs).
pub const MINT_PATH: &str = "/-/mint";

impl OidcIssuer {
    /// An issuer publishing and signing with `gitlab-1`.
    pub fn start() -> OidcIssuer {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let key = TestKey::load("gitlab-1");
        let state = Arc::new(Mutex::new(State {
            published: vec![key.clone()],
            signing: key,
            fault: None,
            requests: Vec::new(),
        }));
        let jti = Arc::new(AtomicU64::new(1));
        let (srv, st, n) = (server.clone(), state.clone(), jti.clone());
        let thread = std::thread::spawn(move || {
            while let Ok(req) = srv.recv() {
                let (st, n) = (st.clone(), n.clone());
                std::thread::spawn(move || handle(&st, &n, port, req));
            }
        });
        OidcIssuer {
            port,
            server,
            state,
            thread: Some(thread),
            jti,
        }
    }

    /// The issuer URL (`iss`), like `https://gitlab.example.com` but on loopback http.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set_fault(&self, fault: Option<IssuerFault>) {
        self.state.lock().unwrap().fault = fault;
    }

    /// Publishes `key` next to the current ones (GitLab's rotation, step 1).
    pub fn publish(&self, key: &TestKey) {
        self.state.lock().unwrap().published.push(key.clone());
    }

    /// Signs new tokens with `key` (step 2). The key need not be published.
    pub fn sign_with(&self, key: &TestKey) {
        self.state.lock().unwrap().signing = key.clone();
    }

    /// Removes the key named `kid` from the JWKS (step 3).
    pub fn retire(&self, kid: &str) {
        self.state
            .lock()
            .unwrap()
            .published
            .retain(|k| k.kid != kid);
    }

    pub fn signing_key(&self) -> TestKey {
        self.state.lock().unwrap().signing.clone()
    }

    /// Paths requested so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.requests().iter().filter(|p| *p == JWKS_PATH).count()
    }

    /// A token for the default job (see [`TokenBuilder`]), issued now, valid 5 minutes.
    pub fn token(&self, audience: &str) -> TokenBuilder {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        self.token_at(audience, now)
    }

    /// A token issued at `now` (unix seconds; tests with an injected clock).
    pub fn token_at(&self, audience: &str, now: i64) -> TokenBuilder {
        let n = self.jti.fetch_add(1, Ordering::SeqCst);
        TokenBuilder::gitlab(&self.url(), audience, now, n, self.signing_key())
    }
}

impl Drop for OidcIssuer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A token for `POST /-/mint`'s body: `{"aud": ..., "claims": {overrides}}`.
fn mint(state: &Mutex<State>, jti: &AtomicU64, port: u16, body: &str) -> (u16, String) {
    let req: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => {
            return (
                400,
                json!({ "error": format!("not JSON: {e}") }).to_string(),
            );
        }
    };
    let Some(aud) = req["aud"].as_str() else {
        return (
            400,
            json!({ "error": "`aud` (a string) is required" }).to_string(),
        );
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let key = state.lock().unwrap().signing.clone();
    let n = jti.fetch_add(1, Ordering::SeqCst);
    let mut token = TokenBuilder::gitlab(&format!("http://127.0.0.1:{port}"), aud, now, n, key);
    match &req["claims"] {
        Value::Null => {}
        Value::Object(claims) => {
            for (name, value) in claims {
                token = token.claim(name, value.clone());
            }
        }
        _ => {
            return (
                400,
                json!({ "error": "`claims` must be an object" }).to_string(),
            );
        }
    }
    (200, json!({ "token": token.sign() }).to_string())
}

fn handle(state: &Mutex<State>, jti: &AtomicU64, port: u16, mut req: tiny_http::Request) {
    let path = req.url().split('?').next().unwrap_or("").to_owned();
    let mut body = String::new();
    if *req.method() == tiny_http::Method::Post {
        use std::io::Read as _;
        let _ = req.as_reader().take(64 * 1024).read_to_string(&mut body);
    }
    let (fault, keys) = {
        let mut s = state.lock().unwrap();
        s.requests.push(path.clone());
        let keys: Vec<Value> = s.published.iter().map(|k| k.jwk.clone()).collect();
        (s.fault.clone(), keys)
    };
    if let Some(IssuerFault::Slow(d)) = &fault {
        std::thread::sleep(*d);
    }
    let url = format!("http://127.0.0.1:{port}");
    let (status, body) = match (fault, path.as_str()) {
        (Some(IssuerFault::Down), _) => (
            503,
            "<html>502 Whoops, GitLab is taking too much time to respond.</html>".to_owned(),
        ),
        (_, "/.well-known/openid-configuration") => (
            200,
            json!({
                "issuer": url,
                "authorization_endpoint": format!("{url}/oauth/authorize"),
                "token_endpoint": format!("{url}/oauth/token"),
                "jwks_uri": format!("{url}{JWKS_PATH}"),
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            })
            .to_string(),
        ),
        (Some(IssuerFault::GarbageJwks), JWKS_PATH) => (200, "<html>sign in</html>".to_owned()),
        (Some(IssuerFault::HugeJwks), JWKS_PATH) => {
            let mut many = keys.clone();
            while many.len() < 2000 {
                many.extend(keys.iter().cloned());
            }
            (200, json!({ "keys": many }).to_string())
        }
        (_, JWKS_PATH) => (200, json!({ "keys": keys }).to_string()),
        (_, MINT_PATH) => mint(state, jti, port, &body),
        _ => (404, r#"{"error":"404 Not Found"}"#.to_owned()),
    };
    let header = tiny_http::Header::from_bytes("Content-Type", "application/json").unwrap();
    let _ = req.respond(
        tiny_http::Response::from_string(body)
            .with_status_code(status)
            .with_header(header),
    );
}

/// A GitLab ID token under construction: GitLab's full claim set for a protected `main`
/// pipeline of `acme/shop` (project 42, namespace `acme` 7) deploying to the protected
/// `production` environment on a GitLab-hosted runner. Every value a string, as GitLab sends.
#[derive(Clone)]
pub struct TokenBuilder {
    pub claims: Map<String, Value>,
    pub header: Map<String, Value>,
    key: TestKey,
}

impl TokenBuilder {
    fn gitlab(issuer: &str, audience: &str, now: i64, n: u64, key: TestKey) -> TokenBuilder {
        let claims = json!({
            "namespace_id": "7",
            "namespace_path": "acme",
            "project_id": "42",
            "project_path": "acme/shop",
            "user_id": "3",
            "user_login": "alice",
            "user_email": "alice@example.com",
            "user_access_level": "maintainer",
            "pipeline_id": "1001",
            "pipeline_source": "push",
            "job_id": format!("{}", 5000 + n),
            "ref": "main",
            "ref_type": "branch",
            "ref_path": "refs/heads/main",
            "ref_protected": "true",
            "environment": "production",
            "environment_protected": "true",
            "deployment_tier": "production",
            "environment_action": "start",
            "runner_id": 17,
            "runner_environment": "gitlab-hosted",
            "sha": "714a629c0b401fdce83e847fc9589983fc6f46bc",
            "project_visibility": "private",
            "ci_config_ref_uri": "gitlab.example.com/acme/shop//.gitlab-ci.yml@refs/heads/main",
            "ci_config_sha": "714a629c0b401fdce83e847fc9589983fc6f46bc",
            "jti": format!("00000000-0000-4000-8000-{n:012}"),
            "iss": issuer,
            "iat": now,
            "nbf": now - 5,
            "exp": now + 300,
            "sub": "project_path:acme/shop:ref_type:branch:ref:main",
            "aud": audience,
        });
        let Value::Object(claims) = claims else {
            unreachable!()
        };
        let mut header = Map::new();
        header.insert("alg".into(), json!("RS256"));
        header.insert("kid".into(), json!(key.kid));
        header.insert("typ".into(), json!("JWT"));
        TokenBuilder {
            claims,
            header,
            key,
        }
    }

    /// Sets (or replaces) a claim with any JSON value.
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }

    pub fn without(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// An unprotected branch (and the matching `sub`).
    pub fn branch(self, name: &str, protected: bool) -> Self {
        let sub = format!("project_path:acme/shop:ref_type:branch:ref:{name}");
        self.claim("ref", name)
            .claim("ref_type", "branch")
            .claim("ref_path", format!("refs/heads/{name}"))
            .claim("ref_protected", if protected { "true" } else { "false" })
            .claim("sub", sub)
    }

    pub fn header(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.header.insert(name.into(), value.into());
        self
    }

    /// Signs with another key (the header's kid stays unless changed with `header`).
    pub fn key(mut self, key: &TestKey) -> Self {
        self.key = key.clone();
        self
    }

    fn encoded_parts(&self) -> String {
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(Value::Object(self.header.clone()).to_string()),
            URL_SAFE_NO_PAD.encode(Value::Object(self.claims.clone()).to_string())
        )
    }

    /// The token, RS256-signed for real.
    pub fn sign(&self) -> String {
        let input = self.encoded_parts();
        let sig =
            jsonwebtoken::crypto::sign(input.as_bytes(), &self.key.encoding, Algorithm::RS256)
                .unwrap();
        format!("{input}.{sig}")
    }

    /// `alg: none`, no signature.
    pub fn unsigned_none(self) -> String {
        format!("{}.", self.header("alg", "none").encoded_parts())
    }

    /// `alg: HS256` keyed with the issuer's public key PEM: verifies if a verifier lets the
    /// token pick the algorithm and hands the RSA key's bytes to HMAC.
    pub fn hs256_with_public_key(self) -> String {
        let secret = self.key.public_pem.as_bytes().to_vec();
        let t = self.header("alg", "HS256");
        let input = t.encoded_parts();
        let sig = jsonwebtoken::crypto::sign(
            input.as_bytes(),
            &EncodingKey::from_secret(&secret),
            Algorithm::HS256,
        )
        .unwrap();
        format!("{input}.{sig}")
    }

    /// Headers and claims as JSON (for fuzz seeds and messages).
    pub fn parts(&self) -> (Value, Value) {
        (
            Value::Object(self.header.clone()),
            Value::Object(self.claims.clone()),
        )
    }
}

/// Replaces one claim of a signed token without re-signing (a tampered payload).
pub fn tamper(token: &str, claim: &str, value: Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: BTreeMap<String, Value> =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims.insert(claim.into(), value);
    format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_string(&claims).unwrap()),
        parts[2]
    )
}
