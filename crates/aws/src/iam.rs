//! The broker user's side of key rotation: its access keys and the `rolehop:rotation` tag via
//! IAM, and trying a key with sts:GetCallerIdentity, as a [`KeyStore`] for the pure rotation
//! machine (blocking: each call runs on a private current-thread runtime).

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iam::types::{StatusType, Tag};
use rolehop_core::Secret;
use rolehop_core::rotation::{
    AccessKey, KeyStatus, KeyStore, RECORD_TAG, StoreError, StoreErrorKind, Verification,
};
use secrecy::ExposeSecret;

/// One broker IAM user in the account the ambient AWS credentials belong to.
pub struct IamKeyStore {
    rt: tokio::runtime::Runtime,
    config: SdkConfig,
    iam: aws_sdk_iam::Client,
    user: String,
}

impl IamKeyStore {
    /// Loads the ambient AWS configuration (env, profile; `AWS_ENDPOINT_URL` is honoured).
    pub fn connect(region: &str, user: &str) -> Result<Self, StoreError> {
        Self::connect_with(region, user, None, None)
    }

    /// Like [`IamKeyStore::connect`], with an explicit endpoint and credentials (tests use a
    /// local moto without touching the process environment).
    pub fn connect_with(
        region: &str,
        user: &str,
        endpoint_url: Option<&str>,
        credentials: Option<(&str, &Secret)>,
    ) -> Result<Self, StoreError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                StoreError::new(
                    StoreErrorKind::Other,
                    format!("cannot start a runtime: {e}"),
                )
            })?;
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region.to_owned()));
        if let Some(url) = endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some((id, secret)) = credentials {
            loader = loader.credentials_provider(Credentials::new(
                id,
                secret.expose_secret(),
                None,
                None,
                "rolehop-explicit",
            ));
        }
        let config = rt.block_on(loader.load());
        if config.credentials_provider().is_none() {
            return Err(StoreError::new(
                StoreErrorKind::NoCredentials,
                "no AWS credentials to manage the broker user with: set ROLEHOP_ROTATOR_KEY (`<access key id>:<secret>` of the rotation administrator), or locally AWS_PROFILE, for an identity allowed iam:*AccessKey* and iam:*UserTag* on it",
            ));
        }
        let iam = aws_sdk_iam::Client::new(&config);
        Ok(Self {
            rt,
            config,
            iam,
            user: user.to_owned(),
        })
    }

    /// The ARN the store's own credentials sign as (sts:GetCallerIdentity), so `rotate` can
    /// refuse to manage a broker user while signed in as one.
    pub fn caller_arn(&self) -> Result<String, StoreError> {
        let sts = aws_sdk_sts::Client::new(&self.config);
        match self.rt.block_on(sts.get_caller_identity().send()) {
            Ok(out) => Ok(out.arn().unwrap_or_default().to_owned()),
            Err(e) => {
                let kind = match e.code() {
                    _ if no_credentials(&e) => StoreErrorKind::NoCredentials,
                    Some("InvalidClientTokenId" | "SignatureDoesNotMatch" | "ExpiredToken") => {
                        StoreErrorKind::Denied
                    }
                    _ => StoreErrorKind::Unavailable,
                };
                let detail = if kind == StoreErrorKind::NoCredentials {
                    "no AWS credentials found (set ROLEHOP_ROTATOR_KEY = `<access key id>:<secret>`, or locally AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, for an identity of the broker account allowed to manage the user's keys)".to_owned()
                } else {
                    describe(&e)
                };
                Err(StoreError::new(
                    kind,
                    format!(
                        "sts:GetCallerIdentity with the rotation administrator's credentials failed: {detail}"
                    ),
                ))
            }
        }
    }

    fn fail<E>(&self, action: &str, e: SdkError<E>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let code = e.code().unwrap_or("").to_owned();
        let kind = match (&e, code.as_str()) {
            _ if no_credentials(&e) => StoreErrorKind::NoCredentials,
            (
                _,
                "AccessDenied"
                | "AccessDeniedException"
                | "InvalidClientTokenId"
                | "SignatureDoesNotMatch"
                | "ExpiredToken"
                | "UnrecognizedClientException",
            ) => StoreErrorKind::Denied,
            (_, "NoSuchEntity") => StoreErrorKind::NotFound,
            (_, "LimitExceeded") => StoreErrorKind::Quota,
            (_, "Throttling" | "ThrottlingException" | "ServiceFailure" | "ServiceUnavailable") => {
                StoreErrorKind::Unavailable
            }
            (
                SdkError::DispatchFailure(_)
                | SdkError::TimeoutError(_)
                | SdkError::ResponseError(_),
                _,
            ) => StoreErrorKind::Unavailable,
            (SdkError::ConstructionFailure(_), _) => StoreErrorKind::NoCredentials,
            _ => StoreErrorKind::Other,
        };
        let hint = match kind {
            StoreErrorKind::NotFound => format!(
                ": IAM user `{}` does not exist in this account (deploy the broker stack first with `rolehop rollout`, and check the AWS credentials belong to the broker account)",
                self.user
            ),
            StoreErrorKind::NoCredentials => ": no AWS credentials found (set ROLEHOP_ROTATOR_KEY = `<access key id>:<secret>`, or locally AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, for an identity of the broker account allowed to manage the user's keys)".into(),
            StoreErrorKind::Denied => " (the AWS identity running rotate needs iam:ListAccessKeys, iam:CreateAccessKey, iam:UpdateAccessKey, iam:DeleteAccessKey, iam:ListUserTags, iam:TagUser and iam:UntagUser on the broker user)".into(),
            _ => String::new(),
        };
        StoreError::new(
            kind,
            if kind == StoreErrorKind::NoCredentials {
                // The SDK's list of every provider it tried says less than the hint.
                format!("iam:{action} on user `{}` failed{hint}", self.user)
            } else {
                format!(
                    "iam:{action} on user `{}` failed: {}{hint}",
                    self.user,
                    describe(&e)
                )
            },
        )
    }
}

