//! The handlers: each route's [`Op`](crate::server::routes::Op), reading the request's
//! parameters, calling the engine and returning the JSON body.

pub mod billing;
pub mod catalog;
pub mod checkout;
pub mod emulator;
pub mod payments;
pub mod webhooks;
