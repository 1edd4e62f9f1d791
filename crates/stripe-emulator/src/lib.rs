#![recursion_limit = "256"]
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
//! - Records every change as an event and delivers it, signed, to registered webhook endpoints,
//!   retrying failures on Stripe's schedule compressed by `--retry-compression`.
//!
//! Routes: `/v1/checkout/sessions` (create in `payment` or `subscription` mode, retrieve,
//! expire), `POST /_emulator/checkout/sessions/{id}/complete` (pay a payment-mode session),
//! `GET /v1/checkout/sessions` (by `payment_intent`, `subscription`, `customer`, `status`),
//! `GET /v1/checkout/sessions/{id}/line_items`, `/v1/payment_intents/{id}`, `/v1/charges/{id}`, `/v1/webhook_endpoints` (create, list, delete), `/v1/events` (list by `type`,
//! retrieve), `GET /_emulator/deliveries` (the delivery log), `/v1/customers` (create, retrieve, update, list by email), `/v1/products` (create
//! with a chosen id, retrieve, update, list), `/v1/prices` (create with `lookup_key` and
//! `transfer_lookup_key`, retrieve, update/deactivate, list by `lookup_keys`, `product`, `active`).
//!
//! Rate limiting on demand: `POST /_emulator/rate_limit` with `requests=N` makes the next N
//! authenticated `/v1` requests answer 429 with Stripe's `rate_limit` error, before anything is
//! applied or saved under their idempotency key (`requests=0` lifts it); `GET
//! /_emulator/rate_limit` shows how many remain and each refused request (method, path,
//! idempotency key). `/_emulator` routes are never limited.

pub mod client;
pub mod delivery;
pub mod engine;
pub mod error;
pub mod form;
pub mod http;
pub mod params;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::Value;

use crate::engine::store::{Replay, State, new_id};
use crate::engine::{
    checkout, clock, customers, dunning, events, payments, prices, products, subscriptions,
    webhook_endpoints,
};
use crate::error::ApiError;
use crate::params::Params;

/// The Stripe API version whose object shapes the emulator serves.
pub const STRIPE_API_VERSION: &str = "2026-09-30.endive";

/// How webhook deliveries are retried.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    /// Stripe's retry delays are divided by this (3600: an hour becomes a second).
    pub retry_compression: f64,
    /// How long an endpoint may take to answer.
    pub timeout: std::time::Duration,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            retry_compression: 3600.0,
            timeout: std::time::Duration::from_secs(10),
        }
    }
}

#[derive(Clone)]
pub struct Emulator {
    api_key: Arc<str>,
    state: Arc<Mutex<State>>,
    delivery: Delivery,
    wake: Arc<tokio::sync::Notify>,
    state_file: Option<Arc<std::path::Path>>,
}

impl Emulator {
    pub fn new(api_key: impl Into<Arc<str>>) -> Self {
        Self::with_delivery(api_key, Delivery::default())
    }

    pub fn with_delivery(api_key: impl Into<Arc<str>>, delivery: Delivery) -> Self {
        Self {
            api_key: api_key.into(),
            state: Arc::new(Mutex::new(State::default())),
            delivery,
            wake: Arc::new(tokio::sync::Notify::new()),
            state_file: None,
        }
    }

    /// Keeps state in `path`: loaded now (if the file exists), rewritten after every change.
    pub fn with_state_file(mut self, path: impl Into<std::path::PathBuf>) -> std::io::Result<Self> {
        let path: std::path::PathBuf = path.into();
        let loaded = State::load(&path)?;
        *self.lock() = loaded;
        self.state_file = Some(Arc::from(path.as_path()));
        Ok(self)
    }

