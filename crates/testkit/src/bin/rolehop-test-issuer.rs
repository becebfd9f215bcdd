//! A GitLab-like OIDC issuer on loopback for the demo and other scripts, which cannot use
//! testkit's Rust API: it serves [`OidcIssuer`] (discovery, JWKS, the test-only RS256 key) and
//! mints real signed ID tokens at `POST /-/mint`, so a gate started from a script verifies them
//! over HTTP exactly as it verifies GitLab's. Test tooling only: not part of the `rolehop`
//! binary, and its key is public (`crates/testkit/keys`), never to be trusted anywhere.
//!
//! It prints `{"issuer": "<url>"}` as its first stdout line and stops when stdin closes, so it
//! never outlives the script that started it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;

use rolehop_testkit::oidc_issuer::OidcIssuer;

fn main() {
    let issuer = OidcIssuer::start();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::json!({ "issuer": issuer.url() })).unwrap();
    out.flush().unwrap();
    // Blocks until the parent closes our stdin (or exits); what it writes is ignored.
    let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
}
