//! What an attacker faces: a topology's IAM documents as `rolehop render` embeds them (the pure
//! builders of `rolehop_render::iam`, shared by the renderer and the auditor), the principals
//! that exist around them, and the requests a hop makes, written as cases in rolehop's
//! case-file format so both IAM engines decide exactly the same JSON.

use std::path::{Path, PathBuf};

use rolehop_core::Topology;
use rolehop_core::chain::{self, Base, ChainRequest, FirstHop, Hop, StaticKeys};
use rolehop_core::gitlab_ctx::JobContext;
use rolehop_core::topology::{Auth, Environment, TargetAccount};
use rolehop_render::iam;
use serde_json::{Map, Value, json};

/// The legitimate job every attack is measured against: a pipeline of `acme/shop` on `main`
/// deploying to `production` (what GitLab's predefined variables say in such a job).
pub fn legit_job() -> JobContext {
    JobContext {
        project_path: Some("acme/shop".into()),
        project_id: Some("42".into()),
        pipeline_id: Some("1001".into()),
        job_id: Some("5005".into()),
        ref_name: Some("main".into()),
        ref_protected: true,
        environment: Some("production".into()),
        ..JobContext::default()
    }
}

/// A topology and the IAM documents rendered from it.
pub struct World {
    pub name: String,
    pub topo: Topology,
    /// The topology file, as `rolehop render --config` takes it.
    pub config: PathBuf,
    /// Holds a tempting topology's file while the world lives.
    _dir: Option<tempfile::TempDir>,
}

/// Someone making a request: an ARN and the identity policies that come with it.
#[derive(Clone)]
pub struct Who {
    pub arn: String,
    pub identity: Vec<Value>,
}

/// A role being assumed: its ARN and trust policy.
#[derive(Clone)]
pub struct Role {
    pub arn: String,
    pub trust: Value,
}

/// What an AssumeRole call carries besides the role: tags, SourceIdentity, external id.
#[derive(Clone, Debug, Default)]
pub struct Ask {
    pub tags: Vec<(String, String)>,
    pub transitive: Vec<String>,
    pub source_identity: Option<String>,
    pub external_id: Option<String>,
}

/// A GitLab ID token, as far as IAM sees it: the issuer names the OIDC provider, `sub` and
/// `aud` become the condition keys `<issuer host>:sub` and `<issuer host>:aud`.
#[derive(Clone, Debug)]
pub struct Token {
    pub issuer: String,
    pub sub: String,
    pub aud: String,
}

impl Token {
    pub fn host(&self) -> &str {
        self.issuer.trim_start_matches("https://")
    }
}

/// Everything an AWS-principal identity policy can grant: the worst a deployment role's own
/// permissions (written by the user) could be.
pub fn allow_everything() -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
}

/// `arn:aws:sts::<account>:assumed-role/<name>/<session>` for a role ARN.
pub fn session_of(role_arn: &str, session: &str) -> String {
    let account = role_arn.split(':').nth(4).unwrap_or_default();
    let name = role_arn.rsplit('/').next().unwrap_or_default();
    format!("arn:aws:sts::{account}:assumed-role/{name}/{session}")
}

/// A topology file (`examples/<name>/rolehop.toml` or one written by a test), parsed as render
/// parses it, policy files read next to it.
pub fn parse(origin: &str, src: &str, dir: &Path) -> Result<Topology, String> {
    let mut read = |p: &str| std::fs::read_to_string(dir.join(p)).map_err(|e| e.to_string());
    Topology::parse(origin, src, &mut read).map_err(|e| e.to_string())
}

impl World {
    pub fn example(name: &str) -> World {
        let dir = rolehop_testkit::workspace_root()
            .join("examples")
            .join(name);
        let src = std::fs::read_to_string(dir.join("rolehop.toml")).unwrap();
        let origin = format!("examples/{name}/rolehop.toml");
        let topo = parse(&origin, &src, &dir).unwrap_or_else(|e| panic!("{e}"));
        World {
            name: format!("examples/{name}"),
            topo,
            config: dir.join("rolehop.toml"),
            _dir: None,
        }
    }

