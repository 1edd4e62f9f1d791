//! Stripe's routes, declared in an axum [`Router`]: each path and method names the operation
//! ([`Op`]) that answers it. Every operation goes through the same pipeline
//! ([`Emulator::handle`]); a path or method that is no route is Stripe's 404, after
//! authentication and the rate limit, as any request.

use std::future::Ready;

use crate::emulator::Emulator;
use crate::server::handlers::{Op, billing, catalog, checkout, emulator, payments, webhooks};
use crate::server::pipeline::{Sent, SentPath};
use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::RawPathParams;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::routing::{get, post};

/// The emulator's routes (paths as [`Emulator::router`] normalises them).
pub fn routes(e: Emulator) -> Router {
    let to = |op: Op| to(&e, op);
    Router::new()
        .route(
            "/v1/customers",
            post(to(catalog::CREATE_CUSTOMER)).get(to(catalog::LIST_CUSTOMERS)),
        )
        .route(
            "/v1/customers/{id}",
            get(to(catalog::RETRIEVE_CUSTOMER)).post(to(catalog::UPDATE_CUSTOMER)),
        )
        .route(
            "/v1/products",
            post(to(catalog::CREATE_PRODUCT)).get(to(catalog::LIST_PRODUCTS)),
        )
        .route(
            "/v1/products/{id}",
            get(to(catalog::RETRIEVE_PRODUCT)).post(to(catalog::UPDATE_PRODUCT)),
        )
        .route(
            "/v1/prices",
            post(to(catalog::CREATE_PRICE)).get(to(catalog::LIST_PRICES)),
        )
        .route(
            "/v1/prices/{id}",
            get(to(catalog::RETRIEVE_PRICE)).post(to(catalog::UPDATE_PRICE)),
        )
        .route(
            "/v1/webhook_endpoints",
            post(to(webhooks::CREATE_ENDPOINT)).get(to(webhooks::LIST_ENDPOINTS)),
        )
        .route(
            "/v1/webhook_endpoints/{id}",
            get(to(webhooks::RETRIEVE_ENDPOINT)).delete(to(webhooks::DELETE_ENDPOINT)),
        )
        .route("/v1/events", get(to(webhooks::LIST_EVENTS)))
        .route("/v1/events/{id}", get(to(webhooks::RETRIEVE_EVENT)))
        .route(
            "/v1/checkout/sessions",
            post(to(checkout::CREATE_SESSION)).get(to(checkout::LIST_SESSIONS)),
        )
        .route(
            "/v1/checkout/sessions/{id}",
            get(to(checkout::RETRIEVE_SESSION)),
        )
        .route(
            "/v1/checkout/sessions/{id}/line_items",
            get(to(checkout::LINE_ITEMS)),
        )
        .route(
            "/v1/checkout/sessions/{id}/expire",
            post(to(checkout::EXPIRE_SESSION)),
        )
        .route(
            "/_emulator/checkout/sessions/{id}/complete",
            post(to(checkout::COMPLETE_SESSION)),
        )
        .route(
            "/v1/payment_intents/{id}",
            get(to(payments::RETRIEVE_PAYMENT_INTENT)),
        )
        .route("/v1/charges/{id}", get(to(payments::RETRIEVE_CHARGE)))
        .route("/v1/refunds", post(to(payments::CREATE_REFUND)))
        .route(
            "/_emulator/charges/{id}/dispute",
            post(to(payments::CREATE_DISPUTE)),
        )
        .route(
            "/v1/billing_portal/sessions",
            post(to(payments::CREATE_PORTAL_SESSION)),
        )
        .route("/v1/subscriptions", get(to(billing::LIST_SUBSCRIPTIONS)))
        .route(
            "/v1/subscriptions/{id}",
            get(to(billing::RETRIEVE_SUBSCRIPTION))
                .post(to(billing::UPDATE_SUBSCRIPTION))
                .delete(to(billing::CANCEL_SUBSCRIPTION)),
        )
        .route("/v1/invoices/{id}", get(to(billing::RETRIEVE_INVOICE)))
        .route("/_emulator/clock/advance", post(to(billing::ADVANCE_CLOCK)))
        .route(
            "/_emulator/customers/{id}/payment_method",
            post(to(billing::SET_PAYMENT_METHOD)),
        )
        .route(
            "/_emulator/subscriptions/{id}",
            get(to(billing::EMULATOR_VIEW)),
        )
        .route("/_emulator/deliveries", get(to(webhooks::DELIVERIES)))
        .route(
            "/_emulator/rate_limit",
            post(to(emulator::SET_RATE_LIMIT)).get(to(emulator::SHOW_RATE_LIMIT)),
        )
        .fallback(unrecognized(&e))
        .method_not_allowed_fallback(unrecognized(&e))
}

/// The axum handler of an operation: the request as sent, through [`Emulator::handle`].
fn to(
    emulator: &Emulator,
    op: Op,
) -> impl FnOnce(
    RawPathParams,
    Method,
    Uri,
    HeaderMap,
    Option<Extension<SentPath>>,
    Bytes,
) -> Ready<Response>
+ Clone
+ Send
+ Sync
+ 'static {
    let emulator = emulator.clone();
    move |path, method, uri, headers, sent, body| {
        let id = path
            .iter()
            .next()
            .map(|(_, v)| v.to_owned())
            .unwrap_or_default();
        let request = Sent::from_parts(method, &uri, headers, sent, body);
        std::future::ready(emulator.handle(Some((op, &id)), &request))
    }
}

/// No route has this path, or not with this method: Stripe's 404 (after authentication and
/// the rate limit).
fn unrecognized(
    emulator: &Emulator,
) -> impl FnOnce(Method, Uri, HeaderMap, Option<Extension<SentPath>>, Bytes) -> Ready<Response>
+ Clone
+ Send
+ Sync
+ 'static {
    let emulator = emulator.clone();
    move |method, uri, headers, sent, body| {
        let request = Sent::from_parts(method, &uri, headers, sent, body);
        std::future::ready(emulator.handle(None, &request))
    }
}
