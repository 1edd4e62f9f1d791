//! The pipeline every request goes through: authentication, the rate limit (`/v1` only), the
//! route's parameters, idempotency, then the operation under the state's lock; answered with
//! Stripe's headers.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::Value;

use crate::STRIPE_API_VERSION;
use crate::emulator::Emulator;
use crate::engine::store::{Replay, new_id};
use crate::error::ApiError;
use crate::form;
use crate::params::Params;
use crate::server::handlers::Op;

/// A request as the client sent it: what the pipeline reads (the router sees its path
/// normalised, see [`Emulator::router`]).
#[derive(Debug, Clone)]
pub struct Sent {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Emulator {
    /// Answers one request over HTTP: [`Emulator::dispatch`], logged, with Stripe's headers.
    pub(crate) fn handle(&self, route: Option<(Op, &str)>, request: &Sent) -> Response {
        let (method, path) = (&request.method, &request.path);
        let result = self.dispatch(route, request);
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

    /// The request pipeline every route shares: authentication, the rate limit (`/v1` only),
    /// the route (`None`: no route has this method and path, Stripe's 404), the parameters (query
    /// and form body, refused if the operation does not take them), idempotency, then the
    /// operation under the state's lock.
    fn dispatch(&self, route: Option<(Op, &str)>, request: &Sent) -> Result<Outcome, ApiError> {
        let Sent {
            method,
            path,
            query,
            headers,
            body,
        } = request;
        let (method, path) = (method, path.as_str());
        self.authenticate(headers)?;
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        if segments.first() == Some(&"v1") {
            self.rate_limit(method, path, headers)?;
        }
        let (op, id) = route.ok_or_else(|| ApiError::unrecognized_url(method.as_str(), path))?;

        let mut raw = form::decode(query.as_deref().unwrap_or_default().as_bytes())
            .map_err(|e| ApiError::invalid(e.0, None))?;
        if !body.is_empty() {
            for (k, v) in form::decode(body).map_err(|e| ApiError::invalid(e.0, None))? {
                raw.insert(k, v);
            }
        }
        let fingerprint = format!("{method} {path} {}", Value::Object(raw.clone()));
        let params = Params::new(raw, op.allowed)?;

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
        let result = (op.apply)(&mut state, id, params);
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

impl Sent {
    /// The request's method, path as sent (`sent`, or the URI's when it was not rewritten),
    /// query, headers and body.
    pub fn from_parts(
        method: Method,
        uri: &Uri,
        headers: HeaderMap,
        sent: Option<axum::Extension<SentPath>>,
        body: Bytes,
    ) -> Self {
        Self {
            method,
            path: sent.map_or_else(|| uri.path().to_owned(), |s| s.0.0),
            query: uri.query().map(str::to_owned),
            headers,
            body,
        }
    }
}

/// The path as the client sent it, kept when routing rewrites it.
#[derive(Debug, Clone)]
pub struct SentPath(pub String);

struct Outcome {
    status: StatusCode,
    body: Value,
    replayed: bool,
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
