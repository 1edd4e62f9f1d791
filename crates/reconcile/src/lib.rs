//! reconcile: recovery without a human, on a schedule.
//!
//! - **Trigger**: the `Reconciler` state machine, which EventBridge Scheduler starts
//!   (`ReconcileSchedule`, daily by default) and an operator can start on demand; it invokes
//!   this function again with `{"cursor": <resume>}` while an answer carries `resume` (a run
//!   stopped between pages of users for want of time). The event is `{}` (or `null`),
//!   `{"since": <unix seconds>}` to look further back for undelivered and unrecorded events, or
//!   `{"cursor": ...}`; anything else is refused with an error naming the field.
//! - **Does**: what `creditgate reconcile` does, with the same use cases: replays the event
//!   records left failed or stuck and the events Stripe could not deliver
//!   (`domain::events::replay`, `ReplayFilter::for_reconcile`), then reconciles every profile
//!   with Stripe and Cognito (`domain::reconcile::reconcile_from`). Answers the counts and logs them once with
//!   `metric=reconcile_report` (the template's metric filters publish them); drift that remains
//!   after a repair or a user that fails is logged with `metric=reconcile_drift_remains` /
//!   `reconcile_failed` (alarmed). Safe to run twice at once and beside live deliveries.
//! - **Env**: as stripe-webhook: `TABLE_NAME`, `USER_POOL_ID`, `CREDIT_MANAGER_ARN`,
//!   `STRIPE_SECRET_ARN`, optional `STRIPE_API_BASE`, `PAST_DUE_GRACE_SECONDS`, `LAPSE_MODE`,
//!   `FREE_PERIOD_SECONDS`.
//! - **IAM**: the webhook's, plus `dynamodb:Scan` on the table (unsettled event records, users),
//!   `GetItem` on `EVENT#` records and `cognito-idp:AdminGetUser`.
//! - **Locally**: `creditgate reconcile` runs the same use cases from the command line.

pub mod handler;

pub use handler::{Input, Summary, handle};
