//! A local GitLab for tests: the project and group CI/CD variables endpoints of REST API v4
//! as GitLab documents them (requests, JSON shapes, `PRIVATE-TOKEN` auth, errors such as
//! `404 Variable Not Found`, masked-value rules, pagination headers), plus programmable faults
//! (5xx, 429 with `Retry-After`, slow answers, 401) for the next requests. Also what a
//! project protects: `GET /projects/:id`, `/projects/:id/protected_branches`,
//! `/protected_tags`, `/protected_environments` (Premium: 403 when behaving like GitLab
//! Free; older versions' answers without the fields added since), and
//! `/groups/:id/projects?include_subgroups=true`, all paginated like the variables.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

/// The token the server accepts.
pub const TOKEN: &str = "glpat-rolehop-test-0123456789";
/// A token that authenticates but lacks the Maintainer role.
pub const REPORTER_TOKEN: &str = "glpat-reporter-0123456789";

/// A fault for one request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status (500, 502, 503...) and a GitLab-like body.
    Status(u16),
    /// 429 with `Retry-After: secs`.
    TooManyRequests { retry_after: u64 },
    /// Wait this long, then answer normally (a client with a shorter timeout gives up).
    Slow(Duration),
    /// 401 whatever the token.
    Unauthorized,
    /// Carry out the request, then answer 502 (the change happened but the answer was lost).
    AppliedThen502,
    /// Answer with this status and a body that echoes the request twice, as a front proxy's or
    /// a debug error page might: once as a JSON string with `/` escaped as `\/` (Ruby's style)
    /// and once with every non-ASCII-alphanumeric character as a `\uXXXX` escape.
    EchoRequest(u16),
}

#[derive(Default)]
struct State {
    /// Owner ("projects/acme/shop" or "groups/acme") -> numeric id.
    owners: BTreeMap<String, u64>,
    /// (owner, key, scope) -> variable JSON.
    vars: BTreeMap<(String, String, String), Value>,
    /// (requests to let through first, fault).
    faults: VecDeque<(usize, Fault)>,
    requests: Vec<String>,
    /// Answer like GitLab before variable descriptions: no `description` field at all.
    no_descriptions: bool,
    /// Requests being handled right now (a slow one may still land after its client gave up).
    in_flight: usize,
    /// Project path -> its protected branches, tags and environments (API JSON).
    protection: BTreeMap<String, Protection>,
    /// Answer protected environments with 403, as GitLab Free does (a Premium feature).
    free_tier: bool,
    /// Answer like GitLab 13.x: no `allow_force_push`, `deploy_key_id`,
    /// `required_approval_count`, `approval_rules`, `group_inheritance_type`.
    legacy_fields: bool,
}

#[derive(Default, Clone)]
struct Protection {
    branches: Vec<Value>,
    tags: Vec<Value>,
    environments: Vec<Value>,
}

/// GitLab's access levels and their descriptions in API answers.
fn access(level: u64) -> Value {
    let description = match level {
        0 => "No one",
        30 => "Developers + Maintainers",
        40 => "Maintainers",
        60 => "Admins",
        _ => "Custom",
    };
    json!({
        "id": level * 10 + 1, "access_level": level, "access_level_description": description,
        "user_id": null, "group_id": null, "deploy_key_id": null,
    })
}

/// Drops what GitLab versions before 14 did not answer.
fn legacy(mut v: Value) -> Value {
    if let Value::Object(o) = &mut v {
        for k in [
            "allow_force_push",
            "code_owner_approval_required",
            "required_approval_count",
            "approval_rules",
        ] {
            o.remove(k);
        }
        for list in [
            "push_access_levels",
            "merge_access_levels",
            "create_access_levels",
            "deploy_access_levels",
        ] {
            if let Some(Value::Array(a)) = o.get_mut(list) {
                for x in a {
                    if let Value::Object(x) = x {
                        x.remove("deploy_key_id");
                        x.remove("group_inheritance_type");
                    }
                }
            }
        }
    }
    v
}

pub struct GitlabServer {
    pub port: u16,
    server: Arc<tiny_http::Server>,
    state: Arc<Mutex<State>>,
    thread: Option<JoinHandle<()>>,
}

