//! A loopback HTTP proxy that sits between rolehop and moto and breaks requests on purpose:
//! throttling, 5xx, connection resets, slow or truncated answers, or no answer at all.
//! Which request gets which fault is decided by a seeded generator, so a failing run repeats.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One way to break a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// HTTP 400 with STS's query-protocol `Throttling` error body (retryable).
    Throttling,
    /// This HTTP status (500, 503) with an `InternalFailure`/`ServiceUnavailable` body.
    Status(u16),
    /// Read the request, then close the connection without a byte of answer.
    Reset,
    /// Forward the request, but wait this long before answering.
    Slow(Duration),
    /// Forward, then answer with the first half of the body (Content-Length says so too, so
    /// the HTTP layer is happy and the XML is cut).
    TruncateBody,
    /// Forward, then send the headers and half the body promised by Content-Length, and close.
    CutConnection,
    /// Answer 200 with a body that is not STS XML at all.
    Garbage,
    /// Accept and read the request, then never answer (until the proxy is dropped).
    Hang,
    /// HTTP 400 with STS's `PackedPolicyTooLarge` error document: the session's policies
    /// and tags do not fit (moto never checks the packed size, so a test asks for it here).
    PackedPolicyTooLarge,
}

/// What the proxy does to each request.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    /// Seed of the generator deciding which request fails and how.
    pub seed: u64,
    /// Probability (0.0..=1.0) that a request gets a fault.
    pub rate: f64,
    /// The faults to pick from, uniformly.
    pub faults: Vec<Fault>,
    /// After this many faults in a row the next request is forwarded untouched, so a client
    /// with more attempts than this always gets through ("transient" faults). `None`: no cap.
    pub max_consecutive: Option<u32>,
}

impl FaultPlan {
    /// Every request gets `fault`.
    pub fn always(fault: Fault) -> FaultPlan {
        FaultPlan {
            seed: 0,
            rate: 1.0,
            faults: vec![fault],
            max_consecutive: None,
        }
    }

    /// No request gets a fault: the proxy only forwards and records, so a test sees the
    /// requests the client really sent.
    pub fn none() -> FaultPlan {
        FaultPlan {
            seed: 0,
            rate: 0.0,
            faults: Vec::new(),
            max_consecutive: None,
        }
    }

    /// A seeded mix of transient faults (throttling, 500, 503, resets) at `rate`, never more
    /// than `max_consecutive` in a row.
    pub fn transient(seed: u64, rate: f64, max_consecutive: u32) -> FaultPlan {
        FaultPlan {
            seed,
            rate,
            faults: vec![
                Fault::Throttling,
                Fault::Status(500),
                Fault::Status(503),
                Fault::Reset,
            ],
            max_consecutive: Some(max_consecutive),
        }
    }
}

/// What the proxy did, for the test's report.
#[derive(Debug, Clone, Default)]
pub struct FaultStats {
    /// Requests read from clients.
    pub requests: u32,
    /// Requests answered with moto's untouched answer.
    pub forwarded: u32,
    /// Faults injected, in order.
    pub faults: Vec<Fault>,
    /// Every request read, head and body as text, in order: a test that must see no request
    /// of its own can tell them from another test's that happened to find this port.
    pub seen: Vec<String>,
}

struct State {
    rng: u64,
    consecutive: u32,
    /// The first this many requests are forwarded untouched (see `FaultProxy::start_after`).
    pass_first: u32,
    /// Only requests whose text contains this are eligible for a fault (see
    /// `FaultProxy::start_matching`); the others are forwarded untouched.
    only_matching: Option<String>,
    stats: FaultStats,
}

/// The running proxy; stops accepting on drop (hung connections are closed then too).
pub struct FaultProxy {
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to 127.0.0.1:`upstream_port`.
    pub fn start(upstream_port: u16, plan: FaultPlan) -> FaultProxy {
        FaultProxy::start_after(upstream_port, plan, 0)
    }

