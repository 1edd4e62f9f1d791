use adapters::wiring::{LifecycleConfig, live_lifecycle};
use lambda_runtime::{run, service_fn};
use reconcile::handle;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    // Configuration and clients; no network call (the Stripe secret is read on first use).
    let init = async {
        let config = LifecycleConfig::from_env(&adapters::Env::process())?;
        live_lifecycle(config).await
    };
    let lifecycle = match init.await {
        Ok(lifecycle) => lifecycle,
        Err(e) => return Err(adapters::init::failed(e).await.into()),
    };
    run(service_fn(|event| handle(&lifecycle, event))).await
}
