//! What every function does when its init fails (a missing or malformed variable, the bundled
//! catalogue unreadable): one JSON ERROR line with `metric=init_failed` (the template's
//! metric filter and alarm count it) and the error posted to the Runtime API's
//! `/runtime/init/error`, so Lambda records `Runtime.InitError` with the message instead of a
//! bare exit. The runtime crate reports init errors only for SnapStart; this covers the rest.

use std::time::Duration;

use lambda_runtime_api_client::body::Body;

/// Builds a function's dependencies once at cold start: configuration and clients, with no
/// network call (the Stripe secret is read on first use). A failure is logged and reported
/// (see [`failed`]) before it is returned, for `main` to exit with.
pub async fn build<T>(
    init: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    match init.await {
        Ok(deps) => Ok(deps),
        Err(e) => Err(failed(e).await),
    }
}

/// Logs and reports `error`, then hands it back for `main` to return (a non-zero exit).
pub async fn failed(error: anyhow::Error) -> anyhow::Error {
    let message = format!("{error:#}");
    let error_type = error_type(&error);
    tracing::error!(
        metric = "init_failed",
        error_type,
        error = %message,
        "the function could not start"
    );
    if let Err(e) = report(&message, error_type).await {
        tracing::error!(error = %e, "could not report the init error to the Runtime API");
    }
    error
}

/// Lambda's error type for the diagnostic: a configuration problem or anything else.
fn error_type(error: &anyhow::Error) -> &'static str {
    if error.chain().any(|e| e.is::<crate::ConfigError>()) {
        "Runtime.ConfigError"
    } else {
        "Runtime.InitError"
    }
}

/// The init-error request's body, as the Runtime API documents it.
fn diagnostic(message: &str, error_type: &str) -> serde_json::Value {
    serde_json::json!({ "errorMessage": message, "errorType": error_type })
}

async fn report(message: &str, error_type: &'static str) -> anyhow::Result<()> {
    // Outside Lambda (a binary run by hand) there is no Runtime API to report to.
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        return Ok(());
    };
    let client = lambda_runtime_api_client::Client::builder()
        .with_endpoint(format!("http://{api}").parse()?)
        .build()?;
    let request = lambda_runtime_api_client::build_request()
        .method("POST")
        .uri("/2018-06-01/runtime/init/error")
        .header("lambda-runtime-function-error-type", error_type)
        .header("content-type", "application/json")
        .body(Body::from(diagnostic(message, error_type).to_string()))?;
    let response = tokio::time::timeout(Duration::from_secs(2), client.call(request))
        .await
        .map_err(|_| anyhow::anyhow!("the Runtime API did not answer in 2 s"))?
        .map_err(|e| anyhow::anyhow!(e))?;
    anyhow::ensure!(
        response.status().is_success(),
        "the Runtime API answered {}",
        response.status()
    );
    Ok(())
}
