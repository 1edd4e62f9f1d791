use adapters::wiring::{LifecycleConfig, live_lifecycle};
use adapters::{Env, FromEnv};
use cancel_subscriptions::handle;
use lambda_http::{run, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let deps = adapters::init::build(async {
        live_lifecycle(LifecycleConfig::from_env(&Env::process())?).await
    })
    .await?;
    run(service_fn(|request| handle(&deps, request))).await
}
