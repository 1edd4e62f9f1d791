//! The engine: the emulator's state and everything that changes it (customers, catalogue,
//! Checkout, payments, subscriptions, invoices, dunning, the billing clock, events). It never
//! imports the HTTP layer: callers hand it the store and their inputs and get Stripe's objects
//! back.

pub mod checkout;
pub mod clock;
pub mod customers;
pub mod dunning;
pub mod events;
pub mod invoices;
pub mod outbox;
pub mod payments;
pub mod prices;
pub mod products;
pub mod store;
pub mod subscriptions;
pub mod webhook_endpoints;
