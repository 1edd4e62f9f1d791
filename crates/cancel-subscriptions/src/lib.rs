//! cancel-subscriptions: `POST /subscriptions/cancel` `{"at_period_end": true}` (default true).
//!
//! - **Trigger**: API Gateway HTTP API route behind the Cognito JWT authorizer; the user is the
//!   token's `sub`.
//! - **Does**: finds the caller's own live subscription in Stripe (its customer is the
//!   profile's) and cancels it at period end or now, then reconciles the profile with Stripe at
//!   once (the webhook's code): now → the profile is on the free plan and the Free credit
//!   manager restarted before this answers; at period end → flagged, and the deletion webhook
//!   finishes it. Repeating an at-period-end cancel changes nothing and says so.
//! - **Returns**: 200 with what happened; 400 for a malformed body; 401 without a verified
//!   user; 404 without a profile; 409 without a live subscription.
//! - **Env**: `TABLE_NAME`, `USER_POOL_ID`, `CREDIT_MANAGER_ARN`, `STRIPE_SECRET_ARN` (read at run time), optional
//!   `STRIPE_API_BASE`, `LAPSE_MODE`, `PAST_DUE_GRACE_SECONDS`, `FREE_PERIOD_SECONDS` (local).
//! - **IAM**: DynamoDB `GetItem`, `PutItem`, `UpdateItem` (profile, customer link, grants);
//!   Cognito `AdminUpdateUserAttributes`, `AdminEnableUser`,
//!   `AdminDisableUser`; `states:StartExecution` on the credit manager.

pub mod handler;

pub use handler::handle;
