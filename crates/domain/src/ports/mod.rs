//! Ports: the small traits the use cases call. `adapters` implements them on DynamoDB, Cognito,
//! Step Functions and Stripe, and (behind its `test-util` feature) in memory.

mod directory;
mod scheduler;
mod store;
mod stripe;

pub use directory::*;
pub use scheduler::*;
pub use store::*;
pub use stripe::*;

use std::error::Error as StdError;

pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A port's call failed. `operation` says which call in domain words; the cause is kept as the
/// source for logs and never shown to a caller.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed")]
pub struct PortError {
    pub operation: &'static str,
    #[source]
    pub source: BoxError,
    /// Set when the provider refused the request because of what the caller sent (Stripe's
    /// `idempotency_error`): a 4xx for the caller, never a 500.
    pub refused: Option<Refusal>,
}

/// Why a provider refused a request the caller shaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The `Idempotency-Key` was used before with a different request.
    IdempotencyKeyReused,
}

/// An error and its sources on one line, `outer: inner: ...`, for logs and stored errors.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

impl PortError {
    pub fn new(operation: &'static str, source: impl Into<BoxError>) -> Self {
        Self {
            operation,
            source: source.into(),
            refused: None,
        }
    }

    pub fn refused(mut self, refusal: Refusal) -> Self {
        self.refused = Some(refusal);
        self
    }
}

/// Whether a conditional create made something new or found it already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    New,
    AlreadyExisted,
}

/// Whether a conditional write landed or lost a race (re-read and decide again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Written,
    Conflict,
}