impl GitlabServer {
    /// A server with project `acme/shop` (id 1) and group `acme` (id 2).
    pub fn start() -> GitlabServer {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        {
            let mut s = state.lock().unwrap();
            s.owners.insert("projects/acme/shop".into(), 1);
            s.owners.insert("groups/acme".into(), 2);
        }
        let (srv, st) = (server.clone(), state.clone());
        let thread = std::thread::spawn(move || {
            while let Ok(req) = srv.recv() {
                let st = st.clone();
                st.lock().unwrap().in_flight += 1;
                std::thread::spawn(move || {
                    handle(&st, req);
                    st.lock().unwrap().in_flight -= 1;
                });
            }
        });
        GitlabServer {
            port,
            server,
            state,
            thread: Some(thread),
        }
    }

    /// Waits until no request is being handled. A request whose client timed out may still
    /// be applied late; a rerun that happens later in real life must see it landed.
    pub fn wait_idle(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.state.lock().unwrap().in_flight > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "GitLab test server still busy after 30 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// What to pass as the GitLab URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn add_project(&self, path: &str, id: u64) {
        self.state
            .lock()
            .unwrap()
            .owners
            .insert(format!("projects/{path}"), id);
    }

    /// Fault the `count` requests that follow the next `skip` ones (after faults queued before).
    pub fn inject(&self, skip: usize, count: usize, fault: Fault) {
        let mut s = self.state.lock().unwrap();
        for i in 0..count {
            s.faults
                .push_back((if i == 0 { skip } else { 0 }, fault.clone()));
        }
    }

    /// From now on, behave like a GitLab version without variable descriptions.
    pub fn without_descriptions(&self) {
        self.state.lock().unwrap().no_descriptions = true;
    }

    /// Faults not yet used.
    pub fn pending_faults(&self) -> usize {
        self.state.lock().unwrap().faults.len()
    }

    /// A project variable (`owner` like `projects/acme/shop`) as GitLab would return it.
    pub fn variable(&self, owner: &str, key: &str, scope: &str) -> Option<Value> {
        self.state
            .lock()
            .unwrap()
            .vars
            .get(&(owner.into(), key.into(), scope.into()))
            .cloned()
    }

    /// Sets a variable directly (test setup), masked and protected.
    pub fn set_variable(&self, owner: &str, key: &str, scope: &str, value: &str) {
        self.set_variable_described(owner, key, scope, value, None);
    }

    /// [`GitlabServer::set_variable`] with a description, as a write from rotate leaves it.
    pub fn set_variable_described(
        &self,
        owner: &str,
        key: &str,
        scope: &str,
        value: &str,
        description: Option<&str>,
    ) {
        let v = json!({
            "variable_type": "env_var", "key": key, "value": value, "protected": true,
            "masked": true, "hidden": false, "raw": true, "environment_scope": scope,
            "description": description,
        });
        self.state
            .lock()
            .unwrap()
            .vars
            .insert((owner.into(), key.into(), scope.into()), v);
    }

    /// Protects branch `name` (`*` wildcards allowed) of project `path`: who may push and
    /// merge, by access level (0 no one, 30 developers, 40 maintainers).
    pub fn protect_branch(&self, path: &str, name: &str, push: u64, merge: u64) {
        let mut s = self.state.lock().unwrap();
        let p = s.protection.entry(path.to_owned()).or_default();
        let id = p.branches.len() as u64 + 1;
        p.branches.push(json!({
            "id": id, "name": name,
            "push_access_levels": [access(push)], "merge_access_levels": [access(merge)],
            "allow_force_push": false, "code_owner_approval_required": false,
        }));
    }

    /// Protects tags matching `name` of project `path`: who may create them.
    pub fn protect_tag(&self, path: &str, name: &str, create: u64) {
        let mut s = self.state.lock().unwrap();
        let p = s.protection.entry(path.to_owned()).or_default();
        p.tags
            .push(json!({"name": name, "create_access_levels": [access(create)]}));
    }

    /// Protects environment `name` of project `path`: who may deploy.
    pub fn protect_environment(&self, path: &str, name: &str, deploy: u64) {
        let mut s = self.state.lock().unwrap();
        let p = s.protection.entry(path.to_owned()).or_default();
        let mut a = access(deploy);
        a["group_inheritance_type"] = json!(0);
        p.environments.push(json!({
            "name": name, "deploy_access_levels": [a],
            "required_approval_count": 0, "approval_rules": [],
        }));
    }

    /// From now on, behave like GitLab Free: protected environments (Premium) answer 403.
    pub fn like_gitlab_free(&self) {
        self.state.lock().unwrap().free_tier = true;
    }

