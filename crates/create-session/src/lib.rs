//! create-session: `POST /checkout-sessions` `{"plan": "basic", "mode": "subscription" | "pack"}`.
//!
//! - **Trigger**: API Gateway HTTP API route behind the Cognito JWT authorizer; the user is the
//!   token's `sub` (from the authorizer's claims, never from the body).
//! - **Does**: validates the plan and that it sells in that mode (the free plan never does);
//!   with a live subscription and another subscription plan asked for, changes that
//!   subscription's price in place (prorated, invoiced now) and says so — never a second
//!   subscription; the plan already held → 409. Otherwise creates a Checkout Session for the
//!   user's customer (`client_reference_id` = sub; metadata on the session and on the
//!   subscription or payment intent; the plan's trial days; success/cancel URLs from
//!   configuration) with an idempotency key (from the `Idempotency-Key` header when given).
//! - **Returns**: 200 `{"id", "url"}`, or 200 `{"changed": true, "subscription", "from", "to"}`;
//!   400 naming the problem, 401 without a verified user, 404 without a profile, 409.
//! - **Env**: `TABLE_NAME`, `STRIPE_SECRET_ARN` (read at run time), `CHECKOUT_SUCCESS_URL`, `CHECKOUT_CANCEL_URL`,
//!   optional `STRIPE_API_BASE`.
//! - **IAM**: `dynamodb:GetItem` on `USER#*` (the profile).

pub mod handler;

pub use handler::{Config, Deps, handle};