    /// Like `start`, but the first `pass_first` requests go through untouched: a test walks a
    /// fault through every step of a multi-request operation by raising `pass_first`.
    pub fn start_after(upstream_port: u16, plan: FaultPlan, pass_first: u32) -> FaultProxy {
        FaultProxy::launch(upstream_port, plan, pass_first, None)
    }

    /// Like `start`, but only requests whose text (head and form body, as sent) contains
    /// `needle` can get a fault: a test breaks one hop of the chain, or one attempt of it,
    /// and lets the rest through.
    pub fn start_matching(upstream_port: u16, plan: FaultPlan, needle: &str) -> FaultProxy {
        FaultProxy::launch(upstream_port, plan, 0, Some(needle.to_owned()))
    }

    fn launch(
        upstream_port: u16,
        plan: FaultPlan,
        pass_first: u32,
        only_matching: Option<String>,
    ) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            rng: plan.seed ^ 0x9E37_79B9_7F4A_7C15,
            consecutive: 0,
            pass_first,
            only_matching,
            stats: FaultStats::default(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let plan = Arc::new(plan);
        {
            let state = state.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (state, stop, plan) = (state.clone(), stop.clone(), plan.clone());
                    std::thread::spawn(move || {
                        let _ = serve(conn, upstream_port, &plan, &state, &stop);
                    });
                }
            });
        }
        FaultProxy { port, state, stop }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn stats(&self) -> FaultStats {
        self.state.lock().unwrap().stats.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// splitmix64: small, seedable, good enough to spread faults.
fn next(rng: &mut u64) -> u64 {
    *rng = rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *rng;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn decide(plan: &FaultPlan, state: &Mutex<State>, request: &str) -> Option<Fault> {
    let mut s = state.lock().unwrap();
    s.stats.requests += 1;
    let roll = (next(&mut s.rng) >> 11) as f64 / (1u64 << 53) as f64;
    let pick = next(&mut s.rng);
    let unmatched = s
        .only_matching
        .as_deref()
        .is_some_and(|needle| !request.contains(needle));
    let capped = plan.max_consecutive.is_some_and(|m| s.consecutive >= m)
        || s.stats.requests <= s.pass_first
        || unmatched;
    if roll < plan.rate && !capped && !plan.faults.is_empty() {
        let f = plan.faults[(pick % plan.faults.len() as u64) as usize];
        s.consecutive += 1;
        s.stats.faults.push(f);
        Some(f)
    } else {
        s.consecutive = 0;
        s.stats.forwarded += 1;
        None
    }
}

/// One client connection; every answer closes it, so each request is decided on its own.
fn serve(
    mut client: TcpStream,
    upstream_port: u16,
    plan: &FaultPlan,
    state: &Mutex<State>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let Some(request) = read_request(&mut client)? else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(&request).into_owned();
    let fault = decide(plan, state, &text);
    state.lock().unwrap().stats.seen.push(text);
    match fault {
        Some(Fault::Throttling) => {
            return respond(
                &mut client,
                400,
                &error_xml("Sender", "Throttling", "Rate exceeded"),
            );
        }
        Some(Fault::Status(code)) => {
            let (c, m) = if code == 503 {
                ("ServiceUnavailable", "Service is unavailable")
            } else {
                ("InternalFailure", "An internal error occurred")
            };
            return respond(&mut client, code, &error_xml("Receiver", c, m));
        }
        Some(Fault::Reset) => {
            // SO_LINGER would give a real RST; a bare close without an answer is what a
            // dying load balancer does most often, and the client sees the same error.
            return client.shutdown(Shutdown::Both);
        }
        Some(Fault::Hang) => {
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
            }
            return Ok(());
        }
        Some(Fault::Garbage) => {
            return respond(&mut client, 200, "<html><body>502 Bad Gateway?</body>");
        }
        Some(Fault::PackedPolicyTooLarge) => {
            return respond(
                &mut client,
                400,
                &error_xml(
                    "Sender",
                    "PackedPolicyTooLarge",
                    "Packed policy consumes 108% of allotted space, please use smaller policy for this session.",
                ),
            );
        }
        _ => {}
    }
    if let Some(Fault::Slow(d)) = fault {
        std::thread::sleep(d);
    }
    let (head, body) = forward(upstream_port, &request)?;
    match fault {
        Some(Fault::TruncateBody) => {
            let cut = &body[..body.len() / 2];
            client.write_all(&head_with_length(&head, cut.len()))?;
            client.write_all(cut)?;
        }
        Some(Fault::CutConnection) => {
            client.write_all(&head_with_length(&head, body.len()))?;
            client.write_all(&body[..body.len() / 2])?;
        }
        _ => {
            client.write_all(&head_with_length(&head, body.len()))?;
            client.write_all(&body)?;
        }
    }
    client.flush()?;
    client.shutdown(Shutdown::Both)
}

/// Reads one request (headers plus a Content-Length body); `None` if the client left.
fn read_request(client: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        // The proxy answers one request per connection, so it asks moto for the same.
        if lower.starts_with("connection:") {
            continue;
        }
        if line == "\r\n" {
            head.extend_from_slice(b"Connection: close\r\n\r\n");
            break;
        }
        head.extend_from_slice(line.as_bytes());
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    head.extend_from_slice(&body);
    Ok(Some(head))
}

/// Sends the request to moto and reads the whole answer: (status line + headers, body).
fn forward(upstream_port: u16, request: &[u8]) -> std::io::Result<(String, Vec<u8>)> {
    let mut up = TcpStream::connect(("127.0.0.1", upstream_port))?;
    up.set_read_timeout(Some(Duration::from_secs(30)))?;
    up.write_all(request)?;
    let mut out = Vec::new();
    up.read_to_end(&mut out)?;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("moto answered without headers"))?;
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    Ok((head, out[split + 4..].to_vec()))
}

