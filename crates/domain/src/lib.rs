//! creditgate's domain: pure rules and types, no I/O, no AWS or Stripe crates.
//!
//! - [`ids`]: newtypes for every identifier and amount, built only by `parse`.
//! - [`catalogue`]: `plans.json` parsed once into typed plans, with its invariants.
//! - [`signup`]: what a confirmed Cognito sign-up means (customer, Free profile, credit manager).
//! - [`sync`]: the plan of changes that makes Stripe's catalogue match `plans.json`.
//! - [`metering`]: spending credits per API call, atomically, never below zero.
//! - [`webhook`]: Stripe webhook signatures (several secrets during rotation, tolerance).
//! - [`facts`]: what creditgate reads from Stripe (subscriptions, invoices, charges).
//! - [`writes`]: what the webhook writes (profile writes, grant records).
//! - [`stripe_events`]: a Stripe event's reference and the typed action it asks for.
//! - [`lifecycle`]: the webhook's use cases (the `Lifecycle`: subscriptions, checkouts and
//!   claims, refunds) and their pure rules (the access policy, reconciling a profile).
//! - [`events`]: processing one verified event exactly once, and replaying failed ones.
//! - [`reconcile`]: every profile compared with Stripe and repaired by the same reconciliation.
//! - [`account`]: the user-facing API's use cases (buy or change plan, cancel, `GET /me`).
//! - [`ports`]: the small traits the use cases need; `adapters` implements them.

pub mod account;
pub mod catalogue;
pub mod events;
pub mod facts;
pub mod ids;
pub mod lifecycle;
pub mod metering;
pub mod ports;
pub mod profile;
pub mod reconcile;
pub mod signup;
pub mod stripe_events;
pub mod sync;
pub mod webhook;
pub mod writes;
