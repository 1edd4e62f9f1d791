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
pub mod emulator;
pub mod engine;
pub mod error;
pub mod form;
pub mod http;
pub mod params;
pub mod server;

use std::net::SocketAddr;

pub use crate::emulator::{Delivery, Emulator};

/// The Stripe API version whose object shapes the emulator serves.
pub const STRIPE_API_VERSION: &str = "2026-09-30.endive";

/// Serves on `127.0.0.1:port` (0 picks a free port) until the future is dropped.
pub async fn bind(port: u16) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await
}

pub async fn serve(listener: tokio::net::TcpListener, emulator: Emulator) -> std::io::Result<()> {
    tokio::spawn(emulator.clone().deliver_forever());
    axum::serve(listener, emulator.router()).await
}

/// Serves `emulator` on a free local port in the background (tests); returns its base URL.
pub async fn spawn(emulator: Emulator) -> std::io::Result<String> {
    let listener = bind(0).await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(serve(listener, emulator));
    Ok(base)
}
