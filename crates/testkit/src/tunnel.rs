//! A corporate network on loopback: an https front for moto (so a client behind a proxy has
//! something to `CONNECT` to, as it would for real STS) and an HTTP `CONNECT` proxy that
//! records every tunnel it is asked for, or refuses them all.
//!
//! The front's certificate is signed by a test CA whose key was thrown away after signing
//! (fixtures/tls/README.md): trusting [`TEST_CA_PEM`] through `AWS_CA_BUNDLE` trusts this
//! front and nothing else. Every name the proxy is asked for is connected on 127.0.0.1, so a
//! test can name STS `sts.rolehop.test` (a name only the proxy can "resolve": a client that
//! skipped the proxy fails) and still never leave the machine.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The test CA, PEM: what `AWS_CA_BUNDLE` names in proxy tests.
pub const TEST_CA_PEM: &str = include_str!("../fixtures/tls/ca.pem");
const SERVER_CERT_PEM: &str = include_str!("../fixtures/tls/server.pem");
const SERVER_KEY_PEM: &str = include_str!("../fixtures/tls/server.key");

/// The name tests give STS behind the proxy; the front's certificate holds it (and
/// `localhost`, `127.0.0.1`).
pub const STS_TEST_HOST: &str = "sts.rolehop.test";

/// Writes [`TEST_CA_PEM`] into `dir` and returns the file's path.
pub fn write_test_ca(dir: &Path) -> PathBuf {
    let path = dir.join("rolehop-test-ca.pem");
    std::fs::write(&path, TEST_CA_PEM).unwrap();
    path
}

/// Stops an accept loop on drop by waking it with a connection.
struct Stopper {
    ip: String,
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Drop for Stopper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect((self.ip.as_str(), self.port));
    }
}

fn accept_loop(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    handle: impl Fn(TcpStream) + Send + Sync + 'static,
) {
    let handle = Arc::new(handle);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let Ok(conn) = conn else { continue };
            let handle = handle.clone();
            std::thread::spawn(move || handle(conn));
        }
    });
}

/// TLS on a loopback port in front of a plain-http upstream (moto).
pub struct TlsFront {
    /// The https port.
    pub port: u16,
    _stop: Stopper,
}

impl TlsFront {
    /// Terminates TLS on a free port of 127.0.0.1 and forwards the bytes to
    /// 127.0.0.1:`upstream_port`.
    pub fn start(upstream_port: u16) -> TlsFront {
        TlsFront::start_on("127.0.0.1", upstream_port)
    }

    /// Like [`TlsFront::start`] on loopback address `ip` (`127.0.0.2`: loopback to the OS,
    /// an ordinary host to rolehop's proxy rule, which exempts only `127.0.0.1`, `::1` and
    /// `localhost`).
    pub fn start_on(ip: &str, upstream_port: u16) -> TlsFront {
        assert!(ip.starts_with("127."), "tests stay on loopback");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_slice_iter(SERVER_CERT_PEM.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(SERVER_KEY_PEM.as_bytes()).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
        );
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        accept_loop(listener, stop.clone(), move |conn| {
            let _ = serve_tls(conn, upstream_port, config.clone());
        });
        TlsFront {
            port,
            _stop: Stopper {
                ip: ip.to_owned(),
                port,
                stop,
            },
        }
    }

    /// `https://<host>:<port>`: the front under a name its certificate holds.
    pub fn url(&self, host: &str) -> String {
        format!("https://{host}:{}", self.port)
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Pumps one TLS connection to the upstream and back, polling both sides with short read
/// timeouts (one thread per connection; rustls' stream is not split in two).
fn serve_tls(
    tcp: TcpStream,
    upstream_port: u16,
    config: Arc<rustls::ServerConfig>,
) -> std::io::Result<()> {
    let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    let mut up = TcpStream::connect(("127.0.0.1", upstream_port))?;
    let tick = Some(Duration::from_millis(1));
    tls.sock.set_read_timeout(tick)?;
    up.set_read_timeout(tick)?;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => up.write_all(&buf[..n])?,
            Err(e) if is_timeout(&e) => {}
            Err(_) => break,
        }
        match up.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                tls.write_all(&buf[..n])?;
                tls.flush()?;
            }
            Err(e) if is_timeout(&e) => {}
            Err(_) => break,
        }
    }
    tls.conn.send_close_notify();
    let _ = tls.conn.complete_io(&mut tls.sock);
    Ok(())
}

