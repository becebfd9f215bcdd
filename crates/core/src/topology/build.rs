//! Parsing: the raw TOML checked rule by rule into the validated model, every broken rule
//! collected with its span.

use std::ops::Range;

use indexmap::IndexMap;
use toml::Spanned;

use super::raw::*;
use super::*;
use super::{checks::*, env::*};
use crate::span::Location;
use crate::validate;

/// Reads an inline policy file named in the topology (relative paths are the caller's concern).
pub type ReadFile<'a> = dyn FnMut(&str) -> Result<String, String> + 'a;

pub(super) struct Checker<'a> {
    pub(super) file: &'a str,
    pub(super) src: &'a str,
    pub(super) diagnostics: Vec<Diagnostic>,
}

impl Checker<'_> {
    /// The 1-based line of `span` in the file.
    pub(super) fn line(&self, span: Range<usize>) -> usize {
        Location::from_span(self.file, self.src, span).line
    }

    pub(super) fn report(
        &mut self,
        span: Range<usize>,
        rule: &'static str,
        message: impl Into<String>,
    ) {
        self.diagnostics.push(Diagnostic {
            location: Location::from_span(self.file, self.src, span),
            rule,
            message: message.into(),
        });
    }

    /// Parses `v` into an id, reporting the parse error at its span; a failed id keeps its
    /// text (`invalid`) so the remaining checks still run on it.
    pub(super) fn parse<T>(&mut self, v: S<String>, rule: &'static str) -> T
    where
        T: std::str::FromStr<Err = crate::ids::IdError> + Invalid,
    {
        match v.get_ref().parse() {
            Ok(t) => t,
            Err(e) => {
                self.report(v.span(), rule, e.to_string());
                T::invalid(v.into_inner())
            }
        }
    }

    pub(super) fn check(
        &mut self,
        v: &S<String>,
        rule: &'static str,
        f: impl FnOnce(&str) -> Result<(), String>,
    ) {
        if let Err(m) = f(v.get_ref()) {
            self.report(v.span(), rule, m);
        }
    }
}

/// An id that can carry text that failed to parse, for a topology that is already failing.
pub(super) trait Invalid {
    fn invalid(raw: String) -> Self;
}

impl Invalid for AccountId {
    fn invalid(raw: String) -> Self {
        AccountId::invalid(raw)
    }
}

impl Invalid for Region {
    fn invalid(raw: String) -> Self {
        Region::invalid(raw)
    }
}

impl Invalid for RoleArn {
    fn invalid(raw: String) -> Self {
        RoleArn::invalid(raw)
    }
}

impl Topology {
    /// Parses and validates `src`; `file` names it in messages and `read` loads inline policy
    /// files named in it.
    pub fn parse(
        file: &str,
        src: &str,
        read: &mut ReadFile<'_>,
    ) -> Result<Topology, TopologyError> {
        // Every syntax and schema error first; the semantic rules then run on what could be
        // read, so one run reports them all.
        let (raw, schema) = super::schema::read(file, src);
        let mut c = Checker {
            file,
            src,
            diagnostics: Vec::new(),
        };
        let topo = raw.map(|raw| build(&mut c, raw, read));
        let mut diagnostics = schema;
        diagnostics.append(&mut c.diagnostics);
        match topo {
            Some(topo) if diagnostics.is_empty() => Ok(topo),
            _ => {
                // In file order, as a reader fixes them (the sort is stable: problems of one
                // place keep the order the rules found them in).
                // Problems of the whole file (no line) come last.
                diagnostics
                    .sort_by_key(|d| (d.location.line == 0, d.location.line, d.location.column));
                Err(TopologyError { diagnostics })
            }
        }
    }
}

