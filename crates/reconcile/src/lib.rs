//! reconcile: recovery without a human, on a schedule.
//!
//! - **Trigger**: EventBridge Scheduler (`ReconcileSchedule`, daily by default), or on demand
//!   (`aws lambda invoke --function-name <stack>-reconcile --payload '{}' out.json`). The event
//!   is `{}` (or `null`), or `{"since": <unix seconds>}` to look further back than 30 days for
//!   undelivered events; anything else is refused with an error naming the field.
//! - **Does**: what `creditgate reconcile` does, with the same use cases: replays the event
//!   records left failed or stuck and the events Stripe could not deliver
//!   (`domain::events::replay`), then reconciles every profile with Stripe
//!   (`domain::reconcile::reconcile_all`). Answers the counts and logs them once with
//!   `metric=reconcile_report` (the template's metric filters publish them); drift that remains
//!   after a repair or a user that fails is logged with `metric=reconcile_drift_remains` /
//!   `reconcile_failed` (alarmed). Safe to run twice at once and beside live deliveries.
//! - **Env**: as stripe-webhook: `TABLE_NAME`, `USER_POOL_ID`, `CREDIT_MANAGER_ARN`,
//!   `STRIPE_SECRET_ARN`, optional `STRIPE_API_BASE`, `PAST_DUE_GRACE_SECONDS`, `LAPSE_MODE`,
//!   `FREE_PERIOD_SECONDS`.
//! - **IAM**: the webhook's, plus `dynamodb:Scan` on the table (unsettled event records, users)
//!   and `GetItem` on `EVENT#` records.
//! - **Locally**: `creditgate reconcile` runs the same use cases from the command line.

pub mod handler;

pub use handler::{Input, Summary, handle};
