//! The HTTP side: `PRIVATE-TOKEN` auth, URL-encoded ids and keys, `filter[environment_scope]`,
//! pagination, and bounded retries (exponential backoff with jitter from `backon`; 429
//! honours `Retry-After`; 5xx, timeouts and connection failures are retried).

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rolehop_core::Secret;
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::error::GitlabError;

/// Characters kept as-is in a path segment; everything else (`/` in `acme/shop`) is encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// How waiting is done; injected so tests do not sleep.
pub type Sleeper = Arc<dyn Fn(Duration) + Send + Sync>;

/// How patient the client is with a slow or overloaded GitLab; the defaults bound a rotate run
/// to a few minutes of retrying before it gives up with exit 6.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Whole-request timeout (connect, send, receive).
    pub timeout: Duration,
    /// Retries after the first attempt for 429, 5xx, timeouts and connection failures.
    pub retries: usize,
    /// The first backoff between retries; doubles (with jitter) up to `max_delay`.
    pub min_delay: Duration,
    /// The longest backoff between retries, so one slow hour of GitLab cannot stall a job.
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is not waited for.
    pub max_retry_after: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            retries: 4,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// Where variables live: a project or a group, by numeric id or full path (`acme/shop`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Project-level variables (`/projects/:id/variables`).
    Project(String),
    /// Group-level variables, inherited by every project below the group.
    Group(String),
}

impl Target {
    /// `/projects/acme%2Fshop` or `/groups/acme`.
    pub fn path(&self) -> String {
        match self {
            Target::Project(p) => format!("/projects/{}", utf8_percent_encode(p, SEGMENT)),
            Target::Group(g) => format!("/groups/{}", utf8_percent_encode(g, SEGMENT)),
        }
    }

    /// `project `acme/shop`` for messages.
    pub fn describe(&self) -> String {
        match self {
            Target::Project(p) => format!("project `{p}`"),
            Target::Group(g) => format!("group `{g}`"),
        }
    }

    fn name(&self) -> &str {
        match self {
            Target::Project(p) | Target::Group(p) => p,
        }
    }
}

/// A CI/CD variable as the API returns it.
#[derive(Debug, Clone)]
pub struct Variable {
    /// The variable's name, as jobs read it.
    pub key: String,
    /// The value, redacted in Debug and logs: it may be a broker secret.
    pub value: Secret,
    /// `env_var` or `file`; rotate writes `env_var`.
    pub variable_type: String,
    /// Only pipelines on protected refs get it: what keeps feature branches from the key.
    pub protected: bool,
    /// Hidden in job logs by GitLab.
    pub masked: bool,
    /// `$` in the value is not expanded (secrets may contain `$`).
    pub raw: bool,
    /// The GitLab environment(s) that receive it (`*` for all).
    pub environment_scope: String,
    /// Free text GitLab shows beside the variable; rotate writes which key the value holds
    /// there, so a resumed run knows it even when GitLab hides the value.
    pub description: Option<String>,
    /// The answer had a `description` field (GitLab versions before descriptions omit it).
    pub has_description_field: bool,
}

#[derive(Deserialize)]
struct RawVariable {
    key: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default = "env_var")]
    variable_type: String,
    #[serde(default)]
    protected: bool,
    #[serde(default)]
    masked: bool,
    #[serde(default)]
    raw: bool,
    #[serde(default = "any_scope")]
    environment_scope: String,
    #[serde(default, deserialize_with = "present")]
    description: Option<Option<String>>,
}

/// Tells a `null` field (`Some(None)`) from a missing one (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn env_var() -> String {
    "env_var".into()
}
fn any_scope() -> String {
    "*".into()
}

impl From<RawVariable> for Variable {
    fn from(r: RawVariable) -> Self {
        Variable {
            key: r.key,
            value: rolehop_core::secret::secret(r.value.unwrap_or_default()),
            variable_type: r.variable_type,
            protected: r.protected,
            masked: r.masked,
            raw: r.raw,
            environment_scope: r.environment_scope,
            has_description_field: r.description.is_some(),
            description: r.description.flatten(),
        }
    }
}

