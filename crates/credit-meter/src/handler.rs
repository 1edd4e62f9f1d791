use adapters::config::FromEnv;
use adapters::http::{ApiError, json_response, with_remaining};
use adapters::{ConfigError, Env};
use domain::metering::{KeyCache, Meter, MeterError, meter, parse_cost};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::json;

#[derive(Debug)]
pub struct Config {
    pub table_name: String,
}

impl FromEnv for Config {
    fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
        })
    }
}

/// Keys cached per warm instance; a full cache is cleared (a miss costs one read).
pub const KEY_CACHE_CAPACITY: usize = 10_000;

pub struct Deps<M> {
    pub meter: M,
    pub cache: KeyCache,
}

impl<M> Deps<M> {
    pub fn new(meter: M) -> Self {
        Self {
            meter,
            cache: KeyCache::new(KEY_CACHE_CAPACITY),
        }
    }
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    ApiError::new(status, message).into_response()
}

#[tracing::instrument(skip_all, fields(user_sub, charged, status))]
pub async fn handle<M: Meter>(
    deps: &Deps<M>,
    request: Request,
) -> Result<Response<Body>, std::convert::Infallible> {
    let span = tracing::Span::current();
    if request.method() != Method::POST {
        span.record("status", 405);
        return Ok(error(StatusCode::METHOD_NOT_ALLOWED, "use POST"));
    }
    let Some(key) = request
        .headers()
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
    else {
        span.record("status", 401);
        return Ok(error(StatusCode::UNAUTHORIZED, "missing x-api-key header"));
    };
    let body: &[u8] = match request.body() {
        Body::Empty => b"",
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => b"",
    };
    let cost = match parse_cost(body) {
        Ok(cost) => cost,
        Err(e) => {
            span.record("status", 400);
            return Ok(error(StatusCode::BAD_REQUEST, &e.to_string()));
        }
    };

    match meter(&deps.meter, &deps.cache, key, cost).await {
        Ok((sub, balances)) => {
            span.record("user_sub", sub.as_str());
            span.record("charged", cost.get());
            span.record("status", 200);
            tracing::info!(remaining = balances.total().get(), "metered");
            Ok(with_remaining(
                json_response(
                    StatusCode::OK,
                    json!({
                        "charged": cost.get(),
                        "remaining": balances.total().get(),
                        "allowance": balances.allowance.get(),
                        "purchased": balances.purchased.get(),
                    }),
                ),
                Some(balances.total().get()),
            ))
        }
        Err(err) => {
            match &err {
                MeterError::Port(cause) => {
                    tracing::error!(operation = cause.operation, cause = %cause.source, "metering failed")
                }
                other => tracing::info!(reason = %other, "refused"),
            }
            let response = ApiError::from(err).into_response();
            span.record("status", response.status().as_u16());
            Ok(response)
        }
    }
}
