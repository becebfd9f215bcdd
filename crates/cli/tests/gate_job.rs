//! The job's side of the claim gate, through the real binary: `rolehop assume/exec/
//! credential-process --base gate` post a real signed ID token (testkit's issuer) to
//! `rolehop gate serve` on loopback, in front of moto's STS, then make the deployment hop.
//! Every output format is kept; a refused rule is printed with its reason and exit code 5,
//! never with the token; a gate that is down is retried, then exit code 6.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use assert_cmd::Command;
use common::gate::{AUD, serve};
use common::{BROKER, TARGET, issued_in, json, stderr, stdout};
use rolehop_testkit::oidc_issuer::OidcIssuer;
use rolehop_testkit::tunnel::write_test_ca;
use rolehop_testkit::{
    ConnectProxy, Moto, ProxyMode, SeededChain, TlsFront, free_port, seed_chain,
};

const DEPLOY_SESSION: &str =
    "arn:aws:sts::222222222222:assumed-role/rolehop-test-deploy/gl-42-1001-5005";

/// A job's rolehop in gate mode: no AWS keys at all, only the ID token.
fn job(moto: &Moto, seed: &SeededChain, gate_url: &str, token: &str) -> Command {
    let mut cmd = Command::cargo_bin("rolehop").unwrap();
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("HOME", "/nonexistent")
        .env("AWS_ENDPOINT_URL", moto.url())
        .env("AWS_REGION", "eu-west-1")
        .env("ROLEHOP_DEPLOY_ROLE_ARN", &seed.deploy_role_arn)
        .env("ROLEHOP_GATE_URL", gate_url)
        .env("ROLEHOP_GATE_ENV", "prod")
        .env("ROLEHOP_ID_TOKEN", token);
    common::job_env(&mut cmd);
    cmd
}

