//! credit-meter: `POST /v1/meter`, the credit-metered API.
//!
//! - **Trigger**: HTTP API route `POST /v1/meter` (payload 2.0), no authorizer: the
//!   `x-api-key` header is the credential.
//! - **Input**: header `x-api-key`; optional body `{"credits": n}` (default 1, at most
//!   `MAX_CREDITS_PER_CALL`).
//! - **Output**: 200 `{"charged", "remaining", "allowance", "purchased"}` and header
//!   `x-credits-remaining`; 401 unknown or rotated key; 402 not enough credits (remaining in the
//!   body); 403 access switched off; 400 a malformed body, naming the problem; 500 opaque.
//! - **Cost**: warm, one DynamoDB UpdateItem (conditional on the key being current, access and
//!   balance); a key not yet cached adds one consistent GetItem; a call that must dip into
//!   `purchased` adds one more UpdateItem.
//! - **Env**: `TABLE_NAME`; AWS endpoints via the SDK's variables.
//! - **IAM**: `dynamodb:GetItem` on `APIKEY#` items, `dynamodb:UpdateItem` on `USER#` items.
//! - **Locally**: `curl -X POST -H "x-api-key: $KEY" http://127.0.0.1:9000/lambda-url/credit-meter/v1/meter`
//!   against `scripts/dev` (`creditgate-dev api-key EMAIL` issues a key).

pub mod handler;

pub use handler::{Config, Deps, handle};