/// A variable to create or update (always `env_var`, `raw` so `$` is never expanded).
#[derive(Debug, Clone)]
pub struct NewVariable {
    /// The variable's name.
    pub key: String,
    /// The value; sent only in the request body, never in a URL or a message.
    pub value: Secret,
    /// Only protected refs receive it.
    pub protected: bool,
    /// GitLab hides it in job logs (it refuses values that cannot be masked).
    pub masked: bool,
    /// The GitLab environment that receives it: one per rolehop environment.
    pub environment_scope: String,
    /// Shown beside the variable in GitLab, so a person knows rolehop owns it.
    pub description: String,
}

impl NewVariable {
    fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "key": self.key,
            "value": self.value.expose_secret(),
            "variable_type": "env_var",
            "protected": self.protected,
            "masked": self.masked,
            "raw": true,
            "environment_scope": self.environment_scope,
            "description": self.description,
        })
    }
}

/// `https://gitlab.example.com` -> `https://gitlab.example.com/api/v4`. The token is only
/// ever sent over https, or plain http to loopback (tests, local proxies).
pub fn api_base(url: &str) -> Result<String, GitlabError> {
    let u = url.trim().trim_end_matches('/');
    let rest = if let Some(r) = u.strip_prefix("https://") {
        r
    } else if let Some(r) = u.strip_prefix("http://") {
        if let Some(host) = rolehop_core::endpoint::cleartext_off_machine(u) {
            return Err(GitlabError::Config(format!(
                "refusing to send the GitLab token over plain http to `{host}`: use an https URL"
            )));
        }
        r
    } else {
        return Err(GitlabError::Config(format!(
            "GitLab URL `{u}` must start with https://"
        )));
    };
    if rest.is_empty() {
        return Err(GitlabError::Config(format!("GitLab URL `{u}` has no host")));
    }
    Ok(if u.ends_with("/api/v4") {
        u.to_owned()
    } else {
        format!("{u}/api/v4")
    })
}

struct Reply {
    status: u16,
    next_page: Option<String>,
    link_next: Option<String>,
    body: String,
}

enum Attempt {
    Done(Reply),
    Retry {
        detail: String,
        after: Option<Duration>,
    },
}

/// A GitLab API v4 client for CI/CD variables: bounded retries, no redirects (they would carry
/// the token elsewhere), no proxy for plain-http loopback, and no token in any message.
pub struct GitlabClient {
    base: String,
    token: Secret,
    agent: ureq::Agent,
    opts: ClientOptions,
    sleep: Sleeper,
}

impl GitlabClient {
    /// `url` is the GitLab instance (`https://gitlab.example.com`) or its `/api/v4` base.
    pub fn new(url: &str, token: Secret, opts: ClientOptions) -> Result<Self, GitlabError> {
        let base = api_base(url)?;
        // Plain http is only allowed because loopback never leaves the machine; a proxy from
        // HTTP_PROXY/ALL_PROXY would carry the token to another host in clear text.
        let proxy = if base.starts_with("https://") {
            ureq::Proxy::try_from_env()
        } else {
            None
        };
        // No redirects: ureq strips only `Authorization` when following one, so PRIVATE-TOKEN
        // would go to whatever host or plain-http URL the `Location` names.
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(proxy)
            .timeout_global(Some(opts.timeout))
            .build();
        Ok(Self {
            base,
            token,
            agent: ureq::Agent::new_with_config(config),
            opts,
            sleep: Arc::new(std::thread::sleep),
        })
    }

    /// Replaces how backoff waits, so retry tests run without sleeping.
    pub fn with_sleeper(mut self, sleep: Sleeper) -> Self {
        self.sleep = sleep;
        self
    }

    /// The API base the client talks to (`https://host/api/v4`), for messages and for checking
    /// that rotate writes only to the topology's GitLab.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// One variable in one environment scope; `None` when GitLab says `404 Variable Not Found`.
    pub fn get_variable(
        &self,
        target: &Target,
        key: &str,
        scope: &str,
    ) -> Result<Option<Variable>, GitlabError> {
        let (path, r) = self.scoped("GET", target, key, scope)?;
        if variable_not_found(&r) {
            return Ok(None);
        }
        let r = check("GET", &path, target, r)?;
        let v: RawVariable = parse("GET", &path, &r.body)?;
        Ok(Some(v.into()))
    }

