use adapters::config::FromEnv;
use adapters::wiring::StripeConfig;
use adapters::{ConfigError, Env};
use anyhow::Context;
use aws_lambda_events::event::cognito::{
    CognitoEventUserPoolsPostConfirmation,
    CognitoEventUserPoolsPostConfirmationTriggerSource as Source,
};
use domain::catalogue::Catalogue;
use domain::ids::{Email, UserSub};
use domain::ports::{Accounts, Billing, Scheduler};
use domain::signup::{SignUp, confirm_sign_up};
use lambda_runtime::LambdaEvent;
use serde_json::Value;

/// One attempt of the Stripe call: Cognito waits 5 s for this trigger, which also makes a few
/// DynamoDB and Step Functions calls.
pub const STRIPE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// A rate-limited Stripe call is tried three times, after about 250 ms and 500 ms (at most
/// 750 ms of waiting): with the 3 s attempt that still ends before Cognito's 5 s, and Cognito's
/// own retry (same idempotency key) does the rest.
pub const STRIPE_BACKOFF: adapters::stripe_api::Backoff = adapters::stripe_api::Backoff {
    attempts: 3,
    first_wait: std::time::Duration::from_millis(250),
};

#[derive(Debug)]
pub struct Config {
    pub table_name: String,
    pub credit_manager_arn: String,
    pub stripe: StripeConfig,
    pub free_period_seconds: Option<u64>,
}

impl FromEnv for Config {
    fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            credit_manager_arn: env.required("CREDIT_MANAGER_ARN")?,
            stripe: StripeConfig::from_env(env)?,
            free_period_seconds: env.parsed("FREE_PERIOD_SECONDS")?,
        })
    }
}

/// Everything the handler needs, built once at cold start.
pub struct Deps<A, B, S> {
    pub accounts: A,
    pub billing: B,
    pub scheduler: S,
    pub catalogue: Catalogue,
    pub free_period_seconds: Option<u64>,
}

#[tracing::instrument(skip_all, fields(user_sub, trigger_source))]
pub async fn handle<A, B, S>(
    deps: &Deps<A, B, S>,
    event: LambdaEvent<Value>,
) -> anyhow::Result<Value>
where
    A: Accounts,
    B: Billing,
    S: Scheduler,
{
    let raw = event.payload;
    let parsed: CognitoEventUserPoolsPostConfirmation = serde_json::from_value(raw.clone())
        .context("the event is not a Cognito PostConfirmation event")?;
    let source = parsed.cognito_event_user_pools_header.trigger_source;
    let span = tracing::Span::current();
    span.record("trigger_source", tracing::field::debug(&source));
    if source != Some(Source::ConfirmSignUp) {
        tracing::info!("not a sign-up confirmation; nothing to do");
        return Ok(raw);
    }

    let attributes = &parsed.request.user_attributes;
    let sub = UserSub::parse(
        attributes
            .get("sub")
            .map(String::as_str)
            .unwrap_or_default(),
    )
    .context("the event's userAttributes.sub")?;
    span.record("user_sub", sub.as_str());
    let email = Email::parse(
        attributes
            .get("email")
            .map(String::as_str)
            .unwrap_or_default(),
    )
    .context("the event's userAttributes.email (the pool must sign in by email)")?;
    let now = domain::stripe_events::rfc3339(adapters::unix_now());

    let report = confirm_sign_up(
        &deps.accounts,
        &deps.billing,
        &deps.scheduler,
        &deps.catalogue,
        SignUp {
            sub,
            email,
            now,
            period_override_seconds: deps.free_period_seconds,
        },
    )
    .await
    .context("the sign-up could not be completed; a retry will finish it")?;

    tracing::info!(
        profile = ?report.profile,
        credit_manager = ?report.manager,
        stripe_customer = %report.customer,
        "sign-up confirmed"
    );
    Ok(raw)
}
