//! `rolehop doctor`: explains a broken setup from inside a job. It checks, in the order a
//! job meets them, the GitLab context, the topology's rules, the base identity (keys or ID
//! token, decoded without trusting it) and each hop, and says for every failure the most
//! likely cause and the fix. It never prints a secret.

use std::fmt::Write as _;

use time::OffsetDateTime;

use rolehop_aws::sts::{StaticKeys, StsSettings, caller_identity};
use rolehop_core::Topology;
use rolehop_core::chain::check_protected;
use rolehop_core::credentials::rfc3339;
use rolehop_core::duration::format_secs;
use rolehop_core::gitlab_ctx::{Env, JobContext, ProcessEnv};
use rolehop_core::id_token::{self, Claims};
use rolehop_core::job_check::{check_job, string_like};
use rolehop_core::secret::secret;
use rolehop_core::span::printable;
use rolehop_core::topology::{Auth, Environment};

use super::selection::{self, Selection};
use crate::exit::{CliError, CliResult, Exit};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub selection: Selection,
}

#[derive(Default)]
struct Report {
    text: String,
    failures: usize,
}

impl Report {
    fn section(&mut self, title: &str) {
        let _ = writeln!(self.text, "\n{title}");
    }
    fn info(&mut self, key: &str, value: impl std::fmt::Display) {
        let _ = writeln!(self.text, "  {key:<16} {value}");
    }
    fn ok(&mut self, msg: impl std::fmt::Display) {
        let _ = writeln!(self.text, "  ok    {msg}");
    }
    fn fail(&mut self, msg: impl std::fmt::Display, fix: impl std::fmt::Display) {
        self.failures += 1;
        let _ = writeln!(self.text, "  FAIL  {msg}\n        fix: {fix}");
    }
}

pub fn run(args: Args) -> CliResult {
    let env = ProcessEnv;
    let report = diagnose(&args.selection, &env, OffsetDateTime::now_utc())?;
    super::assume::print_stdout(&report.text)?;
    if report.failures == 0 {
        println!("\nall checks passed");
        Ok(Exit::Ok)
    } else {
        println!("\n{} check(s) failed", report.failures);
        Ok(Exit::CheckFailed)
    }
}