    /// Creates a variable; GitLab answers 400 if one with the same key and scope exists.
    pub fn create_variable(
        &self,
        target: &Target,
        var: &NewVariable,
    ) -> Result<Variable, GitlabError> {
        let path = format!("{}/variables", target.path());
        let r = self.send("POST", &path, &[], Some(&var.body()), &[&var.value])?;
        let r = check("POST", &path, target, r)?;
        let v: RawVariable = parse("POST", &path, &r.body)?;
        Ok(v.into())
    }

    /// Updates the variable `var.key` in scope `var.environment_scope`.
    pub fn update_variable(
        &self,
        target: &Target,
        var: &NewVariable,
    ) -> Result<Variable, GitlabError> {
        let path = format!("{}/variables/{}", target.path(), seg(&var.key));
        let r = self.send(
            "PUT",
            &path,
            &[("filter[environment_scope]", &var.environment_scope)],
            Some(&var.body()),
            &[&var.value],
        )?;
        let r = check("PUT", &path, target, r)?;
        let v: RawVariable = parse("PUT", &path, &r.body)?;
        Ok(v.into())
    }

    /// Deletes the variable `key` in one environment scope; a variable that is already gone
    /// (`404 Variable Not Found`, e.g. a retried delete whose first answer was lost) is done.
    pub fn delete_variable(
        &self,
        target: &Target,
        key: &str,
        scope: &str,
    ) -> Result<(), GitlabError> {
        let (path, r) = self.scoped("DELETE", target, key, scope)?;
        if variable_not_found(&r) {
            return Ok(());
        }
        check("DELETE", &path, target, r).map(|_| ())
    }

    /// A bodiless request on one variable in one environment scope: its path and the answer.
    fn scoped(
        &self,
        method: &str,
        target: &Target,
        key: &str,
        scope: &str,
    ) -> Result<(String, Reply), GitlabError> {
        let path = format!("{}/variables/{}", target.path(), seg(key));
        let r = self.send(
            method,
            &path,
            &[("filter[environment_scope]", scope)],
            None,
            &[],
        )?;
        Ok((path, r))
    }

    /// Every variable of the project or group, following `X-Next-Page` (or `Link: rel="next"`).
    pub fn list_variables(&self, target: &Target) -> Result<Vec<Variable>, GitlabError> {
        let path = format!("{}/variables", target.path());
        let mut out = Vec::new();
        let mut page = "1".to_owned();
        // A bound on pages keeps a misbehaving server from looping us forever.
        for _ in 0..1000 {
            let r = self.send(
                "GET",
                &path,
                &[("per_page", "100"), ("page", &page)],
                None,
                &[],
            )?;
            let r = check("GET", &path, target, r)?;
            let vars: Vec<RawVariable> = parse("GET", &path, &r.body)?;
            out.extend(vars.into_iter().map(Variable::from));
            match r
                .next_page
                .clone()
                .or_else(|| r.link_next.as_deref().and_then(page_param))
            {
                Some(p) if p != page => page = p,
                _ => return Ok(out),
            }
        }
        Ok(out)
    }

    /// Every item of a paginated GET (`per_page=100`, following `X-Next-Page` or `Link`), as
    /// raw JSON; `Ok(None)` when GitLab answers 404 (the project or group does not exist, or
    /// the endpoint does not exist in this GitLab version or tier) or, with `forbidden_is_none`,
    /// 403 (a Premium feature on GitLab Free).
    pub fn get_pages(
        &self,
        path: &str,
        query: &[(&str, &str)],
        target: &Target,
        forbidden_is_none: bool,
    ) -> Result<Option<Vec<serde_json::Value>>, GitlabError> {
        let mut out = Vec::new();
        let mut page = "1".to_owned();
        for _ in 0..1000 {
            let mut q: Vec<(&str, &str)> = query.to_vec();
            q.extend([("per_page", "100"), ("page", page.as_str())]);
            let r = self.send("GET", path, &q, None, &[])?;
            if r.status == 404 || (forbidden_is_none && r.status == 403) {
                return Ok(None);
            }
            let r = check("GET", path, target, r)?;
            let items: Vec<serde_json::Value> = parse("GET", path, &r.body)?;
            out.extend(items);
            match r
                .next_page
                .clone()
                .or_else(|| r.link_next.as_deref().and_then(page_param))
            {
                Some(p) if p != page => page = p,
                _ => return Ok(Some(out)),
            }
        }
        Ok(Some(out))
    }

