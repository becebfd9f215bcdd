//! What can go wrong talking to GitLab, phrased so the user knows what to fix. No message
//! carries the token or a variable's value.

/// A failed GitLab API call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitlabError {
    #[error(
        "GitLab rejected the token (401 Unauthorized) on `{request}`: `GITLAB_TOKEN` must be a personal, project or group access token with the `api` scope that has not expired or been revoked (a `CI_JOB_TOKEN` cannot manage CI/CD variables)"
    )]
    /// 401: the token is wrong, expired or revoked.
    Unauthorized {
        /// `METHOD /path` of the refused call.
        request: String,
    },
    #[error(
        "GitLab refused (403 Forbidden) `{request}`: managing CI/CD variables needs the Maintainer role on the project (Owner on a group) and a token with the `api` scope{detail}"
    )]
    /// 403: the token's user lacks the role, or the token the scope.
    Forbidden {
        /// `METHOD /path` of the refused call.
        request: String,
        /// GitLab's own words, when it gave any.
        detail: String,
    },
    #[error(
        "GitLab says `{message}` for `{request}`: check the project or group id or path (`{target}`) and that the token's user can see it"
    )]
    /// 404 on the project or group itself (a missing variable is not an error).
    NotFound {
        /// `METHOD /path` of the call.
        request: String,
        /// The project or group as the topology names it.
        target: String,
        /// GitLab's message (`404 Project Not Found`).
        message: String,
    },
    #[error("GitLab refused `{request}` (400 Bad Request): {message}")]
    /// 400: GitLab refused the content (e.g. a value its masking rules reject).
    Invalid {
        /// `METHOD /path` of the call.
        request: String,
        /// GitLab's explanation, without the value.
        message: String,
    },
    #[error("GitLab stayed unavailable for `{request}` after {attempts} attempts: {detail}")]
    /// 429, 5xx, timeouts or connection failures, after every retry.
    Unavailable {
        /// `METHOD /path` of the call.
        request: String,
        /// How many times it was tried.
        attempts: usize,
        /// The last failure.
        detail: String,
    },
    #[error("GitLab answered `{request}` with {status}: {detail}")]
    /// Any other status, or an answer that is not the JSON GitLab documents.
    Unexpected {
        /// `METHOD /path` of the call.
        request: String,
        /// The HTTP status.
        status: u16,
        /// What was wrong with the answer.
        detail: String,
    },
    /// The client cannot be set up: a URL that is not GitLab's, plain http off loopback.
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
