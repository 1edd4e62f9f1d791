//! stripe-emulator: a stateful, offline emulator of the Stripe API endpoints creditgate uses.
//! A dev and test tool; never deployed.
//!
//! - Binds 127.0.0.1 only; state lives in memory.
//! - Requires `Authorization: Bearer <secret key>` with the key it was started with.
//! - Honours `Idempotency-Key` as Stripe does: the same key with the same parameters replays the
//!   first response; the same key with other parameters is an `idempotency_error`.
//! - Refuses unknown parameters and unknown routes with Stripe-shaped errors.
//! - Objects are in the shape of the API version async-stripe targets (`STRIPE_API_VERSION`).
//!
//! Routes: `/v1/customers` (create, retrieve, update, list by email), `/v1/products` (create
//! with a chosen id, retrieve, update, list), `/v1/prices` (create with `lookup_key` and
//! `transfer_lookup_key`, retrieve, update/deactivate, list by `lookup_keys`, `product`, `active`).

pub mod error;
pub mod form;
pub mod params;
pub mod resources;
pub mod store;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::Value;

use crate::error::ApiError;
use crate::params::Params;
use crate::resources::Route;
use crate::store::{Replay, State, new_id};

/// The Stripe API version whose object shapes the emulator serves.
pub const STRIPE_API_VERSION: &str = "2026-09-30.endive";

#[derive(Clone)]
pub struct Emulator {
    api_key: Arc<str>,
    state: Arc<Mutex<State>>,
}

impl Emulator {
    pub fn new(api_key: impl Into<Arc<str>>) -> Self {
        Self {
            api_key: api_key.into(),
            state: Arc::new(Mutex::new(State::default())),
        }
    }

