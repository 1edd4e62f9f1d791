use adapters::dynamo::DynamoStore;
use create_session::{Config, Deps, handle};
use domain::catalogue::Catalogue;
use lambda_http::{run, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    // Configuration and clients; no network call (the Stripe secret is read on first use).
    let init = async {
        let config = Config::from_env()?;
        let aws = adapters::aws::sdk_config().await;
        anyhow::Ok(Deps {
            accounts: DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name),
            stripe: config.stripe.state(&aws),
            catalogue: Catalogue::bundled()?,
            urls: config.urls,
        })
    };
    let deps = match init.await {
        Ok(deps) => deps,
        Err(e) => return Err(adapters::init::failed(e).await.into()),
    };
    run(service_fn(|request| handle(&deps, request))).await
}
