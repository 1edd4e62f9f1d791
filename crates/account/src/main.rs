use account::{Config, Deps, handle};
use adapters::dynamo::DynamoStore;
use adapters::stripe_api;
use adapters::stripe_reads::StripeState;
use anyhow::Context;
use lambda_http::{run, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let aws = adapters::aws::sdk_config().await;
    let stripe = stripe_api::client(&config.stripe_secret_key, config.stripe_api_base.as_deref())
        .context("build the Stripe client")?;
    let deps = Deps {
        accounts: DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name),
        payments: StripeState::new(stripe),
        portal_return_url: config.portal_return_url,
    };
    run(service_fn(|request| handle(&deps, request))).await
}
