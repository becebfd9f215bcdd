//! GitLab's ID token claims, typed. GitLab documents every custom claim as a string
//! (`"true"`/`"false"` and numeric ids included) and the registered time claims as numbers; a
//! claim of another type is refused naming the claim, never guessed at. Claims the gate does
//! not know are ignored.

use serde_json::{Map, Value};

use crate::jwt::TokenError;

/// The verified claims of a GitLab ID token (see GitLab's "ID token authentication" docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitlabClaims {
    /// The issuer, GitLab's URL; checked to be exactly the configured one.
    pub iss: String,
    /// The subject, `project_path:<group/project>:ref_type:<type>:ref:<name>`, which cloud trust policies usually match.
    pub sub: String,
    /// `aud` as a list (GitLab sends a string; JWT allows an array).
    pub aud: Vec<String>,
    /// Expiry, Unix seconds; the token is refused after it (plus leeway).
    pub exp: i64,
    /// Issue time, Unix seconds; bounds the token's age and must not lie in the future.
    pub iat: i64,
    /// Not-before, Unix seconds, when GitLab sets it.
    pub nbf: Option<i64>,
    /// The token's unique id, which replay refusal records.
    pub jti: Option<String>,
    /// The id of the group or user namespace owning the project; unlike its path, it survives renames.
    pub namespace_id: String,
    /// The namespace's path (`group/subgroup`).
    pub namespace_path: String,
    /// The project's numeric id; it survives renames and transfers, unlike its path.
    pub project_id: String,
    /// The project's full path (`group/project`).
    pub project_path: String,
    /// The id of the user the job runs as, if GitLab states it.
    pub user_id: Option<String>,
    /// The login of the user the job runs as.
    pub user_login: Option<String>,
    /// The email of the user the job runs as.
    pub user_email: Option<String>,
    /// The user's access level on the project (`developer`, `maintainer`, ...).
    pub user_access_level: Option<String>,
    /// The pipeline's id; part of the session name and the SourceIdentity.
    pub pipeline_id: String,
    /// What started the pipeline (`push`, `schedule`, `merge_request_event`, ...), which rules can restrict.
    pub pipeline_source: String,
    /// The job's id; part of the session name.
    pub job_id: String,
    /// `ref`: the branch or tag name.
    pub ref_name: String,
    /// `branch` or `tag`.
    pub ref_type: String,
    /// The fully qualified ref (`refs/heads/main`, `refs/tags/v1`), when GitLab sends it.
    pub ref_path: Option<String>,
    /// Whether the ref is protected; from a signed claim, unlike `CI_COMMIT_REF_PROTECTED`.
    pub ref_protected: bool,
    /// The environment the job deploys to (`environment:` in `.gitlab-ci.yml`), if any.
    pub environment: Option<String>,
    /// Whether that environment is protected in GitLab.
    pub environment_protected: Option<bool>,
    /// The environment's tier (`production`, `staging`, ...).
    pub deployment_tier: Option<String>,
    /// What the job does to the environment (`start`, `prepare`, `stop`, ...).
    pub environment_action: Option<String>,
    /// The runner's id.
    pub runner_id: Option<String>,
    /// `gitlab-hosted` or `self-hosted`: whether the job ran on a runner GitLab operates.
    pub runner_environment: Option<String>,
    /// The commit the job runs at.
    pub sha: Option<String>,
    /// The ref URI of the CI config that defined the job, so a rule can demand the project's own pipeline file.
    pub ci_config_ref_uri: Option<String>,
    /// The commit of that CI config.
    pub ci_config_sha: Option<String>,
    /// `public`, `internal` or `private`.
    pub project_visibility: Option<String>,
}

struct Reader<'a>(&'a Map<String, Value>);