    /// From now on, answer protection requests like GitLab 13.x (fields added since absent).
    pub fn like_gitlab_13(&self) {
        self.state.lock().unwrap().legacy_fields = true;
    }

    /// `METHOD /path?query` of every request so far (no headers, no bodies).
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
}

impl Drop for GitlabServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Answer {
    status: u16,
    body: Value,
    headers: Vec<(String, String)>,
}

fn answer(status: u16, body: Value) -> Answer {
    Answer {
        status,
        body,
        headers: vec![],
    }
}

fn message(status: u16, m: &str) -> Answer {
    answer(status, json!({ "message": m }))
}

fn handle(state: &Mutex<State>, mut req: tiny_http::Request) {
    let method = req.method().as_str().to_owned();
    let url = req.url().to_owned();
    let token = req
        .headers()
        .iter()
        .find(|h| h.field.equiv("PRIVATE-TOKEN"))
        .map(|h| h.value.as_str().to_owned());
    let mut body = String::new();
    let _ = req.as_reader().read_to_string(&mut body);
    let fault = {
        let mut s = state.lock().unwrap();
        s.requests.push(format!("{method} {url}"));
        match s.faults.front_mut() {
            Some((skip, _)) if *skip > 0 => {
                *skip -= 1;
                None
            }
            Some(_) => s.faults.pop_front().map(|(_, f)| f),
            None => None,
        }
    };
    let ans = match fault {
        Some(Fault::Status(code)) => message(code, &format!("{code} Internal Server Error")),
        Some(Fault::TooManyRequests { retry_after }) => Answer {
            status: 429,
            body: Value::String("Retry later".into()),
            headers: vec![("Retry-After".into(), retry_after.to_string())],
        },
        Some(Fault::Unauthorized) => message(401, "401 Unauthorized"),
        Some(Fault::EchoRequest(code)) => {
            let quoted = Value::String(body.clone()).to_string();
            let inner = quoted[1..quoted.len() - 1].replace('/', "\\/");
            let escaped: String = body
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_string()
                    } else {
                        format!("\\u{:04x}", c as u32)
                    }
                })
                .collect();
            let text = format!(
                "{{\"message\":\"{code} upstream failed on {inner}\",\"debug\":\"{escaped}\"}}"
            );
            Answer {
                status: code,
                body: Value::String(text),
                headers: vec![],
            }
        }
        Some(Fault::Slow(d)) => {
            std::thread::sleep(d);
            route(state, &method, &url, token.as_deref(), &body)
        }
        Some(Fault::AppliedThen502) => {
            let _ = route(state, &method, &url, token.as_deref(), &body);
            message(502, "502 Bad Gateway")
        }
        None => route(state, &method, &url, token.as_deref(), &body),
    };
    let mut ans = ans;
    if state.lock().unwrap().no_descriptions {
        strip_descriptions(&mut ans.body);
    }
    let text = match &ans.body {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut resp = tiny_http::Response::from_string(text).with_status_code(ans.status);
    let ct = if ans.body.is_string() {
        "text/plain"
    } else {
        "application/json"
    };
    resp.add_header(tiny_http::Header::from_bytes("Content-Type", ct).unwrap());
    for (k, v) in &ans.headers {
        resp.add_header(tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap());
    }
    let _ = req.respond(resp);
}

fn strip_descriptions(v: &mut Value) {
    match v {
        Value::Object(o) => {
            o.remove("description");
        }
        Value::Array(a) => a.iter_mut().for_each(strip_descriptions),
        _ => {}
    }
}

