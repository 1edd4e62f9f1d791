use adapters::wiring::live_lifecycle;
use lambda_http::{run, service_fn};
use stripe_webhook::{Config, Deps, handle};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    // Configuration and clients; no network call (the Stripe secret is read on first use).
    let init = async {
        let config = Config::from_env()?;
        let lifecycle = live_lifecycle(config.lifecycle).await?;
        anyhow::Ok(Deps {
            secrets: lifecycle.stripe.secrets().clone(),
            lifecycle,
        })
    };
    let deps = match init.await {
        Ok(deps) => deps,
        Err(e) => return Err(adapters::init::failed(e).await.into()),
    };
    run(service_fn(|request| handle(&deps, request))).await
}
