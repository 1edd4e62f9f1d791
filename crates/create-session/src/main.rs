use adapters::dynamo::DynamoStore;
use adapters::{Env, FromEnv};
use create_session::{Config, Deps, handle};
use domain::catalogue::Catalogue;
use lambda_http::{run, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let deps = adapters::init::build(async {
        let config = Config::from_env(&Env::process())?;
        let aws = adapters::aws::sdk_config().await;
        anyhow::Ok(Deps {
            accounts: DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name),
            stripe: config.stripe.state(&aws),
            catalogue: Catalogue::bundled()?,
            urls: config.urls,
        })
    })
    .await?;
    run(service_fn(|request| handle(&deps, request))).await
}
