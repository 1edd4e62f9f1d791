//! End-to-end: the real binaries (`scripts/dev` → moto, stripe-emulator, `cargo lambda watch`,
//! post-confirmation, the `creditgate` CLI) against the local stack, asserting on what the
//! emulator and moto hold afterwards. Each test starts its own stack on free ports.

mod account;
mod api;
mod contracts;
mod credit_limits;
mod credit_manager;
mod event_ledger;
mod faults;
mod metering;
mod operations;
mod plans_sync;
mod recovery;
mod signup;
mod store_contracts;
mod trust;
mod webhook;