impl KeyStore for IamKeyStore {
    fn list_keys(&mut self) -> Result<Vec<AccessKey>, StoreError> {
        let out = self
            .rt
            .block_on(self.iam.list_access_keys().user_name(&self.user).send())
            .map_err(|e| self.fail("ListAccessKeys", e))?;
        Ok(out
            .access_key_metadata()
            .iter()
            .filter_map(|m| {
                Some(AccessKey {
                    id: m.access_key_id()?.to_owned(),
                    status: match m.status() {
                        Some(StatusType::Active) => KeyStatus::Active,
                        _ => KeyStatus::Inactive,
                    },
                })
            })
            .collect())
    }

    fn create_key(&mut self) -> Result<(String, Secret), StoreError> {
        let out = self
            .rt
            .block_on(self.iam.create_access_key().user_name(&self.user).send())
            .map_err(|e| self.fail("CreateAccessKey", e))?;
        let key = out.access_key().ok_or_else(|| {
            StoreError::new(StoreErrorKind::Other, "iam:CreateAccessKey returned no key")
        })?;
        tracing::info!(user = %self.user, key = key.access_key_id(), "created access key");
        Ok((
            key.access_key_id().to_owned(),
            rolehop_core::secret::secret(key.secret_access_key()),
        ))
    }

    fn set_status(&mut self, id: &str, status: KeyStatus) -> Result<(), StoreError> {
        let st = match status {
            KeyStatus::Active => StatusType::Active,
            KeyStatus::Inactive => StatusType::Inactive,
        };
        self.rt
            .block_on(
                self.iam
                    .update_access_key()
                    .user_name(&self.user)
                    .access_key_id(id)
                    .status(st)
                    .send(),
            )
            .map_err(|e| self.fail("UpdateAccessKey", e))?;
        tracing::info!(user = %self.user, key = id, status = status.as_str(), "updated access key");
        Ok(())
    }

