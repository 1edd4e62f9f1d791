//! The handlers: each route's [`Op`], reading the request's
//! parameters, calling the engine and returning the JSON body.

pub mod billing;
pub mod catalog;
pub mod checkout;
pub mod emulator;
pub mod payments;
pub mod webhooks;

use serde_json::Value;

use crate::engine::store::State;
use crate::error::ApiError;
use crate::params::Params;

/// What a route does: the parameters it takes (any other is refused with Stripe's
/// `parameter_unknown`) and the handler that reads them, calls the engine and returns the JSON
/// body. The handler gets the state, the route's `{id}` (`""` when it has none) and the
/// parameters.
#[derive(Clone, Copy)]
pub struct Op {
    pub allowed: &'static [&'static str],
    pub apply: fn(&mut State, &str, Params) -> Result<Value, ApiError>,
}
