use adapters::Env;
use adapters::wiring::{LifecycleConfig, live_lifecycle};
use cancel_subscriptions::handle;
use lambda_http::{run, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let deps = live_lifecycle(LifecycleConfig::from_env(&Env::process())?).await?;
    run(service_fn(|request| handle(&deps, request))).await
}