    fn delete_key(&mut self, id: &str) -> Result<(), StoreError> {
        self.rt
            .block_on(
                self.iam
                    .delete_access_key()
                    .user_name(&self.user)
                    .access_key_id(id)
                    .send(),
            )
            .map_err(|e| self.fail("DeleteAccessKey", e))?;
        tracing::info!(user = %self.user, key = id, "deleted access key");
        Ok(())
    }

    fn read_record(&mut self) -> Result<Option<String>, StoreError> {
        let out = self
            .rt
            .block_on(self.iam.list_user_tags().user_name(&self.user).send())
            .map_err(|e| self.fail("ListUserTags", e))?;
        Ok(out
            .tags()
            .iter()
            .find(|t| t.key() == RECORD_TAG)
            .map(|t| t.value().to_owned()))
    }

    fn write_record(&mut self, value: &str) -> Result<(), StoreError> {
        let tag = Tag::builder()
            .key(RECORD_TAG)
            .value(value)
            .build()
            .map_err(|e| StoreError::new(StoreErrorKind::Other, e.to_string()))?;
        self.rt
            .block_on(self.iam.tag_user().user_name(&self.user).tags(tag).send())
            .map_err(|e| self.fail("TagUser", e))?;
        tracing::debug!(user = %self.user, record = value, "recorded rotation state");
        Ok(())
    }

    fn clear_record(&mut self) -> Result<(), StoreError> {
        self.rt
            .block_on(
                self.iam
                    .untag_user()
                    .user_name(&self.user)
                    .tag_keys(RECORD_TAG)
                    .send(),
            )
            .map_err(|e| self.fail("UntagUser", e))?;
        Ok(())
    }

    fn verify(&mut self, id: &str, secret: &Secret) -> Result<Verification, StoreError> {
        let creds = Credentials::new(
            id,
            secret.expose_secret(),
            None,
            None,
            "rolehop-rotate-verify",
        );
        let conf = aws_sdk_sts::config::Builder::from(&self.config)
            .credentials_provider(creds)
            .build();
        let sts = aws_sdk_sts::Client::from_conf(conf);
        match self.rt.block_on(sts.get_caller_identity().send()) {
            Ok(out) => {
                let arn = out.arn().unwrap_or_default().to_owned();
                let suffix = format!("/{}", self.user);
                if arn.ends_with(&suffix) && arn.contains(":user/") {
                    Ok(Verification::Accepted { arn })
                } else {
                    Ok(Verification::Rejected {
                        reason: format!(
                            "the key signs as `{arn}`, not as IAM user `{}`",
                            self.user
                        ),
                    })
                }
            }
            Err(e) => match e.code() {
                Some(code @ ("InvalidClientTokenId" | "SignatureDoesNotMatch" | "AuthFailure")) => {
                    Ok(Verification::Rejected {
                        reason: code.to_owned(),
                    })
                }
                _ => Err(StoreError::new(
                    StoreErrorKind::Unavailable,
                    format!(
                        "sts:GetCallerIdentity with key `{id}` failed: {}",
                        describe(&e)
                    ),
                )),
            },
        }
    }
}

/// `Code: message` for a service error, else the chain of causes (no response dumps).
fn describe<E>(e: &SdkError<E>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let Some(code) = e.code() {
        return format!("{code}: {}", e.message().unwrap_or("(no message)"));
    }
    let mut parts = vec![e.to_string()];
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cur {
        let text = c.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = c.source();
    }
    parts.join(": ")
}

/// The SDK reports missing credentials as a dispatch failure; find it among the causes.
fn no_credentials<E>(e: &SdkError<E>) -> bool
where
    E: std::error::Error + 'static,
{
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cur {
        if c.downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
            .is_some_and(|ce| {
                matches!(
                    ce,
                    aws_credential_types::provider::error::CredentialsError::CredentialsNotLoaded(
                        _
                    )
                )
            })
        {
            return true;
        }
        cur = c.source();
    }
    false
}