    /// One JSON object (`GET /projects/:id`); `Ok(None)` on 404.
    pub fn get_one(
        &self,
        path: &str,
        target: &Target,
    ) -> Result<Option<serde_json::Value>, GitlabError> {
        let r = self.send("GET", path, &[], None, &[])?;
        if r.status == 404 {
            return Ok(None);
        }
        let r = check("GET", path, target, r)?;
        parse("GET", path, &r.body).map(Some)
    }

    /// Sends with retries. `secrets` are what the request carries: scrubbed from every answer
    /// that is not a success (GitLab echoes values in validation errors, and a proxy's 5xx page
    /// may echo the request), before any of it reaches a message.
    fn send(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
        secrets: &[&Secret],
    ) -> Result<Reply, GitlabError> {
        let request = format!("{method} {path}");
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(self.opts.min_delay)
            .with_max_delay(self.opts.max_delay)
            .with_max_times(self.opts.retries)
            .with_jitter()
            .build();
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.attempt(method, path, query, body, secrets) {
                Attempt::Done(mut r) => {
                    if !(200..300).contains(&r.status) {
                        r.body = scrub(&r.body, secrets);
                    }
                    tracing::debug!(%request, status = r.status, attempts, "gitlab");
                    return Ok(r);
                }
                Attempt::Retry { detail, after } => {
                    let Some(backoff) = delays.next() else {
                        return Err(GitlabError::Unavailable {
                            request,
                            attempts,
                            detail,
                        });
                    };
                    let wait = match after {
                        Some(a) if a > self.opts.max_retry_after => {
                            return Err(GitlabError::Unavailable {
                                request,
                                attempts,
                                detail: format!(
                                    "{detail}; GitLab asks to wait {}s, longer than rolehop waits ({}s)",
                                    a.as_secs(),
                                    self.opts.max_retry_after.as_secs()
                                ),
                            });
                        }
                        Some(a) => a,
                        None => backoff,
                    };
                    tracing::info!(%request, attempts, wait_ms = wait.as_millis() as u64, %detail, "retrying GitLab request");
                    (self.sleep)(wait);
                }
            }
        }
    }

    fn attempt(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
        secrets: &[&Secret],
    ) -> Attempt {
        let url = format!("{}{path}", self.base);
        let token = self.token.expose_secret();
        let result = match (method, body) {
            ("GET", _) => {
                let mut rq = self.agent.get(&url).header("PRIVATE-TOKEN", token);
                for (k, v) in query {
                    rq = rq.query(*k, *v);
                }
                rq.call()
            }
            ("DELETE", _) => {
                let mut rq = self.agent.delete(&url).header("PRIVATE-TOKEN", token);
                for (k, v) in query {
                    rq = rq.query(*k, *v);
                }
                rq.call()
            }
            (m, Some(b)) => {
                let mut rq = if m == "POST" {
                    self.agent.post(&url)
                } else {
                    self.agent.put(&url)
                };
                rq = rq.header("PRIVATE-TOKEN", token);
                for (k, v) in query {
                    rq = rq.query(*k, *v);
                }
                rq.send_json(b)
            }
            (m, None) => {
                return Attempt::Done(Reply {
                    status: 0,
                    next_page: None,
                    link_next: None,
                    body: format!("{{\"message\":\"rolehop bug: {m} without a body\"}}"),
                });
            }
        };
        let mut resp = match result {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Retry {
                    detail: transport_detail(&e),
                    after: None,
                };
            }
        };
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let retry_after = header("retry-after").and_then(|v| v.parse::<u64>().ok());
        let next_page = header("x-next-page");
        let link_next = header("link").and_then(|l| link_next(&l));
        let body = match resp.body_mut().read_to_string() {
            Ok(b) => b,
            Err(e) => {
                return Attempt::Retry {
                    detail: format!("reading the answer failed: {}", transport_detail(&e)),
                    after: None,
                };
            }
        };
        if status == 429 {
            return Attempt::Retry {
                detail: "429 Too Many Requests".into(),
                after: Some(Duration::from_secs(retry_after.unwrap_or(1))),
            };
        }
        if matches!(status, 500 | 502 | 503 | 504) {
            // Scrubbed whole before `message` decodes and shortens it, so neither an escaped
            // copy nor one cut in half by the shortening slips through.
            return Attempt::Retry {
                detail: format!("{status} {}", message(&scrub(&body, secrets))),
                after: None,
            };
        }
        Attempt::Done(Reply {
            status,
            next_page,
            link_next,
            body,
        })
    }
}

