//! The AWS SDK configuration, built once per process on rustls with ring (the same TLS stack
//! async-stripe uses, so only one is compiled). Endpoints follow the SDK's standard variables,
//! so `AWS_ENDPOINT_URL=http://127.0.0.1:5000` points everything at moto.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

pub fn http_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .load()
        .await
}