/// The upstream head with its own Content-Length/Connection/Transfer-Encoding replaced.
fn head_with_length(head: &str, length: usize) -> Vec<u8> {
    let mut s = String::new();
    for line in head.split("\r\n") {
        let l = line.to_ascii_lowercase();
        if l.starts_with("content-length:")
            || l.starts_with("connection:")
            || l.starts_with("transfer-encoding:")
        {
            continue;
        }
        s.push_str(line);
        s.push_str("\r\n");
    }
    s.push_str(&format!(
        "Content-Length: {length}\r\nConnection: close\r\n\r\n"
    ));
    s.into_bytes()
}

fn error_xml(kind: &str, code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>"
    )
}

fn respond(client: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let msg = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    client.write_all(msg.as_bytes())?;
    client.flush()?;
    client.shutdown(Shutdown::Both)
}

/// A loopback server answering every request with the same raw bytes (status line, headers
/// and body as given), for feeding malformed STS answers to rolehop.
pub struct CannedServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl CannedServer {
    pub fn start(response: Vec<u8>) -> CannedServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let response = Arc::new(response);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let response = response.clone();
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
                    if let Ok(Some(_)) = read_request(&mut conn) {
                        let _ = conn.write_all(&response);
                        let _ = conn.flush();
                    }
                    let _ = conn.shutdown(Shutdown::Both);
                });
            }
        });
        CannedServer { port, stop }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for CannedServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Decodes one `application/x-www-form-urlencoded` value (`+` is a space, `%XX` a byte), as
/// STS's query protocol sends them: tests read what the proxy recorded as the client meant it.
pub fn form_decode(s: &str) -> String {
    let s = s.replace('+', " ");
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%' && i + 2 < b.len())
            .then(|| u8::from_str_radix(&s[i + 1..i + 3], 16).ok())
            .flatten();
        match hex {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
