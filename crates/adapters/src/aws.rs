//! The AWS SDK configuration, built once per process on rustls with ring (the same TLS stack
//! async-stripe uses, so only one is compiled). Endpoints follow the SDK's standard variables,
//! so `AWS_ENDPOINT_URL=http://127.0.0.1:5000` points everything at moto. Every call has
//! connect, attempt and operation timeouts ([`timeouts`]).

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

pub fn http_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Connecting to an AWS endpoint: far above what it takes inside a region.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// One attempt of one call (connect, send, answer).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// One call, its retries included: well below the shortest function timeout (5 s, the
/// PostConfirmation trigger, which makes one DynamoDB call before its Stripe call), so a
/// stalled service turns into an error the function reports (a 5xx, a failed event to
/// retry) instead of a function killed at its timeout with work half done.
pub const OPERATION_TIMEOUT: Duration = Duration::from_millis(4500);

pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .timeout_config(timeouts())
        .load()
        .await
}

/// Counts the HTTP requests a DynamoDB client really sends (retries included), for the figures
/// `scripts/bench` prints. Attach with `config.to_builder().interceptor(counter.clone())`.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl RequestCounter {
    pub fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl aws_sdk_dynamodb::config::Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}
