//! Building what several binaries share, once: the Stripe client from its settings, and the
//! lifecycle (profile, Stripe, Cognito, credit manager) that the webhook, cancel-subscriptions
//! and `creditgate events replay` run.

use anyhow::Context;
use domain::catalogue::Catalogue;
use domain::lifecycle::AccessPolicy;
use domain::lifecycle::Lifecycle;

use crate::cognito::CognitoDirectory;
use crate::config::{ConfigError, Env, ExposeSecret, FromEnv, SecretString};
use crate::dynamo::DynamoStore;
use crate::secrets::{FixedSecret, SecretsManagerStore, SourceOptions, StripeSecretSource};
use crate::sfn::StepFunctionsScheduler;
use crate::stripe_reads::StripeState;

/// Where Stripe's secret key and webhook secrets come from.
#[derive(Debug, Clone)]
pub enum SecretLocation {
    /// `STRIPE_SECRET_ARN`: a Secrets Manager secret, read at run time and cached (what every
    /// function, deployed or local, uses: the key never sits in a function's configuration).
    SecretsManager(String),
    /// `STRIPE_SECRET_KEY`: a key given directly, for tools an operator runs.
    Key(SecretString),
}

/// The Stripe secret's location and, locally, `STRIPE_API_BASE` (the stripe-emulator).
#[derive(Debug, Clone)]
pub struct StripeConfig {
    pub secret: SecretLocation,
    pub api_base: Option<String>,
}

/// For the functions: `STRIPE_SECRET_ARN` only.
impl FromEnv for StripeConfig {
    fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            secret: SecretLocation::SecretsManager(env.required("STRIPE_SECRET_ARN")?),
            api_base: env.optional("STRIPE_API_BASE"),
        })
    }
}

impl StripeConfig {
    /// For tools: `STRIPE_SECRET_ARN` if set, else `STRIPE_SECRET_KEY`.
    pub fn for_tools<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let secret = match env.optional("STRIPE_SECRET_ARN") {
            Some(arn) => SecretLocation::SecretsManager(arn),
            None => match env.optional("STRIPE_SECRET_KEY") {
                Some(key) => SecretLocation::Key(SecretString::from(key)),
                None => {
                    return Err(ConfigError::Missing(
                        "STRIPE_SECRET_ARN (or STRIPE_SECRET_KEY)",
                    ));
                }
            },
        };
        Ok(Self {
            secret,
            api_base: env.optional("STRIPE_API_BASE"),
        })
    }

    /// The secret source; nothing is read until first use.
    pub fn source(&self, aws: &aws_config::SdkConfig) -> StripeSecretSource {
        self.source_with_limits(
            aws,
            crate::stripe_api::TIMEOUT,
            crate::stripe_api::Backoff::DEFAULT,
        )
    }

    /// The secret source whose Stripe calls time out after `stripe_timeout` (each attempt)
    /// and retry a 429 as `stripe_backoff` says.
    pub fn source_with_limits(
        &self,
        aws: &aws_config::SdkConfig,
        stripe_timeout: std::time::Duration,
        stripe_backoff: crate::stripe_api::Backoff,
    ) -> StripeSecretSource {
        let options = SourceOptions {
            stripe_timeout,
            stripe_backoff,
            ..SourceOptions::new(self.api_base.clone())
        };
        match &self.secret {
            SecretLocation::SecretsManager(arn) => StripeSecretSource::with_options(
                SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(aws), arn.clone()),
                options,
            ),
            SecretLocation::Key(key) => {
                StripeSecretSource::with_options(FixedSecret::of(key.expose_secret(), &[]), options)
            }
        }
    }

    pub fn state(&self, aws: &aws_config::SdkConfig) -> StripeState {
        StripeState::new(self.source(aws))
    }
}

#[derive(Debug, Clone)]
pub struct LifecycleConfig {
    pub table_name: String,
    pub user_pool_id: String,
    pub credit_manager_arn: String,
    pub stripe: StripeConfig,
    pub policy: AccessPolicy,
    pub free_period_seconds: Option<u64>,
}

/// For the functions (the secret's ARN only).
impl FromEnv for LifecycleConfig {
    fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Self::with_stripe(env, StripeConfig::from_env(env)?)
    }
}

impl LifecycleConfig {
    /// For tools (the secret's ARN or a key).
    pub fn for_tools<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Self::with_stripe(env, StripeConfig::for_tools(env)?)
    }

    fn with_stripe<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        stripe: StripeConfig,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            user_pool_id: env.required("USER_POOL_ID")?,
            credit_manager_arn: env.required("CREDIT_MANAGER_ARN")?,
            stripe,
            policy: crate::config::access_policy(env)?,
            free_period_seconds: env.parsed("FREE_PERIOD_SECONDS")?,
        })
    }
}

pub type LiveLifecycle =
    Lifecycle<DynamoStore, StripeState, CognitoDirectory, StepFunctionsScheduler>;

/// The lifecycle on DynamoDB, Stripe, Cognito and Step Functions; clients built once.
pub async fn live_lifecycle(config: LifecycleConfig) -> anyhow::Result<LiveLifecycle> {
    let aws = crate::aws::sdk_config().await;
    Ok(Lifecycle {
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name),
        stripe: config.stripe.state(&aws),
        directory: CognitoDirectory::new(
            aws_sdk_cognitoidentityprovider::Client::new(&aws),
            config.user_pool_id,
        ),
        scheduler: StepFunctionsScheduler::new(
            aws_sdk_sfn::Client::new(&aws),
            config.credit_manager_arn,
        ),
        catalogue: Catalogue::bundled().context("plans.json")?,
        policy: config.policy,
        free_period_override: config.free_period_seconds,
    })
}
