//! Test support shared by rolehop's integration tests: a private moto server per test (so tests
//! run in parallel without sharing AWS state) and the paths of the pinned tools that
//! `scripts/tools.sh` installs (aws CLI, python with boto3, cfn-lint, gitlab-ci-local).
//!
//! Tests talk only to loopback. When a tool is missing the test fails loudly, telling the
//! developer to run the README's test command, which installs everything.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod fault;
pub mod gitlab;
pub mod iam_simulate;
pub mod oidc_issuer;
pub mod tunnel;

pub use fault::{CannedServer, Fault, FaultPlan, FaultProxy, FaultStats};
pub use tunnel::{ConnectProxy, ProxyMode, TlsFront};

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The topology file of an example: `examples/<name>/rolehop.toml`.
pub fn example(name: &str) -> PathBuf {
    workspace_root()
        .join("examples")
        .join(name)
        .join("rolehop.toml")
}

/// The topology at `rel` (relative to the workspace root), read as `rolehop` reads it: policy
/// files relative to its folder, diagnostics naming `rel`.
pub fn topology(rel: &str) -> rolehop_core::Topology {
    let src = std::fs::read_to_string(workspace_root().join(rel))
        .unwrap_or_else(|e| panic!("cannot read {rel}: {e}"));
    topology_src(rel, &src)
}

/// Like [`topology`], with the file's text given (a test's edited copy of an example).
pub fn topology_src(rel: &str, src: &str) -> rolehop_core::Topology {
    let dir = workspace_root().join(rel).parent().unwrap().to_path_buf();
    let mut read = |p: &str| std::fs::read_to_string(dir.join(p)).map_err(|e| e.to_string());
    rolehop_core::Topology::parse(rel, src, &mut read).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The OIDC example with `main` of `acme/shop` trusted by nonprod too: one token, two
/// environments. The edited text, and its topology.
pub fn oidc_shared_subject() -> (String, rolehop_core::Topology) {
    let rel = "examples/oidc/rolehop.toml";
    let src = std::fs::read_to_string(workspace_root().join(rel))
        .unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
        .replace(
            "projects = [\"acme/shop\", \"acme/shop-*\"]\nbranches = [\"*\"]",
            "projects = [\"acme/shop\"]\nbranches = [\"main\"]",
        );
    let topo = topology_src(rel, &src);
    (src, topo)
}

/// Where `scripts/tools.sh` installed the tools: `$ROLEHOP_TOOLS_DIR` or `<root>/.tools`.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("ROLEHOP_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".tools"))
}

/// A tool from the project's Python venv (`aws`, `python`, `cfn-lint`, `moto_server`).
pub fn venv_tool(name: &str) -> PathBuf {
    let p = tools_dir().join("venv/bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: run the test command from the README (scripts/test.sh), which installs the pinned tools",
        p.display()
    );
    p
}

/// The folder holding gitlab-ci-local and Node 22 (`scripts/tools.sh --node`), for PATH:
/// gitlab-ci-local's shebang needs that `node` first on the PATH.
pub fn node_bin_dir() -> PathBuf {
    let p = tools_dir().join("node/node_modules/.bin");
    assert!(
        p.join("gitlab-ci-local").exists(),
        "{} is missing: run the test command from the README (scripts/test.sh), which installs gitlab-ci-local",
        p.join("gitlab-ci-local").display()
    );
    p
}

/// A free loopback port (bound then released; the tiny race is acceptable in tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Appends `pid` to the file named by `$ROLEHOP_MOTO_PIDS` (set by scripts/test.sh), so an
/// interrupted run stops exactly the servers it started and never a concurrent run's: `Drop`
/// does not run when the test process is killed.
fn record_pid(pid: u32) {
    if let Some(path) = std::env::var_os("ROLEHOP_MOTO_PIDS")
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let _ = writeln!(f, "{pid}");
    }
}

