use adapters::dynamo::DynamoStore;
use anyhow::Context;
use create_session::{Config, Deps, handle};
use domain::catalogue::Catalogue;
use lambda_http::{run, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let aws = adapters::aws::sdk_config().await;
    let deps = Deps {
        accounts: DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name),
        stripe: config.stripe.state()?,
        catalogue: Catalogue::bundled().context("plans.json")?,
        urls: config.urls,
    };
    run(service_fn(|request| handle(&deps, request))).await
}