pub(super) fn build(c: &mut Checker<'_>, raw: RawTopology, read: &mut ReadFile<'_>) -> Topology {
    let rb = raw.broker.into_inner();
    let account_id = c.parse(rb.account_id, "account-id");
    let region = c.parse(rb.region, "region");
    // An unknown partition is reported; the rest of the file is checked as if it were `aws`.
    let partition = rb.partition.map_or(Partition::Aws, |p| {
        p.get_ref()
            .parse()
            .unwrap_or_else(|e: crate::ids::IdError| {
                c.report(p.span(), "partition", e.to_string());
                Partition::Aws
            })
    });
    if let Some(n) = &rb.stack_name {
        c.check(n, "stack-name", |s| {
            validate::stack_name("stack name", s, 128)
        });
    }
    let stack_name = opt_string(rb.stack_name, "rolehop-broker");
    let broker = Broker {
        account_id,
        region,
        partition,
        stack_name,
    };

    let auth_span = raw.auth.span();
    let ra = raw.auth.into_inner();
    if let Some(u) = &ra.gate_url
        && ra.mode.get_ref() != "oidc-gate"
    {
        c.report(
            u.span(),
            "auth-mode",
            "`gate_url` only applies to `mode = \"oidc-gate\"`",
        );
    }
    let auth = match ra.mode.get_ref().as_str() {
        "oidc-gate" => super::gate::build_gate_auth(c, auth_span, ra),
        "access-keys" => {
            for extra in [&ra.issuer, &ra.audience].into_iter().flatten() {
                c.report(
                    extra.span(),
                    "auth-mode",
                    "`issuer` and `audience` only apply to `mode = \"oidc\"`",
                );
            }
            Auth::AccessKeys
        }
        "oidc" => {
            match ra.issuer {
                Some(issuer) => {
                    c.check(&issuer, "oidc-issuer", validate::issuer_url);
                    let audience = match ra.audience {
                        Some(a) if a.get_ref().trim().is_empty() => {
                            c.report(a.span(), "oidc-audience", "the audience must not be empty");
                            String::new()
                        }
                        Some(a) => {
                            // The OIDC provider's client id list takes 1 to 255 characters.
                            c.check(&a, "oidc-audience", |s| {
                                if s.chars().count() > 255 {
                                    return Err(format!(
                                        "the audience has {} characters; AWS allows at most 255",
                                        s.chars().count()
                                    ));
                                }
                                if s.contains('$') {
                                    return Err(format!("audience `{s}` contains `$`: GitLab expands variables in `id_tokens:aud` (since 16.1), so the ID token's `aud` would not be the audience the trust policy names"));
                                }
                                validate::no_dynamic_reference(s)
                            });
                            a.into_inner()
                        }
                        None => issuer.get_ref().clone(),
                    };
                    Auth::Oidc {
                        issuer: issuer.into_inner(),
                        audience,
                    }
                }
                None => {
                    c.report(auth_span, "oidc-issuer", "`mode = \"oidc\"` needs `issuer` (the GitLab URL, e.g. `https://gitlab.com`)");
                    Auth::Oidc {
                        issuer: String::new(),
                        audience: String::new(),
                    }
                }
            }
        }
        other => {
            c.report(
                ra.mode.span(),
                "auth-mode",
                format!("unknown auth mode `{other}`: use `access-keys`, `oidc` or `oidc-gate`"),
            );
            Auth::AccessKeys
        }
    };

    let gitlab = raw.gitlab.map(|g| {
        let span = g.span();
        let g = g.into_inner();
        if let Some(u) = &g.url
            && !((u.get_ref().starts_with("https://") || u.get_ref().starts_with("http://"))
                && u.get_ref().chars().all(|ch| ch.is_ascii_graphic())) {
                c.report(u.span(), "gitlab-url", format!("`{}` is not an http(s) URL", u.get_ref()));
            }
        for t in [&g.project, &g.group].into_iter().flatten() {
            let ok = !t.get_ref().is_empty() && t.get_ref().chars().all(|ch| is_glob_char(ch) && ch != '*');
            if !ok {
                c.report(t.span(), "gitlab-target", format!("`{}` is not a GitLab project or group path (letters, digits, `_`, `.`, `-`, `/`)", t.get_ref()));
            }
        }
        let target = match (g.project, g.group) {
            (Some(p), None) => VariableTarget::Project(p.into_inner()),
            (None, Some(gr)) => VariableTarget::Group(gr.into_inner()),
            (Some(p), Some(_)) => {
                c.report(p.span(), "gitlab-target", "set either `project` or `group`, not both");
                VariableTarget::Project(p.into_inner())
            }
            (None, None) => {
                c.report(span, "gitlab-target", "`[gitlab]` needs `project` or `group`: where rotate writes the broker keys");
                VariableTarget::Project(String::new())
            }
        };
        let var = |c: &mut Checker<'_>, v: Option<S<String>>, default: &str| {
            v.map_or_else(|| default.to_owned(), |v| {
                let ok = !v.get_ref().is_empty()
                    && v.get_ref().len() <= 255
                    && v.get_ref().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !ok {
                    c.report(v.span(), "gitlab-variable", format!("`{}` is not a GitLab variable key (letters, digits and `_`, at most 255)", v.get_ref()));
                }
                v.into_inner()
            })
        };
        GitlabSettings {
            url: g.url.map(Spanned::into_inner),
            target,
            access_key_var: var(c, g.access_key_var, "AWS_ACCESS_KEY_ID"),
            secret_key_var: var(c, g.secret_key_var, "AWS_SECRET_ACCESS_KEY"),
        }
    });

    let rollout = match raw.rollout {
        None => Rollout {
            stack_set_prefix: "rolehop".into(),
            permission_model: PermissionModel::SelfManaged {
                administration_role_arn: None,
                execution_role_name: "AWSCloudFormationStackSetExecutionRole".into(),
            },
        },
        Some(r) => {
            let r = r.into_inner();
            if let Some(p) = &r.stack_set_prefix {
                // StackSets are named `<prefix>-<environment>`, environments up to 32 characters.
                c.check(p, "stack-set-prefix", |s| {
                    validate::stack_name("StackSet prefix", s, 128 - 33)
                });
            }
            let prefix = opt_string(r.stack_set_prefix, "rolehop");
            let model = match r.permission_model.as_ref().map(|m| m.get_ref().as_str()) {
                None | Some("self-managed") => {
                    if let Some(a) = &r.call_as {
                        c.report(a.span(), "call-as", "`call_as` applies to service-managed StackSets only: self-managed StackSets belong to the account rollout runs in");
                    }
                    let administration_role_arn =
                        r.administration_role_arn.map(|a| c.parse(a, "role-arn"));
                    let exec = r.execution_role_name.map_or_else(
                        || "AWSCloudFormationStackSetExecutionRole".to_owned(),
                        |e| {
                            c.check(&e, "role-name", |s| {
                                validate::iam_name("execution role name", s)
                            });
                            e.into_inner()
                        },
                    );
                    PermissionModel::SelfManaged {
                        administration_role_arn,
                        execution_role_name: exec,
                    }
                }
                Some("service-managed") => {
                    let call_as = match r.call_as.as_ref().map(|a| a.get_ref().as_str()) {
                        None | Some("delegated-admin") => CallAs::DelegatedAdmin,
                        Some("management-account") => CallAs::Management,
                        Some(other) => {
                            if let Some(a) = &r.call_as {
                                c.report(a.span(), "call-as", format!("unknown `call_as` `{other}`: use `delegated-admin` (the broker account is a delegated StackSets administrator) or `management-account`"));
                            }
                            CallAs::DelegatedAdmin
                        }
                    };
                    PermissionModel::ServiceManaged { call_as }
                }
                Some(other) => {
                    if let Some(m) = &r.permission_model {
                        c.report(m.span(), "permission-model", format!("unknown permission model `{other}`: use `self-managed` or `service-managed`"));
                    }
                    PermissionModel::ServiceManaged {
                        call_as: CallAs::DelegatedAdmin,
                    }
                }
            };
            Rollout {
                stack_set_prefix: prefix,
                permission_model: model,
            }
        }
    };

    let mut environments = Vec::new();
    if raw.environments.is_empty() {
        c.report(
            0..0,
            "no-environments",
            "the topology defines no environment: add `[environments.<name>]`",
        );
    }
    // account id -> (environment, account name, span) of its first use
    let mut account_owner: IndexMap<String, (String, String)> = IndexMap::new();
    let mut role_owner: IndexMap<String, String> = IndexMap::new();
    let mut user_owner: IndexMap<String, String> = IndexMap::new();
    for (name, env) in raw.environments {
        let env_span = env.span();
        let mut raw_env = env.into_inner();
        let raw_gate = raw_env.gate.take();
        let mut e = build_env(
            c,
            &broker,
            &name,
            raw_env,
            read,
            &mut account_owner,
            &rollout.permission_model,
        );
        e.gate = super::gate::build_gate_rules(
            c,
            &e.name,
            e.protected,
            matches!(auth, Auth::OidcGate { .. }),
            raw_gate,
        );
        if matches!(
            rollout.permission_model,
            PermissionModel::ServiceManaged { .. }
        ) && e.organizational_units.is_empty()
        {
            c.report(
                env_span.clone(),
                "organizational-unit",
                format!(
                    "environment `{}` lists no `organizational_units`: service-managed StackSets (`[rollout] permission_model = \"service-managed\"`) deploy only to organizational units",
                    e.name
                ),
            );
        }
        if let Some(prev) = role_owner.insert(e.service_role.clone(), e.name.clone()) {
            c.report(env_span.clone(), "shared-service-role", format!("environments `{prev}` and `{}` share the service role `{}`: each environment needs its own, or one could reach the other's accounts", e.name, e.service_role));
        }
        if matches!(broker_auth(&auth), AuthKind::Keys)
            && let Some(prev) = user_owner.insert(e.broker_user.clone(), e.name.clone())
        {
            c.report(
                env_span,
                "shared-broker-user",
                format!(
                    "environments `{prev}` and `{}` share the broker user `{}`",
                    e.name, e.broker_user
                ),
            );
        }
        environments.push(e);
    }
    if let (Some(g), AuthKind::Keys) = (&gitlab, broker_auth(&auth)) {
        // Rotation writes one variable pair per environment scope; two environments with the
        // same scope would overwrite each other's keys.
        let mut seen: IndexMap<&str, &str> = IndexMap::new();
        for e in &environments {
            if let Some(prev) = seen.insert(e.gitlab.primary_environment(), &e.name) {
                c.report(0..0, "variable-scope", format!("environments `{prev}` and `{}` both use GitLab environment `{}`: their `{}` variables would overwrite each other", e.name, e.gitlab.primary_environment(), g.access_key_var));
            }
        }
    }

    let pipeline = raw
        .pipeline
        .map_or(Pipeline::Inline, |p| build_pipeline(c, p));

    Topology {
        origin: c.file.to_owned(),
        broker,
        auth,
        gitlab,
        rollout,
        pipeline,
        environments,
    }
}