/// What the proxy does with a `CONNECT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Open the tunnel (to the asked port on loopback, whatever the name).
    Tunnel,
    /// Answer with this status (403, 407) and close: a proxy that says no.
    Refuse(u16),
}

/// One request the proxy saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRequest {
    /// `CONNECT` (or the method of a plain proxied request).
    pub method: String,
    /// `host:port` for a `CONNECT`, the absolute URL otherwise.
    pub target: String,
    /// The `Proxy-Authorization` header, if any.
    pub authorization: Option<String>,
}

/// A loopback `CONNECT` proxy that records every request.
pub struct ConnectProxy {
    /// The proxy's port.
    pub port: u16,
    seen: Arc<Mutex<Vec<ProxyRequest>>>,
    _stop: Stopper,
}

impl ConnectProxy {
    /// Listens on a free loopback port.
    pub fn start(mode: ProxyMode) -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        accept_loop(listener, stop.clone(), move |conn| {
            let _ = serve_proxy(conn, mode, &log);
        });
        ConnectProxy {
            port,
            seen,
            _stop: Stopper {
                ip: "127.0.0.1".into(),
                port,
                stop,
            },
        }
    }

    /// `http://127.0.0.1:<port>`, what `HTTPS_PROXY` is set to.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request seen so far, in order.
    pub fn requests(&self) -> Vec<ProxyRequest> {
        self.seen.lock().unwrap().clone()
    }

    /// The `CONNECT` targets seen so far (`host:port`), in order.
    pub fn tunnels(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "CONNECT")
            .map(|r| r.target)
            .collect()
    }
}

/// Reads a request head (up to the blank line) one byte at a time, so nothing after it is
/// consumed: what follows belongs to the tunnel.
fn read_head(conn: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte)? == 0 || head.len() > 64 * 1024 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

fn serve_proxy(
    mut conn: TcpStream,
    mode: ProxyMode,
    log: &Mutex<Vec<ProxyRequest>>,
) -> std::io::Result<()> {
    let head = read_head(&mut conn)?;
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("").to_owned();
    let target = first.next().unwrap_or("").to_owned();
    let authorization = lines.find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("proxy-authorization")
            .then(|| v.trim().to_owned())
    });
    log.lock().unwrap().push(ProxyRequest {
        method: method.clone(),
        target: target.clone(),
        authorization,
    });
    let refuse = |conn: &mut TcpStream, status: u16, why: &str| {
        let _ = write!(
            conn,
            "HTTP/1.1 {status} {why}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    };
    if let ProxyMode::Refuse(status) = mode {
        refuse(&mut conn, status, "Refused by test proxy");
        return Ok(());
    }
    if method != "CONNECT" {
        refuse(&mut conn, 501, "Only CONNECT");
        return Ok(());
    }
    let Some((host, port)) = target
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
    else {
        refuse(&mut conn, 400, "Bad target");
        return Ok(());
    };
    // Every name "resolves" to loopback: a 127.x address stays itself, anything else is
    // 127.0.0.1. Nothing leaves the machine.
    let ip = if host.starts_with("127.") {
        host
    } else {
        "127.0.0.1"
    };
    let Ok(up) = TcpStream::connect((ip, port)) else {
        refuse(&mut conn, 502, "Upstream unreachable");
        return Ok(());
    };
    conn.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    let (mut c2, mut u2) = (conn.try_clone()?, up.try_clone()?);
    let (mut c1, mut u1) = (conn, up);
    let there = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c1, &mut u1);
        let _ = u1.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut u2, &mut c2);
    let _ = c2.shutdown(Shutdown::Write);
    let _ = there.join();
    Ok(())
}
