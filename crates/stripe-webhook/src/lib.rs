//! stripe-webhook: `POST /stripe/webhook`, Stripe's events applied once each, in any order.
//!
//! - **Trigger**: API Gateway HTTP API route `POST /stripe/webhook`, no authorizer: the
//!   `Stripe-Signature` header is the authentication.
//! - **Does**: verifies the signature over the raw body (base64 bodies decoded; any of the
//!   configured secrets; 300 s tolerance) → 401 and nothing written if bad (logged with
//!   `metric=webhook_signature_rejected`); 503 if the secret cannot be read; claims the event
//!   record (`EVENT#<id>`) with one conditional write → a done event answers 200 at once, one
//!   being processed answers 409 so Stripe retries; applies it (see `domain::stripe_events`:
//!   the object is read from Stripe and the profile reconciled with it) → done, 200; a failure
//!   → the record is marked failed with its error, 500, and Stripe's retry (or `creditgate
//!   events replay`) completes it. Verified events of unhandled types → 200, `ignored`.
//! - **Env**: `TABLE_NAME`, `USER_POOL_ID`, `CREDIT_MANAGER_ARN`, `STRIPE_SECRET_ARN` (the
//!   secret holding the key and the `whsec_...` secrets, several during a rotation, read at
//!   run time and cached five minutes; a signature matching none is checked once more against
//!   the secret read again, at most every 10 s), optional
//!   `STRIPE_API_BASE` (the stripe-emulator locally), `PAST_DUE_GRACE_SECONDS` (default 7
//!   days), `LAPSE_MODE` (`downgrade`, default, or `disable`), `FREE_PERIOD_SECONDS` (local).
//! - **IAM**: DynamoDB `GetItem`, `PutItem`, `UpdateItem`, `Query` (grants of one user) on the
//!   table; `cognito-idp:ListUsers`, `AdminUpdateUserAttributes`,
//!   `AdminEnableUser`, `AdminDisableUser`, `AdminCreateUser` on the pool;
//!   `states:StartExecution` on the credit manager.
//! - **Locally**: `scripts/dev` registers `http://127.0.0.1:9000/lambda-url/stripe-webhook/`
//!   with the stripe-emulator, which then delivers every event to it, signed.

pub mod handler;

pub use handler::{Config, Deps, handle};