    fn persist(&self, state: &State) {
        if let Some(path) = &self.state_file
            && let Err(e) = state.save(path)
        {
            tracing::error!(path = %path.display(), error = %e, "could not write the state file");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Delivers queued events until the process ends: each due job is POSTed, logged, and on
    /// failure rescheduled on the compressed retry schedule.
    pub async fn deliver_forever(self) {
        loop {
            let now = tokio::time::Instant::now();
            let due = {
                let mut state = self.lock();
                let (due, waiting): (Vec<_>, Vec<_>) =
                    state.outbox.drain(..).partition(|j| j.due <= now);
                state.outbox = waiting;
                due
            };
            for job in due {
                self.attempt(job).await;
            }
            // Retries scheduled by the attempts above count too.
            let next = self.lock().outbox.iter().map(|j| j.due).min();
            let sleep = next
                .map(|at| at.saturating_duration_since(tokio::time::Instant::now()))
                .unwrap_or(std::time::Duration::from_secs(3600));
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    }

    async fn attempt(&self, job: engine::outbox::Job) {
        let prepared = {
            let state = self.lock();
            match (
                state.events.get(&job.event),
                state.webhook_endpoints.get(&job.endpoint),
                state.webhook_secrets.get(&job.endpoint),
            ) {
                (Some(event), Some(endpoint), Some(secret)) => Some((
                    event.to_string(),
                    endpoint["url"].as_str().unwrap_or_default().to_owned(),
                    secret.clone(),
                    // Signed at the real time of delivery, as Stripe does for test-clock events:
                    // receivers check the signature's timestamp against their own clock.
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs() as i64)
                        .unwrap_or_default(),
                )),
                // The endpoint was deleted meanwhile: nothing to deliver.
                _ => None,
            }
        };
        let Some((payload, url, secret, now)) = prepared else {
            return;
        };
        let signature = delivery::signature_header(&payload, &secret, now);
        let result = delivery::post(&url, &payload, &signature, self.delivery.timeout).await;
        let delivered = matches!(result, Ok(status) if (200..300).contains(&status));
        let mut state = self.lock();
        let entry = serde_json::json!({
            "event": job.event,
            "endpoint": job.endpoint,
            "attempt": job.attempt,
            "status_code": result.as_ref().ok(),
            "error": result.as_ref().err(),
            "delivered": delivered,
            "at": now,
        });
        tracing::info!(event = %job.event, endpoint = %job.endpoint, attempt = job.attempt, delivered, "webhook delivery");
        state.deliveries.push(entry);
        if delivered {
            if let Some(event) = state.events.get_mut(&job.event)
                && let Some(pending) = event["pending_webhooks"].as_u64()
            {
                event["pending_webhooks"] = serde_json::json!(pending.saturating_sub(1));
            }
        } else if let Some(delay) = engine::outbox::RETRY_SCHEDULE.get(job.attempt as usize - 1) {
            let wait =
                std::time::Duration::from_secs_f64(*delay as f64 / self.delivery.retry_compression);
            state.outbox.push(engine::outbox::Job {
                attempt: job.attempt + 1,
                due: tokio::time::Instant::now() + wait,
                ..job
            });
        }
        self.persist(&state);
    }

    pub fn router(self) -> Router {
        Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let emulator = self.clone();
                async move { emulator.handle(method, uri, headers, body) }
            },
        )
    }

