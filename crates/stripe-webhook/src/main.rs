use adapters::wiring::live_lifecycle;
use adapters::{Env, FromEnv};
use lambda_http::{run, service_fn};
use stripe_webhook::{Config, Deps, handle};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let deps = adapters::init::build(async {
        let config = Config::from_env(&Env::process())?;
        let lifecycle = live_lifecycle(config.lifecycle).await?;
        anyhow::Ok(Deps {
            secrets: lifecycle.stripe.secrets().clone(),
            lifecycle,
        })
    })
    .await?;
    run(service_fn(|request| handle(&deps, request))).await
}
