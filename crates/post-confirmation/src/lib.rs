//! post-confirmation: the Cognito **PostConfirmation** trigger.
//!
//! - **Trigger**: Cognito user pool `PostConfirmation` (`PostConfirmation_ConfirmSignUp`; a
//!   `PostConfirmation_ConfirmForgotPassword` changes nothing).
//! - **Does**: creates the user's Stripe customer (idempotency key from the sub), writes the Free
//!   profile and the customer link in one conditional transaction, starts the Free credit
//!   manager under a deterministic execution name. Any retry, sequential or concurrent, leaves
//!   one customer, one profile, one execution.
//! - **Returns** the event exactly as received (Cognito requires it).
//! - **Errors**: Stripe, DynamoDB or Step Functions failing → an error, so the attempt can be
//!   retried; nothing is left that a retry cannot finish.
//! - **Env**: `TABLE_NAME`, `CREDIT_MANAGER_ARN`, `STRIPE_SECRET_ARN` (read at run time), optional
//!   `STRIPE_API_BASE` (the stripe-emulator locally), optional `FREE_PERIOD_SECONDS` (replaces
//!   the Free plan's week in the credit manager's input; local runs and tests only). AWS
//!   endpoints follow the SDK's variables (`AWS_ENDPOINT_URL`).
//! - **IAM**: `dynamodb:GetItem`, `dynamodb:PutItem` (the transaction's puts) on the table;
//!   `states:StartExecution` on the credit manager.
//! - **Locally**: `cargo lambda invoke post-confirmation --data-file
//!   tests/fixtures/cognito/post-confirmation-sign-up.json` against `scripts/dev`.

pub mod handler;

pub use handler::{Config, Deps, STRIPE_BACKOFF, STRIPE_TIMEOUT, handle};