fn diagnose(sel: &Selection, env: &dyn Env, now: OffsetDateTime) -> CliResult<Report> {
    let mut r = Report::default();
    let job = JobContext::from_env(env);
    r.text.push_str("rolehop doctor\n");
    r.section("GitLab job");
    if job.in_job() {
        r.info(
            "project",
            format!(
                "{} (id {})",
                job.project_path.as_deref().unwrap_or("?"),
                job.project_id.as_deref().unwrap_or("?")
            ),
        );
        r.info(
            "ref",
            format!(
                "{} ({})",
                job.ref_name.as_deref().unwrap_or("?"),
                if job.ref_protected {
                    "protected"
                } else {
                    "not protected"
                }
            ),
        );
        r.info(
            "environment",
            job.environment
                .as_deref()
                .unwrap_or("(none: the job has no `environment:`)"),
        );
        r.info(
            "job",
            format!(
                "{} in pipeline {}",
                job.job_id.as_deref().unwrap_or("?"),
                job.pipeline_id.as_deref().unwrap_or("?")
            ),
        );
    } else {
        r.info(
            "context",
            "not in a GitLab job (no CI_JOB_ID): checking with the local environment",
        );
    }

    // The topology is the reference everything else is compared with.
    let topo = selection::load_selected(sel, env)?;
    let selected = match (&topo, &sel.env) {
        (Some(t), Some(name)) => Some((
            t,
            t.require_environment(name)
                .map_err(|m| CliError::msg(Exit::Usage, m))?,
        )),
        (Some(_), None) => return Err(CliError::msg(Exit::Usage, "--config needs --env ENV")),
        _ => None,
    };
    if let Some((t, e)) = selected {
        r.section(&format!("Topology {} — environment `{}`", t.origin, e.name));
        r.info("service role", t.service_role_arn(e));
        for a in &e.accounts {
            r.info(&format!("account {}", a.name), t.deployment_role_arn(e, a));
        }
        check_context(&mut r, e, &job);
    } else if sel.protected
        && let Err(refusal) = check_protected("(selected by ARN)", true, &job, false)
    {
        r.fail(
            refusal.to_string().lines().next().unwrap_or_default(),
            "run from a protected branch or tag",
        );
    }

    r.section("Base identity");
    let token = selection::read_token(sel, env)?;
    let oidc = selection::wants_oidc(
        sel.base,
        topo.as_ref().map(|t| !matches!(t.auth, Auth::AccessKeys)),
        token.is_some(),
    );
    // doctor reports a missing region as a failed hop, so any region does to get there.
    let region =
        selection::pick_region(sel, env, topo.as_ref()).unwrap_or_else(|| "us-east-1".to_owned());
    let settings = selection::sts_settings(region, selection::sts_endpoint(env), env)?;
    settings.network.load_ca().map_err(CliError::from_error)?;
    let base_ok = if oidc {
        check_token(&mut r, token, selected, sel, now)
    } else {
        check_keys(&mut r, env, selected, &settings)?
    };

    r.section("Chain");
    if !base_ok {
        r.info("skipped", "the base identity is not usable; fix it first");
        return Ok(r);
    }
    // Try the hops even where rolehop would refuse the ref or the job: the refusal is reported above,
    // and the hop results are still worth knowing.
    let mut probe = sel.clone();
    probe.allow_unprotected_ref = true;
    probe.skip_job_check = true;
    let resolved = match selection::resolve(&probe, env, now) {
        Ok(res) => res,
        Err(e) => {
            r.fail(format!("{:#}", e.error), "fix the selection or input above");
            return Ok(r);
        }
    };
    let hop_line = |h: &rolehop_core::credentials::HopOutcome| {
        format!(
            "{} hop: {} (source identity {})",
            h.label,
            h.assumed_role_arn,
            h.source_identity.as_deref().unwrap_or("none")
        )
    };
    match selection::execute_raw(&resolved) {
        Ok(out) => {
            for h in &out.hops {
                r.ok(hop_line(h));
            }
            let left = (out.credentials.expiration - now).whole_seconds().max(0);
            r.info(
                "session",
                format!(
                    "{} left (expires {})",
                    format_secs(left.unsigned_abs()),
                    rfc3339(out.credentials.expiration)
                ),
            );
        }
        Err(e) => {
            for h in &e.completed {
                r.ok(hop_line(h));
            }
            let who = match e.origin {
                rolehop_aws::chain::Origin::Sts => "AWS",
                rolehop_aws::chain::Origin::Gate { .. } => "gate",
            };
            let said = match (&e.code, &e.aws_message) {
                (Some(c), Some(m)) => format!(" ({who}: {c}: {m})"),
                (Some(c), None) => format!(" ({who}: {c})"),
                (None, Some(m)) => format!(" ({m})"),
                (None, None) => String::new(),
            };
            // The error's own first line: which hop, and what could not be done.
            let text = e.to_string();
            let head = text.lines().next().unwrap_or_default();
            r.fail(format!("{head}{said}"), &e.hint);
        }
    }
    Ok(r)
}

fn check_context(r: &mut Report, e: &Environment, job: &JobContext) {
    match check_protected(&e.name, e.protected, job, false) {
        Ok(()) if e.protected => r.ok(format!("ref is protected, as protected environment `{}` requires", e.name)),
        Ok(()) => r.ok(format!("environment `{}` is not protected: any allowed ref may deploy", e.name)),
        Err(_) => r.fail(
            format!(
                "environment `{}` is protected but ref `{}` is not: rolehop refuses to hand out its credentials",
                e.name,
                job.ref_name.as_deref().unwrap_or("?")
            ),
            "deploy from a protected branch or tag (Settings > Repository > Protected branches)",
        ),
    }
    // The same check `assume` and `exec` make before any STS call.
    if !job.in_job() {
        r.info(
            "job check",
            "skipped: not in a GitLab job (no CI_JOB_ID), so no project, ref or environment to compare",
        );
        return;
    }
    match check_job(e, job) {
        Ok(()) => r.ok(format!(
            "project, ref and GitLab environment are ones environment `{}` allows",
            e.name
        )),
        Err(refusal) => {
            for m in &refusal.mismatches {
                r.fail(
                    format!(
                        "{}: rolehop refuses to hand out `{}`'s credentials",
                        printable(&m.to_string()),
                        e.name
                    ),
                    format!(
                        "run the job from a {} the topology's `[environments.{}.gitlab]` names, or add it there and roll out",
                        m.part(),
                        e.name
                    ),
                );
            }
        }
    }
}

