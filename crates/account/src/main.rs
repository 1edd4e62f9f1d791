use account::{Config, Deps, handle};
use adapters::wiring::live_lifecycle;
use adapters::{Env, FromEnv};
use lambda_http::{run, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let deps = adapters::init::build(async {
        let config = Config::from_env(&Env::process())?;
        anyhow::Ok(Deps {
            lifecycle: live_lifecycle(config.lifecycle).await?,
            portal_return_url: config.portal_return_url,
        })
    })
    .await?;
    run(service_fn(|request| handle(&deps, request))).await
}
