//! What can go wrong talking to GitLab, phrased so the user knows what to fix. No message
//! carries the token or a variable's value.

/// A failed GitLab API call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitlabError {
    #[error(
        "GitLab rejected the token (401 Unauthorized) on `{request}`: `GITLAB_TOKEN` must be a personal, project or group access token with the `api` scope that has not expired or been revoked (a `CI_JOB_TOKEN` cannot manage CI/CD variables)"
    )]
    Unauthorized { request: String },
    #[error(
        "GitLab refused (403 Forbidden) `{request}`: managing CI/CD variables needs the Maintainer role on the project (Owner on a group) and a token with the `api` scope{detail}"
    )]
    Forbidden { request: String, detail: String },
    #[error(
        "GitLab says `{message}` for `{request}`: check the project or group id or path (`{target}`) and that the token's user can see it"
    )]
    NotFound {
        request: String,
        target: String,
        message: String,
    },
    #[error("GitLab refused `{request}` (400 Bad Request): {message}")]
    Invalid { request: String, message: String },
    #[error("GitLab stayed unavailable for `{request}` after {attempts} attempts: {detail}")]
    Unavailable {
        request: String,
        attempts: usize,
        detail: String,
    },
    #[error("GitLab answered `{request}` with {status}: {detail}")]
    Unexpected {
        request: String,
        status: u16,
        detail: String,
    },
    #[error("{0}")]
    Config(String),
}

impl rolehop_core::exit::HasExit for GitlabError {
    fn exit(&self) -> rolehop_core::exit::Exit {
        use rolehop_core::exit::Exit;
        match self {
            // GitLab answered and said no (a 400 is its refusal of the request's content).
            GitlabError::Unauthorized { .. }
            | GitlabError::Forbidden { .. }
            | GitlabError::NotFound { .. }
            | GitlabError::Invalid { .. } => Exit::Denied,
            GitlabError::Unavailable { .. } | GitlabError::Unexpected { .. } => Exit::Unavailable,
            // The client was set up with a URL or token it cannot use.
            GitlabError::Config(_) => Exit::Input,
        }
    }
}
