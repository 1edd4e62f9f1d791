use adapters::dynamo::DynamoStore;
use credit_meter::{Config, Deps, handle};
use lambda_http::{run, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => return Err(adapters::init::failed(e.into()).await.into()),
    };
    let aws = adapters::aws::sdk_config().await;
    let deps = Deps::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&aws),
        config.table_name,
    ));
    run(service_fn(|request| handle(&deps, request))).await
}
