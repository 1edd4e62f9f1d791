//! Stripe's secrets, read at run time and cached in the warm process.
//!
//! The deployed functions get only the secret's ARN (`STRIPE_SECRET_ARN`); the secret itself
//! (JSON: `{"secret_key": "sk_…", "webhook_secrets": "whsec_a,whsec_b"}`) is read from Secrets
//! Manager on first use, not at init (cold starts stay fast), and again once it is older than
//! [`DEFAULT_TTL`]: a rotation applies within five minutes without a redeploy. A webhook
//! signature that fails against the cached secrets forces one early re-read
//! ([`StripeSecretSource::refresh`]), at most once per [`MIN_REFRESH_INTERVAL`] so a flood of
//! forged deliveries cannot turn into a flood of Secrets Manager calls. If Secrets Manager
//! cannot be read while secrets are cached, the cached ones stay in use (logged); with nothing
//! cached the call fails with an error that names the secret.
//!
//! The Stripe client is rebuilt only when the secret key itself changes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use domain::ports::PortError;
use domain::webhook::WebhookSecret;
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::{ExposeSecret, SecretString};

/// How long fetched secrets are used before they are read again.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// The least time between two forced re-reads.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(10);

/// What the secret holds.
#[derive(Debug, Clone)]
pub struct StripeSecrets {
    pub secret_key: SecretString,
    /// Every secret a delivery may be signed with (two during a rotation); may be empty for
    /// functions that never verify deliveries.
    pub webhook_secrets: Vec<WebhookSecret>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    secret_key: String,
    #[serde(default)]
    webhook_secrets: WebhookSecretsField,
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum WebhookSecretsField {
    #[default]
    None,
    CommaSeparated(String),
    List(Vec<String>),
}

/// What serde says of a misnamed or missing field, naming the field (never a value; a "field"
/// that looks like a key itself is not repeated).
fn field_problem(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let text = message.split(" at line ").next().unwrap_or_default();
    if !(text.starts_with("unknown field `") || text.starts_with("missing field `")) {
        return String::new();
    }
    let name = text.split('`').nth(1).unwrap_or_default();
    let looks_secret = ["sk_", "rk_", "pk_", "whsec_"]
        .iter()
        .any(|p| name.starts_with(p));
    if name.len() > 40 || looks_secret {
        return if text.starts_with("unknown") {
            ": an unknown field (not shown: it looks like a key)".into()
        } else {
            String::new()
        };
    }
    format!(": {text}")
}

impl StripeSecrets {
    /// Reads the secret's JSON. Errors name the field, never a value.
    pub fn parse(json: &str) -> Result<Self, String> {
        let stored: Stored = serde_json::from_str(json).map_err(|e| {
            format!(
                "expected a JSON object {{\"secret_key\": \"sk_…\", \"webhook_secrets\": \"whsec_…\"}}{} \
                 (line {}, column {})",
                field_problem(&e),
                e.line(),
                e.column()
            )
        })?;
        let key = stored.secret_key.trim();
        if key.is_empty() {
            return Err("`secret_key` is empty: put the Stripe secret key (sk_…) into it".into());
        }
        let raw: Vec<String> = match stored.webhook_secrets {
            WebhookSecretsField::None => Vec::new(),
            WebhookSecretsField::CommaSeparated(s) => s.split(',').map(str::to_owned).collect(),
            WebhookSecretsField::List(list) => list,
        };
        let webhook_secrets = raw
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(WebhookSecret::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("`webhook_secrets`: {e}"))?;
        Ok(Self {
            secret_key: SecretString::from(key),
            webhook_secrets,
        })
    }
}

pub type SecretFuture<'a> = Pin<Box<dyn Future<Output = Result<String, PortError>> + Send + 'a>>;

/// Where the secret's text comes from.
pub trait SecretStore: Send + Sync {
    fn fetch(&self) -> SecretFuture<'_>;
    /// The secret's name for messages (an ARN, never a value).
    fn name(&self) -> String;
}

/// Secrets Manager (moto's locally): `GetSecretValue` on one secret.
pub struct SecretsManagerStore {
    client: aws_sdk_secretsmanager::Client,
    id: String,
}

impl SecretsManagerStore {
    pub fn new(client: aws_sdk_secretsmanager::Client, id: impl Into<String>) -> Self {
        Self {
            client,
            id: id.into(),
        }
    }
}

impl SecretStore for SecretsManagerStore {
    fn fetch(&self) -> SecretFuture<'_> {
        Box::pin(async move {
            let out = self
                .client
                .get_secret_value()
                .secret_id(&self.id)
                .send()
                .await
                .map_err(|e| {
                    PortError::new(
                        "read the Stripe secret from Secrets Manager",
                        format!(
                            "{}: {}",
                            self.id,
                            aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                        ),
                    )
                })?;
            out.secret_string.ok_or_else(|| {
                PortError::new(
                    "read the Stripe secret from Secrets Manager",
                    format!("{} holds no SecretString", self.id),
                )
            })
        })
    }

