//! creditgate's adapters: the domain's ports implemented on DynamoDB (serde_dynamo), Step
//! Functions and Stripe (async-stripe), plus what every binary needs once: typed configuration
//! from the environment, the AWS SDK configuration on one TLS stack (rustls with ring), and the
//! Stripe client.
//!
//! Local endpoints come through the SDK's standard variables (`AWS_ENDPOINT_URL`, ...) and
//! `STRIPE_API_BASE`; nothing here knows whether it runs locally.
//!
//! With the `test-util` feature, [`fakes`] holds in-memory implementations of every port for
//! handler tests. Release builds never enable it.

pub mod aws;
pub mod cognito;
pub mod config;
pub mod dynamo;
pub mod events;
#[cfg(feature = "lambda")]
pub mod http;
#[cfg(feature = "lambda")]
pub mod init;
pub mod items;
pub mod ledger;
pub mod metering;
pub mod secrets;
pub mod sfn;
pub mod stripe_api;
pub mod stripe_payments;
pub mod stripe_reads;
pub mod tools;
pub mod wiring;

#[cfg(feature = "test-util")]
pub mod fakes;

pub use config::{ConfigError, Env, FromEnv};

/// Seconds since the Unix epoch, from the system clock (0 if the clock is before 1970).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
