//! Behind a corporate proxy: STS reached over https through a `CONNECT` proxy on loopback
//! (testkit `ConnectProxy`, which records every tunnel) in front of moto's TLS front, the
//! test CA trusted through `AWS_CA_BUNDLE`. STS is named `sts.rolehop.test`, a name only the
//! proxy "resolves", so a client that skipped the proxy could not have succeeded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use assert_cmd::Command;
use base64::Engine;
use rolehop_testkit::tunnel::{STS_TEST_HOST, write_test_ca};
use rolehop_testkit::{
    ConnectProxy, Moto, ProxyMode, SeededChain, TlsFront, seed_chain, venv_tool,
};

mod common;

use common::*;

const PROXY_PASSWORD: &str = "pr0xy-pa55w0rd";

/// `HTTPS_PROXY` for `proxy`, with a user and password the proxy must receive and no output
/// may show.
fn proxy_var(proxy: &ConnectProxy) -> String {
    format!("http://ci-user:{PROXY_PASSWORD}@127.0.0.1:{}", proxy.port)
}

/// rolehop pointed at STS on the TLS front under `host`, behind `proxy`, trusting the test CA.
fn behind_proxy(
    moto: &Moto,
    seed: &SeededChain,
    front: &TlsFront,
    host: &str,
    proxy: &ConnectProxy,
    dir: &Path,
) -> Command {
    let mut cmd = rolehop(moto, seed);
    cmd.env("AWS_ENDPOINT_URL", front.url(host))
        .env("HTTPS_PROXY", proxy_var(proxy))
        .env("AWS_CA_BUNDLE", write_test_ca(dir));
    cmd
}

fn no_secret_in(out: &std::process::Output, seed: &SeededChain) {
    for stream in [stdout(out), stderr(out)] {
        assert!(
            !stream.contains(PROXY_PASSWORD),
            "proxy password shown: {stream}"
        );
        assert!(
            !stream.contains(&seed.secret_access_key),
            "broker secret shown: {stream}"
        );
    }
}

#[test]
fn assume_reaches_sts_through_the_proxy_with_its_credentials() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let front = TlsFront::start(moto.port);
    let proxy = ConnectProxy::start(ProxyMode::Tunnel);
    let dir = tempfile::tempdir().unwrap();

    let out = behind_proxy(&moto, &seed, &front, STS_TEST_HOST, &proxy, dir.path())
        .args(["assume", "--format", "json", "-v"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let creds = json(&out);
    assert!(
        creds["credentials"]["access_key_id"]
            .as_str()
            .is_some_and(|k| !k.is_empty()),
        "{creds}"
    );
    let tunnels = proxy.tunnels();
    let sts = format!("{STS_TEST_HOST}:{}", front.port);
    assert!(!tunnels.is_empty(), "the proxy saw no CONNECT");
    assert!(tunnels.iter().all(|t| t == &sts), "{tunnels:?}");
    // The URL's user and password reach the proxy as Basic auth, and nowhere else.
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("ci-user:{PROXY_PASSWORD}"));
    assert!(
        proxy
            .requests()
            .iter()
            .all(|r| r.authorization.as_deref() == Some(&format!("Basic {basic}"))),
        "{:?}",
        proxy.requests()
    );
    no_secret_in(&out, &seed);
}

