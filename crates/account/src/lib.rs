//! account: the caller's account.
//!
//! - **Trigger**: API Gateway HTTP API routes behind the Cognito JWT authorizer; the user is the
//!   token's `sub`.
//! - `GET /me`: plan, access, subscription (status, period end, cancel at period end),
//!   allowance, purchased and total credits, the API key's prefix (never the key), every live
//!   subscription bound to the user in Stripe, and (for an ID token whose email is verified)
//!   the purchases held for that email.
//! - `POST /api-key`: a new key, returned once; the old one stops working at once (one
//!   transaction; only the SHA-256 is stored).
//! - `POST /billing-portal`: a Stripe billing portal session URL for the user's customer.
//! - `POST /purchases/claim` `{"session": "cs_..."}`: a pay-first purchase held for the caller's
//!   verified email (ID token `email` + `email_verified`) becomes the caller's: its customer is
//!   bound to them and the session applied by the webhook's own code (403 unverified, 404 none
//!   held, 409 claimed by another account).
//! - **Returns**: 401 without a verified user, 404 without a profile or for another path, 405
//!   for another method.
//! - **Env**: `TABLE_NAME`, `USER_POOL_ID`, `CREDIT_MANAGER_ARN`, `STRIPE_SECRET_ARN` (read at run time),
//!   `PORTAL_RETURN_URL`, optional `STRIPE_API_BASE`, `LAPSE_MODE`, `PAST_DUE_GRACE_SECONDS`.
//! - **IAM**: DynamoDB `GetItem`, `PutItem`, `UpdateItem`, `DeleteItem`, `Query` (profile, key
//!   rotation, held purchases, the claim's transaction, grants); the Cognito and Step Functions
//!   calls the lifecycle makes (as stripe-webhook).

pub mod handler;

pub use handler::{Config, Deps, handle};
