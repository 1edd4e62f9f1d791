//! The HTTP layer: the axum [`Router`] of Stripe's routes ([`routes`]), the pipeline every
//! request goes through (authentication, rate limit, parameters, idempotency, the state's lock)
//! and the handlers ([`handlers`]) that read each route's parameters, call the engine and answer
//! its JSON.

pub mod handlers;
pub mod pipeline;
pub mod routes;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::uri::PathAndQuery;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;

use crate::emulator::Emulator;
use crate::error::ApiError;
use crate::server::pipeline::{Sent, SentPath};

impl Emulator {
    /// Stripe's routes ([`routes::routes`]), matched on the path with its leading and trailing
    /// slashes trimmed (`/v1/customers/` is `/v1/customers`, as before the router). A route's
    /// `{id}` is the path segment as sent, not percent-decoded (`%` is escaped for the router,
    /// which decodes parameters). `HEAD` is no route of Stripe's: it is answered as an unknown
    /// route (axum would otherwise run the `GET` route).
    pub fn router(self) -> Router {
        let routes = routes::routes(self.clone());
        Router::new().fallback(move |request: Request| {
            let routes = routes.clone();
            let emulator = self.clone();
            async move {
                if request.method() == Method::HEAD {
                    let (parts, _) = request.into_parts();
                    let sent = Sent::from_parts(
                        parts.method,
                        &parts.uri,
                        parts.headers,
                        None,
                        Bytes::new(),
                    );
                    return emulator.handle(None, &sent);
                }
                match routes.oneshot(normalise(request)).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            }
        })
    }

    /// One request answered in process, without a socket: the status and JSON body the server
    /// would send (what fuzzing drives at full speed). Goes through [`Emulator::router`].
    pub fn answer(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> (StatusCode, Value) {
        let mut request = Request::new(Body::from(body.clone()));
        *request.method_mut() = method.clone();
        *request.uri_mut() = uri.clone();
        *request.headers_mut() = headers.clone();
        let router = self.clone().router();
        let answered = now_or_never(async move {
            let response = router.oneshot(request).await.ok()?;
            let status = response.status();
            let bytes = response.into_body().collect().await.ok()?.to_bytes();
            Some((
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            ))
        });
        answered.flatten().unwrap_or_else(|| {
            let err = ApiError::invalid("The emulator could not answer in process.", None);
            (StatusCode::INTERNAL_SERVER_ERROR, err.body())
        })
    }
}

/// The request with its path trimmed of leading and trailing slashes and `%` escaped (so the
/// router's decoding of `{id}` gives back the segment as sent); the sent path is kept.
fn normalise(mut request: Request) -> Request {
    let sent = request.uri().path().to_owned();
    let routed = format!("/{}", sent.trim_matches('/').replace('%', "%25"));
    let routed = match request.uri().query() {
        Some(query) => format!("{routed}?{query}"),
        None => routed,
    };
    let mut parts = request.uri().clone().into_parts();
    if let Ok(path) = PathAndQuery::try_from(routed) {
        parts.path_and_query = Some(path);
        if let Ok(uri) = Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request.extensions_mut().insert(SentPath(sent));
    request
}

/// Runs a future that never waits (the router's, whose handlers are synchronous) to its end
/// without a runtime; `None` if it would wait.
fn now_or_never<F: Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    }
}