#[test]
fn a_protected_main_job_deploys_through_the_gate_in_every_output_format() {
    let (moto, issuer) = (Moto::start(), OidcIssuer::start());
    let seed = seed_chain(&moto, BROKER, TARGET);
    let gate = serve(&moto, &seed, &issuer, &[]);
    let token = || issuer.token(AUD).claim("job_id", "5005").sign();

    // json: both hops, the first attested by the gate from signed claims.
    let t = token();
    let out = job(&moto, &seed, &gate.url(), &t)
        .args(["assume", "--base", "gate", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["assumed_role_arn"], DEPLOY_SESSION);
    assert_eq!(v["account"], TARGET);
    assert_eq!(v["hops"][0]["hop"], "service role");
    assert_eq!(
        v["hops"][0]["assumed_role_arn"],
        "arn:aws:sts::111111111111:assumed-role/rolehop-test-service/gl-42-1001-5005"
    );
    assert_eq!(v["hops"][0]["session_tags"], 13);
    assert_eq!(v["hops"][0]["source_identity"], "acme.shop@1001");
    assert_eq!(v["hops"][1]["hop"], "deployment role");
    assert_eq!(v["hops"][1]["session_tags"], 0);
    let who = common::caller_identity(&moto, &v["credentials"]);
    assert_eq!(who["Arn"], DEPLOY_SESSION);
    let printed = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!printed.contains(&t), "the ID token was printed");

    // env, dotenv, credential-process: the deployment session, each in its own shape.
    for (format, marker) in [
        ("env", "export AWS_SESSION_TOKEN='"),
        ("dotenv", "AWS_SESSION_TOKEN="),
        ("credential-process", "\"Version\":1"),
    ] {
        let out = job(&moto, &seed, &gate.url(), &token())
            .args(["assume", "--base", "gate", "--format", format])
            .output()
            .unwrap();
        assert!(out.status.success(), "{format}: {}", stderr(&out));
        assert!(stdout(&out).contains(marker), "{format}: {}", stdout(&out));
    }
    let out = job(&moto, &seed, &gate.url(), &token())
        .args(["credential-process", "--base", "gate"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!(doc["Version"], 1);
    assert!(doc["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));

    // --write-profile, then the aws CLI uses the profile.
    let home = tempfile::tempdir().unwrap();
    let (creds_file, conf_file) = (home.path().join("credentials"), home.path().join("config"));
    let out = job(&moto, &seed, &gate.url(), &token())
        .env("AWS_SHARED_CREDENTIALS_FILE", &creds_file)
        .env("AWS_CONFIG_FILE", &conf_file)
        .args(["assume", "--base", "gate", "--write-profile", "deploy"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains(DEPLOY_SESSION), "{}", stderr(&out));
    let who = rolehop_testkit::aws_cli(&moto)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_SHARED_CREDENTIALS_FILE", &creds_file)
        .env("AWS_CONFIG_FILE", &conf_file)
        .args([
            "sts",
            "get-caller-identity",
            "--profile",
            "deploy",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    assert!(who.status.success(), "{}", stderr(&who));
    assert!(String::from_utf8_lossy(&who.stdout).contains(DEPLOY_SESSION));

    // exec: the command runs as the deployment role, without the token in its environment.
    let t = token();
    let out = job(&moto, &seed, &gate.url(), &t)
        .args(["exec", "--base", "gate", "--", "env"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let env = stdout(&out);
    assert!(env.contains("AWS_SESSION_TOKEN="), "{env}");
    assert!(
        !env.contains(&t) && !env.contains("ROLEHOP_ID_TOKEN"),
        "{env}"
    );

    let log = gate.log();
    assert_eq!(
        log.matches("issued session \"gl-42-1001-5005\"").count(),
        7,
        "{log}"
    );
}

#[test]
fn an_unprotected_branch_is_refused_by_the_gate_with_its_rule_and_never_the_token() {
    let (moto, issuer) = (Moto::start(), OidcIssuer::start());
    let seed = seed_chain(&moto, BROKER, TARGET);
    let gate = serve(&moto, &seed, &issuer, &[]);

    // `release/evil` matches the prod branch pattern and a `ref:release/*` trust on `sub`,
    // but GitLab signed `ref_protected: false`. The job's own CI_* variables claim otherwise.
    let evil = issuer.token(AUD).branch("release/evil", false).sign();
    let out = job(&moto, &seed, &gate.url(), &evil)
        .args(["assume", "--base", "gate", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert!(
        err.contains("the claim gate `") && err.contains("environment `prod`"),
        "{err}"
    );
    assert!(
        err.contains("HTTP 403") && err.contains("rule `ref_protected`"),
        "{err}"
    );
    assert!(
        err.contains("actual `false` for branch `release/evil`"),
        "{err}"
    );
    assert!(!err.contains(&evil), "the token was printed");
    assert!(issued_in(&err).is_empty());

    // A token for another audience: 401 from the gate, exit 5, said once (never retried).
    let other = issuer.token("https://elsewhere.test").sign();
    let out = job(&moto, &seed, &gate.url(), &other)
        .args(["exec", "--base", "gate", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("HTTP 401"), "{}", stderr(&out));
    assert_eq!(gate.log().matches(" 401 ").count(), 1, "{}", gate.log());

    // An environment the gate does not serve.
    let out = job(&moto, &seed, &gate.url(), &issuer.token(AUD).sign())
        .env("ROLEHOP_GATE_ENV", "staging")
        .args(["credential-process", "--base", "gate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no environment `staging`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_gate_that_is_down_is_retried_then_unavailable_and_plain_http_off_loopback_is_refused() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let token = common::id_token("project_path:acme/shop:ref_type:branch:ref:main", AUD, 600);
    let nothing = format!("http://127.0.0.1:{}/", free_port());
    let out = job(&moto, &seed, &nothing, &token)
        .args(["assume", "--base", "gate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("could not reach the gate after 4 attempts"),
        "{}",
        stderr(&out)
    );

    let out = job(&moto, &seed, "http://gate.internal.example/", &token)
        .args(["assume", "--base", "gate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("plain http to `gate.internal.example`"),
        "{}",
        stderr(&out)
    );

    let out = job(&moto, &seed, &nothing, &token)
        .env_remove("ROLEHOP_GATE_URL")
        .args(["assume", "--base", "gate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--gate-url"), "{}", stderr(&out));
}

/// An https gate behind a corporate proxy: the job's POST tunnels through a `CONNECT` proxy
/// (testkit's, recording) to a TLS front of `gate serve` whose CA is trusted through
/// `AWS_CA_BUNDLE`, the same route and settings as STS (tests/proxy.rs). `gate.rolehop.test`
/// resolves only through the proxy.
#[test]
fn an_https_gate_is_reached_through_https_proxy_unless_no_proxy_names_it() {
    let (moto, issuer) = (Moto::start(), OidcIssuer::start());
    let seed = seed_chain(&moto, BROKER, TARGET);
    let gate = serve(&moto, &seed, &issuer, &[]);
    let front = TlsFront::start(gate.port);
    let proxy = ConnectProxy::start(ProxyMode::Tunnel);
    let dir = tempfile::tempdir().unwrap();
    let ca = write_test_ca(dir.path());
    let url = front.url("gate.rolehop.test") + "/";
    let token = || issuer.token(AUD).claim("job_id", "5005").sign();

    let out = job(&moto, &seed, &url, &token())
        .env("HTTPS_PROXY", proxy.url())
        .env("AWS_CA_BUNDLE", &ca)
        .args(["assume", "--base", "gate", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["assumed_role_arn"], DEPLOY_SESSION);
    // Only the gate was tunnelled: STS (moto on loopback) is never proxied.
    assert_eq!(
        proxy.tunnels(),
        vec![format!("gate.rolehop.test:{}", front.port)]
    );

    let out = job(&moto, &seed, &url, &token())
        .env("HTTPS_PROXY", proxy.url())
        .env("AWS_CA_BUNDLE", &ca)
        .env("NO_PROXY", "localhost,rolehop.test")
        .args(["assume", "--base", "gate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert_eq!(proxy.requests().len(), 1, "NO_PROXY was ignored");

    // A loopback gate is never proxied: the token would leave the machine in clear text.
    let out = job(
        &moto,
        &seed,
        &format!("http://127.0.0.1:{}/", free_port()),
        &token(),
    )
    .env("HTTPS_PROXY", proxy.url())
    .env("HTTP_PROXY", proxy.url())
    .env("ALL_PROXY", proxy.url())
    .args(["assume", "--base", "gate"])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert_eq!(
        proxy.requests().len(),
        1,
        "a loopback gate went through the proxy"
    );
}

#[test]
fn an_oidc_gate_topology_makes_gate_mode_the_default() {
    let (moto, issuer) = (Moto::start(), OidcIssuer::start());
    let seed = seed_chain(&moto, BROKER, TARGET);
    let gate = serve(&moto, &seed, &issuer, &[]);

    // examples/oidc-gate: `[auth] mode = "oidc-gate"`, no gate_url (ROLEHOP_GATE_URL gives it),
    // the environment's name is what the gate is asked for, the deployment role is the
    // topology's.
    let out = job(&moto, &seed, &gate.url(), &issuer.token(AUD).sign())
        .env_remove("ROLEHOP_DEPLOY_ROLE_ARN")
        .env_remove("ROLEHOP_GATE_ENV")
        .arg("assume")
        .arg("--config")
        .arg(rolehop_testkit::example("oidc-gate"))
        .args(["--env", "prod", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["hops"][0]["session_tags"], 13, "{v}");
    assert_eq!(
        v["hops"][1]["role_arn"],
        "arn:aws:iam::222222222222:role/rolehop-prod-deploy"
    );
    assert!(gate.log().contains("env=\"prod\""), "{}", gate.log());

    // Without a URL anywhere: a usage error naming where to put one.
    let out = job(&moto, &seed, &gate.url(), &issuer.token(AUD).sign())
        .env_remove("ROLEHOP_GATE_URL")
        .env_remove("ROLEHOP_DEPLOY_ROLE_ARN")
        .arg("assume")
        .arg("--config")
        .arg(rolehop_testkit::example("oidc-gate"))
        .args(["--env", "prod"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("`gate_url` under [auth]"),
        "{}",
        stderr(&out)
    );
}
