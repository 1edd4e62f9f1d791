use account::{Config, Deps, handle};
use adapters::wiring::live_lifecycle;
use lambda_http::{run, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    // Configuration and clients; no network call (the Stripe secret is read on first use).
    let init = async {
        let config = Config::from_env()?;
        anyhow::Ok(Deps {
            lifecycle: live_lifecycle(config.lifecycle).await?,
            portal_return_url: config.portal_return_url,
        })
    };
    let deps = match init.await {
        Ok(deps) => deps,
        Err(e) => return Err(adapters::init::failed(e).await.into()),
    };
    run(service_fn(|request| handle(&deps, request))).await
}
