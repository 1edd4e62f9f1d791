use adapters::config::FromEnv;
use adapters::http::{ApiError, NoFields, caller, flag, json_body, json_response, verified_email};
use adapters::wiring::LifecycleConfig;
use adapters::{ConfigError, Env};
use domain::account::{self, AccountError};
use domain::ids::CheckoutSessionId;
use domain::lifecycle::{Handled, Lifecycle};
use domain::ports::{Accounts, ApiKeys, Directory, Ledger, Payments, Scheduler, StripeReads};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::json;

#[derive(Debug)]
pub struct Config {
    pub lifecycle: LifecycleConfig,
    pub portal_return_url: String,
}

impl FromEnv for Config {
    fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            lifecycle: LifecycleConfig::from_env(env)?,
            portal_return_url: env.required("PORTAL_RETURN_URL")?,
        })
    }
}

/// The lifecycle (profile store, Stripe, Cognito, credit manager): a claimed purchase is
/// applied with the webhook's own code.
pub struct Deps<St, R, D, S> {
    pub lifecycle: Lifecycle<St, R, D, S>,
    pub portal_return_url: String,
}

async fn serve<St, R, D, S>(
    deps: &Deps<St, R, D, S>,
    request: &Request,
) -> Result<Response<Body>, ApiError>
where
    St: Accounts + ApiKeys + Ledger + Sync,
    R: StripeReads + Payments + Sync,
    D: Directory + Sync,
    S: Scheduler + Sync,
{
    let path = request.uri().path().trim_end_matches('/');
    let route = match path {
        "/me" => Method::GET,
        "/api-key" | "/billing-portal" | "/purchases/claim" => Method::POST,
        _ => return Err(ApiError::not_found(format!("no route {path}"))),
    };
    if request.method() != route {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("use {route} for {path}"),
        ));
    }
    let sub = caller(request)?;
    if path == "/purchases/claim" {
        return claim(deps, request, &sub).await;
    }
    json_body::<NoFields>(request)?;
    let (store, stripe) = (&deps.lifecycle.store, &deps.lifecycle.stripe);
    let body = match path {
        // Held purchases are shown only when the token says the email is verified.
        "/me" => account::show(store, stripe, &sub, verified_email(request).as_ref()).await?,
        "/api-key" => {
            let key = account::issue_api_key(store, &sub, rand::random()).await?;
            json!({
                "api_key": key.expose(),
                "prefix": key.prefix(),
                "message": "store this key now: it is shown only once; the previous key no longer works",
            })
        }
        _ => json!({ "url": account::portal(store, stripe, &sub, &deps.portal_return_url).await? }),
    };
    Ok(json_response(StatusCode::OK, body))
}

/// `POST /purchases/claim`'s body as sent.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimBody {
    session: Option<serde_json::Value>,
    replace_subscription: Option<serde_json::Value>,
}

/// `POST /purchases/claim` `{"session": "cs_..."}`: a purchase held for the caller's verified
/// email becomes the caller's.
async fn claim<St, R, D, S>(
    deps: &Deps<St, R, D, S>,
    request: &Request,
    sub: &domain::ids::UserSub,
) -> Result<Response<Body>, ApiError>
where
    St: Accounts + ApiKeys + Ledger + Sync,
    R: StripeReads + Payments + Sync,
    D: Directory + Sync,
    S: Scheduler + Sync,
{
    let body: ClaimBody = json_body(request)?;
    let replace = flag(
        body.replace_subscription.as_ref(),
        "replace_subscription",
        false,
    )?;
    let session = body
        .session
        .as_ref()
        .and_then(|s| s.as_str())
        .and_then(|s| CheckoutSessionId::parse(s).ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "`session` is required: the id (cs_...) of a purchase listed in GET /me's held_purchases",
            )
        })?;
    let email = verified_email(request).ok_or(AccountError::EmailNotVerified)?;
    let handled = deps
        .lifecycle
        .claim_purchase(sub, &email, &session, replace, adapters::unix_now())
        .await
        .map_err(AccountError::from)?;
    let result = match handled {
        Handled::Applied(what) => what.to_string(),
        Handled::Ignored(why) => why,
    };
    tracing::info!(user_sub = %sub, session = %session, result = %result, "held purchase claimed");
    Ok(json_response(
        StatusCode::OK,
        json!({ "claimed": session, "result": result }),
    ))
}

pub async fn handle<St, R, D, S>(
    deps: &Deps<St, R, D, S>,
    request: Request,
) -> Result<Response<Body>, lambda_http::Error>
where
    St: Accounts + ApiKeys + Ledger + Sync,
    R: StripeReads + Payments + Sync,
    D: Directory + Sync,
    S: Scheduler + Sync,
{
    Ok(serve(deps, &request)
        .await
        .unwrap_or_else(ApiError::into_response))
}
