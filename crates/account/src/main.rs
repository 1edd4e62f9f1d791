use account::{Config, Deps, handle};
use adapters::dynamo::DynamoStore;
use lambda_http::{run, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let aws = adapters::aws::sdk_config().await;
    let deps = Deps {
        accounts: DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name),
        payments: config.stripe.state()?,
        portal_return_url: config.portal_return_url,
    };
    run(service_fn(|request| handle(&deps, request))).await
}