/// A moto server of its own for one test, stopped on drop.
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    pub fn start() -> Moto {
        let bin = venv_tool("moto_server");
        // Port 0: the kernel picks a free port and moto says which. A port picked here and
        // released before moto binds it can be taken by a parallel test's moto, and then two
        // tests would share one server's state.
        let mut child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .env_remove("MOTO_ACCOUNT_ID")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                // ENOENT here also means a venv whose #! interpreter is gone (a moved cache).
                panic!(
                    "cannot start {}: {e}; run scripts/tools.sh (or scripts/test.sh) to (re)install the tools",
                    bin.display()
                )
            });
        record_pid(child.id());
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads moto's log for as long as it runs (a full pipe would stall it), passing on the
        // port of its "Running on http://127.0.0.1:PORT" line.
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(port) = line
                    .split("Running on http://127.0.0.1:")
                    .nth(1)
                    .and_then(|p| p.trim().parse::<u16>().ok())
                {
                    let _ = tx.send(port);
                }
            }
        });
        let Ok(port) = rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            panic!("moto_server did not say which port it listens on within 30 s");
        };
        let moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok((200, _)) = moto.try_request("GET", "/moto-api/", &[], "") {
                return moto;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("moto_server did not answer on port {port} within 30 s");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Turns moto's IAM enforcement on (after seeding: seeding with `x-moto-account-id` is
    /// refused once auth is on).
    pub fn enable_auth(&self) {
        let (status, body) = self.request(
            "POST",
            "/moto-api/reset-auth",
            &[("Content-Type", "text/plain")],
            "0",
        );
        assert_eq!(status, 200, "reset-auth failed: {body}");
    }

    /// A raw HTTP request to moto (tiny client: tests must not need an HTTP stack of their own).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String) {
        self.try_request(method, path, headers, body).unwrap()
    }

    fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> std::io::Result<(u16, String)> {
        http_request(self.port, method, path, headers, body)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 request to 127.0.0.1:`port`, returning status and body.
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Runs `aws` (the real CLI from the venv) against moto with the given extra environment.
pub fn aws_cli(moto: &Moto) -> Command {
    let mut c = Command::new(venv_tool("aws"));
    c.env("AWS_ENDPOINT_URL", moto.url())
        .env("AWS_DEFAULT_REGION", "eu-west-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    c
}

/// Percent-encodes a form value (RFC 3986 unreserved characters stay).
pub fn form_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The text of the first `<tag>...</tag>` in an XML answer.
pub fn xml_value(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{tag}>"))? + start;
    Some(body[start..end].to_owned())
}

impl Moto {
    /// A query-protocol call (IAM, STS) acting in `account`, for seeding state before auth is
    /// switched on. Panics on a non-200 answer, with the body.
    pub fn query(
        &self,
        service: &str,
        account: &str,
        action: &str,
        version: &str,
        params: &[(&str, &str)],
    ) -> String {
        let (status, text) = self.try_query(service, account, action, version, params);
        assert_eq!(
            status, 200,
            "{service}:{action} in {account} failed: {text}"
        );
        text
    }

    /// [`Moto::query`] for calls that may fail: status and body.
    pub fn try_query(
        &self,
        service: &str,
        account: &str,
        action: &str,
        version: &str,
        params: &[(&str, &str)],
    ) -> (u16, String) {
        self.try_query_in("us-east-1", service, account, action, version, params)
    }

    /// [`Moto::try_query`] in `region` (CloudFormation keeps stacks and StackSets per region).
    pub fn try_query_in(
        &self,
        region: &str,
        service: &str,
        account: &str,
        action: &str,
        version: &str,
        params: &[(&str, &str)],
    ) -> (u16, String) {
        let mut body = format!("Action={action}&Version={version}");
        for (k, v) in params {
            body.push_str(&format!("&{k}={}", form_encode(v)));
        }
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/{region}/{service}/aws4_request, SignedHeaders=host, Signature=0"
        );
        self.request(
            "POST",
            "/",
            &[
                ("Authorization", &auth),
                ("x-moto-account-id", account),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            &body,
        )
    }

    /// An IAM call in `account`.
    pub fn iam(&self, account: &str, action: &str, params: &[(&str, &str)]) -> String {
        self.query("iam", account, action, "2010-05-08", params)
    }
}

/// The broker pattern, seeded into moto: a broker user in `broker` whose only right is
/// assuming `service_role`, which may only assume `deploy_role` in `target`, which trusts it.
pub struct SeededChain {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub service_role_arn: String,
    pub deploy_role_arn: String,
}

pub fn seed_chain(moto: &Moto, broker: &str, target: &str) -> SeededChain {
    let user = "rolehop-test";
    let service_role_arn = format!("arn:aws:iam::{broker}:role/rolehop-test-service");
    let deploy_role_arn = format!("arn:aws:iam::{target}:role/rolehop-test-deploy");
    let user_arn = format!("arn:aws:iam::{broker}:user/{user}");
    let assume = |arn: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"],"Resource":"{arn}"}}]}}"#
        )
    };
    let trust = |arn: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{arn}"}},"Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"]}}]}}"#
        )
    };
    moto.iam(broker, "CreateUser", &[("UserName", user)]);
    moto.iam(
        broker,
        "PutUserPolicy",
        &[
            ("UserName", user),
            ("PolicyName", "assume-service"),
            ("PolicyDocument", &assume(&service_role_arn)),
        ],
    );
    let keys = moto.iam(broker, "CreateAccessKey", &[("UserName", user)]);
    moto.iam(
        broker,
        "CreateRole",
        &[
            ("RoleName", "rolehop-test-service"),
            ("AssumeRolePolicyDocument", &trust(&user_arn)),
        ],
    );
    moto.iam(
        broker,
        "PutRolePolicy",
        &[
            ("RoleName", "rolehop-test-service"),
            ("PolicyName", "assume-deploy"),
            ("PolicyDocument", &assume(&deploy_role_arn)),
        ],
    );
    moto.iam(
        target,
        "CreateRole",
        &[
            ("RoleName", "rolehop-test-deploy"),
            ("AssumeRolePolicyDocument", &trust(&service_role_arn)),
        ],
    );
    SeededChain {
        access_key_id: xml_value(&keys, "AccessKeyId").unwrap(),
        secret_access_key: xml_value(&keys, "SecretAccessKey").unwrap(),
        service_role_arn,
        deploy_role_arn,
    }
}