    pub fn router(self) -> Router {
        Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let emulator = self.clone();
                async move { emulator.handle(method, uri, headers, body) }
            },
        )
    }

    fn handle(&self, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
        let path = uri.path().to_owned();
        let result = self.dispatch(&method, &uri, &headers, &body);
        let (status, body, replayed) = match result {
            Ok(Outcome {
                status,
                body,
                replayed,
            }) => (status, body, replayed),
            Err(err) => (err.status, err.body(), false),
        };
        tracing::info!(%method, path, status = status.as_u16(), replayed, "request");
        respond(status, &body, replayed)
    }

    fn dispatch(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Outcome, ApiError> {
        self.authenticate(headers)?;
        let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
        let (route, id) = route(method, &segments)
            .ok_or_else(|| ApiError::unrecognized_url(method.as_str(), uri.path()))?;

        let mut raw = form::decode(uri.query().unwrap_or_default().as_bytes())
            .map_err(|e| ApiError::invalid(e.0, None))?;
        if !body.is_empty() {
            for (k, v) in form::decode(body).map_err(|e| ApiError::invalid(e.0, None))? {
                raw.insert(k, v);
            }
        }
        let fingerprint = format!("{method} {} {}", uri.path(), Value::Object(raw.clone()));
        let params = Params::new(raw, resources::allowed(route))?;

        // One lock for the whole request: each request applies atomically, and concurrent
        // requests with one idempotency key see each other's result.
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.request_count += 1;
        let idempotency_key = match (method, headers.get("idempotency-key")) {
            (&Method::POST, Some(key)) => Some(
                key.to_str()
                    .ok()
                    .filter(|k| !k.is_empty() && k.len() <= 255)
                    .ok_or_else(|| ApiError::invalid("Invalid Idempotency-Key header", None))?
                    .to_owned(),
            ),
            _ => None,
        };
        if let Some(key) = &idempotency_key
            && let Some(replay) = state.idempotency.get(key)
        {
            if replay.fingerprint != fingerprint {
                return Err(ApiError::idempotency(key));
            }
            return Ok(Outcome {
                status: StatusCode::from_u16(replay.status).unwrap_or(StatusCode::OK),
                body: replay.body.clone(),
                replayed: true,
            });
        }

        let result = apply(&mut state, route, id.as_deref(), params);
        let (status, body) = match &result {
            Ok(body) => (StatusCode::OK, body.clone()),
            Err(err) => (err.status, err.body()),
        };
        // Stripe saves the result of any request that began executing, errors included.
        if let Some(key) = idempotency_key {
            state.idempotency.insert(
                key,
                Replay {
                    fingerprint,
                    status: status.as_u16(),
                    body: body.clone(),
                },
            );
        }
        Ok(Outcome {
            status,
            body,
            replayed: false,
        })
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match given {
            None => Err(ApiError::unauthorized(
                "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            )),
            Some(key) if key == &*self.api_key => Ok(()),
            Some(key) => {
                let shown: String = key.chars().take(8).collect();
                Err(ApiError::unauthorized(format!(
                    "Invalid API Key provided: {shown}********"
                )))
            }
        }
    }
}

struct Outcome {
    status: StatusCode,
    body: Value,
    replayed: bool,
}

fn route(method: &Method, segments: &[&str]) -> Option<(Route, Option<String>)> {
    use Route::*;
    let one = |r: Route, id: &str| Some((r, Some(id.to_owned())));
    match (method, segments) {
        (&Method::POST, ["v1", "customers"]) => Some((CreateCustomer, None)),
        (&Method::GET, ["v1", "customers"]) => Some((ListCustomers, None)),
        (&Method::GET, ["v1", "customers", id]) => Some((Retrieve, Some(format!("customer:{id}")))),
        (&Method::POST, ["v1", "customers", id]) => one(UpdateCustomer, id),
        (&Method::POST, ["v1", "products"]) => Some((CreateProduct, None)),
        (&Method::GET, ["v1", "products"]) => Some((ListProducts, None)),
        (&Method::GET, ["v1", "products", id]) => Some((Retrieve, Some(format!("product:{id}")))),
        (&Method::POST, ["v1", "products", id]) => one(UpdateProduct, id),
        (&Method::POST, ["v1", "prices"]) => Some((CreatePrice, None)),
        (&Method::GET, ["v1", "prices"]) => Some((ListPrices, None)),
        (&Method::GET, ["v1", "prices", id]) => Some((Retrieve, Some(format!("price:{id}")))),
        (&Method::POST, ["v1", "prices", id]) => one(UpdatePrice, id),
        _ => None,
    }
}

fn apply(
    state: &mut State,
    route: Route,
    id: Option<&str>,
    params: Params,
) -> Result<Value, ApiError> {
    let id = id.unwrap_or_default();
    match route {
        Route::CreateCustomer => resources::create_customer(state, params),
        Route::UpdateCustomer => resources::update_customer(state, id, params),
        Route::ListCustomers => resources::list_customers(state, params),
        Route::CreateProduct => resources::create_product(state, params),
        Route::UpdateProduct => resources::update_product(state, id, params),
        Route::ListProducts => resources::list_products(state, params),
        Route::CreatePrice => resources::create_price(state, params),
        Route::UpdatePrice => resources::update_price(state, id, params),
        Route::ListPrices => resources::list_prices(state, params),
        Route::Retrieve => match id.split_once(':') {
            Some(("customer", id)) => resources::get_customer(state, id),
            Some(("product", id)) => resources::get_product(state, id),
            Some(("price", id)) => resources::get_price(state, id),
            _ => Err(ApiError::unrecognized_url("GET", id)),
        },
    }
}

fn respond(status: StatusCode, body: &Value, replayed: bool) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert(
        "stripe-version",
        HeaderValue::from_static(STRIPE_API_VERSION),
    );
    if let Ok(id) = HeaderValue::from_str(&new_id("req")) {
        headers.insert("request-id", id);
    }
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// Serves on `127.0.0.1:port` (0 picks a free port) until the future is dropped.
pub async fn bind(port: u16) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await
}

pub async fn serve(listener: tokio::net::TcpListener, emulator: Emulator) -> std::io::Result<()> {
    axum::serve(listener, emulator.router()).await
}