    fn name(&self) -> String {
        self.id.clone()
    }
}

/// A secret given directly (the CLI's `STRIPE_SECRET_KEY`, tests).
pub struct FixedSecret(SecretString);

impl FixedSecret {
    /// The JSON for a key and webhook secrets.
    pub fn of(secret_key: &str, webhook_secrets: &[&str]) -> Self {
        Self(SecretString::from(
            serde_json::json!({
                "secret_key": secret_key,
                "webhook_secrets": webhook_secrets.join(","),
            })
            .to_string(),
        ))
    }
}

impl SecretStore for FixedSecret {
    fn fetch(&self) -> SecretFuture<'_> {
        let json = self.0.expose_secret().to_owned();
        Box::pin(async move { Ok(json) })
    }

    fn name(&self) -> String {
        "the given secret".into()
    }
}

/// The secrets and the Stripe client built from them.
#[derive(Debug)]
pub struct Loaded {
    pub secrets: StripeSecrets,
    pub stripe: stripe::Client,
}

struct Cache {
    loaded: Option<Arc<Loaded>>,
    /// When `loaded` was read (a failed read does not move it).
    read_at: Option<Instant>,
    /// When the store was last asked, read or not.
    asked_at: Option<Instant>,
    /// Why the last read failed, while nothing could be read yet.
    last_error: Option<String>,
}

struct Inner {
    store: Box<dyn SecretStore>,
    options: SourceOptions,
    cache: Mutex<Cache>,
}

/// Stripe's secrets for one process; clones share one cache.
#[derive(Clone)]
pub struct StripeSecretSource {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for StripeSecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeSecretSource")
            .field("store", &self.inner.store.name())
            .field("ttl", &self.inner.options.ttl)
            .finish_non_exhaustive()
    }
}

/// How a [`StripeSecretSource`] reads and uses the secret.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// Points the Stripe client at the stripe-emulator; `None` is api.stripe.com.
    pub api_base: Option<String>,
    /// One attempt of one Stripe call (a trigger Cognito waits 5 s for needs less than the
    /// default [`crate::stripe_api::TIMEOUT`]).
    pub stripe_timeout: Duration,
    /// How a Stripe call answered 429 is retried (the same trigger needs fewer, shorter waits).
    pub stripe_backoff: crate::stripe_api::Backoff,
    pub ttl: Duration,
    pub min_refresh: Duration,
}

impl SourceOptions {
    pub fn new(api_base: Option<String>) -> Self {
        Self {
            api_base,
            stripe_timeout: crate::stripe_api::TIMEOUT,
            stripe_backoff: crate::stripe_api::Backoff::DEFAULT,
            ttl: DEFAULT_TTL,
            min_refresh: MIN_REFRESH_INTERVAL,
        }
    }
}

impl StripeSecretSource {
    pub fn new(store: impl SecretStore + 'static, api_base: Option<String>) -> Self {
        Self::with_options(store, SourceOptions::new(api_base))
    }

