//! Handler tests: the real stripe-emulator in process, in-memory DynamoDB/Cognito/Step Functions.
//!
//! Signatures and the webhook secret: what is verified, what is refused, what is ignored.

mod support;

use adapters::unix_now as now;
use domain::lifecycle::AccessPolicy;
use support::*;

#[tokio::test]
async fn a_bad_missing_stale_or_tampered_signature_is_401_and_writes_nothing() -> anyhow::Result<()>
{
    let (stripe, deps, _, _) = subscribed("creditgate_basic_subscription").await?;
    let event = stripe.events().await?.pop().unwrap_or_default();
    let cases = [
        delivery(&event, "whsec_someone_else", now())?,
        delivery(&event, SECRET, now() - 301)?,
        delivery(&event, SECRET, now() + 301)?,
        {
            let mut r = delivery(&event, SECRET, now())?;
            *r.body_mut() = lambda_http::Body::Text(event.replace("user-1", "user-2"));
            r
        },
        {
            let mut r = delivery(&event, SECRET, now())?;
            r.headers_mut().remove("stripe-signature");
            r
        },
    ];
    for request in cases {
        let response = stripe_webhook::handle(&deps, request)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        assert_eq!(response.status(), 401);
        let body: serde_json::Value = serde_json::from_slice(response.body().as_ref())?;
        assert_eq!(body["error"], "invalid Stripe-Signature");
    }
    assert!(
        deps.lifecycle
            .store
            .events
            .lock()
            .map(|e| e.is_empty())
            .unwrap_or(false),
        "no event record"
    );
    let p = profile(&deps, "user-1").await?;
    assert_eq!((p.plan.as_str(), p.version), ("free", 0), "nothing written");
    Ok(())
}

#[tokio::test]
async fn a_base64_body_from_api_gateway_verifies() -> anyhow::Result<()> {
    let (stripe, deps, _, _) = subscribed("creditgate_basic_subscription").await?;
    let event = stripe.events().await?.pop().unwrap_or_default();
    let api_gateway = serde_json::json!({
        "version": "2.0", "routeKey": "POST /stripe/webhook", "rawPath": "/stripe/webhook",
        "rawQueryString": "", "headers": {
            "stripe-signature": domain::webhook::sign(event.as_bytes(), &domain::webhook::WebhookSecret::parse(SECRET)?, now()),
            "content-type": "application/json"
        },
        "requestContext": { "accountId": "1", "apiId": "a", "domainName": "x", "domainPrefix": "x",
            "http": { "method": "POST", "path": "/stripe/webhook", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "Stripe/1.0" },
            "requestId": "r", "routeKey": "POST /stripe/webhook", "stage": "$default", "time": "23/Nov/2026:00:00:00 +0000", "timeEpoch": 0 },
        "body": base64(event.as_bytes()),
        "isBase64Encoded": true
    });
    let request: lambda_http::request::LambdaRequest = serde_json::from_value(api_gateway)?;
    let request: lambda_http::Request = request.into();
    let response = stripe_webhook::handle(&deps, request)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(response.status(), 200);
    Ok(())
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The placeholder `sam deploy` leaves in the secret, counting reads.
#[derive(Clone, Default)]
struct Placeholder(std::sync::Arc<std::sync::atomic::AtomicU32>);

impl adapters::secrets::SecretStore for Placeholder {
    fn fetch(&self) -> adapters::secrets::SecretFuture<'_> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async { Ok(r#"{"secret_key":"","webhook_secrets":""}"#.to_owned()) })
    }

    fn name(&self) -> String {
        "creditgate/stripe".into()
    }
}

#[tokio::test]
async fn before_the_secret_is_put_forged_deliveries_cost_at_most_one_read_and_never_a_401_for_stripe()
-> anyhow::Result<()> {
    let stripe = Stripe::start().await?;
    let mut deps = deps(&stripe, AccessPolicy::default())?;
    let store = Placeholder::default();
    deps.secrets = adapters::secrets::StripeSecretSource::new(store.clone(), None);
    let reads = || store.0.load(std::sync::atomic::Ordering::SeqCst);
    let payload = r#"{"id":"evt_1","type":"invoice.paid","created":1,"data":{"object":{}}}"#;
    // Malformed or stale headers are refused without reading the secret.
    for header in ["x", "t=1,v1=00", "v1=abc", &format!("t={},v0=ab", now())] {
        let request = lambda_http::http::Request::builder()
            .method("POST")
            .uri("/stripe/webhook")
            .header("stripe-signature", header)
            .body(lambda_http::Body::Text(payload.to_owned()))?;
        let response = stripe_webhook::handle(&deps, request)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        assert_eq!(response.status(), 401, "{header}");
    }
    assert_eq!(reads(), 0);
    // Well formed and fresh: it needs the secret, which is unusable: 503 (Stripe retries), and
    // a flood reads it once.
    for _ in 0..50 {
        let response = stripe_webhook::handle(&deps, delivery(payload, "whsec_forged", now())?)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        assert_eq!(response.status(), 503);
    }
    assert_eq!(reads(), 1);
    Ok(())
}

#[tokio::test]
async fn verified_events_of_other_types_are_200_and_ignored() -> anyhow::Result<()> {
    let (stripe, deps, _, _) = subscribed("creditgate_basic_subscription").await?;
    let created = stripe
        .events()
        .await?
        .into_iter()
        .find(|e| e.contains("\"invoice.created\""))
        .unwrap_or_default();
    let (status, body) = deliver(&deps, &created).await?;
    assert_eq!(status, 200);
    assert!(
        body["ignored"]
            .as_str()
            .unwrap_or_default()
            .contains("not handled")
    );
    Ok(())
}
