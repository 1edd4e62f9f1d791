use adapters::dynamo::DynamoStore;
use adapters::sfn::StepFunctionsScheduler;
use adapters::stripe_api::{self, StripeBilling};
use anyhow::Context;
use domain::catalogue::Catalogue;
use lambda_runtime::{run, service_fn};
use post_confirmation::{Config, Deps, handle};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let aws = adapters::aws::sdk_config().await;
    let stripe = stripe_api::client(&config.stripe_secret_key, config.stripe_api_base.as_deref())
        .context("build the Stripe client")?;
    let deps = Deps {
        accounts: DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name),
        billing: StripeBilling::new(stripe),
        scheduler: StepFunctionsScheduler::new(
            aws_sdk_sfn::Client::new(&aws),
            config.credit_manager_arn,
        ),
        catalogue: Catalogue::bundled().context("plans.json")?,
        free_period_seconds: config.free_period_seconds,
    };
    run(service_fn(|event| handle(&deps, event))).await
}