    /// One request answered in process, without a socket: the status and JSON body the server
    /// would send (what fuzzing drives at full speed).
    pub fn answer(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> (StatusCode, Value) {
        match self.dispatch(method, uri, headers, body) {
            Ok(outcome) => (outcome.status, outcome.body),
            Err(err) => (err.status, err.body()),
        }
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
        if segments.first() == Some(&"v1") {
            self.rate_limit(method, uri.path(), headers)?;
        }
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
        let params = Params::new(raw, allowed(route))?;

        // One lock for the whole request: each request applies atomically, and concurrent
        // requests with one idempotency key see each other's result.
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
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

        state.current_request = Some((new_id("req"), idempotency_key.clone()));
        let queued = state.outbox.len();
        let result = apply(&mut state, route, id.as_deref(), params);
        state.current_request = None;
        if state.outbox.len() != queued {
            self.wake.notify_one();
        }
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
        if *method != Method::GET {
            self.persist(&state);
        }
        Ok(Outcome {
            status,
            body,
            replayed: false,
        })
    }

    /// Refuses the request with Stripe's 429 while `POST /_emulator/rate_limit` asked for it.
    /// As Stripe's limiter, before anything is applied or saved under an idempotency key, so a
    /// retry with the same key runs the request.
    fn rate_limit(&self, method: &Method, path: &str, headers: &HeaderMap) -> Result<(), ApiError> {
        let mut state = self.lock();
        if state.rate_limit.remaining == 0 {
            return Ok(());
        }
        state.rate_limit.remaining -= 1;
        let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
        state.rate_limit.refused.push(serde_json::json!({
            "method": method.as_str(),
            "path": path,
            "idempotency_key": key,
        }));
        Err(ApiError::rate_limited())
    }

    /// Bearer auth, or Basic auth with the key as the user name (`curl -u sk_test_...:`), as
    /// Stripe takes either.
    fn authenticate(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        use base64::Engine as _;
        let header = headers.get("authorization").and_then(|v| v.to_str().ok());
        let basic = header
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
            .and_then(|raw| String::from_utf8(raw).ok())
            .map(|pair| pair.split(':').next().unwrap_or_default().to_owned());
        let given = header
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned)
            .or(basic);
        match given.as_deref() {
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
        (&Method::POST, ["v1", "webhook_endpoints"]) => Some((CreateWebhookEndpoint, None)),
        (&Method::GET, ["v1", "webhook_endpoints"]) => Some((ListWebhookEndpoints, None)),
        (&Method::GET, ["v1", "webhook_endpoints", id]) => {
            Some((Retrieve, Some(format!("webhook_endpoint:{id}"))))
        }
        (&Method::DELETE, ["v1", "webhook_endpoints", id]) => {
            Some((Delete, Some(format!("webhook_endpoint:{id}"))))
        }
        (&Method::GET, ["v1", "events"]) => Some((ListEvents, None)),
        (&Method::POST, ["v1", "checkout", "sessions"]) => Some((CreateCheckoutSession, None)),
        (&Method::GET, ["v1", "checkout", "sessions"]) => Some((ListCheckoutSessions, None)),
        (&Method::GET, ["v1", "checkout", "sessions", id]) => {
            Some((Retrieve, Some(format!("checkout_session:{id}"))))
        }
        (&Method::GET, ["v1", "checkout", "sessions", id, "line_items"]) => one(ListLineItems, id),
        (&Method::POST, ["v1", "checkout", "sessions", id, "expire"]) => {
            one(ExpireCheckoutSession, id)
        }
        (&Method::POST, ["_emulator", "checkout", "sessions", id, "complete"]) => {
            one(CompleteCheckoutSession, id)
        }
        (&Method::GET, ["v1", "payment_intents", id]) => {
            Some((Retrieve, Some(format!("payment_intent:{id}"))))
        }
        (&Method::GET, ["v1", "charges", id]) => Some((Retrieve, Some(format!("charge:{id}")))),
        (&Method::GET, ["v1", "subscriptions"]) => Some((ListSubscriptions, None)),
        (&Method::POST, ["_emulator", "clock", "advance"]) => Some((AdvanceClock, None)),
        (&Method::POST, ["v1", "refunds"]) => Some((CreateRefund, None)),
        (&Method::POST, ["_emulator", "charges", id, "dispute"]) => one(CreateDispute, id),
        (&Method::POST, ["v1", "billing_portal", "sessions"]) => Some((CreatePortalSession, None)),
        (&Method::POST, ["_emulator", "customers", id, "payment_method"]) => {
            one(SetPaymentMethod, id)
        }
        (&Method::GET, ["_emulator", "subscriptions", id]) => {
            Some((Retrieve, Some(format!("emulator_subscription:{id}"))))
        }
        (&Method::POST, ["v1", "subscriptions", id]) => one(UpdateSubscription, id),
        (&Method::DELETE, ["v1", "subscriptions", id]) => one(CancelSubscription, id),
        (&Method::GET, ["v1", "subscriptions", id]) => {
            Some((Retrieve, Some(format!("subscription:{id}"))))
        }
        (&Method::GET, ["v1", "invoices", id]) => Some((Retrieve, Some(format!("invoice:{id}")))),
        (&Method::GET, ["v1", "events", id]) => Some((Retrieve, Some(format!("event:{id}")))),
        (&Method::GET, ["_emulator", "deliveries"]) => Some((Deliveries, None)),
        (&Method::POST, ["_emulator", "rate_limit"]) => Some((SetRateLimit, None)),
        (&Method::GET, ["_emulator", "rate_limit"]) => Some((ShowRateLimit, None)),
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
        Route::CreateCustomer => customers::create_customer(state, params),
        Route::UpdateCustomer => customers::update_customer(state, id, params),
        Route::ListCustomers => customers::list_customers(state, params),
        Route::CreateProduct => products::create_product(state, params),
        Route::UpdateProduct => products::update_product(state, id, params),
        Route::ListProducts => products::list_products(state, params),
        Route::CreatePrice => prices::create_price(state, params),
        Route::UpdatePrice => prices::update_price(state, id, params),
        Route::ListPrices => prices::list_prices(state, params),
        Route::CreateWebhookEndpoint => webhook_endpoints::create_endpoint(state, params),
        Route::ListWebhookEndpoints => webhook_endpoints::list_endpoints(state, params),
        Route::ListEvents => events::list_events(state, params),
        Route::CreateCheckoutSession => checkout::create_session(state, params),
        Route::ExpireCheckoutSession => checkout::expire_session(state, id),
        Route::CompleteCheckoutSession => checkout::complete_session(state, id, params),
        Route::ListLineItems => checkout::line_items(state, id),
        Route::ListCheckoutSessions => checkout::list_sessions(state, params),
        Route::UpdateSubscription => subscriptions::update_subscription(state, id, params),
        Route::AdvanceClock => clock::advance_clock(state, params),
        Route::CreateRefund => payments::create_refund(state, params),
        Route::CreateDispute => payments::create_dispute(state, id, params),
        Route::CreatePortalSession => payments::create_portal_session(state, params),
        Route::SetPaymentMethod => dunning::set_payment_method(state, id, params),
        Route::ListSubscriptions => subscriptions::list_subscriptions(state, params),
        Route::CancelSubscription => subscriptions::cancel_subscription(state, id, params),
        Route::Deliveries => Ok(serde_json::json!({ "object": "list", "data": state.deliveries })),
        Route::SetRateLimit => {
            let requests = params
                .int("requests")?
                .ok_or_else(|| ApiError::missing_param("requests"))?;
            state.rate_limit.remaining = u64::try_from(requests).map_err(|_| {
                ApiError::invalid("`requests` must be 0 or more.", Some("requests"))
            })?;
            Ok(rate_limit_view(state))
        }
        Route::ShowRateLimit => Ok(rate_limit_view(state)),
        Route::Delete => match id.split_once(':') {
            Some(("webhook_endpoint", id)) => webhook_endpoints::delete_endpoint(state, id),
            _ => Err(ApiError::unrecognized_url("DELETE", id)),
        },
        Route::Retrieve => match id.split_once(':') {
            Some(("customer", id)) => state.customers.fetch("customer", id, "id"),
            Some(("product", id)) => state.products.fetch("product", id, "id"),
            Some(("price", id)) => state.prices.fetch("price", id, "id"),
            Some(("event", id)) => state.events.fetch("event", id, "id"),
            Some(("checkout_session", id)) => {
                state
                    .checkout_sessions
                    .fetch("checkout.session", id, "session")
            }
            Some(("payment_intent", id)) => {
                state.payment_intents.fetch("payment_intent", id, "intent")
            }
            Some(("emulator_subscription", id)) => subscriptions::emulator_view(state, id),
            Some(("subscription", id)) => state.subscriptions.fetch("subscription", id, "id"),
            Some(("invoice", id)) => state.invoices.fetch("invoice", id, "invoice"),
            Some(("charge", id)) => state.charges.fetch("charge", id, "charge"),
            Some(("webhook_endpoint", id)) => {
                state.webhook_endpoints.fetch("webhook_endpoint", id, "id")
            }
            _ => Err(ApiError::unrecognized_url("GET", id)),
        },
    }
}

/// The parameter names each route accepts.
fn allowed(route: Route) -> &'static [&'static str] {
    match route {
        Route::CreateCustomer => customers::CUSTOMER_CREATE,
        Route::UpdateCustomer => customers::CUSTOMER_UPDATE,
        Route::ListCustomers => customers::CUSTOMER_LIST,
        Route::CreateProduct => products::PRODUCT_CREATE,
        Route::UpdateProduct => products::PRODUCT_UPDATE,
        Route::ListProducts => products::PRODUCT_LIST,
        Route::CreatePrice => prices::PRICE_CREATE,
        Route::UpdatePrice => prices::PRICE_UPDATE,
        Route::ListPrices => prices::PRICE_LIST,
        Route::CreateWebhookEndpoint => webhook_endpoints::ENDPOINT_CREATE,
        Route::ListWebhookEndpoints => webhook_endpoints::ENDPOINT_LIST,
        Route::ListEvents => events::EVENT_LIST,
        Route::CreateCheckoutSession => checkout::SESSION_CREATE,
        Route::CompleteCheckoutSession => checkout::COMPLETE,
        Route::ListLineItems => checkout::LINE_ITEMS_LIST,
        Route::ListCheckoutSessions => checkout::SESSION_LIST,
        Route::UpdateSubscription => subscriptions::SUBSCRIPTION_UPDATE,
        Route::AdvanceClock => clock::CLOCK_ADVANCE,
        Route::CreateRefund => payments::REFUND_CREATE,
        Route::CreateDispute => payments::DISPUTE_CREATE,
        Route::CreatePortalSession => payments::PORTAL_CREATE,
        Route::SetPaymentMethod => dunning::PAYMENT_METHOD,
        Route::ListSubscriptions => subscriptions::SUBSCRIPTION_LIST,
        Route::CancelSubscription => subscriptions::SUBSCRIPTION_CANCEL,
        Route::SetRateLimit => &["requests"],
        Route::Retrieve
        | Route::Delete
        | Route::Deliveries
        | Route::ExpireCheckoutSession
        | Route::ShowRateLimit => &[],
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    CreateCustomer,
    UpdateCustomer,
    ListCustomers,
    CreateProduct,
    UpdateProduct,
    ListProducts,
    CreatePrice,
    UpdatePrice,
    ListPrices,
    CreateWebhookEndpoint,
    ListWebhookEndpoints,
    ListEvents,
    CreateCheckoutSession,
    ExpireCheckoutSession,
    CompleteCheckoutSession,
    ListLineItems,
    ListCheckoutSessions,
    UpdateSubscription,
    AdvanceClock,
    CreateRefund,
    CreateDispute,
    CreatePortalSession,
    SetPaymentMethod,
    ListSubscriptions,
    CancelSubscription,
    Retrieve,
    Delete,
    Deliveries,
    SetRateLimit,
    ShowRateLimit,
}

fn rate_limit_view(state: &State) -> Value {
    serde_json::json!({
        "remaining": state.rate_limit.remaining,
        "refused": state.rate_limit.refused,
    })
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
    tokio::spawn(emulator.clone().deliver_forever());
    axum::serve(listener, emulator.router()).await
}

#[cfg(test)]
mod auth_tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(v) = value.parse() {
            headers.insert("authorization", v);
        }
        headers
    }

    #[test]
    fn the_key_is_taken_as_bearer_or_as_basic_auth_user_name_as_stripe_takes_it() {
        use base64::Engine as _;
        let emulator = Emulator::new("sk_test_auth");
        let basic = |pair: &str| {
            with(&format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ))
        };
        assert!(emulator.authenticate(&with("Bearer sk_test_auth")).is_ok());
        // What `curl -u sk_test_auth:` sends.
        assert!(emulator.authenticate(&basic("sk_test_auth:")).is_ok());
        assert!(emulator.authenticate(&basic("sk_test_other:")).is_err());
        assert!(emulator.authenticate(&with("Basic not-base64!")).is_err());
        assert!(
            emulator
                .authenticate(&with("Bearer sk_test_other"))
                .is_err()
        );
        assert!(emulator.authenticate(&HeaderMap::new()).is_err());
    }
}