    /// A topology written to tempt a mistake; it must be valid (the attack is on its IAM).
    pub fn tempting(name: &str, src: &str) -> World {
        let topo = parse(name, src, Path::new("/nonexistent"))
            .unwrap_or_else(|e| panic!("tempting topology `{name}` is refused: {e}"));
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("rolehop.toml");
        std::fs::write(&config, src).unwrap();
        World {
            name: name.to_owned(),
            topo,
            config,
            _dir: Some(dir),
        }
    }

    /// Every IAM document (`AssumeRolePolicyDocument`, `PolicyDocument`) in the files
    /// `rolehop render` writes for this topology, read back by PyYAML.
    pub fn rendered_documents(&self) -> Vec<Value> {
        let out = tempfile::tempdir().unwrap();
        let render = assert_cmd::Command::cargo_bin("rolehop")
            .unwrap()
            .args(["render", "--config"])
            .arg(&self.config)
            .arg("--out")
            .arg(out.path())
            .output()
            .unwrap();
        assert!(
            render.status.success(),
            "{}: {}",
            self.name,
            String::from_utf8_lossy(&render.stderr)
        );
        let script = "import sys, json, glob, yaml\n\
            docs = []\n\
            def walk(v):\n\
            \x20   if isinstance(v, dict):\n\
            \x20       for k, x in v.items():\n\
            \x20           if k in ('AssumeRolePolicyDocument', 'PolicyDocument'): docs.append(x)\n\
            \x20           else: walk(x)\n\
            \x20   elif isinstance(v, list):\n\
            \x20       for x in v: walk(x)\n\
            for f in sorted(glob.glob(sys.argv[1] + '/*.yaml')):\n\
            \x20   walk(yaml.safe_load(open(f, encoding='utf-8')))\n\
            print(json.dumps(docs))";
        let py = std::process::Command::new(rolehop_testkit::venv_tool("python"))
            .args(["-c", script])
            .arg(out.path())
            .output()
            .unwrap();
        assert!(
            py.status.success(),
            "{}",
            String::from_utf8_lossy(&py.stderr)
        );
        serde_json::from_slice(&py.stdout).unwrap()
    }

    /// The documents the attacks are made against, as the builders give them.
    pub fn attacked_documents(&self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for e in &self.topo.environments {
            let t = &self.topo;
            out.push((
                format!("{} service role trust", e.name),
                iam::service_role_trust(t, e),
            ));
            out.push((
                format!("{} service role policy", e.name),
                iam::service_role_policy(t, e),
            ));
            out.push((
                format!("{} deployment role trust", e.name),
                iam::deployment_role_trust(t, e),
            ));
            if matches!(t.auth, Auth::AccessKeys) {
                out.push((
                    format!("{} broker user policy", e.name),
                    iam::broker_user_policy(t, e),
                ));
            }
        }
        out
    }

    pub fn env(&self, name: &str) -> &Environment {
        self.topo
            .environment(name)
            .unwrap_or_else(|| panic!("{}: no environment `{name}`", self.name))
    }

    fn account(&self, env: &str, account: &str) -> &TargetAccount {
        self.env(env)
            .accounts
            .iter()
            .find(|a| a.name == account)
            .unwrap_or_else(|| panic!("{}: `{env}` has no account `{account}`", self.name))
    }

    /// The environment's broker IAM user, holding its access keys.
    pub fn broker_user(&self, env: &str) -> Who {
        let e = self.env(env);
        Who {
            arn: self.topo.broker_user_arn(e),
            identity: vec![iam::broker_user_policy(&self.topo, e)],
        }
    }

    /// A session of the environment's service role (after the first hop).
    pub fn service_session(&self, env: &str) -> Who {
        let e = self.env(env);
        Who {
            arn: session_of(&self.topo.service_role_arn(e), "gl-42-1001-5005"),
            identity: vec![iam::service_role_policy(&self.topo, e)],
        }
    }

    /// A session of the environment's deployment role in `account`, with the worst identity
    /// policy its owner could give it.
    pub fn deploy_session(&self, env: &str, account: &str) -> Who {
        let e = self.env(env);
        let a = self.account(env, account);
        Who {
            arn: session_of(&self.topo.deployment_role_arn(e, a), "gl-42-1001-5005"),
            identity: vec![allow_everything()],
        }
    }