impl Reader<'_> {
    fn opt_str(&self, claim: &'static str) -> Result<Option<String>, TokenError> {
        match self.0.get(claim) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(TokenError::WrongType {
                claim,
                expected: "a string",
            }),
        }
    }
    fn str(&self, claim: &'static str) -> Result<String, TokenError> {
        self.opt_str(claim)?
            .filter(|s| !s.is_empty())
            .ok_or(TokenError::MissingClaim(claim))
    }
    /// GitLab's numeric ids are strings of digits.
    fn id(&self, claim: &'static str) -> Result<String, TokenError> {
        let s = self.str(claim)?;
        if s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(s)
        } else {
            Err(TokenError::WrongType {
                claim,
                expected: "a string of digits",
            })
        }
    }
    /// GitLab's docs show `runner_id` as a JSON number while every other id is a string;
    /// both spellings mean the same id.
    fn opt_id_any(&self, claim: &'static str) -> Result<Option<String>, TokenError> {
        match self.0.get(claim) {
            Some(Value::Number(n)) if n.is_u64() => Ok(Some(n.to_string())),
            _ => self.opt_str(claim),
        }
    }
    fn opt_bool(&self, claim: &'static str) -> Result<Option<bool>, TokenError> {
        match self.0.get(claim) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s == "true" => Ok(Some(true)),
            Some(Value::String(s)) if s == "false" => Ok(Some(false)),
            Some(_) => Err(TokenError::WrongType {
                claim,
                expected: "the string \"true\" or \"false\"",
            }),
        }
    }
    fn opt_time(&self, claim: &'static str) -> Result<Option<i64>, TokenError> {
        match self.0.get(claim) {
            None => Ok(None),
            // NumericDate may carry a fraction; the gate's clock has whole seconds.
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
                .map(Some)
                .ok_or(TokenError::WrongType {
                    claim,
                    expected: "a number of seconds since 1970",
                }),
            Some(_) => Err(TokenError::WrongType {
                claim,
                expected: "a number of seconds since 1970",
            }),
        }
    }
    fn time(&self, claim: &'static str) -> Result<i64, TokenError> {
        self.opt_time(claim)?.ok_or(TokenError::MissingClaim(claim))
    }
}

impl GitlabClaims {
    /// Reads the claims of a payload. Only the registered claims the verifier needs and the
    /// GitLab claims every job has are required; the rest depend on the job (an environment,
    /// a runner) or on the GitLab version.
    pub fn from_payload(payload: &Map<String, Value>) -> Result<GitlabClaims, TokenError> {
        let r = Reader(payload);
        let aud = match payload.get("aud") {
            None => return Err(TokenError::MissingClaim("aud")),
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(v)) if !v.is_empty() => v
                .iter()
                .map(|a| a.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or(TokenError::WrongType {
                    claim: "aud",
                    expected: "a string or an array of strings",
                })?,
            Some(_) => {
                return Err(TokenError::WrongType {
                    claim: "aud",
                    expected: "a string or an array of strings",
                });
            }
        };
        let ref_protected = r
            .opt_bool("ref_protected")?
            .ok_or(TokenError::MissingClaim("ref_protected"))?;
        Ok(GitlabClaims {
            iss: r.str("iss")?,
            sub: r.str("sub")?,
            aud,
            exp: r.time("exp")?,
            iat: r.time("iat")?,
            nbf: r.opt_time("nbf")?,
            jti: r.opt_str("jti")?,
            namespace_id: r.id("namespace_id")?,
            namespace_path: r.str("namespace_path")?,
            project_id: r.id("project_id")?,
            project_path: r.str("project_path")?,
            user_id: r.opt_str("user_id")?,
            user_login: r.opt_str("user_login")?,
            user_email: r.opt_str("user_email")?,
            user_access_level: r.opt_str("user_access_level")?,
            pipeline_id: r.id("pipeline_id")?,
            pipeline_source: r.str("pipeline_source")?,
            job_id: r.id("job_id")?,
            ref_name: r.str("ref")?,
            ref_type: r.str("ref_type")?,
            ref_path: r.opt_str("ref_path")?,
            ref_protected,
            environment: r.opt_str("environment")?.filter(|e| !e.is_empty()),
            environment_protected: r.opt_bool("environment_protected")?,
            deployment_tier: r.opt_str("deployment_tier")?,
            environment_action: r.opt_str("environment_action")?,
            runner_id: r.opt_id_any("runner_id")?,
            runner_environment: r.opt_str("runner_environment")?,
            sha: r.opt_str("sha")?,
            ci_config_ref_uri: r.opt_str("ci_config_ref_uri")?,
            ci_config_sha: r.opt_str("ci_config_sha")?,
            project_visibility: r.opt_str("project_visibility")?,
        })
    }
}
