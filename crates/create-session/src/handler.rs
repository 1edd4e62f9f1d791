use adapters::config::FromEnv;
use adapters::http::{ApiError, caller, json_body, json_response};
use adapters::wiring::StripeConfig;
use adapters::{ConfigError, Env};
use domain::account::{CheckoutOutcome, CheckoutUrls, start_checkout};
use domain::catalogue::{Catalogue, SaleMode};
use domain::ports::{Accounts, Payments};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

#[derive(Debug)]
pub struct Config {
    pub table_name: String,
    pub stripe: StripeConfig,
    pub urls: CheckoutUrls,
}

impl FromEnv for Config {
    fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            stripe: StripeConfig::from_env(env)?,
            urls: CheckoutUrls {
                success: env.required("CHECKOUT_SUCCESS_URL")?,
                cancel: env.required("CHECKOUT_CANCEL_URL")?,
            },
        })
    }
}

pub struct Deps<A, P> {
    pub accounts: A,
    pub stripe: P,
    pub catalogue: Catalogue,
    pub urls: CheckoutUrls,
}

/// The caller's `Idempotency-Key`, scoped to the caller; a fresh random key without one (the
/// client's own retries of one request then still reuse it inside the Stripe client).
fn idempotency_key(request: &Request, sub: &domain::ids::UserSub) -> Result<String, ApiError> {
    match request.headers().get("idempotency-key") {
        None => Ok(format!(
            "creditgate-checkout-{sub}-{:032x}",
            rand::random::<u128>()
        )),
        Some(value) => {
            let value = value
                .to_str()
                .ok()
                .filter(|v| (1..=200).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic()))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "Idempotency-Key must be 1 to 200 printable ASCII characters",
                    )
                })?;
            Ok(domain::account::scoped_idempotency_key(sub, value))
        }
    }
}

/// `POST /checkout`'s body as sent.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckoutBody {
    plan: Option<Value>,
    mode: Option<Value>,
}

/// What the caller asks to buy.
struct Checkout {
    plan: String,
    mode: SaleMode,
}

impl TryFrom<CheckoutBody> for Checkout {
    type Error = ApiError;

    fn try_from(body: CheckoutBody) -> Result<Self, ApiError> {
        let plan = body
            .plan
            .as_ref()
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "`plan` is required: a plan id from plans.json, e.g. \"basic\"",
                )
            })?
            .to_owned();
        let mode = body
            .mode
            .as_ref()
            .and_then(Value::as_str)
            .and_then(SaleMode::parse)
            .ok_or_else(|| {
                ApiError::bad_request("`mode` is required: \"subscription\" or \"pack\"")
            })?;
        Ok(Self { plan, mode })
    }
}

async fn serve<A, P>(deps: &Deps<A, P>, request: &Request) -> Result<Response<Body>, ApiError>
where
    A: Accounts,
    P: Payments,
{
    if request.method() != Method::POST {
        return Err(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "use POST"));
    }
    let sub = caller(request)?;
    let Checkout { plan, mode } = json_body::<CheckoutBody>(request)?.try_into()?;
    let plan = plan.as_str();
    let key = idempotency_key(request, &sub)?;
    let outcome = start_checkout(
        &deps.accounts,
        &deps.stripe,
        &deps.catalogue,
        &sub,
        plan,
        mode,
        &deps.urls,
        &key,
    )
    .await?;
    Ok(match outcome {
        CheckoutOutcome::Session(session) => {
            tracing::info!(user_sub = %sub, session = %session.id, mode = mode.as_str(), "checkout session created");
            json_response(
                StatusCode::OK,
                json!({ "id": session.id, "url": session.url }),
            )
        }
        CheckoutOutcome::PlanChanged {
            subscription,
            from,
            to,
        } => {
            tracing::info!(user_sub = %sub, subscription = %subscription, to = %to, "subscription plan changed in place");
            json_response(
                StatusCode::OK,
                json!({
                    "changed": true,
                    "subscription": subscription,
                    "from": from.map(|p| p.to_string()),
                    "to": to.as_str(),
                    "message": format!("your subscription now bills `{to}`, prorated; no new checkout is needed"),
                }),
            )
        }
    })
}

pub async fn handle<A, P>(
    deps: &Deps<A, P>,
    request: Request,
) -> Result<Response<Body>, lambda_http::Error>
where
    A: Accounts,
    P: Payments,
{
    Ok(serve(deps, &request)
        .await
        .unwrap_or_else(ApiError::into_response))
}