    pub fn service_role(&self, env: &str) -> Role {
        let e = self.env(env);
        Role {
            arn: self.topo.service_role_arn(e).to_string(),
            trust: iam::service_role_trust(&self.topo, e),
        }
    }

    pub fn deploy_role(&self, env: &str, account: &str) -> Role {
        let e = self.env(env);
        let a = self.account(env, account);
        Role {
            arn: self.topo.deployment_role_arn(e, a).to_string(),
            trust: iam::deployment_role_trust(&self.topo, e),
        }
    }

    /// The hops rolehop itself plans for the legitimate job (same tags, SourceIdentity and
    /// external id as `rolehop assume`), so a control request is what a real job sends.
    pub fn planned(&self, env: &str, account: &str, job: &JobContext) -> Vec<Hop> {
        let e = self.env(env);
        let a = self.account(env, account);
        let base = match self.topo.auth {
            Auth::AccessKeys => Base::AccessKeys(StaticKeys {
                access_key_id: "AKIAEXAMPLE".into(),
                secret_access_key: rolehop_core::secret::secret("unused"),
                session_token: None,
            }),
            Auth::Oidc { .. } => Base::WebIdentity(rolehop_core::secret::secret("unused")),
            // The gate's hop is an AssumeRole with tags and a SourceIdentity, as the broker
            // user's.
            Auth::OidcGate { .. } => Base::AccessKeys(StaticKeys {
                access_key_id: "AKIAEXAMPLE".into(),
                secret_access_key: rolehop_core::secret::secret("unused"),
                session_token: None,
            }),
        };
        let req = ChainRequest {
            base,
            service_role_arn: Some(self.topo.service_role_arn(e).to_string()),
            deploy_role_arn: self.topo.deployment_role_arn(e, a).to_string(),
            duration_secs: None,
            environment_max_secs: Some(e.max_session_secs),
            external_id: e.external_id.clone(),
            tags: true,
            source_identity: true,
            deployment_session: Default::default(),
        };
        let plan = chain::plan(&req, job).unwrap();
        // The first hop as a bare AssumeRole shape: a web-identity hop carries no tags or
        // SourceIdentity.
        let first = match plan.first {
            FirstHop::AccessKeys { hop, .. } => hop,
            FirstHop::WebIdentity { hop, .. } => Hop {
                role_arn: hop.role_arn,
                session_name: hop.session_name,
                duration_secs: hop.duration_secs,
                source_identity: None,
                tags: Vec::new(),
                transitive_tag_keys: Vec::new(),
                external_id: None,
                policy: None,
                policy_arns: Vec::new(),
                optional_tags: Vec::new(),
            },
            FirstHop::Gate { .. } => panic!("the attack world plans no gate chains"),
        };
        vec![first, plan.deployment]
    }

    /// What the job's first hop asks (access-keys mode), as rolehop plans it.
    pub fn first_ask(&self, env: &str) -> Ask {
        let account = self.env(env).accounts[0].name.clone();
        Ask::from_hop(&self.planned(env, &account, &legit_job())[0], None)
    }

    /// What the job's deployment hop asks, with the SourceIdentity set on the first hop in
    /// access-keys mode (it persists through the chain).
    pub fn deploy_ask(&self, env: &str, account: &str) -> Ask {
        let hops = self.planned(env, account, &legit_job());
        Ask::from_hop(&hops[1], hops[0].source_identity.clone())
    }

    /// The audience and issuer of the topology (OIDC mode).
    pub fn token(&self, sub: &str) -> Token {
        match &self.topo.auth {
            Auth::Oidc {
                issuer, audience, ..
            } => Token {
                issuer: issuer.clone(),
                sub: sub.to_owned(),
                aud: audience.clone(),
            },
            Auth::AccessKeys | Auth::OidcGate { .. } => {
                panic!("{} is not in OIDC mode", self.name)
            }
        }
    }

    /// The OIDC provider IAM resolves for a token: the one of the token's issuer in the role's
    /// own account (a token from an issuer with no provider there is refused outright).
    pub fn provider_for(&self, token: &Token) -> String {
        format!(
            "arn:aws:iam::{}:oidc-provider/{}",
            self.topo.broker.account_id,
            token.host()
        )
    }
}