#[test]
fn no_proxy_sends_sts_direct_and_the_proxy_sees_nothing() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    // 127.0.0.2: loopback to the OS, an ordinary host to rolehop's proxy rule.
    let front = TlsFront::start_on("127.0.0.2", moto.port);
    let proxy = ConnectProxy::start(ProxyMode::Tunnel);
    let dir = tempfile::tempdir().unwrap();

    let out = behind_proxy(&moto, &seed, &front, "127.0.0.2", &proxy, dir.path())
        .env("NO_PROXY", "example.internal, 127.0.0.2")
        .args(["assume", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());

    // The same call without the exception goes through the proxy: the bypass was NO_PROXY.
    let out = behind_proxy(&moto, &seed, &front, "127.0.0.2", &proxy, dir.path())
        .args(["assume", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        proxy.tunnels().first().map(String::as_str),
        Some(format!("127.0.0.2:{}", front.port).as_str())
    );
}

#[test]
fn a_refusing_proxy_is_a_clear_unavailable_error_without_secrets() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let front = TlsFront::start(moto.port);
    let proxy = ConnectProxy::start(ProxyMode::Refuse(403));
    let dir = tempfile::tempdir().unwrap();

    let out = behind_proxy(&moto, &seed, &front, STS_TEST_HOST, &proxy, dir.path())
        .args(["assume", "--format", "json", "-vv"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert!(err.contains("HTTPS_PROXY"), "{err}");
    assert!(
        err.contains(&format!("http://***@127.0.0.1:{}", proxy.port)),
        "{err}"
    );
    assert!(!proxy.tunnels().is_empty(), "rolehop never asked the proxy");
    no_secret_in(&out, &seed);
}

#[test]
fn an_unusable_ca_bundle_or_proxy_url_is_refused_before_any_call() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let out = rolehop(&moto, &seed)
        .env("AWS_CA_BUNDLE", &missing)
        .args(["assume"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(8), "{}", stderr(&out));
    assert!(stderr(&out).contains("AWS_CA_BUNDLE"), "{}", stderr(&out));

    let out = rolehop(&moto, &seed)
        .env(
            "HTTPS_PROXY",
            format!("socks5://u:{PROXY_PASSWORD}@proxy:1080"),
        )
        .args(["assume"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("HTTPS_PROXY `socks5://***@proxy:1080`"),
        "{}",
        stderr(&out)
    );
    no_secret_in(&out, &seed);
}

/// `exec`'s children are the aws CLI and boto3, which read HTTPS_PROXY and AWS_CA_BUNDLE
/// themselves: rolehop passes both through, and their calls tunnel through the same proxy.
#[test]
fn the_aws_cli_and_boto3_under_exec_go_through_the_proxy_too() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let front = TlsFront::start(moto.port);
    let proxy = ConnectProxy::start(ProxyMode::Tunnel);
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "set -e; \"{aws}\" sts get-caller-identity --query Arn --output text; \"{py}\" -c \"import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])\"",
        aws = venv_tool("aws").display(),
        py = venv_tool("python").display(),
    );

    let out = behind_proxy(&moto, &seed, &front, STS_TEST_HOST, &proxy, dir.path())
        .args(["exec", "--base", "access-keys", "--", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let arns: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(arns.len(), 2, "{arns:?}");
    for arn in arns {
        assert!(
            arn.contains(":assumed-role/rolehop-test-deploy/gl-42-1001-5005"),
            "{arn}"
        );
    }
    // rolehop's chain, then one tunnel at least from each child.
    let tunnels = proxy.tunnels();
    assert!(tunnels.len() >= 3, "{tunnels:?}");
    assert!(
        tunnels
            .iter()
            .all(|t| t == &format!("{STS_TEST_HOST}:{}", front.port)),
        "{tunnels:?}"
    );
    no_secret_in(&out, &seed);
}

/// The TLS front's CA is trusted only through AWS_CA_BUNDLE: without it the certificate is
/// refused (TLS verification stays on behind a proxy), and the message says so.
#[test]
fn without_the_ca_bundle_the_fronts_certificate_is_refused() {
    let moto = Moto::start();
    let seed = seed_chain(&moto, BROKER, TARGET);
    let front = TlsFront::start(moto.port);
    let proxy = ConnectProxy::start(ProxyMode::Tunnel);
    let dir = tempfile::tempdir().unwrap();

    let out = behind_proxy(&moto, &seed, &front, STS_TEST_HOST, &proxy, dir.path())
        .env_remove("AWS_CA_BUNDLE")
        .args(["assume", "--format", "json"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(err.contains("UnknownIssuer"), "{err}");
    assert!(stdout(&out).is_empty());
    no_secret_in(&out, &seed);
}