/// Writes a small Linux x86_64 ELF to `path`: what `rollout --gate-code` accepts as the gate's
/// Lambda code. moto stores the code and never runs it, and the debug binary is hundreds of
/// megabytes; the gate itself runs as `rolehop gate serve` in the tests.
pub fn stand_in_gate_code(path: &Path) {
    let mut elf = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    elf.resize(64, 0);
    elf[18] = 62; // e_machine = x86-64
    elf.extend_from_slice(b"rolehop gate stand-in");
    std::fs::write(path, &elf).unwrap();
}

/// Runs one of the repository's Python end-to-end scripts (`scripts/<name>`) with the project's
/// venv, the rolehop binary `bin` and the tools folder, as the demo runs; returns whether it
/// exited 0 and everything it printed. gitlab-ci-local must be installed (checked first, with
/// the install hint).
pub fn run_e2e_script(name: &str, bin: &Path) -> (bool, String) {
    run_e2e_script_with(name, bin, &[])
}

/// [`run_e2e_script`] with more environment variables (the demo's local issuer URL).
pub fn run_e2e_script_with(name: &str, bin: &Path, envs: &[(&str, &str)]) -> (bool, String) {
    node_bin_dir();
    let out = Command::new(venv_tool("python"))
        .arg(workspace_root().join("scripts").join(name))
        .env("ROLEHOP_BIN", bin)
        .env("ROLEHOP_TOOLS_DIR", tools_dir())
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    (out.status.success(), printed(&out))
}

/// Everything a finished command printed, stdout then stderr.
pub fn printed(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `script` (Python source) with the project's venv and `file` as its one argument, and
/// parses what it prints as JSON: how tests read files with the real Python tooling (PyYAML,
/// as GitLab's and cfn-lint's loaders read YAML).
pub fn python_json(script: &str, file: &Path) -> serde_json::Value {
    let out = Command::new(venv_tool("python"))
        .args(["-c", script])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