impl Ask {
    fn from_hop(hop: &Hop, persisted_source_identity: Option<String>) -> Ask {
        Ask {
            tags: hop
                .tags
                .iter()
                .map(|t| (t.key.clone(), t.value.clone()))
                .collect(),
            transitive: hop.transitive_tag_keys.clone(),
            source_identity: hop.source_identity.clone().or(persisted_source_identity),
            external_id: hop.external_id.clone(),
        }
    }

    /// Adds (or replaces) a transitive session tag.
    pub fn tag(mut self, key: &str, value: &str) -> Ask {
        self.tags.retain(|(k, _)| k != key);
        self.tags.push((key.to_owned(), value.to_owned()));
        if !self.transitive.iter().any(|k| k == key) {
            self.transitive.push(key.to_owned());
        }
        self
    }

    pub fn source_identity(mut self, si: Option<&str>) -> Ask {
        self.source_identity = si.map(str::to_owned);
        self
    }

    pub fn external_id(mut self, x: Option<&str>) -> Ask {
        self.external_id = x.map(str::to_owned);
        self
    }

    /// The request context IAM evaluates for this call.
    fn context(&self) -> Value {
        let mut ctx = Map::new();
        if let Some(si) = &self.source_identity {
            ctx.insert("sts:SourceIdentity".into(), json!(si));
        }
        if !self.tags.is_empty() {
            let keys: Vec<&str> = self.tags.iter().map(|(k, _)| k.as_str()).collect();
            ctx.insert("aws:TagKeys".into(), json!(keys));
            for (k, v) in &self.tags {
                ctx.insert(format!("aws:RequestTag/{k}"), json!(v));
            }
        }
        if !self.transitive.is_empty() {
            ctx.insert("sts:TransitiveTagKeys".into(), json!(self.transitive));
        }
        if let Some(x) = &self.external_id {
            ctx.insert("sts:ExternalId".into(), json!(x));
        }
        Value::Object(ctx)
    }

    /// The authorizations STS asks IAM for: `sts:AssumeRole`, plus `sts:TagSession` when tags
    /// are passed and `sts:SetSourceIdentity` when a SourceIdentity is set or carried along a
    /// chain (the next role's trust must allow it either way).
    fn actions(&self) -> Vec<&'static str> {
        let mut a = vec!["sts:AssumeRole"];
        if !self.tags.is_empty() {
            a.push("sts:TagSession");
        }
        if self.source_identity.is_some() {
            a.push("sts:SetSourceIdentity");
        }
        a
    }
}

/// One case of the case-file format.
pub fn case(
    name: &str,
    principal: &str,
    action: &str,
    resource: &str,
    context: &Value,
    identity: &[Value],
    trust: &Value,
) -> Value {
    json!({
        "name": name,
        "request": {"principal": principal, "action": action, "resource": resource, "context": context},
        "identityPolicies": identity,
        "resourcePolicy": trust,
    })
}

/// The cases of one `AssumeRole` call: every authorization it needs.
pub fn assume(who: &Who, role: &Role, ask: &Ask) -> Vec<Value> {
    let ctx = ask.context();
    ask.actions()
        .into_iter()
        .map(|action| {
            case(
                &format!("{} {action} {}", who.arn, role.arn),
                &who.arn,
                action,
                &role.arn,
                &ctx,
                &who.identity,
                &role.trust,
            )
        })
        .collect()
}

/// The case of an `AssumeRoleWithWebIdentity` call: the provider is the principal, decided by
/// the trust policy alone; `sub` and `aud` are condition keys named after the issuer.
pub fn web_identity(provider: &str, token: &Token, role: &Role) -> Value {
    let host = token.host();
    let ctx = json!({ format!("{host}:sub"): token.sub, format!("{host}:aud"): token.aud });
    case(
        &format!(
            "{provider} sts:AssumeRoleWithWebIdentity {} sub={}",
            role.arn, token.sub
        ),
        provider,
        "sts:AssumeRoleWithWebIdentity",
        &role.arn,
        &ctx,
        &[],
        &role.trust,
    )
}