fn decode(s: &str) -> String {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn parse_query(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn route(state: &Mutex<State>, method: &str, url: &str, token: Option<&str>, body: &str) -> Answer {
    match token {
        Some(TOKEN) => {}
        Some(REPORTER_TOKEN) => return message(403, "403 Forbidden"),
        _ => return message(401, "401 Unauthorized"),
    }
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let query = parse_query(query);
    let Some(rest) = path.strip_prefix("/api/v4/") else {
        return message(404, "404 Not Found");
    };
    // Segments stay encoded until split, as GitLab routes `acme%2Fshop` as one id.
    let segs: Vec<&str> = rest.split('/').collect();
    let (kind, id, tail) = match segs.as_slice() {
        [kind @ ("projects" | "groups"), id, tail @ ..] => (*kind, decode(id), tail),
        _ => return message(404, "404 Not Found"),
    };
    let mut s = state.lock().unwrap();
    let owner = s
        .owners
        .iter()
        .find(|(name, num)| {
            name.strip_prefix(kind)
                .and_then(|n| n.strip_prefix('/'))
                .is_some_and(|p| p == id || num.to_string() == id)
        })
        .map(|(name, _)| name.clone());
    let Some(owner) = owner else {
        let what = if kind == "projects" {
            "Project"
        } else {
            "Group"
        };
        return message(404, &format!("404 {what} Not Found"));
    };
    let params: BTreeMap<String, Value> = if body.trim_start().starts_with('{') {
        serde_json::from_str::<BTreeMap<String, Value>>(body).unwrap_or_default()
    } else {
        parse_query(body)
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect()
    };
    let scope_filter = query.get("filter[environment_scope]").cloned();
    if let Some(a) = protection_route(&s, method, kind, &owner, tail, &query, url) {
        return a;
    }
    match (method, tail) {
        ("GET", ["variables"]) => list(&s, &owner, &query, url),
        ("POST", ["variables"]) => create(&mut s, &owner, &params),
        (m @ ("GET" | "PUT" | "DELETE"), ["variables", key]) => {
            let key = decode(key);
            let matches: Vec<(String, String, String)> = s
                .vars
                .keys()
                .filter(|(o, k, sc)| {
                    o == &owner && k == &key && scope_filter.as_ref().is_none_or(|f| f == sc)
                })
                .cloned()
                .collect();
            let id = match matches.as_slice() {
                [] => return message(404, "404 Variable Not Found"),
                [one] => one.clone(),
                _ => {
                    return answer(
                        409,
                        json!({"message": "There are multiple variables with provided parameters. Please use 'filter[environment_scope]'"}),
                    );
                }
            };
            match m {
                "GET" => answer(200, s.vars[&id].clone()),
                "DELETE" => {
                    s.vars.remove(&id);
                    answer(204, Value::String(String::new()))
                }
                _ => update(&mut s, id, &params),
            }
        }
        _ => message(404, "404 Not Found"),
    }
}

fn as_bool(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => Some(s == "true"),
        _ => None,
    }
}

/// GitLab's masking rule as documented: 8+ characters, one line, no spaces, from the Base64
/// alphabet (RFC 4648, both variants) plus `@`, `:`, `.` and `~`.
pub fn maskable(value: &str) -> bool {
    value.len() >= 8
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+/=-_@:.~".contains(c))
}

fn validate(v: &Value) -> Option<Answer> {
    let key = v["key"].as_str().unwrap_or("");
    if key.is_empty()
        || key.len() > 255
        || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Some(answer(
            400,
            json!({"message": {"key": ["can contain only letters, digits and '_'."]}}),
        ));
    }
    if v["masked"] == Value::Bool(true) && !maskable(v["value"].as_str().unwrap_or("")) {
        return Some(answer(400, json!({"message": {"value": ["is invalid"]}})));
    }
    None
}

fn create(s: &mut State, owner: &str, p: &BTreeMap<String, Value>) -> Answer {
    let key = p
        .get("key")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let Some(value) = p.get("value").and_then(Value::as_str) else {
        return answer(400, json!({"error": "value is missing"}));
    };
    let scope = p
        .get("environment_scope")
        .and_then(Value::as_str)
        .unwrap_or("*")
        .to_owned();
    let v = json!({
        "variable_type": p.get("variable_type").and_then(Value::as_str).unwrap_or("env_var"),
        "key": key,
        "value": value,
        "protected": as_bool(p.get("protected")).unwrap_or(false),
        "masked": as_bool(p.get("masked")).unwrap_or(false),
        "hidden": false,
        "raw": as_bool(p.get("raw")).unwrap_or(false),
        "environment_scope": scope,
        "description": p.get("description").cloned().unwrap_or(Value::Null),
    });
    if let Some(bad) = validate(&v) {
        return bad;
    }
    let id = (owner.to_owned(), key.clone(), scope);
    if s.vars.contains_key(&id) {
        return answer(
            400,
            json!({"message": {"key": [format!("({key}) has already been taken")]}}),
        );
    }
    s.vars.insert(id, v.clone());
    answer(201, v)
}