fn check_token(
    r: &mut Report,
    token: Option<rolehop_core::Secret>,
    selected: Option<(&Topology, &Environment)>,
    sel: &Selection,
    now: OffsetDateTime,
) -> bool {
    let Some(token) = token else {
        // The topology knows the audience the OIDC provider and trust policy expect.
        let audience = match selected.map(|(t, _)| &t.auth) {
            Some(Auth::Oidc { audience, .. }) => audience.clone(),
            _ => "<audience>".to_owned(),
        };
        r.fail(
            format!("no ID token in `{}`", sel.id_token_var),
            format!(
                "declare it in the job: `id_tokens: {{{}: {{aud: {audience}}}}}`",
                sel.id_token_var
            ),
        );
        return false;
    };
    let claims = match id_token::decode_unverified(&token) {
        Ok(c) => c,
        Err(e) => {
            r.fail(
                e.to_string(),
                "pass the ID token variable from `id_tokens:` unchanged",
            );
            return false;
        }
    };
    show_claims(r, &claims, now);
    let mut ok = true;
    if let Err(e) = id_token::check_not_expired(&claims, now) {
        r.fail(
            e.to_string(),
            // The message already says to rerun the job; the fix says how to keep it valid.
            "assume credentials early in the job, before long steps, or raise the job's `timeout:` (the token lives as long as it)",
        );
        ok = false;
    }
    if let Some((t, e)) = selected
        && let Auth::Oidc { issuer, audience } = &t.auth
    {
        match &claims.iss {
            Some(iss) if iss == issuer => r.ok(format!("issuer `{iss}` matches the topology")),
            other => {
                r.fail(
                    format!(
                        "the token's issuer `{}` is not the topology's `{issuer}`",
                        other.as_deref().unwrap_or("?")
                    ),
                    "set `auth.issuer` to your GitLab URL exactly as CI_SERVER_URL",
                );
                ok = false;
            }
        }
        match &claims.aud {
            Some(aud) if aud.contains(audience) => r.ok(format!("audience `{audience}` matches")),
            other => {
                r.fail(
                        format!(
                            "the token's aud `{}` is not the audience the OIDC provider and trust policy expect (`{audience}`)",
                            other.as_ref().map_or_else(|| "?".to_owned(), ToString::to_string)
                        ),
                        format!("set `id_tokens: {}: aud: {audience}` in .gitlab-ci.yml", sel.id_token_var),
                    );
                ok = false;
            }
        }
        let patterns = e.gitlab.sub_patterns();
        let sub = claims.sub.clone().unwrap_or_default();
        if patterns.iter().any(|p| string_like(p, &sub)) {
            r.ok(format!("sub `{sub}` matches the service role's trust"));
        } else {
            let fix = ref_type_hint(e, &sub).unwrap_or_else(|| format!("run from a project and ref that environment `{}` allows, or add them to its `[gitlab]` section and roll out", e.name));
            r.fail(
                format!(
                    "the service role trusts sub like {}, the token's sub is {sub}",
                    patterns.join(" or ")
                ),
                fix,
            );
            ok = false;
        }
    }
    ok
}

/// When the token's ref is declared under the other ref type (a tag `main`, a branch `v1`):
/// branches and tags are trusted separately, which is worth saying since a tag named like a
/// protected branch is not protected.
fn ref_type_hint(e: &Environment, sub: &str) -> Option<String> {
    let (head, reff) = sub.rsplit_once(":ref:")?;
    let (_, ty) = head
        .strip_prefix("project_path:")?
        .split_once(":ref_type:")?;
    let (other, listed_as, wanted) = match ty {
        "branch" => (&e.gitlab.tags, "tags", "branches"),
        "tag" => (&e.gitlab.branches, "branches", "tags"),
        _ => return None,
    };
    let hit = other.iter().find(|g| string_like(g, reff))?;
    Some(format!(
        "`{reff}` is a {ty} here, but environment `{}` lists `{hit}` under `{listed_as}` only: branches and tags are trusted separately (a {ty} named like a protected {} is usually not protected); run from the {} or, if every such {ty} is protected, add it to `{wanted}`",
        e.name,
        if ty == "tag" { "branch" } else { "tag" },
        if ty == "tag" { "branch" } else { "tag" },
    ))
}