/// GitLab's answer for a variable that does not exist in the scope asked for.
fn variable_not_found(r: &Reply) -> bool {
    r.status == 404 && message(&r.body).contains("Variable Not Found")
}

fn transport_detail(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        other => other.to_string(),
    }
}

fn seg(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// GitLab's `{"message": ...}` (a string, or an object of field errors), or the body itself.
fn message(body: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(v) => match v.get("message").or_else(|| v.get("error")) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => body.chars().take(200).collect(),
        },
        Err(_) => body.chars().take(200).collect(),
    }
}

/// `text` with every copy of the secrets replaced by `[redacted]`, in every form a JSON body
/// can carry them: plain, JSON-escaped (`\/`, `\u002f`, any mix: JSON bodies are decoded and
/// re-encoded), and percent-encoded (a form body echoed back). A combined
/// `<id>:<secret>` value is also scrubbed by its secret half.
pub(crate) fn scrub(text: &str, secrets: &[&Secret]) -> String {
    let mut needles: Vec<String> = Vec::new();
    for s in secrets {
        let v = s.expose_secret();
        if v.is_empty() {
            continue;
        }
        needles.push(v.to_owned());
        if let Some((_, half)) = v.rsplit_once(':')
            && half.len() >= 8
        {
            needles.push(half.to_owned());
        }
    }
    if needles.is_empty() {
        return text.to_owned();
    }
    // Longest first, so the whole value goes before its half leaves the id behind it.
    needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
    let mut out = text.to_owned();
    // JSON: decode every string (whatever escapes it used), scrub it, re-encode.
    if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&out)
        && scrub_json(&mut v, &needles)
    {
        out = v.to_string();
    }
    for n in &needles {
        for form in encodings(n) {
            if out.contains(&form) {
                out = out.replace(&form, "[redacted]");
            }
        }
    }
    out
}

/// The ways `s` appears inside text that was not (valid) JSON.
fn encodings(s: &str) -> Vec<String> {
    let json = serde_json::to_string(s).unwrap_or_default();
    let json = json.trim_matches('"').to_owned();
    let escaped_slash = json.replace('/', "\\/");
    let mut unicode = String::new();
    for c in json.chars() {
        match c {
            '/' => unicode.push_str("\\u002f"),
            '+' => unicode.push_str("\\u002b"),
            c => unicode.push(c),
        }
    }
    let percent = utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    let mut forms = vec![
        s.to_owned(),
        json,
        escaped_slash,
        unicode.clone(),
        unicode
            .replace("\\u002f", "\\u002F")
            .replace("\\u002b", "\\u002B"),
        percent.clone(),
        percent.to_ascii_lowercase(),
    ];
    forms.retain(|f| !f.is_empty());
    forms.sort();
    forms.dedup();
    forms
}

/// Scrubs every string (and key) of a JSON value; says whether anything changed.
fn scrub_json(v: &mut serde_json::Value, needles: &[String]) -> bool {
    let clean = |s: &str| {
        let mut s = s.to_owned();
        for n in needles {
            s = s.replace(n.as_str(), "[redacted]");
        }
        s
    };
    match v {
        serde_json::Value::String(s) => {
            let c = clean(s);
            let changed = c != *s;
            *s = c;
            changed
        }
        serde_json::Value::Array(a) => a
            .iter_mut()
            .fold(false, |acc, x| scrub_json(x, needles) | acc),
        serde_json::Value::Object(o) => {
            let old = std::mem::take(o);
            let mut changed = false;
            for (k, mut x) in old {
                changed |= scrub_json(&mut x, needles);
                let ck = clean(&k);
                changed |= ck != k;
                o.insert(ck, x);
            }
            changed
        }
        _ => false,
    }
}