fn update(s: &mut State, id: (String, String, String), p: &BTreeMap<String, Value>) -> Answer {
    let mut v = s.vars[&id].clone();
    for f in ["value", "variable_type", "description"] {
        if let Some(x) = p.get(f) {
            v[f] = x.clone();
        }
    }
    for f in ["protected", "masked", "raw"] {
        if let Some(b) = as_bool(p.get(f)) {
            v[f] = Value::Bool(b);
        }
    }
    if let Some(bad) = validate(&v) {
        return bad;
    }
    let new_scope = p
        .get("environment_scope")
        .and_then(Value::as_str)
        .unwrap_or(&id.2)
        .to_owned();
    v["environment_scope"] = Value::String(new_scope.clone());
    s.vars.remove(&id);
    s.vars.insert((id.0, id.1, new_scope), v.clone());
    answer(200, v)
}

/// The read-only project and protection endpoints; `None` for anything else.
fn protection_route(
    s: &State,
    method: &str,
    kind: &str,
    owner: &str,
    tail: &[&str],
    q: &BTreeMap<String, String>,
    url: &str,
) -> Option<Answer> {
    if method != "GET" {
        return None;
    }
    let path = owner.strip_prefix(kind)?.trim_start_matches('/');
    let id = s.owners.get(owner).copied().unwrap_or(0);
    let fix = |items: &[Value]| -> Vec<Value> {
        items
            .iter()
            .map(|v| {
                if s.legacy_fields {
                    legacy(v.clone())
                } else {
                    v.clone()
                }
            })
            .collect()
    };
    let p = s.protection.get(path).cloned().unwrap_or_default();
    Some(match (kind, tail) {
        ("projects", []) => answer(
            200,
            json!({
                "id": id, "path_with_namespace": path,
                "path": path.rsplit('/').next().unwrap_or(path),
                "name": path.rsplit('/').next().unwrap_or(path),
                "default_branch": "main", "visibility": "private",
            }),
        ),
        ("projects", ["protected_branches"]) => paginate(fix(&p.branches), q, url),
        ("projects", ["protected_tags"]) => paginate(fix(&p.tags), q, url),
        ("projects", ["protected_environments"]) if s.free_tier => message(403, "403 Forbidden"),
        ("projects", ["protected_environments"]) => paginate(fix(&p.environments), q, url),
        ("groups", ["projects"]) => {
            let subgroups = q.get("include_subgroups").is_some_and(|v| v == "true");
            let prefix = format!("projects/{path}/");
            let items = s
                .owners
                .iter()
                .filter_map(|(o, pid)| {
                    let rest = o.strip_prefix(&prefix)?;
                    (subgroups || !rest.contains('/')).then(|| {
                        let full = &o["projects/".len()..];
                        json!({"id": pid, "path_with_namespace": full, "name": rest})
                    })
                })
                .collect();
            paginate(items, q, url)
        }
        _ => return None,
    })
}

fn list(s: &State, owner: &str, q: &BTreeMap<String, String>, url: &str) -> Answer {
    let all: Vec<Value> = s
        .vars
        .iter()
        .filter(|((o, _, _), _)| o == owner)
        .map(|(_, v)| v.clone())
        .collect();
    paginate(all, q, url)
}

/// One page of `all`, with GitLab's pagination headers (`per_page` at most 100).
fn paginate(all: Vec<Value>, q: &BTreeMap<String, String>, url: &str) -> Answer {
    let per_page: usize = q
        .get("per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
        .clamp(1, 100);
    let page: usize = q
        .get("page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let total = all.len();
    let pages = total.div_ceil(per_page).max(1);
    let items: Vec<Value> = all
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let path = url.split_once('?').map_or(url, |(p, _)| p);
    let link = |p: usize, rel: &str| {
        format!("<http://127.0.0.1{path}?page={p}&per_page={per_page}>; rel=\"{rel}\"")
    };
    let mut links = vec![link(1, "first"), link(pages, "last")];
    let next = if page < pages {
        (page + 1).to_string()
    } else {
        String::new()
    };
    if page < pages {
        links.push(link(page + 1, "next"));
    }
    let prev = if page > 1 {
        (page - 1).to_string()
    } else {
        String::new()
    };
    Answer {
        status: 200,
        body: Value::Array(items),
        headers: vec![
            ("X-Page".into(), page.to_string()),
            ("X-Per-Page".into(), per_page.to_string()),
            ("X-Total".into(), total.to_string()),
            ("X-Total-Pages".into(), pages.to_string()),
            ("X-Next-Page".into(), next),
            ("X-Prev-Page".into(), prev),
            ("Link".into(), links.join(", ")),
        ],
    }
}
