use adapters::wiring::live_lifecycle;
use lambda_http::{run, service_fn};
use stripe_webhook::{Config, Deps, handle};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let deps = Deps {
        lifecycle: live_lifecycle(config.lifecycle).await?,
        secrets: config.webhook_secrets,
    };
    run(service_fn(|request| handle(&deps, request))).await
}