/// `[pipeline]`: with `component`, every input the component requires must be given, each in
/// the shape the component's install step checks, so a render never ships a job that fails at
/// its first line.
pub(super) fn build_pipeline(c: &mut Checker<'_>, p: S<RawPipeline>) -> Pipeline {
    let span = p.span();
    let p = p.into_inner();
    let Some(component) = p.component else {
        if let Some(other) = [
            &p.image,
            &p.rolehop_version,
            &p.rolehop_sha256,
            &p.package_registry,
            &p.deploy_script,
        ]
        .into_iter()
        .flatten()
        .next()
        {
            c.report(other.span(), "pipeline-component", "these `[pipeline]` settings are inputs of rolehop's CI/CD component: set `component` too, or remove them");
        }
        return Pipeline::Inline;
    };
    c.check(&component, "pipeline-component", |s| {
        let (path, version) = s.rsplit_once('@').ok_or_else(|| {
            format!("`{s}` is not a component address: `<host>/<group>/<project>/deploy@<version>`")
        })?;
        let ok_path = path.split('/').count() >= 3
            && path.ends_with("/deploy")
            && path.chars().all(|ch| {
                ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.' | '/' | '$' | ':')
            });
        let ok_version = !version.is_empty()
            && version
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.' | '$' | '~'));
        if ok_path && ok_version {
            Ok(())
        } else {
            Err(format!(
                "`{s}` is not a component address: `<host>/<group>/<project>/deploy@<version>`"
            ))
        }
    });
    let need = |c: &mut Checker<'_>,
                v: Option<S<String>>,
                key: &str,
                check: fn(&str) -> Result<(), String>|
     -> String {
        match v {
            Some(v) => {
                c.check(&v, "pipeline-component", check);
                v.into_inner()
            }
            None => {
                c.report(span.clone(), "pipeline-component", format!("`[pipeline]` with `component` needs `{key}`: the component refuses to run without it"));
                String::new()
            }
        }
    };
    let one_line = |s: &str| -> Result<(), String> {
        if s.is_empty() || s.chars().any(char::is_control) {
            Err(format!("`{s}` must be one non-empty line"))
        } else {
            Ok(())
        }
    };
    let image = need(c, p.image, "image", one_line);
    let rolehop_version = need(c, p.rolehop_version, "rolehop_version", |s| {
        if !s.is_empty()
            && s.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | '+'))
        {
            Ok(())
        } else {
            Err(format!("`{s}` is not a release version (e.g. `0.1.0`)"))
        }
    });
    let rolehop_sha256 = need(c, p.rolehop_sha256, "rolehop_sha256", |s| {
        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) { Ok(()) } else { Err(format!("`{s}` is not a SHA-256 (64 hex digits): pin the checksum published with the release")) }
    }).to_ascii_lowercase();
    let package_registry = need(c, p.package_registry, "package_registry", |s| {
        let http = s.starts_with("https://") || s.starts_with("http://");
        if !http || !s.chars().all(|ch| ch.is_ascii_graphic()) {
            Err(format!("`{s}` is not an http(s) URL"))
        } else if crate::endpoint::cleartext_off_machine(s).is_some() {
            Err(format!(
                "`{s}` is plain http off this machine: the install refuses it (https only, or loopback)"
            ))
        } else {
            Ok(())
        }
    });
    let deploy_script = need(c, p.deploy_script, "deploy_script", one_line);
    Pipeline::Component(ComponentSettings {
        component: component.into_inner(),
        image,
        rolehop_version,
        rolehop_sha256,
        package_registry: package_registry.trim_end_matches('/').to_owned(),
        deploy_script,
    })
}
