//! Building what several binaries share, once: the Stripe client from its settings, and the
//! lifecycle (profile, Stripe, Cognito, credit manager) that the webhook, cancel-subscriptions
//! and `creditgate events replay` run.

use anyhow::Context;
use domain::catalogue::Catalogue;
use domain::lifecycle::AccessPolicy;
use domain::stripe_events::Lifecycle;

use crate::cognito::CognitoDirectory;
use crate::config::{ConfigError, Env, Secret};
use crate::dynamo::DynamoStore;
use crate::sfn::StepFunctionsScheduler;
use crate::stripe_api;
use crate::stripe_reads::StripeState;

/// `STRIPE_SECRET_KEY` and, locally, `STRIPE_API_BASE` (the stripe-emulator).
#[derive(Debug, Clone)]
pub struct StripeConfig {
    pub secret_key: Secret,
    pub api_base: Option<String>,
}

impl StripeConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            secret_key: Secret::new(env.required("STRIPE_SECRET_KEY")?),
            api_base: env.optional("STRIPE_API_BASE"),
        })
    }

    pub fn state(&self) -> anyhow::Result<StripeState> {
        let client = stripe_api::client(&self.secret_key, self.api_base.as_deref())
            .context("build the Stripe client")?;
        Ok(StripeState::new(client))
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

impl LifecycleConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            user_pool_id: env.required("USER_POOL_ID")?,
            credit_manager_arn: env.required("CREDIT_MANAGER_ARN")?,
            stripe: StripeConfig::from_env(env)?,
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
        stripe: config.stripe.state()?,
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
