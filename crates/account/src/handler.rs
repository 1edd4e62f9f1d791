use adapters::http::{ApiError, caller, json_object, json_response};
use adapters::wiring::StripeConfig;
use adapters::{ConfigError, Env};
use domain::account::{AccountError, me};
use domain::ids::ApiKey;
use domain::ports::{Accounts, ApiKeys, Payments};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::json;

#[derive(Debug)]
pub struct Config {
    pub table_name: String,
    pub stripe: StripeConfig,
    pub portal_return_url: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let env = Env::process();
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            stripe: StripeConfig::from_env(&env)?,
            portal_return_url: env.required("PORTAL_RETURN_URL")?,
        })
    }
}

pub struct Deps<A, P> {
    /// `Accounts` and `ApiKeys`.
    pub accounts: A,
    pub payments: P,
    pub portal_return_url: String,
}

async fn serve<A, P>(deps: &Deps<A, P>, request: &Request) -> Result<Response<Body>, ApiError>
where
    A: Accounts + ApiKeys,
    P: Payments,
{
    let path = request.uri().path().trim_end_matches('/');
    let route = match path {
        "/me" => Method::GET,
        "/api-key" | "/billing-portal" => Method::POST,
        _ => return Err(ApiError::not_found(format!("no route {path}"))),
    };
    if request.method() != route {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("use {route} for {path}"),
        ));
    }
    let sub = caller(request)?;
    json_object(request, &[])?;
    let profile = deps
        .accounts
        .profile(&sub)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::from(AccountError::NoProfile))?;
    match path {
        "/me" => Ok(json_response(StatusCode::OK, me(&profile))),
        "/api-key" => {
            let key = ApiKey::from_entropy(rand::random());
            deps.accounts
                .rotate_api_key(&sub, &key.hash(), &key.prefix())
                .await
                .map_err(ApiError::internal)?;
            tracing::info!(user_sub = %sub, "API key rotated");
            Ok(json_response(
                StatusCode::OK,
                json!({
                    "api_key": key.expose(),
                    "prefix": key.prefix(),
                    "message": "store this key now: it is shown only once; the previous key no longer works",
                }),
            ))
        }
        _ => {
            let url = deps
                .payments
                .portal_session(&profile.customer, &deps.portal_return_url)
                .await
                .map_err(ApiError::internal)?;
            Ok(json_response(StatusCode::OK, json!({ "url": url })))
        }
    }
}

pub async fn handle<A, P>(
    deps: &Deps<A, P>,
    request: Request,
) -> Result<Response<Body>, lambda_http::Error>
where
    A: Accounts + ApiKeys,
    P: Payments,
{
    Ok(serve(deps, &request)
        .await
        .unwrap_or_else(ApiError::into_response))
}
