//! `cargo bench -p rolehop --bench gate_load [-- SECONDS CLIENTS THREADS]`: a bounded load test
//! of `rolehop gate serve --dry-run` on loopback (verification, rules and attested session
//! through the HTTP layer; STS excluded: it is the one remote call every gate pays the same).
//! It starts the local OIDC issuer and the gate, signs distinct tokens up front, drives the
//! gate from CLIENTS keep-alive connections for SECONDS (default 10 s, 4 clients, 2 gate
//! threads), stops the gate, and prints verifications per second and request latencies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rolehop_testkit::free_port;
use rolehop_testkit::oidc_issuer::OidcIssuer;

mod common;

use common::AUD;

/// One request on a kept-alive connection; returns the status.
fn post(conn: &mut BufReader<TcpStream>, body: &str) -> u16 {
    // One write: `write!` on a socket sends each piece on its own, and Nagle's algorithm then
    // waits for the server's delayed ACK (40 ms) between them.
    let req = format!(
        "POST / HTTP/1.1\r\nHost: gate\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.get_mut().write_all(req.as_bytes()).unwrap();
    let mut line = String::new();
    conn.read_line(&mut line).unwrap();
    let status = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut len = 0;
    loop {
        line.clear();
        conn.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap();
        }
    }
    let mut buf = vec![0; len];
    conn.read_exact(&mut buf).unwrap();
    status
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let arg = |i: usize, d: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (secs, clients, threads) = (arg(0, 10), arg(1, 4) as usize, arg(2, 2));

    let issuer = OidcIssuer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_gate_config(
        dir.path(),
        &issuer.url(),
        "arn:aws:iam::111111111111:role/rolehop-prod-service",
    );
    let port = free_port();
    let mut gate = Command::new(env!("CARGO_BIN_EXE_rolehop"))
        .args([
            "gate",
            "serve",
            "--dry-run",
            "--threads",
            &threads.to_string(),
        ])
        .args(["--listen", &format!("127.0.0.1:{port}"), "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let bodies: Arc<Vec<String>> = Arc::new(
        (0..4000)
            .map(|i| {
                let t = issuer
                    .token(AUD)
                    .claim("job_id", format!("{}", 100_000 + i))
                    .sign();
                serde_json::json!({ "environment": "prod", "token": t }).to_string()
            })
            .collect(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let connect = || loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => {
                s.set_nodelay(true).unwrap();
                break BufReader::new(s);
            }
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("the gate did not start: {e}"),
        }
    };
    // Warm up: the first request fetches the JWKS.
    assert_eq!(post(&mut connect(), &bodies[0]), 200);

    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let start = Instant::now();
    let stop = start + Duration::from_secs(secs);
    let workers: Vec<_> = (0..clients)
        .map(|c| {
            let bodies = bodies.clone();
            let mut conn = connect();
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut i = c * 997;
                while Instant::now() < stop {
                    let t = Instant::now();
                    let status = post(&mut conn, &bodies[i % bodies.len()]);
                    lat.push(t.elapsed().as_micros() as u64);
                    assert_eq!(status, 200);
                    i += 1;
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<u64> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let elapsed = start.elapsed().as_secs_f64();
    let _ = gate.kill();
    let _ = gate.wait();
    lat.sort_unstable();
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
    println!(
        "gate serve --dry-run ({threads} threads), {clients} keep-alive clients, {elapsed:.1} s: {} verifications, {:.0}/s; request p50 {} us, p99 {} us, max {} us",
        lat.len(),
        lat.len() as f64 / elapsed,
        p(0.5),
        p(0.99),
        lat.last().unwrap()
    );
    println!(
        "load average before: {}, after: {}",
        load_before.trim(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
}
