//! What an operator relies on, end to end: the Stripe secret read at run time from Secrets
//! Manager (moto's) and a rotation picked up without a restart; a stalled DynamoDB answered
//! with a 5xx in time and the retry converging; a function that cannot start saying why, to
//! its log as JSON and to the Runtime API.

use std::time::Duration;

use adapters::dynamo::DynamoStore;
use domain::ports::Accounts;
use domain::webhook::{WebhookSecret, sign};
use serde_json::Value;
use tests::proxy::StallProxy;
use tests::{Stack, StackOptions, eventually, free_port, http, target_dir};

const WAIT: Duration = Duration::from_secs(90);

async fn secrets_manager(stack: &Stack) -> anyhow::Result<aws_sdk_secretsmanager::Client> {
    let conf = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(stack.var("AWS_ENDPOINT_URL")?)
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_sdk_dynamodb::config::Credentials::new("local", "local", None, None, "e2e"),
        ))
        .http_client(adapters::aws::http_client())
        .build();
    Ok(aws_sdk_secretsmanager::Client::new(&conf))
}

fn function_log(stack: &Stack) -> String {
    std::fs::read_to_string(stack.state_dir.join("watch.log")).unwrap_or_default()
}

/// A delivery of an event of a type creditgate does not handle, signed with `secret` now.
async fn deliver(stack: &Stack, id: &str, secret: &str) -> anyhow::Result<(u16, String)> {
    let payload = format!(
        r#"{{"id":"{id}","object":"event","type":"customer.created","created":{},"data":{{"object":{{"id":"cus_x","object":"customer"}}}}}}"#,
        adapters::unix_now()
    );
    let header = sign(
        payload.as_bytes(),
        &WebhookSecret::parse(secret)?,
        adapters::unix_now(),
    );
    let (status, _, body) = http(
        &stack.var("LAMBDA_INVOKE_URL")?,
        "POST",
        "/lambda-url/stripe-webhook/stripe/webhook",
        &[("stripe-signature", &header)],
        &payload,
    )
    .await?;
    Ok((status, body))
}

