//! account: the caller's account.
//!
//! - **Trigger**: API Gateway HTTP API routes behind the Cognito JWT authorizer; the user is the
//!   token's `sub`.
//! - `GET /me`: plan, access, subscription (status, period end, cancel at period end),
//!   allowance, purchased and total credits, the API key's prefix (never the key).
//! - `POST /api-key`: a new key, returned once; the old one stops working at once (one
//!   transaction; only the SHA-256 is stored).
//! - `POST /billing-portal`: a Stripe billing portal session URL for the user's customer.
//! - **Returns**: 401 without a verified user, 404 without a profile or for another path, 405
//!   for another method.
//! - **Env**: `TABLE_NAME`, `STRIPE_SECRET_KEY`, `PORTAL_RETURN_URL`, optional `STRIPE_API_BASE`.
//! - **IAM**: DynamoDB `GetItem` (profile), `PutItem`, `UpdateItem`, `DeleteItem` (the key
//!   rotation's transaction).

pub mod handler;

pub use handler::{Config, Deps, handle};
