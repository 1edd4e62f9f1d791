use adapters::wiring::{LifecycleConfig, live_lifecycle};
use adapters::{Env, FromEnv};
use lambda_runtime::{run, service_fn};
use reconcile::handle;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let lifecycle = adapters::init::build(async {
        live_lifecycle(LifecycleConfig::from_env(&Env::process())?).await
    })
    .await?;
    run(service_fn(|event| handle(&lifecycle, event))).await
}