fn check(method: &str, path: &str, target: &Target, r: Reply) -> Result<Reply, GitlabError> {
    let request = format!("{method} {path}");
    match r.status {
        200..=299 => Ok(r),
        401 => Err(GitlabError::Unauthorized { request }),
        403 => {
            let m = message(&r.body);
            Err(GitlabError::Forbidden {
                request,
                detail: if m.is_empty() {
                    String::new()
                } else {
                    format!(" (GitLab: {m})")
                },
            })
        }
        404 => Err(GitlabError::NotFound {
            request,
            target: target.name().to_owned(),
            message: message(&r.body),
        }),
        400 => Err(GitlabError::Invalid {
            request,
            message: message(&r.body),
        }),
        300..=399 => Err(GitlabError::Unexpected {
            request,
            status: r.status,
            detail: "a redirect, which rolehop does not follow so the token never leaves the configured URL: \
                     use the URL GitLab redirects to (https, the instance's own host)"
                .into(),
        }),
        status => Err(GitlabError::Unexpected {
            request,
            status,
            detail: message(&r.body),
        }),
    }
}

fn parse<T: serde::de::DeserializeOwned>(
    method: &str,
    path: &str,
    body: &str,
) -> Result<T, GitlabError> {
    serde_json::from_str(body).map_err(|e| GitlabError::Unexpected {
        request: format!("{method} {path}"),
        status: 200,
        detail: format!("the answer is not the documented JSON: {e}"),
    })
}

/// The URL of `rel="next"` in a `Link` header.
fn link_next(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
    })
}

/// The `page` query parameter of a URL.
fn page_param(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("page="))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn base_urls_gain_api_v4_and_plain_http_is_loopback_only() {
        assert_eq!(
            api_base("https://gitlab.example.com/").unwrap(),
            "https://gitlab.example.com/api/v4"
        );
        assert_eq!(
            api_base("https://gitlab.example.com/api/v4").unwrap(),
            "https://gitlab.example.com/api/v4"
        );
        assert_eq!(
            api_base("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080/api/v4"
        );
        let e = api_base("http://gitlab.example.com")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("refusing to send the GitLab token over plain http"),
            "{e}"
        );
        assert!(api_base("gitlab.example.com").is_err());
        // IPv6 loopback is loopback too; lookalike hosts are not.
        assert_eq!(
            api_base("http://[::1]:8080").unwrap(),
            "http://[::1]:8080/api/v4"
        );
        for bad in [
            "http://127.0.0.1@evil.example",
            "http://localhost.evil.example",
            "http://[::1].evil.example",
            "http://[::2]:80",
        ] {
            assert!(api_base(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_are_url_encoded() {
        assert_eq!(
            Target::Project("acme/shop".into()).path(),
            "/projects/acme%2Fshop"
        );
        assert_eq!(Target::Group("42".into()).path(), "/groups/42");
    }

    #[test]
    fn link_headers_give_the_next_page() {
        let l = r#"<https://g.example/api/v4/projects/1/variables?page=1&per_page=100>; rel="prev", <https://g.example/api/v4/projects/1/variables?page=3&per_page=100>; rel="next""#;
        let next = link_next(l).unwrap();
        assert_eq!(page_param(&next).as_deref(), Some("3"));
        assert_eq!(link_next(r#"<https://x/?page=1>; rel="first""#), None);
    }

    #[test]
    fn messages_are_read_from_gitlab_errors() {
        assert_eq!(
            message(r#"{"message":"404 Variable Not Found"}"#),
            "404 Variable Not Found"
        );
        assert_eq!(
            message(r#"{"message":{"value":["is invalid"]}}"#),
            r#"{"value":["is invalid"]}"#
        );
    }
}
