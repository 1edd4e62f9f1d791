use account::{Config, Deps, handle};
use adapters::wiring::live_lifecycle;
use lambda_http::{run, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let deps = Deps {
        lifecycle: live_lifecycle(config.lifecycle).await?,
        portal_return_url: config.portal_return_url,
    };
    run(service_fn(|request| handle(&deps, request))).await
}