    pub fn with_options(store: impl SecretStore + 'static, options: SourceOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                store: Box::new(store),
                options,
                cache: Mutex::new(Cache {
                    loaded: None,
                    read_at: None,
                    asked_at: None,
                    last_error: None,
                }),
            }),
        }
    }

    /// A fixed key and webhook secrets (tests, the CLI).
    pub fn fixed(secret_key: &str, webhook_secrets: &[&str], api_base: Option<String>) -> Self {
        Self::new(FixedSecret::of(secret_key, webhook_secrets), api_base)
    }

    /// The cached secrets, read first if there are none or they are older than the TTL.
    pub async fn current(&self) -> Result<Arc<Loaded>, PortError> {
        let mut cache = self.inner.cache.lock().await;
        let fresh = cache
            .read_at
            .is_some_and(|at| at.elapsed() < self.inner.options.ttl);
        match (&cache.loaded, fresh) {
            (Some(loaded), true) => Ok(loaded.clone()),
            (Some(loaded), false)
                if cache
                    .asked_at
                    .is_some_and(|at| at.elapsed() < self.inner.options.min_refresh) =>
            {
                // A read failed moments ago: keep the cached secrets without asking again.
                Ok(loaded.clone())
            }
            (None, _)
                if cache
                    .asked_at
                    .is_some_and(|at| at.elapsed() < self.inner.options.min_refresh) =>
            {
                // Nothing readable yet and a read failed moments ago: fail without asking again,
                // so a flood of requests costs one read per interval.
                Err(PortError::new(
                    "use the Stripe secret",
                    format!(
                        "{} (not asked again for {:?})",
                        cache
                            .last_error
                            .as_deref()
                            .unwrap_or("the last read failed"),
                        self.inner.options.min_refresh
                    ),
                ))
            }
            _ => self.read(&mut cache).await,
        }
    }

    /// The Stripe client for the secret key in force now, with this source's backoff.
    pub async fn stripe(&self) -> Result<crate::stripe_api::RetryingClient, PortError> {
        Ok(crate::stripe_api::RetryingClient {
            client: self.current().await?.stripe.clone(),
            backoff: self.inner.options.stripe_backoff,
        })
    }

    /// Reads the secret again now, unless it was read less than the minimum interval ago.
    /// Returns the secrets if they changed, `None` if there is nothing newer to try.
    pub async fn refresh(&self) -> Result<Option<Arc<Loaded>>, PortError> {
        let mut cache = self.inner.cache.lock().await;
        if cache
            .asked_at
            .is_some_and(|at| at.elapsed() < self.inner.options.min_refresh)
        {
            return Ok(None);
        }
        let before = cache.loaded.clone();
        let after = self.read(&mut cache).await?;
        let changed = before.is_none_or(|b| !Arc::ptr_eq(&b, &after));
        Ok(changed.then_some(after))
    }

    async fn read(&self, cache: &mut Cache) -> Result<Arc<Loaded>, PortError> {
        cache.asked_at = Some(Instant::now());
        let parsed = match self.inner.store.fetch().await {
            Ok(json) => StripeSecrets::parse(&json).map_err(|problem| {
                PortError::new(
                    "read the Stripe secret",
                    format!("{}: {problem}", self.inner.store.name()),
                )
            }),
            Err(e) => Err(e),
        };
        let secrets = match (parsed, &cache.loaded) {
            (Ok(secrets), _) => secrets,
            (Err(e), Some(stale)) => {
                tracing::warn!(
                    error = %e,
                    metric = "stripe_secret_read_failed",
                    "could not read the Stripe secret; using the cached one"
                );
                return Ok(stale.clone());
            }
            (Err(e), None) => {
                let problem = domain::ports::error_chain(&e);
                tracing::warn!(
                    error = %problem,
                    metric = "stripe_secret_read_failed",
                    "could not read the Stripe secret and none is cached: calls that need it fail"
                );
                cache.last_error = Some(problem);
                return Err(e);
            }
        };
        cache.last_error = None;
        cache.read_at = Some(Instant::now());
        if let Some(old) = &cache.loaded
            && old.secrets.secret_key.expose_secret() == secrets.secret_key.expose_secret()
            && old.secrets.webhook_secrets == secrets.webhook_secrets
        {
            return Ok(old.clone());
        }
        let stripe = match &cache.loaded {
            Some(old)
                if old.secrets.secret_key.expose_secret() == secrets.secret_key.expose_secret() =>
            {
                old.stripe.clone()
            }
            _ => crate::stripe_api::client_with_timeout(
                &secrets.secret_key,
                self.inner.options.api_base.as_deref(),
                self.inner.options.stripe_timeout,
            )
            .map_err(|e| PortError::new("build the Stripe client", e))?,
        };
        if cache.loaded.is_some() {
            tracing::info!(
                secret = %self.inner.store.name(),
                webhook_secrets = secrets.webhook_secrets.len(),
                "the Stripe secret changed; using the new value"
            );
        }
        let loaded = Arc::new(Loaded { secrets, stripe });
        cache.loaded = Some(loaded.clone());
        Ok(loaded)
    }
}

#[cfg(test)]
mod tests;
