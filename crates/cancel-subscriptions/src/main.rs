use adapters::Env;
use adapters::wiring::{LifecycleConfig, live_lifecycle};
use cancel_subscriptions::handle;
use lambda_http::{run, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    // Configuration and clients; no network call (the Stripe secret is read on first use).
    let init = async { live_lifecycle(LifecycleConfig::from_env(&Env::process())?).await };
    let deps = match init.await {
        Ok(deps) => deps,
        Err(e) => return Err(adapters::init::failed(e).await.into()),
    };
    run(service_fn(|request| handle(&deps, request))).await
}