fn show_claims(r: &mut Report, c: &Claims, now: OffsetDateTime) {
    r.info("ID token", "decoded without verification (STS verifies it)");
    r.info("iss", c.iss.as_deref().unwrap_or("?"));
    r.info("sub", c.sub.as_deref().unwrap_or("?"));
    r.info(
        "aud",
        c.aud
            .as_ref()
            .map_or_else(|| "?".to_owned(), ToString::to_string),
    );
    r.info("ref_protected", c.ref_protected.as_deref().unwrap_or("?"));
    if let Some(exp) = c.expires_at() {
        let left = (exp - now).whole_seconds();
        r.info(
            "expires",
            format!(
                "{} ({})",
                rfc3339(exp),
                if left > 0 {
                    format!("{} left", format_secs(left.unsigned_abs()))
                } else {
                    "expired".to_owned()
                }
            ),
        );
    }
}

fn check_keys(
    r: &mut Report,
    env: &dyn Env,
    selected: Option<(&Topology, &Environment)>,
    settings: &StsSettings,
) -> CliResult<bool> {
    use rolehop_core::broker_key::{self, BROKER_KEY_VAR, KeySource};
    let (k, source) = match broker_key::from_env(env) {
        Ok(Some(found)) => found,
        Ok(None) => {
            r.fail(
                format!("no {BROKER_KEY_VAR} (nor AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) in the job"),
                format!(
                    "the broker key is one masked, protected variable `{BROKER_KEY_VAR}` = `<access key id>:<secret>` scoped to the job's GitLab environment (what `rolehop rotate` writes); \
                     it only reaches protected refs, and only jobs whose environment matches its scope. Hand-made setups may use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY instead"
                ),
            );
            return Ok(false);
        }
        Err(e) => {
            r.fail(
                e.to_string(),
                format!("rerun `rolehop rotate` to store a fresh pair, or set `{BROKER_KEY_VAR}` to `<access key id>:<secret access key>` by hand"),
            );
            return Ok(false);
        }
    };
    let id = k.id.clone();
    let keys = StaticKeys {
        access_key_id: k.id,
        secret_access_key: k.secret,
        session_token: (source == KeySource::Legacy)
            .then(|| env.var("AWS_SESSION_TOKEN").map(secret))
            .flatten(),
    };
    let from = match source {
        KeySource::Combined => BROKER_KEY_VAR.to_owned(),
        KeySource::Legacy => {
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (fallback; `rolehop rotate` migrates them)"
                .to_owned()
        }
    };
    r.info("access key", format!("{id} from {from}"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            CliError::msg(
                Exit::Internal,
                format!("cannot start the async runtime: {e}"),
            )
        })?;
    match rt.block_on(caller_identity(settings, &keys)) {
        Ok(arn) => {
            r.ok(format!("the keys work: they belong to {arn}"));
            if let Some((t, e)) = selected {
                let want = t.broker_user_arn(e);
                if arn != want {
                    r.fail(
                        format!(
                            "these are not environment `{}`'s broker keys (`{want}`)",
                            e.name
                        ),
                        format!(
                            "check the environment scope of the {BROKER_KEY_VAR} variable in GitLab"
                        ),
                    );
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Err(failure) => {
            // An endpoint that cannot be reached says nothing about the key: the same hint as
            // rollout and assume give, and the key's fix only when STS refused it.
            let fix = failure.hint().unwrap_or_else(|| {
                "the key was deleted, deactivated or rotated: rerun `rolehop rotate`, or check the masked variables hold the current key".to_owned()
            });
            r.fail(
                format!("GetCallerIdentity with the job's keys failed: {failure}"),
                fix,
            );
            Ok(false)
        }
    }
}