#[tokio::test]
async fn the_stripe_secret_is_read_at_run_time_and_a_rotation_applies_without_a_restart()
-> anyhow::Result<()> {
    // One webhook process, as one warm Lambda instance: it reads the secret once, caches it,
    // and must notice the rotation itself.
    let stack = Stack::start_with(
        "operations-rotation",
        3_600,
        StackOptions {
            env: vec![("WATCH_CONCURRENCY".into(), "1".into())],
            ..StackOptions::default()
        },
    )
    .await?;
    let functions_env = std::fs::read_to_string(stack.state_dir.join("functions.env"))?;
    assert!(
        functions_env.contains("STRIPE_SECRET_ARN=")
            && !functions_env.contains("sk_test")
            && !functions_env.contains("whsec_"),
        "the functions get the secret's ARN, never its value:\n{functions_env}"
    );
    let arn = stack.var("STRIPE_SECRET_ARN")?;
    let secrets = secrets_manager(&stack).await?;
    let stored: Value = serde_json::from_str(
        secrets
            .get_secret_value()
            .secret_id(&arn)
            .send()
            .await?
            .secret_string()
            .unwrap_or_default(),
    )?;
    let old = stored["webhook_secrets"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let key = stored["secret_key"].as_str().unwrap_or_default().to_owned();

    // The emulator's signed deliveries verify against the secret read from Secrets Manager.
    let (status, body) = deliver(&stack, "evt_rotation_1", &old).await?;
    assert_eq!(status, 200, "{body}");

    // The operator rotates: only the new whsec_ is in the secret now.
    let new = "whsec_rotated_by_the_operator";
    secrets
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(serde_json::json!({ "secret_key": key, "webhook_secrets": new }).to_string())
        .send()
        .await?;
    // The cached secrets are re-read on a failed signature at most every 10 s.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let (status, body) = deliver(&stack, "evt_rotation_2", new).await?;
    assert_eq!(
        status, 200,
        "a delivery signed with the rotated secret is accepted at once: {body}"
    );
    let (status, body) = deliver(&stack, "evt_rotation_3", &old).await?;
    assert_eq!(status, 401, "the retired secret no longer verifies: {body}");
    let log = function_log(&stack);
    assert!(
        log.contains("the Stripe secret changed"),
        "the re-read is logged"
    );
    assert!(
        log.contains("webhook_signature_rejected"),
        "a rejected signature carries the metric the alarm counts"
    );
    Ok(())
}

#[tokio::test]
async fn a_stalled_dynamodb_fails_the_delivery_in_time_and_the_retry_converges()
-> anyhow::Result<()> {
    let moto_port = free_port()?;
    let proxy = StallProxy::start(moto_port).await?;
    let stack = Stack::start_with(
        "operations-stall",
        3_600,
        StackOptions {
            moto_port: Some(moto_port),
            // A claim the stall held lands when DynamoDB is back and keeps the event for its
            // 60 s lease; Stripe's retries (hours apart) come after it, so here the emulator's
            // are compressed only 60× (5 s, 30 s, 2 min, …) and one does too.
            env: vec![
                ("AWS_ENDPOINT_URL_DYNAMODB".into(), proxy.url()),
                ("STRIPE_EMULATOR_RETRY_COMPRESSION".into(), "60".into()),
            ],
            ..StackOptions::default()
        },
    )
    .await?;
    let store = DynamoStore::new(stack.dynamodb.clone(), stack.var("TABLE_NAME")?);
    let ada = stack.sign_up("ada@example.com").await?;

    // DynamoDB stops answering the functions (the CLI and this test still reach moto).
    proxy.stall();
    let out = stack.creditgate_dev(&["checkout", "ada@example.com", "basic", "--pack"])?;
    anyhow::ensure!(
        out.status.success(),
        "checkout: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Stripe (here the emulator, which gives up on an endpoint after 10 s) sees a 5xx, not a
    // timeout: the SDK's operation timeout ends the call well inside the function's.
    let failed = eventually(WAIT, "a delivery answered 5xx", || async {
        let log = stack.emulator("GET", "/_emulator/deliveries", "").await?;
        Ok(log["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .find(|d| d["status_code"].as_u64().is_some_and(|s| s >= 500) || !d["error"].is_null()))
    })
    .await?;
    assert!(
        failed["status_code"].as_u64().is_some_and(|s| s >= 500),
        "the webhook answered in time with a 5xx: {failed}"
    );
    let profile = store.profile(&ada).await?;
    assert_eq!(profile.map(|p| p.purchased.get()), Some(0));

    // DynamoDB is back: Stripe's retry applies the purchase, once.
    proxy.resume();
    eventually(
        Duration::from_secs(240),
        "the pack granted on the retry",
        || async {
            Ok(store
                .profile(&ada)
                .await?
                .filter(|p| p.purchased.get() == 1_000)
                .map(|_| ()))
        },
    )
    .await?;
    // The checkout's event is delivered, and the purchase counted once.
    let checkout = stack
        .emulator("GET", "/v1/events?type=checkout.session.completed", "")
        .await?;
    let checkout = checkout["data"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    eventually(WAIT, "the checkout event delivered", || async {
        let log = stack.emulator("GET", "/_emulator/deliveries", "").await?;
        Ok(log["data"]
            .as_array()
            .is_some_and(|d| {
                d.iter()
                    .any(|d| d["event"] == checkout.as_str() && d["delivered"] == true)
            })
            .then_some(()))
    })
    .await?;
    assert_eq!(
        store.profile(&ada).await?.map(|p| p.purchased.get()),
        Some(1_000),
        "granted once"
    );
    Ok(())
}

/// A fake Runtime API that takes one request and answers 202; the request comes back as its
/// text (request line, headers, blank line, body).
async fn runtime_api() -> anyhow::Result<(u16, tokio::task::JoinHandle<anyhow::Result<String>>)> {
    let (addr, mut recorded) = stripe_emulator::http::recorder(Vec::new(), 202).await?;
    let task = tokio::spawn(async move {
        let request = recorded
            .recv()
            .await
            .ok_or_else(|| anyhow::anyhow!("the Runtime API got no request"))?;
        let headers: String = request
            .headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}\r\n"))
            .collect();
        Ok(format!(
            "{} {} HTTP/1.1\r\n{headers}\r\n{}",
            request.method, request.target, request.body
        ))
    });
    Ok((addr.port(), task))
}

#[tokio::test]
async fn a_function_that_cannot_start_logs_json_and_reports_to_the_runtime_api()
-> anyhow::Result<()> {
    let (port, request) = runtime_api().await?;
    // credit-meter without TABLE_NAME, as Lambda would start it.
    let out = tokio::process::Command::new(target_dir().join("debug/credit-meter"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_FUNCTION_NAME", "creditgate-credit-meter")
        .env("AWS_REGION", "us-east-1")
        .output()
        .await?;
    assert!(!out.status.success(), "it exits with an error");
    let request = tokio::time::timeout(Duration::from_secs(10), request).await???;
    assert!(
        request.starts_with("POST /2018-06-01/runtime/init/error "),
        "{request}"
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains("lambda-runtime-function-error-type: runtime.configerror"),
        "{request}"
    );
    let body: Value = serde_json::from_str(request.split_once("\r\n\r\n").map_or("", |b| b.1))?;
    assert_eq!(body["errorType"], "Runtime.ConfigError");
    assert!(
        body["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("TABLE_NAME")),
        "{body}"
    );
    // The log line is JSON, with the field the init-crash alarm's metric filter reads.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["fields"]["metric"] == "init_failed");
    assert!(
        line.as_ref().is_some_and(|l| l["level"] == "ERROR"
            && l["fields"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("TABLE_NAME"))),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
