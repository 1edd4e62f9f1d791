use adapters::dynamo::DynamoStore;
use adapters::sfn::StepFunctionsScheduler;
use adapters::stripe_api::StripeBilling;
use adapters::{Env, FromEnv};
use anyhow::Context;
use domain::catalogue::Catalogue;
use lambda_runtime::{run, service_fn};
use post_confirmation::{Config, Deps, STRIPE_BACKOFF, STRIPE_TIMEOUT, handle};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let deps = adapters::init::build(async {
        let config = Config::from_env(&Env::process())?;
        let aws = adapters::aws::sdk_config().await;
        anyhow::Ok(Deps {
            accounts: DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name),
            billing: StripeBilling::new(config.stripe.source_with_limits(
                &aws,
                STRIPE_TIMEOUT,
                STRIPE_BACKOFF,
            )),
            scheduler: StepFunctionsScheduler::new(
                aws_sdk_sfn::Client::new(&aws),
                config.credit_manager_arn,
            ),
            catalogue: Catalogue::bundled().context("plans.json")?,
            free_period_seconds: config.free_period_seconds,
        })
    })
    .await?;
    run(service_fn(|event| handle(&deps, event))).await
}
