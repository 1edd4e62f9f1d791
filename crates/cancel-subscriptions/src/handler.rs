use adapters::config::Secret;
use adapters::http::{ApiError, caller, json_object, json_response};
use adapters::{ConfigError, Env};
use domain::account::{CancelOutcome, cancel};
use domain::catalogue::Catalogue;
use domain::lifecycle::AccessPolicy;
use domain::ports::{Accounts, Directory, Ledger, Payments, Scheduler, StripeReads};
use domain::stripe_events::Services;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

#[derive(Debug)]
pub struct Config {
    pub table_name: String,
    pub user_pool_id: String,
    pub credit_manager_arn: String,
    pub stripe_secret_key: Secret,
    pub stripe_api_base: Option<String>,
    pub policy: AccessPolicy,
    pub free_period_seconds: Option<u64>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let env = Env::process();
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            user_pool_id: env.required("USER_POOL_ID")?,
            credit_manager_arn: env.required("CREDIT_MANAGER_ARN")?,
            stripe_secret_key: Secret::new(env.required("STRIPE_SECRET_KEY")?),
            stripe_api_base: env.optional("STRIPE_API_BASE"),
            policy: adapters::config::access_policy(&env)?,
            free_period_seconds: env.parsed("FREE_PERIOD_SECONDS")?,
        })
    }
}

pub struct Deps<St, P, D, S> {
    pub store: St,
    /// Stripe: `Payments` and `StripeReads`.
    pub stripe: P,
    pub directory: D,
    pub scheduler: S,
    pub catalogue: Catalogue,
    pub policy: AccessPolicy,
    pub free_period_override: Option<u64>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

async fn serve<St, P, D, S>(
    deps: &Deps<St, P, D, S>,
    request: &Request,
) -> Result<Response<Body>, ApiError>
where
    St: Accounts + Ledger + Sync,
    P: Payments + StripeReads + Sync,
    D: Directory + Sync,
    S: Scheduler + Sync,
{
    if request.method() != Method::POST {
        return Err(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "use POST"));
    }
    let sub = caller(request)?;
    let body = json_object(request, &["at_period_end"])?;
    let at_period_end = match body.get("at_period_end") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::bad_request(
                "`at_period_end` must be true or false",
            ));
        }
    };
    let services = Services {
        accounts: &deps.store,
        ledger: &deps.store,
        stripe: &deps.stripe,
        directory: &deps.directory,
        scheduler: &deps.scheduler,
        catalogue: &deps.catalogue,
        policy: deps.policy,
        free_period_override: deps.free_period_override,
    };
    let outcome = cancel(&services, &deps.stripe, &sub, at_period_end, now()).await?;
    tracing::info!(user_sub = %sub, outcome = ?outcome, "cancellation");
    Ok(json_response(
        StatusCode::OK,
        match outcome {
            CancelOutcome::AtPeriodEnd {
                subscription,
                period_end,
            } => json!({
                "changed": true,
                "subscription": subscription,
                "cancels_at": period_end,
                "message": "your subscription will end at the end of this period",
            }),
            CancelOutcome::AlreadyAtPeriodEnd {
                subscription,
                period_end,
            } => json!({
                "changed": false,
                "subscription": subscription,
                "cancels_at": period_end,
                "message": "your subscription is already set to end at the end of this period",
            }),
            CancelOutcome::Now { subscription, plan } => json!({
                "changed": true,
                "subscription": subscription,
                "plan": plan.as_str(),
                "message": "your subscription has ended; you are on the free plan",
            }),
        },
    ))
}

pub async fn handle<St, P, D, S>(
    deps: &Deps<St, P, D, S>,
    request: Request,
) -> Result<Response<Body>, lambda_http::Error>
where
    St: Accounts + Ledger + Sync,
    P: Payments + StripeReads + Sync,
    D: Directory + Sync,
    S: Scheduler + Sync,
{
    Ok(serve(deps, &request)
        .await
        .unwrap_or_else(ApiError::into_response))
}
