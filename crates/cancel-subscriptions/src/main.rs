use adapters::cognito::CognitoDirectory;
use adapters::dynamo::DynamoStore;
use adapters::sfn::StepFunctionsScheduler;
use adapters::stripe_api;
use adapters::stripe_reads::StripeState;
use anyhow::Context;
use cancel_subscriptions::{Config, Deps, handle};
use domain::catalogue::Catalogue;
use lambda_http::{run, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let aws = adapters::aws::sdk_config().await;
    let stripe = stripe_api::client(&config.stripe_secret_key, config.stripe_api_base.as_deref())
        .context("build the Stripe client")?;
    let deps = Deps {
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name),
        stripe: StripeState::new(stripe),
        directory: CognitoDirectory::new(
            aws_sdk_cognitoidentityprovider::Client::new(&aws),
            config.user_pool_id,
        ),
        scheduler: StepFunctionsScheduler::new(
            aws_sdk_sfn::Client::new(&aws),
            config.credit_manager_arn,
        ),
        catalogue: Catalogue::bundled().context("plans.json")?,
        policy: config.policy,
        free_period_override: config.free_period_seconds,
    };
    run(service_fn(|request| handle(&deps, request))).await
}
